"""Every edit of a journey's structure: the journey builder and the admin call these.

Each service checks the person's permission (the admin's model permission, e.g.
`journeys.change_step`, and the brand rule `restrict(user, "change")`), validates with the
models' own `full_clean` (the admin's forms run the same `clean`), saves inside one
transaction and leaves a history record (django-simple-history, the request's user).

Optimistic locking: journeys, stages and steps carry an edit counter (`version`, one more
on every save). An edit states the counter it read; when the row moved on meanwhile the
service raises `EditConflict` naming who saved and when, and saves nothing — the caller
shows the person their own input again next to what is saved now.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q

from content.models import ContentModule, ModuleKind, ModuleVersion, VersionState

from ..models import Journey, SelectorRanking, Slot, Stage, Step, Transition

CHANGE_REASON = "journey builder"
# Module states a slot may be bound to from the builder's search: what can go out, and
# what is on its way (the map shows the touchpoint blocked until it is approved).
BINDABLE_STATES = (VersionState.APPROVED, VersionState.IN_REVIEW)
SEARCH_LIMIT = 20


@dataclass
class EditConflict(Exception):
    """The row was saved by someone else since the editor read it."""

    instance: object
    expected: int
    by: str
    at: datetime | None

    def __str__(self) -> str:
        return message(self)


def message(conflict: EditConflict) -> str:
    what = type(conflict.instance)._meta.verbose_name
    when = f" at {conflict.at:%H:%M} UTC" if conflict.at else ""
    return (f"{conflict.by} saved this {what}{when} while you were editing it. Nothing of "
            f"yours is lost and nothing was overwritten: your input is below, next to what "
            f"is saved now. Check it and save again to apply yours.")


# --- Permissions --------------------------------------------------------------------------


def may(user, action: str, model, journey: Journey) -> bool:
    """The admin's rule: the model permission (`journeys.<action>_<model>`) and the brand
    rule (the journey among those `user` may change)."""
    perm = f"journeys.{action}_{model._meta.model_name}"
    return bool(user.has_perm(perm) and Journey.objects.restrict(user, "change").filter(
        pk=journey.pk).exists())


def can_build(user, journey: Journey) -> bool:
    return may(user, "change", Journey, journey)


def require(user, action: str, model, journey: Journey) -> None:
    if not may(user, action, model, journey):
        raise PermissionDenied(
            f"You may not {action} {model._meta.verbose_name_plural} of this journey.")


# --- Saving -------------------------------------------------------------------------------


def _last_change(instance) -> tuple[str, datetime | None]:
    record = instance.history.order_by("-history_date", "-history_id").select_related(
        "history_user").first()
    if record is None:
        return "Someone", None
    user = record.history_user
    name = (user.get_full_name() or user.get_username()) if user else "Someone"
    return name, record.history_date


def _locked(instance, expected: int | None):
    """The row re-read under a lock; EditConflict when its counter moved on."""
    current = type(instance).objects.select_for_update().get(pk=instance.pk)
    if expected is not None and current.version != expected:
        by, at = _last_change(current)
        raise EditConflict(instance=current, expected=expected, by=by, at=at)
    return current


def _save(instance, *, exclude: Iterable[str] = ()) -> None:
    """The model's own validation (the admin's), then save with a history reason."""
    instance.full_clean(exclude=list(exclude) or None)
    instance._change_reason = CHANGE_REASON
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as error:  # a unique constraint another save won meanwhile
        raise ValidationError(f"That clashes with a row saved meanwhile: {error}.") from error


def save_versioned(instance, *, expected: int | None) -> None:
    """Save an edited journey, stage or step unless someone saved it since `expected`
    (the admin calls this too)."""
    with transaction.atomic():
        if instance.pk is not None:
            current = _locked(instance, expected)
            instance.version = current.version
        _save(instance)


def _update(instance, values: dict, expected: int | None):
    with transaction.atomic():
        current = _locked(instance, expected)
        for name, value in values.items():
            setattr(current, name, value)
        _save(current)
    return current


# --- Stages -------------------------------------------------------------------------------


def add_stage(user, journey: Journey, *, audience_stage, **insights) -> Stage:
    require(user, "add", Stage, journey)
    with transaction.atomic():
        last = journey.stages.order_by("-order").values_list("order", flat=True).first() or 0
        stage = Stage(journey=journey, audience_stage=audience_stage, order=last + 1, **insights)
        _save(stage)
    return stage


def update_stage(user, stage: Stage, values: dict, *, expected: int | None) -> Stage:
    require(user, "change", Stage, stage.journey)
    return _update(stage, values, expected)


def move_stage(user, stage: Stage, offset: int) -> None:
    """One place left (-1) or right (+1) among the journey's stages."""
    require(user, "change", Stage, stage.journey)
    with transaction.atomic():
        stages = list(Stage.objects.select_for_update().filter(journey=stage.journey_id)
                      .order_by("order", "id"))
        _move(stages, stage.pk, offset)


def remove_stage(user, stage: Stage) -> None:
    require(user, "delete", Stage, stage.journey)
    with transaction.atomic():
        stage = Stage.objects.select_for_update().get(pk=stage.pk)
        count = stage.steps.count()
        if count:
            raise ValidationError(
                f"{stage} still has {count} touchpoint{'s' if count > 1 else ''}: move or "
                f"remove {'them' if count > 1 else 'it'} first.")
        stage._change_reason = CHANGE_REASON
        stage.delete()


def _move(rows: list, pk: int, offset: int) -> None:
    """Renumber `rows` (1, 2, ...) with `pk` moved by `offset` places; save what changed."""
    index = next((i for i, row in enumerate(rows) if row.pk == pk), None)
    if index is None:
        return
    target = max(0, min(len(rows) - 1, index + offset))
    rows.insert(target, rows.pop(index))
    for number, row in enumerate(rows, start=1):
        if row.order != number:
            row.order = number
            row._change_reason = CHANGE_REASON
            row.save()


# --- Steps --------------------------------------------------------------------------------


def add_step(user, journey: Journey, **values) -> Step:
    require(user, "add", Step, journey)
    with transaction.atomic():
        stage = values["stage"]
        last = Step.objects.filter(stage=stage).order_by("-order").values_list(
            "order", flat=True).first() or 0
        step = Step(journey=journey, order=last + 1, **values)
        _save(step)
    return step


def update_step(user, step: Step, values: dict, *, expected: int | None) -> Step:
    require(user, "change", Step, step.journey)
    moved = "stage" in values and values["stage"].pk != step.stage_id
    if moved:  # at the end of its new stage
        values = {**values, "order": (Step.objects.filter(stage=values["stage"]).order_by(
            "-order").values_list("order", flat=True).first() or 0) + 1}
    return _update(step, values, expected)


def move_step(user, step: Step, offset: int) -> None:
    """One place up (-1) or down (+1) inside its stage."""
    require(user, "change", Step, step.journey)
    with transaction.atomic():
        steps = list(Step.objects.select_for_update().filter(stage=step.stage_id)
                     .order_by("order", "id"))
        _move(steps, step.pk, offset)


def remove_step(user, step: Step) -> None:
    """Remove a touchpoint with its slots and paths; refused while recipients' engagement
    refers to it (that record is kept)."""
    require(user, "delete", Step, step.journey)
    with transaction.atomic():
        step = Step.objects.select_for_update().get(pk=step.pk)
        if step.events.exists() or step.enrollments.exists():
            raise ValidationError(
                f"{step.name} has recipients' engagement recorded against it; it stays. "
                f"Draw paths around it instead.")
        step._change_reason = CHANGE_REASON
        step.delete()


# --- Slots --------------------------------------------------------------------------------


def bindable_modules(user, step: Step, query: str = ""):
    """Modules a slot of `step` may be bound to from the builder: the user's visible
    modules of the journey's brand with a version approved or in review, tagged for the
    step's channel and one of the journey's markets; matched by code or title."""
    journey = step.journey
    versions = ModuleVersion.objects.filter(
        module=OuterRef("pk"), state__in=BINDABLE_STATES, channels=step.channel_id,
        jurisdictions__in=journey.jurisdictions.values("pk"))
    modules = (ContentModule.objects.restrict(user, "view")
               .filter(brand_id=journey.brand_id).exclude(kind=ModuleKind.FOOTER)
               .filter(Exists(versions)))
    query = (query or "").strip()
    if query:
        modules = modules.filter(Q(code__icontains=query) | Q(title__icontains=query))
    return modules.order_by("code")


def _next_slot_order(step: Step) -> int:
    last = step.slots.order_by("-order").values_list("order", flat=True).first()
    return 0 if last is None else last + 1


def bind_module(user, step: Step, module: ContentModule) -> Slot:
    require(user, "add", Slot, step.journey)
    if not bindable_modules(user, step).filter(pk=module.pk).exists():
        raise ValidationError({"module": (
            f"{module.code} cannot fill this touchpoint: pick a module of "
            f"{step.journey.brand} approved or in review for {step.channel} in one of the "
            f"journey's markets.")})
    with transaction.atomic():
        slot = Slot(step=step, module=module, order=_next_slot_order(step))
        _save(slot)
    return slot


def add_selector(user, step: Step, *, selector_kind: str, priority: int = 0,
                 required: bool = True, stages=(), specialties=(),
                 ranking: str = SelectorRanking.DEFAULT) -> Slot:
    require(user, "add", Slot, step.journey)
    with transaction.atomic():
        slot = Slot(step=step, selector_kind=selector_kind, priority=priority,
                    required=required, ranking=ranking, order=_next_slot_order(step))
        _save(slot)
        slot.selector_stages.set(stages)
        slot.selector_specialties.set(specialties)
    return slot


def update_selector(user, slot: Slot, *, selector_kind: str, priority: int, required: bool,
                    stages=(), specialties=(), ranking: str | None = None) -> Slot:
    """`ranking` None keeps the slot's ranking."""
    require(user, "change", Slot, slot.step.journey)
    with transaction.atomic():
        slot = Slot.objects.select_for_update().get(pk=slot.pk)
        slot.selector_kind, slot.priority, slot.required = selector_kind, priority, required
        if ranking is not None:
            slot.ranking = ranking
        _save(slot)
        slot.selector_stages.set(stages)
        slot.selector_specialties.set(specialties)
    return slot


def move_slot(user, slot: Slot, offset: int) -> None:
    require(user, "change", Slot, slot.step.journey)
    with transaction.atomic():
        slots = list(Slot.objects.select_for_update().filter(step=slot.step_id)
                     .order_by("order", "id"))
        index = next(i for i, s in enumerate(slots) if s.pk == slot.pk)
        target = max(0, min(len(slots) - 1, index + offset))
        slots.insert(target, slots.pop(index))
        for number, row in enumerate(slots):
            if row.order != number:
                row.order = number
                row._change_reason = CHANGE_REASON
                row.save()


def remove_slot(user, slot: Slot) -> None:
    require(user, "delete", Slot, slot.step.journey)
    with transaction.atomic():
        if Slot.objects.filter(pk=slot.pk).exists():
            slot._change_reason = CHANGE_REASON
            slot.delete()


# --- Transitions --------------------------------------------------------------------------


def add_transition(user, journey: Journey, *, from_step: Step, to_step: Step | None,
                   event_type: str, threshold: int = 1, days: int | None = None,
                   pause: bool = False, label: str = "") -> Transition:
    require(user, "add", Transition, journey)
    if from_step.journey_id != journey.pk:
        raise ValidationError({"from_step": "Pick a touchpoint of this journey."})
    with transaction.atomic():
        transition = Transition(from_step=from_step, to_step=to_step, event_type=event_type,
                                threshold=threshold, days=days, pause=pause, label=label)
        _save(transition)
    return transition


def remove_transition(user, transition: Transition) -> None:
    require(user, "delete", Transition, transition.from_step.journey)
    with transaction.atomic():
        transition._change_reason = CHANGE_REASON
        if Transition.objects.filter(pk=transition.pk).exists():
            transition.delete()
