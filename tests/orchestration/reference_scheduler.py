"""The straightforward scheduler the optimized one must agree with, decision for decision.

This is the scheduler as it was before its hot path was optimized (commit fff41db): every
profile read through the ORM, its step and window looked up and `windows.next_open`
worked out per profile, consent parsed per profile, the caps ledger read for the whole
batch and checked against every cap, and writes through the ORM. Only
tests/orchestration/test_scheduler_equivalence.py uses it.
"""

from __future__ import annotations

import json

from django.db import transaction
from django.db.models import TextField
from django.db.models.functions import Cast

from journeys.models import Enrollment
from orchestration import lifecycle, rep_tasks
from orchestration.caps import Ledger, load_caps
from orchestration.enrollment import OPT_IN_CHANNELS
from orchestration.models import DueTouchpoint, EnrollmentProfile, ProfileStatus, TouchpointStatus
from orchestration.scheduler import Report, StepInfo, load_steps
from orchestration.windows import load_windows, next_open, window_for

ACTIVE = ProfileStatus.ACTIVE
FIELDS = ("id", "enrollment_id", "enrollment__current_step_id", "enrollment__paused",
          "planned_step_id", "step_entered_at", "market", "consent_json", "preferences_json",
          "recipient_hash", "journey_id", "locale")
AS_TEXT = {"consent_json": Cast("consent", TextField()),
           "preferences_json": Cast("channel_preferences", TextField())}


def run(*, now, batch_size=1000) -> Report:
    report = Report()
    windows, caps = load_windows(), load_caps()
    steps: dict[int, StepInfo] = {}
    while True:
        done = run_batch(now=now, batch_size=batch_size, report=report, windows=windows,
                         caps=caps, steps=steps)
        report.batches += 1
        if done < batch_size:
            return report


@transaction.atomic
def run_batch(*, now, batch_size, report, windows, caps, steps) -> int:
    rows = list(
        EnrollmentProfile.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(status=ACTIVE, next_check_at__lte=now, journey_id__in=lifecycle.live_journeys())
        .order_by("next_check_at", "id").annotate(**AS_TEXT).values_list(*FIELDS)[:batch_size])
    if not rows:
        return 0
    missing = {r[10] for r in rows} - {s.journey_id for s in steps.values()}
    if missing:
        steps.update(load_steps(missing))
    ledger = Ledger(caps, (r[9] for r in rows), now)
    had = set(DueTouchpoint.objects.filter(enrollment_id__in=[r[1] for r in rows])
              .values_list("enrollment_id", "step_id"))
    updates, touchpoints, advances = [], [], {}
    for (pid, enrollment_id, current, paused, planned, entered, market, consent, prefs,
         recipient, _journey, locale) in rows:
        report.evaluated += 1
        if paused:
            updates.append((pid, ProfileStatus.PAUSED, planned, entered, None,
                            "paused by a transition: outreach stopped"))
            report.count("paused")
            continue
        if current != planned:
            planned, entered = current, now
        if current is None:
            updates.append((pid, ProfileStatus.COMPLETED, None, entered, None,
                            "journey completed"))
            report.count("completed")
            continue
        step = steps.get(current)
        if step is None:
            continue
        for _ in range(len(steps) + 1):
            kind, reason, at = decide(step, enrollment_id, recipient, entered, market, consent,
                                      prefs, had, ledger, windows, now)
            if kind != "skip":
                break
            if not reason.startswith("already_had"):
                touchpoints.append(touchpoint(step, enrollment_id, recipient, market, locale,
                                              now, TouchpointStatus.SKIPPED, reason))
            had.add((enrollment_id, step.id))
            report.skipped += 1
            report.count(reason.split(":")[0])
            advances[enrollment_id] = step.next_id
            if step.next_id is None:
                break
            step, planned, entered = steps[step.next_id], step.next_id, now
        if kind == "skip":
            updates.append((pid, ProfileStatus.COMPLETED, None, now, None,
                            f"journey completed ({reason})"))
            continue
        report.count(reason.split(":")[0])
        if kind == "due":
            touchpoints.append(touchpoint(step, enrollment_id, recipient, market, locale, now,
                                          TouchpointStatus.DUE, reason))
            ledger.add(recipient, step.brand_id, step.channel, step.purpose, now)
            had.add((enrollment_id, step.id))
            report.created += 1
            updates.append((pid, ACTIVE, step.id, entered, None, reason))
        else:
            report.waiting += kind == "wait"
            report.postponed += kind == "cap"
            updates.append((pid, ACTIVE, step.id, entered, at, reason))
    DueTouchpoint.objects.bulk_create(touchpoints, ignore_conflicts=True)
    for enrollment in Enrollment.objects.filter(pk__in=list(advances)):
        enrollment.current_step_id = advances[enrollment.pk]
        enrollment.save(update_fields=["current_step", "updated_at"])
    rep_tasks.create_for([(t.enrollment_id, t.step_id) for t in touchpoints
                          if t.channel == rep_tasks.CHANNEL and t.status == TouchpointStatus.DUE],
                         now=now)
    EnrollmentProfile.objects.bulk_update(
        [EnrollmentProfile(id=pid, status=status, planned_step_id=step_id, step_entered_at=at,
                           next_check_at=check, reason=reason[:300])
         for pid, status, step_id, at, check, reason in updates],
        ["status", "planned_step_id", "step_entered_at", "next_check_at", "reason"])
    return len(rows)


def decide(step, enrollment_id, recipient, entered, market, consent, prefs, had, ledger,
           windows, now):
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
    return "due", (f"due: {step.key} ({step.channel}) {step.delay.days} days after the previous "
                   f"touchpoint, inside {window.describe()}"), None


def touchpoint(step, enrollment_id, recipient, market, locale, now, status, reason):
    return DueTouchpoint(enrollment_id=enrollment_id, step_id=step.id, recipient_hash=recipient,
                         brand_id=step.brand_id, channel=step.channel, purpose=step.purpose,
                         market=market, locale=locale, due_at=now, status=status,
                         reason=reason[:300], created_at=now,
                         finished_at=now if status != TouchpointStatus.DUE else None)
