"""The scheduler: which enrollments have a touchpoint due, and why (or why not yet).

`run(now=...)` (a Celery beat task every minute, `orchestration.tasks.schedule_due`) takes
batches of enrollment profiles whose `next_check_at` has come, in live journeys, locked with
SELECT … FOR UPDATE SKIP LOCKED (two schedulers racing take different rows), and decides
for each one, in this order:

1. paused, finished, or moved by an event or trigger since last time (its delay then counts
   from now);
2. delay: the step's `delay_days` after the previous touchpoint (or the move / enrollment);
3. send window of the recipient's market, in the market's time zone (`windows`);
4. consent and channel preference: email and sms need consent true, other channels only
   no explicit false; a channel outside the person's preferences is skipped — a skipped
   touchpoint is recorded (`skipped`, with why) and the person goes on to the next step;
5. frequency caps per recipient, channel and brand across journeys (`caps`): postponed;
6. otherwise a `DueTouchpoint` (status `due`) — once per recipient × step, by a unique
   constraint (the backstop if a worker died mid-batch) — and, on channel `rep`, a rep task.

Every decision is written to the profile's `reason` (and the touchpoint's): explainable.
Profiles are read as tuples and written back with one statement per batch.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import TextField
from django.db.models.functions import Cast

from journeys.models import Enrollment, Step

from . import lifecycle, rep_tasks
from .caps import Cap, Ledger, load_caps
from .enrollment import OPT_IN_CHANNELS
from .models import (
    DueTouchpoint,
    EnrollmentProfile,
    JourneyRelease,
    ProfileStatus,
    ReleaseState,
    TouchpointStatus,
)
from .windows import Calendar, Window, load_windows, window_for

# Profiles per transaction. Measured on PostgreSQL (bench/orchestration.py, 50,000 due
# profiles): 1,000 → 20.6k, 2,000 → 24.0k, 5,000 → 25.3k evaluations/s; 2,000 keeps most of
# the gain while a batch holds its row locks (an event moving one of them waits) < 0.1 s.
BATCH_SIZE = 2000
ACTIVE = ProfileStatus.ACTIVE


@dataclass(frozen=True)
class StepInfo:
    id: int
    key: str
    journey_id: int
    brand_id: int
    channel: str
    purpose: str
    delay: timedelta
    next_id: int | None


@dataclass
class Report:
    evaluated: int = 0
    created: int = 0
    skipped: int = 0
    waiting: int = 0
    postponed: int = 0
    batches: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def count(self, reason: str) -> None:
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


def load_steps(journey_ids) -> dict[int, StepInfo]:
    """Every step of the journeys, with the step that follows it in the journey's order."""
    rows = list(Step.objects.filter(journey_id__in=list(journey_ids))
                .order_by("journey_id", "stage__order", "order", "id")
                .values_list("id", "key", "journey_id", "journey__brand_id", "channel__code",
                             "purpose", "delay_days"))
    steps = {}
    for i, (pk, key, journey_id, brand_id, channel, purpose, delay) in enumerate(rows):
        following = rows[i + 1] if i + 1 < len(rows) and rows[i + 1][2] == journey_id else None
        steps[pk] = StepInfo(pk, key, journey_id, brand_id, channel, purpose,
                             timedelta(days=delay), following[0] if following else None)
    return steps


def run(*, now: datetime, batch_size: int = BATCH_SIZE, max_batches: int | None = None) -> Report:
    """Evaluate every profile whose check time has come, batch by batch, until none is left
    (or `max_batches`). Each batch is one transaction.

    The due profiles' ids are read in order (`next_check_at`, `id`) up to `PREFETCH` at a
    time, without locks; each batch then locks its slice of them (SKIP LOCKED, the due
    conditions checked again under the lock) — one sort per `PREFETCH` profiles instead
    of one per batch."""
    report = Report()
    plan = Plan(load_windows(), load_caps(), now)
    while True:
        ids = due_ids(now, PREFETCH)
        evaluated = report.evaluated
        for start in range(0, len(ids), batch_size):
            if max_batches is not None and report.batches >= max_batches:
                return report
            run_batch(ids[start:start + batch_size], plan=plan, report=report)
            report.batches += 1
        # Fewer than asked for: that was all. Nothing evaluated: the rest is locked by
        # another scheduler (or cannot be planned); the next tick looks again.
        if len(ids) < PREFETCH or report.evaluated == evaluated:
            return report


PREFETCH = 100_000
# Consent and preferences are read as text and parsed only for a profile that is due.
PROFILE_FIELDS = ("id", "enrollment_id", "enrollment__current_step_id", "enrollment__paused",
                  "planned_step_id", "step_entered_at", "market", "consent_json",
                  "preferences_json", "recipient_hash", "journey_id", "locale")
AS_TEXT = {"consent_json": Cast("consent", TextField()),
           "preferences_json": Cast("channel_preferences", TextField())}
LOCK_SQL = (
    "SELECT p.id, p.enrollment_id, e.current_step_id, e.paused, p.planned_step_id, "
    "p.step_entered_at, p.market, p.consent::text, p.channel_preferences::text, "
    "p.recipient_hash, p.journey_id, p.locale "
    f"FROM {EnrollmentProfile._meta.db_table} p "
    f"JOIN {Enrollment._meta.db_table} e ON e.id = p.enrollment_id "
    "WHERE p.id = ANY(%b) AND p.status = %s AND p.next_check_at <= %s "
    f"AND p.journey_id IN (SELECT journey_id FROM {JourneyRelease._meta.db_table} "
    "WHERE state = %s) "
    "ORDER BY p.next_check_at, p.id FOR UPDATE OF p SKIP LOCKED")


def due_ids(now: datetime, limit: int) -> list[int]:
    """Ids of the profiles due at `now` in live journeys, oldest check first (no locks)."""
    return list(EnrollmentProfile.objects.filter(
        status=ACTIVE, next_check_at__lte=now, journey_id__in=lifecycle.live_journeys())
        .order_by("next_check_at", "id").values_list("id", flat=True)[:limit])


def lock_profiles(ids: list[int], now: datetime) -> list[tuple]:
    """The profiles among `ids` still due, locked (skipping those another scheduler holds),
    as tuples of `PROFILE_FIELDS`. On PostgreSQL one statement bound on the server in
    binary (psycopg) rather than the ORM's per-row conversion."""
    if connection.vendor != "postgresql":
        return list(
            EnrollmentProfile.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=ids, status=ACTIVE, next_check_at__lte=now,
                    journey_id__in=lifecycle.live_journeys())
            .order_by("next_check_at", "id").annotate(**AS_TEXT).values_list(*PROFILE_FIELDS))
    with _binary_cursor() as cursor:
        cursor.execute(LOCK_SQL, [ids, str(ACTIVE), now, str(ReleaseState.LIVE)], binary=True)
        return cursor.fetchall()


@contextmanager
def _binary_cursor():
    """A psycopg cursor on Django's connection (same transaction) that binds parameters on
    the server, arrays in binary — Django's own cursor quotes them client-side as text."""
    import psycopg

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


class StepPlan:
    """What is fixed for one step in one market during a run: its window (with the
    precomputed calendar), the reasons, whether the window is open now, which caps apply."""

    __slots__ = ("step", "window", "calendar", "opens_now", "closed_now", "delay", "channel",
                 "delay_reason", "window_reason", "due_reason", "caps", "needs_consent")

    def __init__(self, step: StepInfo, window: Window, calendar: Calendar, now: datetime,
                 caps: list[Cap]):
        self.step, self.window, self.calendar = step, window, calendar
        self.delay, self.channel = step.delay, step.channel
        self.opens_now = calendar.next_open(now)
        self.closed_now = self.opens_now > now
        self.delay_reason = (f"delay: {step.key} is due {step.delay.days} days after the "
                             "previous touchpoint")
        self.window_reason = f"window: outside {window.describe()}"
        self.due_reason = (f"due: {step.key} ({step.channel}) {step.delay.days} days after the "
                           f"previous touchpoint, inside {window.describe()}")
        self.caps = [c for c in caps if c.applies(step.brand_id, step.channel, step.purpose)]
        self.needs_consent = step.channel in OPT_IN_CHANNELS


class Plan:
    """A run's precomputed decisions: steps, per step × market plans, calendars, and the
    consent / preference verdict per distinct (channel, consent, preferences) text."""

    def __init__(self, windows: dict[str, Window], caps: list[Cap], now: datetime):
        self.windows, self.caps, self.now = windows, caps, now
        self.steps: dict[int, StepInfo] = {}
        self.by_step_market: dict[tuple[int, str], StepPlan] = {}
        self.calendars: dict[Window, Calendar] = {}
        self.consent_verdicts: dict[tuple, str | None] = {}

    def load_journeys(self, journey_ids) -> None:
        missing = set(journey_ids) - {s.journey_id for s in self.steps.values()}
        if missing:
            self.steps.update(load_steps(missing))

    def for_step(self, step_id: int, market: str) -> StepPlan | None:
        plan = self.by_step_market.get((step_id, market))
        if plan is None:
            step = self.steps.get(step_id)
            if step is None:
                return None
            window = window_for(market, self.windows)
            calendar = self.calendars.get(window)
            if calendar is None:
                calendar = self.calendars[window] = Calendar(window)
            plan = self.by_step_market[(step_id, market)] = StepPlan(
                step, window, calendar, self.now, self.caps)
        return plan

    def consent_verdict(self, channel: str, consent, prefs) -> str | None:
        """The skip reason for consent or preference, None when the channel may be used."""
        key = (channel, consent, prefs)
        try:
            return self.consent_verdicts[key]
        except KeyError:
            pass
        except TypeError:  # parsed values (not text) from a backend: not remembered
            return consent_verdict(channel, consent, prefs)
        verdict = self.consent_verdicts[key] = consent_verdict(channel, consent, prefs)
        return verdict


def consent_verdict(channel: str, consent, prefs) -> str | None:
    """Email and sms need consent true, other channels only no explicit false; a channel
    outside the person's preferences (if they gave any) is skipped."""
    consent = json.loads(consent) if isinstance(consent, str) else (consent or {})
    prefs = json.loads(prefs) if isinstance(prefs, str) else prefs
    if channel in OPT_IN_CHANNELS and consent.get(channel) is not True:
        return f"no_consent: no {channel} consent"
    if consent.get(channel) is False:
        return f"no_consent: {channel} consent withdrawn"
    if prefs and channel not in prefs:
        return f"channel_not_preferred: prefers {', '.join(prefs)}"
    return None


WAIT, CAP, SKIP, DUE = "wait", "cap", "skip", "due"
ALREADY_HAD = "already_had"


def decide(plan: StepPlan, enrollment_id: int, entered: datetime, consent, prefs, had, now,
           consent_of) -> tuple[str, str, datetime | None]:
    """Everything but the caps, in order: already had → delay → window → consent and
    preference. ("wait" | "skip" | "due", reason, when to look again); "due" here still
    goes through the caps (`check_caps`) when any applies to the step."""
    step = plan.step
    if (enrollment_id, step.id) in had:
        return SKIP, f"already_had: step {step.key} was planned before (once per step)", None
    due = entered + plan.delay
    if due > now:
        return WAIT, plan.delay_reason, plan.calendar.next_open(due)
    if plan.closed_now:
        return WAIT, plan.window_reason, plan.opens_now
    skip = consent_of(plan.channel, consent, prefs)
    if skip is not None:
        return SKIP, skip, None
    return DUE, plan.due_reason, None


def check_caps(plan: StepPlan, recipient: str, ledger: Ledger, now):
    """(None, None) when no cap bites; else the postponement ("cap", reason, when)."""
    step = plan.step
    cap, until = ledger.check(recipient, step.brand_id, step.channel, step.purpose, now,
                              caps=plan.caps)
    if cap is None:
        return None
    return (CAP, f"cap: {cap.describe()} reached; postponed to {until:%Y-%m-%d %H:%M} UTC",
            plan.calendar.next_open(until))


class Batch:
    """A batch's writes, column by column (what the bulk statements take)."""

    def __init__(self):
        self.profiles: tuple[list, ...] = ([], [], [], [], [], [])
        self.touchpoints: list[tuple] = []
        self.advances: dict[int, int | None] = {}

    def profile(self, pid, status, planned, entered, next_check, reason) -> int:
        ids, statuses, planneds, entereds, checks, reasons = self.profiles
        ids.append(pid)
        statuses.append(status)
        planneds.append(planned)
        entereds.append(entered)
        checks.append(next_check)
        reasons.append(reason)
        return len(ids) - 1


@transaction.atomic
def run_batch(ids: list[int], *, plan: Plan, report: Report) -> int:
    now = plan.now
    rows = lock_profiles(ids, now)
    if not rows:
        return 0
    plan.load_journeys({r[10] for r in rows})
    had = touchpoints_of([r[1] for r in rows])
    batch = Batch()
    profile = batch.profile
    for_step, consent_of, count = plan.for_step, plan.consent_verdict, report.count
    capped: list[tuple] = []  # due but caps apply: settled in order once the ledger is read
    for (pid, enrollment_id, current, paused, planned, entered, market, consent, prefs,
         recipient, _journey, locale) in rows:
        report.evaluated += 1
        if paused:
            profile(pid, PAUSED, planned, entered, None, "paused by a transition: outreach stopped")
            count("paused")
            continue
        if current != planned:  # an event or a trigger moved them: the delay counts from now
            planned, entered = current, now
        if current is None:
            profile(pid, COMPLETED, None, entered, None, "journey completed")
            count("completed")
            continue
        step_plan = for_step(current, market)
        if step_plan is None:
            continue
        # Skips walk on to the next step in the same evaluation (bounded by the steps).
        for _ in range(len(plan.steps) + 1):
            kind, reason, at = decide(step_plan, enrollment_id, entered, consent, prefs, had,
                                      now, consent_of)
            if kind is not SKIP:
                break
            step = step_plan.step
            if not reason.startswith(ALREADY_HAD):
                batch.touchpoints.append(_touchpoint(step, enrollment_id, recipient, market,
                                                     locale, now, TouchpointStatus.SKIPPED,
                                                     reason))
            had.add((enrollment_id, step.id))
            report.skipped += 1
            count(reason.split(":")[0])
            batch.advances[enrollment_id] = step.next_id
            if step.next_id is None:
                break
            step_plan, planned, entered = for_step(step.next_id, market), step.next_id, now
        if kind is SKIP:  # skipped the last step
            profile(pid, COMPLETED, None, now, None, f"journey completed ({reason})")
            continue
        if kind is WAIT:
            count(reason.split(":")[0])
            report.waiting += 1
            profile(pid, ACTIVE, step_plan.step.id, entered, at, reason)
        elif step_plan.caps:
            row = profile(pid, ACTIVE, step_plan.step.id, entered, None, reason)
            capped.append((row, step_plan, enrollment_id, recipient, market, locale))
        else:
            _plan_due(batch, report, step_plan, enrollment_id, recipient, market, locale, now)
            count("due")
            profile(pid, ACTIVE, step_plan.step.id, entered, None, reason)
    if capped:
        # Caps only for the profiles that are otherwise due: one ledger read for them, then
        # each in the batch's order (a touchpoint planned counts for the next one).
        ledger = Ledger(plan.caps, {c[3] for c in capped}, now)
        reasons, checks = batch.profiles[5], batch.profiles[4]
        for row, step_plan, enrollment_id, recipient, market, locale in capped:
            postponed = check_caps(step_plan, recipient, ledger, now)
            if postponed is not None:
                _kind, reasons[row], checks[row] = postponed
                report.postponed += 1
                count("cap")
                continue
            step = step_plan.step
            _plan_due(batch, report, step_plan, enrollment_id, recipient, market, locale, now)
            ledger.add(recipient, step.brand_id, step.channel, step.purpose, now)
            count("due")
    _write(batch, now)
    return len(rows)


PAUSED, COMPLETED = ProfileStatus.PAUSED, ProfileStatus.COMPLETED


def _plan_due(batch: Batch, report: Report, step_plan: StepPlan, enrollment_id, recipient,
              market, locale, now) -> None:
    batch.touchpoints.append(_touchpoint(step_plan.step, enrollment_id, recipient, market,
                                         locale, now, TouchpointStatus.DUE, step_plan.due_reason))
    report.created += 1


def _write(batch: Batch, now) -> None:
    insert_touchpoints(batch.touchpoints)
    for enrollment in Enrollment.objects.filter(pk__in=list(batch.advances)):  # skips: rare
        enrollment.current_step_id = batch.advances[enrollment.pk]
        enrollment.save(update_fields=["current_step", "updated_at"])
    rep_tasks.create_for([(t[0], t[1]) for t in batch.touchpoints
                          if t[4] == rep_tasks.CHANNEL and t[9] == TouchpointStatus.DUE],
                         now=now)
    write_profiles(batch.profiles)


def touchpoints_of(enrollment_ids: list[int]) -> set[tuple[int, int]]:
    """(enrollment, step) pairs that already have a touchpoint (one array parameter on
    PostgreSQL rather than a thousand placeholders)."""
    if connection.vendor != "postgresql":
        return set(DueTouchpoint.objects.filter(enrollment_id__in=enrollment_ids)
                   .values_list("enrollment_id", "step_id"))
    with _binary_cursor() as cursor:
        cursor.execute(f"SELECT enrollment_id, step_id FROM {DueTouchpoint._meta.db_table} "
                       "WHERE enrollment_id = ANY(%b)", [enrollment_ids], binary=True)
        return set(cursor.fetchall())


def _touchpoint(step: StepInfo, enrollment_id, recipient, market, locale, now, status,
                reason) -> tuple:
    """A touchpoint as a tuple in `TOUCHPOINT_COLUMNS` order."""
    finished = now if status != TouchpointStatus.DUE else None
    return (enrollment_id, step.id, recipient, step.brand_id, step.channel, step.purpose,
            market, locale, now, str(status), reason[:300], now, finished)


TOUCHPOINT_COLUMNS = (
    ("enrollment_id", "bigint"), ("step_id", "bigint"), ("recipient_hash", "text"),
    ("brand_id", "integer"), ("channel", "text"), ("purpose", "text"), ("market", "text"),
    ("locale", "text"), ("due_at", "timestamptz"), ("status", "text"), ("reason", "text"),
    ("created_at", "timestamptz"), ("finished_at", "timestamptz"))


NO_ERRORS = b"\x01[]"


def insert_touchpoints(touchpoints: list[tuple]) -> None:
    """Insert, never a second one for an (enrollment, step) (the unique constraint decides:
    a scheduler that died mid-batch or a racing one never makes a second). On PostgreSQL a
    binary COPY (rows formatted in C, no per-element array dumping) inside a savepoint; if
    the constraint refuses a row — only a race the profile locks already exclude — the
    savepoint is rolled back and one INSERT … SELECT FROM unnest(arrays) ON CONFLICT DO
    NOTHING inserts the others."""
    if not touchpoints:
        return
    names = [name for name, _ in TOUCHPOINT_COLUMNS]
    if connection.vendor != "postgresql":
        DueTouchpoint.objects.bulk_create([DueTouchpoint(**dict(zip(names, t, strict=True)))
                                           for t in touchpoints],
                                          batch_size=1000, ignore_conflicts=True)
        return
    table, columns = DueTouchpoint._meta.db_table, ", ".join(names)
    savepoint = transaction.savepoint()
    try:
        with _binary_cursor() as cursor, cursor.copy(
                f"COPY {table} ({columns}, leases, errors) FROM STDIN (FORMAT BINARY)") as copy:
            # `errors` is the empty list: jsonb's binary form (version 1, then the text) sent
            # as raw bytes once — the server reads it with the column's own jsonb_recv.
            copy.set_types([kind for _, kind in TOUCHPOINT_COLUMNS] + ["smallint", "bytea"])
            for touchpoint in touchpoints:
                copy.write_row((*touchpoint, 0, NO_ERRORS))
        transaction.savepoint_commit(savepoint)
        return
    except IntegrityError:
        transaction.savepoint_rollback(savepoint)
    arrays = ", ".join(f"%b::{kind}[]" for _, kind in TOUCHPOINT_COLUMNS)
    with _binary_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}, leases, errors) "
            f"SELECT *, 0, '[]'::jsonb FROM unnest({arrays}) "
            "ON CONFLICT (enrollment_id, step_id) DO NOTHING",
            [list(column) for column in zip(*touchpoints, strict=True)])


def write_profiles(columns: tuple[list, ...]) -> None:
    """(ids, statuses, planned steps, entered, next checks, reasons), one entry per profile:
    one UPDATE … FROM unnest(arrays) on PostgreSQL (six array parameters bound on the
    server in binary, not six per row), bulk_update elsewhere."""
    ids, statuses, planned, entered, next_checks, reasons = columns
    if not ids:
        return
    reasons = [r[:300] for r in reasons]
    if connection.vendor == "postgresql":
        table = EnrollmentProfile._meta.db_table
        with _binary_cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS p SET status = v.status, planned_step_id = v.planned, "
                "step_entered_at = v.entered, next_check_at = v.next_check, reason = v.reason "
                "FROM unnest(%b::bigint[], %b::text[], %b::bigint[], %b::timestamptz[], "
                "%b::timestamptz[], %b::text[]) AS v(id, status, planned, entered, next_check, "
                "reason) WHERE p.id = v.id",
                [ids, [str(v) for v in statuses], planned, entered, next_checks, reasons])
        return
    profiles = [EnrollmentProfile(id=pid, status=status, planned_step_id=step,
                                  step_entered_at=at, next_check_at=check, reason=reason)
                for pid, status, step, at, check, reason
                in zip(ids, statuses, planned, entered, next_checks, reasons, strict=True)]
    EnrollmentProfile.objects.bulk_update(profiles, ["status", "planned_step_id",
                                                     "step_entered_at", "next_check_at",
                                                     "reason"], batch_size=500)
