"""The journeys demo: the Cardiozen journeys of demo/data/journeys/, built from the demo
modules (physician new to therapy, patient, pharmacist; US market, adaptive paths of
DOMAIN.md).

Idempotent: journeys, stages, steps and transitions are matched on their natural keys, and
a step's slots are created only when it has none (so admin edits survive a reload).
"""

from __future__ import annotations

from django.db import transaction

from content.models import Audience, Brand, Channel, ContentModule, Jurisdiction, Locale
from content.models import Stage as AudienceStage
from journeys.models import Journey, Slot, Stage, Step, Transition

from .specs import JourneySpec, SelectorSlot, journey_specs


def _ensure_stages(journey: Journey, audience: Audience, spec: JourneySpec) -> dict[str, Stage]:
    stages = {}
    for order, (code, insight) in enumerate(spec.stages.items(), start=1):
        audience_stage = AudienceStage.objects.get(audience=audience, code=code)
        stage, _ = Stage.objects.get_or_create(
            journey=journey, audience_stage=audience_stage,
            defaults={"order": order, "needs": insight.needs, "emotions": insight.emotions,
                      "pain_points": insight.pain_points,
                      "opportunities": insight.opportunities})
        stages[code] = stage
    return stages


def _ensure_steps(journey, stages, spec: JourneySpec, *, channels, modules,
                  missing: list[str]) -> dict[str, Step]:
    steps = {}
    per_stage: dict[str, int] = {}
    for step_spec in spec.steps:
        per_stage[step_spec.stage] = per_stage.get(step_spec.stage, 0) + 1
        step, _ = Step.objects.get_or_create(
            journey=journey, key=step_spec.key,
            defaults={"stage": stages[step_spec.stage], "name": step_spec.name,
                      "channel": channels[step_spec.channel],
                      "owner_function": step_spec.owner_function, "purpose": step_spec.purpose,
                      "layout": step_spec.layout, "timing": step_spec.timing,
                      "decision_moment": step_spec.decision_moment,
                      "order": per_stage[step_spec.stage], "delay_days": 0})
        steps[step_spec.key] = step
        if step.slots.exists():
            continue
        for order, slot in enumerate(step_spec.slots):
            if isinstance(slot, SelectorSlot):
                Slot.objects.create(step=step, order=order, selector_kind=slot.kind,
                                    priority=slot.priority, ranking=slot.ranking)
            elif slot in modules:
                Slot.objects.create(step=step, order=order, module=modules[slot])
            else:
                missing.append(slot)
    return steps


@transaction.atomic
def load(out) -> None:
    """Create or complete the demo journeys (idempotent)."""
    channels = {c.code: c for c in Channel.objects.all()}
    for spec in journey_specs():
        brand = Brand.objects.filter(slug=spec.brand).first()
        if brand is None:
            out.write(f"journeys demo: {spec.slug} skipped (the content demo's brand "
                      f"{spec.brand} is missing)\n")
            continue
        modules = {m.code: m for m in ContentModule.objects.filter(brand=brand)}
        audience = Audience.objects.get(code=spec.audience)
        journey, created = Journey.objects.get_or_create(
            slug=spec.slug,
            defaults={"name": spec.name, "brand": brand, "audience": audience,
                      "locale": Locale.objects.get(code=spec.locale),
                      "description": spec.description})
        if created:
            journey.jurisdictions.set(Jurisdiction.objects.filter(code__in=spec.jurisdictions))
        stages = _ensure_stages(journey, audience, spec)
        missing: list[str] = []
        steps = _ensure_steps(journey, stages, spec, channels=channels, modules=modules,
                              missing=missing)
        for transition in spec.transitions:
            Transition.objects.get_or_create(
                from_step=steps[transition.from_step], event_type=transition.event,
                threshold=transition.threshold, days=transition.days,
                to_step=steps[transition.to_step] if transition.to_step else None,
                pause=transition.to_step is None, defaults={"label": transition.label})
        note = f" (modules not found: {', '.join(sorted(set(missing)))})" if missing else ""
        out.write(f"journeys demo: {journey.slug} with {len(steps)} steps{note}\n")
