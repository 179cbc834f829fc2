"""Engagement events move pseudonymous recipients along adaptive paths.

`record_event` is the one service the API (`POST /api/v1/events/`), tasks and tests call.
It stores the event against the recipient's enrollment (created on first contact), counts
the events of that type at that step and fires the matching transition with the highest
threshold reached: "two ignored emails → portal micro-content" fires on the second ignore.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import models, transaction
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
    _validate(journey, step, pseudonymous_id, event_type, days)
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
    count = 0
    if event_type != EventType.NO_ENGAGEMENT_FOR:
        count = EngagementEvent.objects.filter(enrollment=enrollment, step=step,
                                               event_type=event_type).count()
    return pick_transition(candidates, event_type, days=days, count=count)


def pick_transition(candidates: list[Transition], event_type: str, *, days: int | None,
                    count: int) -> Transition | None:
    """Which transition an event fires (one rule, for one event or a batch): for
    `no_engagement_for` the one with the largest `days` not above the silence; for the
    others the one with the highest threshold that `count` (events of that type at that
    step, this one included) reaches."""
    if event_type == EventType.NO_ENGAGEMENT_FOR:
        reached = [t for t in candidates if t.days and t.days <= (days or 0)]
        return max(reached, key=lambda t: t.days, default=None)
    reached = [t for t in candidates if t.threshold <= count]
    return max(reached, key=lambda t: t.threshold, default=None)


def _validate(journey, step, pseudonymous_id, event_type, days) -> None:
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


@dataclass(frozen=True)
class EventInput:
    journey: Journey
    step: Step
    pseudonymous_id: str
    event_type: str
    days: int | None = None
    occurred_at: object = None


class BatchEventError(ValidationError):
    """A batch event that cannot be recorded; `row` is its index (nothing was recorded)."""

    def __init__(self, row: int, message):
        super().__init__(message)
        self.row = row


@transaction.atomic
def record_events(events: list[EventInput], *, history_user=None) -> list[EngagementOutcome]:
    """Record a batch with the outcome of `record_event` called once per event in order,
    in a constant number of queries: enrollments created and locked in bulk, events
    inserted in bulk (with their history rows), transitions picked in memory by the same
    rule and written back in one bulk update. All or nothing (`BatchEventError`)."""
    for row, e in enumerate(events):
        try:
            _validate(e.journey, e.step, e.pseudonymous_id, e.event_type, e.days)
        except ValidationError as exc:
            raise BatchEventError(row, exc.messages) from None
    if not events:
        return []
    now = timezone.now()
    first_step: dict[tuple[int, str], int] = {}
    for e in events:
        first_step.setdefault((e.journey.pk, e.pseudonymous_id), e.step.pk)
    keys = list(first_step)
    enrollments = _lock_enrollments(keys)
    # Inserted in one order by every batch: two batches enrolling the same new recipients
    # wait for each other instead of deadlocking on the unique index.
    missing = sorted(k for k in keys if k not in enrollments)
    created: list[Enrollment] = []
    if missing:
        Enrollment.objects.bulk_create(
            [Enrollment(journey_id=j, recipient_hash=h, current_step_id=first_step[(j, h)])
             for j, h in missing], ignore_conflicts=True)
        enrollments = _lock_enrollments(keys)
        # Snapshots: the "+" history rows show the enrollment as created, before any move.
        created = [copy.copy(enrollments[k]) for k in missing]
    step_ids = {e.step.pk for e in events}
    candidates: dict[tuple[int, str], list[Transition]] = {}
    for t in (Transition.objects.filter(from_step_id__in=step_ids)
              .select_related("to_step__channel")):
        candidates.setdefault((t.from_step_id, t.event_type), []).append(t)
    counted = {et for (_, et) in candidates if et != EventType.NO_ENGAGEMENT_FOR}
    counts: dict[tuple[int, int, str], int] = {}
    if counted:
        rows = (EngagementEvent.objects
                .filter(enrollment_id__in=[en.pk for en in enrollments.values()],
                        step_id__in=step_ids, event_type__in=counted)
                .values_list("enrollment_id", "step_id", "event_type")
                .annotate(n=models.Count("pk")).order_by())
        counts = {(en, st, et): n for en, st, et, n in rows}
    new_events, outcomes, changed = [], [], {}
    for e in events:
        enrollment = enrollments[(e.journey.pk, e.pseudonymous_id)]
        new_events.append(EngagementEvent(enrollment=enrollment, step=e.step,
                                          event_type=e.event_type, days=e.days,
                                          occurred_at=e.occurred_at or now))
        key = (enrollment.pk, e.step.pk, e.event_type)
        if e.event_type in counted:
            counts[key] = counts.get(key, 0) + 1
        fired = None
        if not enrollment.paused and enrollment.current_step_id == e.step.pk:
            options = candidates.get((e.step.pk, e.event_type))
            if options:
                fired = pick_transition(options, e.event_type, days=e.days,
                                        count=counts.get(key, 0))
            if fired is not None:
                if fired.pause:
                    enrollment.paused = True
                else:
                    enrollment.current_step = fired.to_step
                enrollment.updated_at = now
                changed[enrollment.pk] = enrollment
        outcomes.append(EngagementOutcome(
            enrollment=enrollment, next_step=None if enrollment.paused else enrollment.current_step,
            paused=enrollment.paused, transition=fired))
    _insert_events(new_events, history_user=history_user, now=now)
    _write_enrollments(created, list(changed.values()),
                       history_user=history_user, now=now)
    return outcomes


def _insert_events(events: list[EngagementEvent], *, history_user, now) -> None:
    """Insert events and their "+" history rows as `bulk_create_with_history` would, in
    plain multi-row statements (the ORM's per-field preparation of 2 x 1,000 rows was most
    of a batch's time): one INSERT ... RETURNING id per 500 events, one executemany for
    the history rows."""
    from django.db import connection

    ops = connection.ops
    table = ops.quote_name(EngagementEvent._meta.db_table)
    history = EngagementEvent.history.model
    columns = ["enrollment_id", "step_id", "event_type", "days", "occurred_at", "recorded_at"]
    user_id = getattr(history_user, "pk", None)
    history_rows = []
    with connection.cursor() as cursor:
        for start in range(0, len(events), 500):
            chunk = events[start:start + 500]
            values = []
            for e in chunk:
                e.recorded_at = now
                values.extend([e.enrollment_id, e.step_id, e.event_type, e.days,
                               ops.adapt_datetimefield_value(e.occurred_at),
                               ops.adapt_datetimefield_value(now)])
            placeholders = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))
            cursor.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES {placeholders} "
                           f"RETURNING id", values)
            ids = [row[0] for row in cursor.fetchall()]
            for e, pk in zip(chunk, ids, strict=True):
                e.pk = e.id = pk
                history_rows.append((pk, e.enrollment_id, e.step_id, e.event_type, e.days,
                                     ops.adapt_datetimefield_value(e.occurred_at),
                                     ops.adapt_datetimefield_value(now),
                                     ops.adapt_datetimefield_value(now), None, "+", user_id))
        cursor.executemany(
            f"INSERT INTO {ops.quote_name(history._meta.db_table)} (id, enrollment_id, step_id, "
            f"event_type, days, occurred_at, recorded_at, history_date, history_change_reason, "
            f"history_type, history_user_id) VALUES "
            f"(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", history_rows)


def _write_enrollments(created: list[Enrollment], changed: list[Enrollment], *, history_user,
                       now) -> None:
    """Moved enrollments updated with one executemany; history rows ("+" for the created,
    "~" for the moved) as simple-history would write them, with one more."""
    from django.db import connection

    ops = connection.ops
    if changed:
        with connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {ops.quote_name(Enrollment._meta.db_table)} SET current_step_id = %s, "
                f"paused = %s, updated_at = %s WHERE id = %s",
                [(e.current_step_id, e.paused, ops.adapt_datetimefield_value(now), e.pk)
                 for e in changed])
    seen = Enrollment._meta.get_field("seen_module_ids")
    user_id = getattr(history_user, "pk", None)
    rows = [(e.pk, e.recipient_hash, e.paused, seen.get_db_prep_save(e.seen_module_ids, connection),
             ops.adapt_datetimefield_value(e.enrolled_at),
             ops.adapt_datetimefield_value(now if kind == "~" else e.updated_at),
             e.journey_id, e.current_step_id, ops.adapt_datetimefield_value(now), None, kind,
             user_id)
            for kind, group in (("+", created), ("~", changed)) for e in group]
    if rows:
        history = Enrollment.history.model
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {ops.quote_name(history._meta.db_table)} (id, recipient_hash, "
                f"paused, seen_module_ids, enrolled_at, updated_at, journey_id, current_step_id, "
                f"history_date, history_change_reason, history_type, history_user_id) VALUES "
                f"(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)


def _lock_enrollments(keys) -> dict[tuple[int, str], Enrollment]:
    """The enrollments of (journey id, pseudonym) pairs, locked in id order (concurrent
    batches wait for each other instead of deadlocking)."""
    by_journey: dict[int, list[str]] = {}
    for journey_id, pseudonym in keys:
        by_journey.setdefault(journey_id, []).append(pseudonym)
    query = models.Q()
    for journey_id, hashes in by_journey.items():
        query |= models.Q(journey_id=journey_id, recipient_hash__in=hashes)
    found = (Enrollment.objects.select_for_update(of=("self",)).filter(query)
             .select_related("current_step__channel").order_by("pk"))
    return {(en.journey_id, en.recipient_hash): en for en in found}


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
