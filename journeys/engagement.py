"""Engagement events move pseudonymous recipients along adaptive paths.

`record_event` is the one service the API (`POST /api/v1/events/`), tasks and tests call.
It stores the event against the recipient's enrollment (created on first contact), counts
the events of that type at that step and fires the matching transition with the highest
threshold reached: "two ignored emails → portal micro-content" fires on the second ignore.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .models import (
    PSEUDONYM_RE,
    EngagementEvent,
    Enrollment,
    EventType,
    Journey,
    Step,
    Transition,
)


@dataclass(frozen=True)
class EngagementOutcome:
    """What an event did: the recipient's step now, whether outreach is paused, and why."""

    enrollment: Enrollment
    next_step: Step | None
    paused: bool
    transition: Transition | None

    @property
    def moved(self) -> bool:
        return self.transition is not None


@transaction.atomic
def record_event(
    journey: Journey,
    step: Step,
    pseudonymous_id: str,
    event_type: str,
    *,
    days: int | None = None,
    occurred_at=None,
) -> EngagementOutcome:
    """Record one engagement event and apply the step's transitions.

    `pseudonymous_id` is the keyed hash (see `models.pseudonymous_id`), never a raw id.
    For `no_engagement_for`, `days` says how long the recipient has been silent; the
    transition with the largest `days` not above it fires. Events at a step other than
    the recipient's current one are stored (they count for analytics) but move nobody.
    Returns the recipient's next step (None while paused).
    """
    if step.journey_id != journey.pk:
        raise ValidationError({"step": f"Step {step.key!r} is not part of journey {journey.slug!r}."})
    if event_type not in EventType.values:
        raise ValidationError({"event_type": (
            f"Unknown event type {event_type!r}; use one of {', '.join(EventType.values)}."
        )})
    if not PSEUDONYM_RE.fullmatch(pseudonymous_id or ""):
        raise ValidationError({"recipient": "Pass the 64-hex pseudonymous id, never a raw recipient id."})
    if event_type == EventType.NO_ENGAGEMENT_FOR and (days is None or days < 1):
        raise ValidationError({"days": "no_engagement_for needs the number of silent days (≥ 1)."})

    enrollment, _ = Enrollment.objects.select_for_update().get_or_create(
        journey=journey, recipient_hash=pseudonymous_id, defaults={"current_step": step},
    )
    EngagementEvent.objects.create(
        enrollment=enrollment, step=step, event_type=event_type, days=days,
        occurred_at=occurred_at or timezone.now(),
    )
    fired = None
    if not enrollment.paused and enrollment.current_step_id == step.pk:
        fired = _matching_transition(enrollment, step, event_type, days)
        if fired is not None:
            if fired.pause:
                enrollment.paused = True
            else:
                enrollment.current_step = fired.to_step
            enrollment.save(update_fields=["paused", "current_step", "updated_at"])
    next_step = None if enrollment.paused else enrollment.current_step
    return EngagementOutcome(enrollment=enrollment, next_step=next_step,
                             paused=enrollment.paused, transition=fired)


def _matching_transition(enrollment, step, event_type, days) -> Transition | None:
    candidates = list(
        Transition.objects.filter(from_step=step, event_type=event_type)
        .select_related("to_step")
    )
    if not candidates:
        return None
    if event_type == EventType.NO_ENGAGEMENT_FOR:
        reached = [t for t in candidates if t.days and t.days <= days]
        return max(reached, key=lambda t: t.days, default=None)
    count = EngagementEvent.objects.filter(enrollment=enrollment, step=step,
                                           event_type=event_type).count()
    reached = [t for t in candidates if t.threshold <= count]
    return max(reached, key=lambda t: t.threshold, default=None)


@transaction.atomic
def resume(enrollment: Enrollment, *, step: Step | None = None) -> Enrollment:
    """Resume a paused enrollment (at `step`, or where it stopped)."""
    enrollment = Enrollment.objects.select_for_update().get(pk=enrollment.pk)
    enrollment.paused = False
    if step is not None:
        enrollment.current_step = step
    enrollment.save(update_fields=["paused", "current_step", "updated_at"])
    return enrollment


@transaction.atomic
def mark_seen(enrollment: Enrollment, module_ids: Iterable[int]) -> None:
    """Remember delivered modules so selector slots do not serve them again."""
    enrollment = Enrollment.objects.select_for_update().get(pk=enrollment.pk)
    seen = list(dict.fromkeys([*enrollment.seen_module_ids, *module_ids]))
    if seen != enrollment.seen_module_ids:
        enrollment.seen_module_ids = seen
        enrollment.save(update_fields=["seen_module_ids", "updated_at"])


def apply_silence(*, now=None) -> int:
    """Fire `no_engagement_for` transitions for enrollments silent long enough.

    Silence is counted from the enrollment's last event (or its enrollment). Meant for a
    daily schedule; idempotent: a recipient already moved or paused is not touched again
    for the same silence. Returns how many enrollments moved or paused.
    """
    from django.db.models import Max

    now = now or timezone.now()
    moved = 0
    silent_steps = set(Transition.objects.filter(event_type=EventType.NO_ENGAGEMENT_FOR)
                       .values_list("from_step_id", flat=True))
    candidates = (Enrollment.objects.filter(paused=False, current_step_id__in=silent_steps)
                  .annotate(last_event=Max("events__occurred_at"))
                  .select_related("journey", "current_step"))
    for enrollment in candidates:
        since = enrollment.last_event or enrollment.enrolled_at
        days = (now - since).days
        if days < 1:
            continue
        already = EngagementEvent.objects.filter(
            enrollment=enrollment, step=enrollment.current_step,
            event_type=EventType.NO_ENGAGEMENT_FOR, occurred_at__gte=since).exists()
        if already:
            continue
        outcome = record_event(enrollment.journey, enrollment.current_step,
                               enrollment.recipient_hash, EventType.NO_ENGAGEMENT_FOR,
                               days=min(days, 32767), occurred_at=now)
        moved += outcome.moved
    return moved
