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
from django.db import connection, models, transaction
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


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What one event of a batch did, as `EngagementOutcome` says it for one event; the
    enrollment by its id (a batch builds no Enrollment instances)."""

    enrollment_id: int
    next_step: Step | None
    paused: bool
    transition: Transition | None

    @property
    def moved(self) -> bool:
        return self.transition is not None


EVENT_TYPES = frozenset(EventType.values)


@transaction.atomic
def record_events(events: list[EventInput], *, history_user=None) -> list[BatchOutcome]:
    """Record a batch with the outcome of `record_event` called once per event in order,
    in a constant number of statements. All or nothing (`BatchEventError`).

    Locks are held briefly and taken in one order by every batch:
    1. without locks: validation, the transitions of the batch's steps, the journeys' steps;
    2. the batch's new enrollments inserted in (journey, pseudonym) order (on PostgreSQL
       `ON CONFLICT DO NOTHING`: a recipient another batch is enrolling waits for it),
       then the existing ones locked in id order (`FOR NO KEY UPDATE`). A batch waiting in
       step 2 holds no lock on a row that existed before, so two batches never wait for
       each other in a cycle;
    3. stored event counts, only for transitions whose threshold is above one (a threshold
       of one is reached by the event itself); transitions picked in memory by
       `pick_transition`, the rule `record_event` applies;
    4. the events with their history rows in one statement, then the moved enrollments
       with theirs ("+" for the created, "~" for the moved, as simple-history writes them).
    """
    _validate_batch(events)
    if not events:
        return []
    now = timezone.now()
    first_step: dict[tuple[int, str], int] = {}
    for e in events:
        first_step.setdefault((e.journey.pk, e.pseudonymous_id), e.step.pk)
    steps: dict[int, Step] = {e.step.pk: e.step for e in events}
    candidates: dict[tuple[int, str], list[Transition]] = {}
    for t in (Transition.objects.filter(from_step_id__in=list(steps))
              .select_related("to_step__channel")):
        candidates.setdefault((t.from_step_id, t.event_type), []).append(t)
        if t.to_step_id is not None:
            steps.setdefault(t.to_step_id, t.to_step)
    for step in Step.objects.filter(journey_id__in={j for j, _ in first_step}).select_related(
            "channel"):
        steps.setdefault(step.pk, step)
    counted = {key for key, options in candidates.items()
               if key[1] != EventType.NO_ENGAGEMENT_FOR and any(t.threshold > 1 for t in options)}

    # 2. enrollments: [id, current step id, paused] per (journey id, pseudonym)
    keys = sorted(first_step)
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(Enrollment._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (journey_id, recipient_hash, current_step_id, paused, "
                f"seen_module_ids, enrolled_at, updated_at) "
                f"SELECT k.j, k.h, k.s, false, '[]', %s, %s "
                f"FROM unnest(%s::bigint[], %s::varchar[], %s::bigint[]) "
                f"WITH ORDINALITY AS k(j, h, s, n) "
                f"WHERE NOT EXISTS (SELECT 1 FROM {table} e "
                f"WHERE e.journey_id = k.j AND e.recipient_hash = k.h) "
                f"ORDER BY k.n ON CONFLICT (journey_id, recipient_hash) DO NOTHING "
                f"RETURNING id, journey_id, recipient_hash",
                [now, now, [j for j, _ in keys], [h for _, h in keys],
                 [first_step[k] for k in keys]])
            created = {(j, h): [pk, first_step[(j, h)], False] for pk, j, h in cursor.fetchall()}
        existing = _lock_enrollments([k for k in keys if k not in created])
    else:  # one writer at a time (SQLite): no order to keep
        existing = _lock_enrollments(keys)
        missing = [k for k in keys if k not in existing]
        if missing:
            Enrollment.objects.bulk_create(
                [Enrollment(journey_id=j, recipient_hash=h, current_step_id=first_step[(j, h)],
                            enrolled_at=now, updated_at=now) for j, h in missing],
                ignore_conflicts=True)
        created = _lock_enrollments(missing) if missing else {}
    state = {**existing, **created}
    unknown = {s[1] for s in state.values() if s[1] is not None and s[1] not in steps}
    if unknown:  # an enrollment left at a step of another journey (not expected)
        steps.update(Step.objects.select_related("channel").in_bulk(unknown))

    # 3. transitions, in order
    counts = _count_events([s[0] for s in existing.values()], counted)
    rows, outcomes, moved = [], [], {}
    for e in events:
        enrollment = state[(e.journey.pk, e.pseudonymous_id)]
        step_id = e.step.pk
        rows.append((enrollment[0], step_id, e.event_type, e.days, e.occurred_at))
        count = 1  # this event: all a threshold of one needs
        if (step_id, e.event_type) in counted:
            key = (enrollment[0], step_id, e.event_type)
            count = counts[key] = counts.get(key, 0) + 1
        fired = None
        if not enrollment[2] and enrollment[1] == step_id:
            options = candidates.get((step_id, e.event_type))
            if options:
                fired = pick_transition(options, e.event_type, days=e.days, count=count)
            if fired is not None:
                if fired.pause:
                    enrollment[2] = True
                else:
                    enrollment[1] = fired.to_step_id
                moved[enrollment[0]] = enrollment
        outcomes.append(BatchOutcome(
            enrollment_id=enrollment[0], paused=enrollment[2], transition=fired,
            next_step=None if enrollment[2] or enrollment[1] is None else steps[enrollment[1]]))

    # 4. writes
    user_id = getattr(history_user, "pk", None)
    _insert_events(rows, now=now, user_id=user_id)
    _write_enrollments([s[0] for s in created.values()], list(moved.values()), now=now,
                       user_id=user_id)
    return outcomes


def _validate_batch(events: list[EventInput]) -> None:
    """`_validate` for each event, its message raised with the row (a cheap test first)."""
    for row, e in enumerate(events):
        if (e.step.journey_id != e.journey.pk or e.event_type not in EVENT_TYPES
                or not PSEUDONYM_RE.fullmatch(e.pseudonymous_id or "")
                or (e.event_type == EventType.NO_ENGAGEMENT_FOR and (e.days is None or e.days < 1))):
            try:
                _validate(e.journey, e.step, e.pseudonymous_id, e.event_type, e.days)
            except ValidationError as exc:
                raise BatchEventError(row, exc.messages) from None


def _lock_enrollments(keys) -> dict[tuple[int, str], list]:
    """[id, current step id, paused] of the enrollments of (journey id, pseudonym) pairs,
    locked in id order (FOR NO KEY UPDATE: the columns a batch changes are not keys, so
    rows referencing an enrollment can still be inserted meanwhile)."""
    if not keys:
        return {}
    by_journey: dict[int, list[str]] = {}
    for journey_id, pseudonym in keys:
        by_journey.setdefault(journey_id, []).append(pseudonym)
    query = models.Q()
    for journey_id, hashes in by_journey.items():
        query |= models.Q(journey_id=journey_id, recipient_hash__in=hashes)
    found = (Enrollment.objects.select_for_update(of=("self",), no_key=True).filter(query)
             .order_by("pk").values_list("pk", "journey_id", "recipient_hash", "current_step_id",
                                         "paused"))
    return {(j, h): [pk, step, paused] for pk, j, h, step, paused in found}


def _count_events(enrollment_ids: list[int], counted: set[tuple[int, str]]
                  ) -> dict[tuple[int, int, str], int]:
    """Stored events per (enrollment, step, type) for the (step, type) pairs `counted`."""
    if not enrollment_ids or not counted:
        return {}
    pairs = models.Q()
    for step_id, event_type in counted:
        pairs |= models.Q(step_id=step_id, event_type=event_type)
    rows = (EngagementEvent.objects.filter(pairs, enrollment_id__in=enrollment_ids)
            .values_list("enrollment_id", "step_id", "event_type")
            .annotate(n=models.Count("pk")).order_by())
    return {(en, st, et): n for en, st, et, n in rows}


def _history_select(model, kind: str, source: str) -> tuple[str, str]:
    """The column list of `model`'s history table and the matching select list over
    `source` (a row of `model`'s table): each field copied, then history_date and
    history_user_id as parameters (in that order), no change reason, `kind` (+ or ~)."""
    quote = connection.ops.quote_name
    own = {f.column for f in model._meta.local_concrete_fields}
    columns, values, params = [], [], []
    for field in model.history.model._meta.local_concrete_fields:
        if field.primary_key:
            continue
        columns.append(quote(field.column))
        if field.column in own:
            values.append(f"{source}.{quote(field.column)}")
        elif field.column in ("history_date", "history_user_id"):
            values.append("%s")
            params.append(field.column)
        elif field.column == "history_change_reason":
            values.append("NULL")
        elif field.column == "history_type":
            values.append(f"'{kind}'")
        else:  # pragma: no cover - a history column this module does not know
            raise ValueError(f"unexpected history column {field.column}")
    assert params == ["history_date", "history_user_id"], params
    return ", ".join(columns), ", ".join(values)


def _insert_events(rows: list[tuple], *, now, user_id) -> None:
    """Insert events (enrollment id, step id, type, days, occurred_at or None for now) and
    their "+" history rows as `bulk_create_with_history` would. PostgreSQL: one statement
    (the history rows copied from the inserted ones); elsewhere a multi-row INSERT ...
    RETURNING id per 500 events and one INSERT ... SELECT of their history."""
    quote = connection.ops.quote_name
    table = quote(EngagementEvent._meta.db_table)
    history = quote(EngagementEvent.history.model._meta.db_table)
    columns, values = _history_select(EngagementEvent, "+", "s")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"WITH s AS (INSERT INTO {table} (enrollment_id, step_id, event_type, days, "
                f"occurred_at, recorded_at) "
                f"SELECT k.en, k.st, k.et, k.d, COALESCE(k.at, %s), %s "
                f"FROM unnest(%s::bigint[], %s::bigint[], %s::varchar[], %s::smallint[], "
                f"%s::timestamptz[]) WITH ORDINALITY AS k(en, st, et, d, at, n) ORDER BY k.n "
                f"RETURNING *) "
                f"INSERT INTO {history} ({columns}) SELECT {values} FROM s",
                [now, now, *map(list, zip(*rows, strict=True)), now, user_id])
            return
        ops = connection.ops
        stamp = ops.adapt_datetimefield_value(now)
        ids = []
        for start in range(0, len(rows), 500):
            chunk = rows[start:start + 500]
            params = []
            for enrollment_id, step_id, event_type, days, occurred_at in chunk:
                params += [enrollment_id, step_id, event_type, days,
                           ops.adapt_datetimefield_value(occurred_at or now), stamp]
            placeholders = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))
            cursor.execute(f"INSERT INTO {table} (enrollment_id, step_id, event_type, days, "
                           f"occurred_at, recorded_at) VALUES {placeholders} RETURNING id", params)
            ids += [row[0] for row in cursor.fetchall()]
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            cursor.execute(f"INSERT INTO {history} ({columns}) SELECT {values} FROM {table} s "
                           f"WHERE s.id IN ({', '.join(['%s'] * len(chunk))})",
                           [stamp, user_id, *chunk])


def _write_enrollments(created: list[int], moved: list[list], *, now, user_id) -> None:
    """"+" history rows for the enrollments a batch created (as created: written before
    any move), then the moved ones ([id, current step id, paused]) updated with their "~"
    history rows."""
    quote = connection.ops.quote_name
    table = quote(Enrollment._meta.db_table)
    history = quote(Enrollment.history.model._meta.db_table)
    postgres = connection.vendor == "postgresql"
    stamp = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        columns, values = _history_select(Enrollment, "+", "s")
        if postgres and created:
            cursor.execute(f"INSERT INTO {history} ({columns}) SELECT {values} FROM {table} s "
                           f"WHERE s.id = ANY(%s::bigint[]) ORDER BY s.id", [now, user_id, created])
        elif created:
            for start in range(0, len(created), 500):
                chunk = created[start:start + 500]
                cursor.execute(f"INSERT INTO {history} ({columns}) SELECT {values} FROM {table} "
                               f"s WHERE s.id IN ({', '.join(['%s'] * len(chunk))}) ORDER BY s.id",
                               [stamp, user_id, *chunk])
        if not moved:
            return
        columns, values = _history_select(Enrollment, "~", "s")
        if postgres:
            cursor.execute(
                f"WITH s AS (UPDATE {table} e SET current_step_id = k.s, paused = k.p, "
                f"updated_at = %s FROM unnest(%s::bigint[], %s::bigint[], %s::boolean[]) "
                f"AS k(id, s, p) WHERE e.id = k.id RETURNING e.*) "
                f"INSERT INTO {history} ({columns}) SELECT {values} FROM s",
                [now, *map(list, zip(*moved, strict=True)), now, user_id])
            return
        cursor.executemany(f"UPDATE {table} SET current_step_id = %s, paused = %s, "
                           f"updated_at = %s WHERE id = %s",
                           [(step, paused, stamp, pk) for pk, step, paused in moved])
        ids = [pk for pk, _, _ in moved]
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            cursor.execute(f"INSERT INTO {history} ({columns}) SELECT {values} FROM {table} s "
                           f"WHERE s.id IN ({', '.join(['%s'] * len(chunk))}) ORDER BY s.id",
                           [stamp, user_id, *chunk])


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
