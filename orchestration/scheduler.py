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
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import TextField
from django.db.models.functions import Cast

from journeys.models import Enrollment, Step

from . import lifecycle, rep_tasks
from .caps import Ledger, load_caps
from .enrollment import OPT_IN_CHANNELS
from .models import DueTouchpoint, EnrollmentProfile, ProfileStatus, TouchpointStatus
from .windows import load_windows, next_open, window_for

BATCH_SIZE = 1000
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
    (or `max_batches`). Each batch is one transaction."""
    report = Report()
    windows, caps = load_windows(), load_caps()
    steps: dict[int, StepInfo] = {}
    while max_batches is None or report.batches < max_batches:
        done = run_batch(now=now, batch_size=batch_size, report=report, windows=windows,
                         caps=caps, steps=steps)
        report.batches += 1
        if done < batch_size:
            break
    return report


PROFILE_FIELDS = ("id", "enrollment_id", "enrollment__current_step_id", "enrollment__paused",
                  "planned_step_id", "step_entered_at", "market", "consent_json",
                  "preferences_json", "recipient_hash", "journey_id", "locale")
# Consent and preferences are read as text and parsed only for a profile that is due.
AS_TEXT = {"consent_json": Cast("consent", TextField()),
           "preferences_json": Cast("channel_preferences", TextField())}


@transaction.atomic
def run_batch(*, now, batch_size, report, windows, caps, steps) -> int:
    rows = list(
        EnrollmentProfile.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(status=ACTIVE, next_check_at__lte=now,
                journey_id__in=lifecycle.live_journeys())
        .order_by("next_check_at", "id").annotate(**AS_TEXT).values_list(*PROFILE_FIELDS)[:batch_size])
    if not rows:
        return 0
    missing = {r[10] for r in rows} - {s.journey_id for s in steps.values()}
    if missing:
        steps.update(load_steps(missing))
    ledger = Ledger(caps, (r[9] for r in rows), now)
    had = touchpoints_of([r[1] for r in rows])
    updates: list[tuple] = []   # (profile id, status, planned_step, entered, next_check, reason)
    touchpoints: list[DueTouchpoint] = []
    advances: dict[int, int | None] = {}  # enrollment id -> new current step (skips)
    for (pid, enrollment_id, current, paused, planned, entered, market, consent, prefs,
         recipient, _journey, locale) in rows:
        report.evaluated += 1
        if paused:
            updates.append((pid, ProfileStatus.PAUSED, planned, entered, None,
                            "paused by a transition: outreach stopped"))
            report.count("paused")
            continue
        if current != planned:  # an event or a trigger moved them: the delay counts from now
            planned, entered = current, now
        if current is None:
            updates.append((pid, ProfileStatus.COMPLETED, None, entered, None,
                            "journey completed"))
            report.count("completed")
            continue
        step = steps.get(current)
        if step is None:
            continue
        # Skips walk on to the next step in the same evaluation (bounded by the steps).
        for _ in range(len(steps) + 1):
            verdict = _decide(step, enrollment_id, recipient, entered, market, consent, prefs,
                              had, ledger, windows, now)
            kind, reason, at = verdict
            if kind != "skip":
                break
            if not reason.startswith("already_had"):
                touchpoints.append(_touchpoint(step, enrollment_id, recipient, market, locale,
                                               now, TouchpointStatus.SKIPPED, reason))
            had.add((enrollment_id, step.id))
            report.skipped += 1
            report.count(reason.split(":")[0])
            advances[enrollment_id] = step.next_id
            if step.next_id is None:
                break
            step, planned, entered = steps[step.next_id], step.next_id, now
        if kind == "skip":  # skipped the last step
            updates.append((pid, ProfileStatus.COMPLETED, None, now, None,
                            f"journey completed ({reason})"))
            continue
        report.count(reason.split(":")[0])
        if kind == "due":
            touchpoints.append(_touchpoint(step, enrollment_id, recipient, market, locale, now,
                                           TouchpointStatus.DUE, reason))
            ledger.add(recipient, step.brand_id, step.channel, step.purpose, now)
            had.add((enrollment_id, step.id))
            report.created += 1
            updates.append((pid, ACTIVE, step.id, entered, None, reason))
        else:
            report.waiting += kind == "wait"
            report.postponed += kind == "cap"
            updates.append((pid, ACTIVE, step.id, entered, at, reason))
    insert_touchpoints(touchpoints)
    for enrollment in Enrollment.objects.filter(pk__in=list(advances)):  # skips: rare
        enrollment.current_step_id = advances[enrollment.pk]
        enrollment.save(update_fields=["current_step", "updated_at"])
    rep_tasks.create_for([(t.enrollment_id, t.step_id) for t in touchpoints
                          if t.channel == rep_tasks.CHANNEL and t.status == TouchpointStatus.DUE],
                         now=now)
    write_profiles(updates)
    return len(rows)


def touchpoints_of(enrollment_ids: list[int]) -> set[tuple[int, int]]:
    """(enrollment, step) pairs that already have a touchpoint (one array parameter on
    PostgreSQL rather than a thousand placeholders)."""
    if connection.vendor != "postgresql":
        return set(DueTouchpoint.objects.filter(enrollment_id__in=enrollment_ids)
                   .values_list("enrollment_id", "step_id"))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT enrollment_id, step_id FROM {DueTouchpoint._meta.db_table} "
                       "WHERE enrollment_id = ANY(%b::bigint[])", [enrollment_ids])
        return set(cursor.fetchall())


def _decide(step: StepInfo, enrollment_id, recipient, entered, market, consent, prefs, had,
            ledger, windows, now) -> tuple[str, str, datetime | None]:
    """("due" | "wait" | "cap" | "skip", reason, when to look again)."""
    if (enrollment_id, step.id) in had:
        return "skip", f"already_had: step {step.key} was planned before (once per step)", None
    due = entered + step.delay
    window = window_for(market, windows)
    if due > now:
        return ("wait", f"delay: {step.key} is due {step.delay.days} days after the previous "
                f"touchpoint", next_open(due, window))
    opens = next_open(now, window)
    if opens > now:
        return "wait", f"window: outside {window.describe()}", opens
    consent = json.loads(consent) if isinstance(consent, str) else (consent or {})
    prefs = json.loads(prefs) if isinstance(prefs, str) else prefs
    if step.channel in OPT_IN_CHANNELS and consent.get(step.channel) is not True:
        return "skip", f"no_consent: no {step.channel} consent", None
    if consent.get(step.channel) is False:
        return "skip", f"no_consent: {step.channel} consent withdrawn", None
    if prefs and step.channel not in prefs:
        return "skip", f"channel_not_preferred: prefers {', '.join(prefs)}", None
    cap, until = ledger.check(recipient, step.brand_id, step.channel, step.purpose, now)
    if cap is not None:
        return ("cap", f"cap: {cap.describe()} reached; postponed to {until:%Y-%m-%d %H:%M} UTC",
                next_open(until, window))
    return "due", f"due: {step.key} ({step.channel}) {step.delay.days} days after the previous " \
                  f"touchpoint, inside {window.describe()}", None


def _touchpoint(step: StepInfo, enrollment_id, recipient, market, locale, now, status, reason):
    finished = now if status != TouchpointStatus.DUE else None
    return DueTouchpoint(enrollment_id=enrollment_id, step_id=step.id, recipient_hash=recipient,
                         brand_id=step.brand_id, channel=step.channel, purpose=step.purpose,
                         market=market, locale=locale, due_at=now, status=status,
                         reason=reason[:300], created_at=now, finished_at=finished)


TOUCHPOINT_COLUMNS = (
    ("enrollment_id", "bigint"), ("step_id", "bigint"), ("recipient_hash", "text"),
    ("brand_id", "integer"), ("channel", "text"), ("purpose", "text"), ("market", "text"),
    ("locale", "text"), ("due_at", "timestamptz"), ("status", "text"), ("reason", "text"),
    ("created_at", "timestamptz"), ("finished_at", "timestamptz"))


def insert_touchpoints(touchpoints: list[DueTouchpoint]) -> None:
    """Insert, skipping any (enrollment, step) that already has one (the unique constraint
    decides: a scheduler that died mid-batch or a racing one never makes a second). On
    PostgreSQL one INSERT … SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING."""
    if not touchpoints:
        return
    if connection.vendor != "postgresql":
        DueTouchpoint.objects.bulk_create(touchpoints, batch_size=1000, ignore_conflicts=True)
        return
    names = ", ".join(name for name, _ in TOUCHPOINT_COLUMNS)
    arrays = ", ".join(f"%b::{kind}[]" for _, kind in TOUCHPOINT_COLUMNS)
    params = [[str(v) if kind == "text" else v for v in
               (getattr(t, name) for t in touchpoints)] for name, kind in TOUCHPOINT_COLUMNS]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {DueTouchpoint._meta.db_table} ({names}, leases, errors) "
            f"SELECT *, 0, '[]'::jsonb FROM unnest({arrays}) "
            "ON CONFLICT (enrollment_id, step_id) DO NOTHING", params)


def write_profiles(updates: list[tuple]) -> None:
    """One UPDATE … FROM (VALUES …) on PostgreSQL; bulk_update elsewhere."""
    if not updates:
        return
    if connection.vendor == "postgresql":
        # Six array parameters, not six per row: psycopg's client-side parsing of a query
        # with thousands of placeholders costs more than the update itself; %b sends them
        # in binary (no text formatting of every timestamp).
        table = EnrollmentProfile._meta.db_table
        columns = list(zip(*updates, strict=True))
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS p SET status = v.status, planned_step_id = v.planned, "
                "step_entered_at = v.entered, next_check_at = v.next_check, reason = v.reason "
                "FROM unnest(%b::bigint[], %b::text[], %b::bigint[], %b::timestamptz[], "
                "%b::timestamptz[], %b::text[]) AS v(id, status, planned, entered, next_check, "
                "reason) WHERE p.id = v.id",
                [list(columns[0]), [str(v) for v in columns[1]], list(columns[2]),
                 list(columns[3]), list(columns[4]), [r[:300] for r in columns[5]]])
        return
    profiles = [EnrollmentProfile(id=pid, status=status, planned_step_id=planned,
                                  step_entered_at=entered, next_check_at=next_check,
                                  reason=reason[:300])
                for pid, status, planned, entered, next_check, reason in updates]
    EnrollmentProfile.objects.bulk_update(profiles, ["status", "planned_step_id",
                                                     "step_entered_at", "next_check_at",
                                                     "reason"], batch_size=500)
