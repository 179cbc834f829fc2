"""A deterministic engagement history for the demo journeys, so every analytics chart
shows something on a fresh `make run`: ≥ 50,000 events over the last 120 days.

Each simulated recipient enters a journey at its entry step on a day of the window and
walks the designed transitions: at a step it produces the events one of the step's
transitions needs (two ignores, a click, a decline ...), sometimes an extra open; it
waits 1–12 days; it drops out with some probability per step (the funnel), and now and
then it jumps somewhere off the designed paths (the coherence view). A `no_engagement_for`
transition with `pause` pauses it. The random generator is seeded (`SEED`): the same
recipients take the same paths on every machine; dates are relative to the day of loading.

A demo recipient's id is "tessera-demo:<journey>:<n>" (never a person); its enrollment's
pseudonym is the one a channel serving that id gets (`journeys.models.pseudonymous_id`, keyed
like every real recipient's), so the deliveries `demo.deliveries` then serves to the same ids
join their engagement (content performance per module version). Rows are bulk-inserted
without history rows: synthetic demo facts, not records of anyone's engagement.
Idempotent: a journey that already has its demo recipients is left alone (and served
again only if none of them is in the delivery log). At the end the analytics rollups are
rebuilt (`analytics.rollups.rebuild`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import time
from collections import defaultdict

from django.db import transaction
from django.utils import timezone

from analytics import bulk, rollups
from journeys.models import (
    EngagementEvent,
    Enrollment,
    EventType,
    Journey,
    Step,
    Transition,
    pseudonymous_id,
)

from . import deliveries

SEED = 15
WINDOW_DAYS = 120
RECIPIENTS = {"cardiozen-hcp-new-to-therapy": 4000, "cardiozen-patient": 3300,
              "cardiozen-pharmacist": 3100}
DROP_OUT = 0.12  # per step
OFF_PATH = 0.04  # per move
EXTRA_OPEN = 0.5


def recipient_id(slug: str, n: int) -> str:
    return f"tessera-demo:{slug}:{n}"


def pseudonym(slug: str, n: int) -> str:
    return pseudonymous_id(recipient_id(slug, n))


def _walk(rnd: random.Random, steps: list[Step], moves: dict[int, list[Transition]],
          start: dt.datetime, now: dt.datetime):
    """One recipient's events [(step, type, days, at)] and where they end (step, paused)."""
    events = []
    step, at, paused = steps[0], start, False
    for _ in range(12):
        options = moves.get(step.pk, [])
        if not options or rnd.random() < DROP_OUT:
            if rnd.random() < 0.5:
                events.append((step, EventType.OPENED, None, at))
            break
        for _ in range(rnd.randint(0, 3) if rnd.random() < EXTRA_OPEN else 0):
            events.append((step, EventType.OPENED, None, at))  # read again, no move
            at += dt.timedelta(hours=rnd.randint(1, 30))
        choice = rnd.choice(options)
        if choice.event_type == EventType.NO_ENGAGEMENT_FOR:
            at += dt.timedelta(days=choice.days or 30)
            if at > now:
                break
            events.append((step, EventType.NO_ENGAGEMENT_FOR, choice.days or 30, at))
        else:
            for _ in range(max(1, choice.threshold)):
                events.append((step, choice.event_type, None, at))
                at += dt.timedelta(hours=rnd.randint(2, 60))
        if choice.pause:
            paused = True
            break
        nxt = choice.to_step
        if rnd.random() < OFF_PATH:
            nxt = rnd.choice(steps)
        at += dt.timedelta(days=rnd.randint(1, 12), hours=rnd.randint(0, 23))
        if at > now or nxt is None:
            break
        step = nxt
    return [e for e in events if e[3] <= now], step, paused


def generate(journey: Journey, hashes: list[str], rnd: random.Random, now: dt.datetime) -> int:
    steps = list(Step.objects.filter(journey=journey).order_by("stage__order", "order", "id"))
    if not steps:
        return 0
    moves: dict[int, list[Transition]] = defaultdict(list)
    for t in Transition.objects.filter(from_step__journey=journey).select_related("to_step"):
        moves[t.from_step_id].append(t)
    for options in moves.values():
        options.sort(key=lambda t: (t.event_type, t.threshold, t.pk))
    walks = []
    for h in hashes:
        start = now - dt.timedelta(days=WINDOW_DAYS) + dt.timedelta(
            days=rnd.randint(0, WINDOW_DAYS - 5), hours=rnd.randint(7, 19))
        walks.append((h, *_walk(rnd, steps, moves, start, now)))
    with transaction.atomic():
        Enrollment.objects.bulk_create(
            [Enrollment(journey=journey, recipient_hash=h, current_step=step, paused=paused)
             for h, events, step, paused in walks if events], batch_size=2000)
        ids = dict(Enrollment.objects.filter(journey=journey, recipient_hash__in=hashes)
                   .values_list("recipient_hash", "pk"))
        recorded = timezone.now()
        rows = [(ids[h], step.pk, kind, days, at, recorded)
                for h, events, _, _ in walks if events for step, kind, days, at in events]
        bulk.insert(EngagementEvent, ["enrollment_id", "step_id", "event_type", "days",
                                      "occurred_at", "recorded_at"], rows)
    return len(rows)


def load(out) -> None:
    started = time.monotonic()
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    total = served_total = 0
    for slug, count in RECIPIENTS.items():
        journey = Journey.objects.filter(slug=slug).first()
        if journey is None:
            out.write(f"events demo: {slug} skipped (no such journey)\n")
            continue
        legacy = hashlib.sha256(f"tessera-demo:{slug}:0".encode()).hexdigest()
        if Enrollment.objects.filter(journey=journey, recipient_hash=legacy).exists():
            # Loaded before the demo's pseudonyms were keyed: deliveries served now would
            # not join those enrollments, and a second history would double the journey.
            out.write(f"events demo: {slug} has an older demo history (unkeyed pseudonyms); "
                      "left alone — `manage.py flush` and reload for content performance\n")
            continue
        ids = [recipient_id(slug, n) for n in range(count)]
        hashes = [pseudonymous_id(i) for i in ids]
        if Enrollment.objects.filter(journey=journey, recipient_hash=hashes[0]).exists():
            out.write(f"events demo: {slug} already has its history\n")
        else:
            made = generate(journey, hashes, random.Random(f"{SEED}:{slug}"), now)
            total += made
            out.write(f"events demo: {slug}: {made} events of {count} recipients over "
                      f"{WINDOW_DAYS} days\n")
        served = time.monotonic()
        delivered, refused = deliveries.serve(journey, ids, hashes)
        if delivered or refused:
            served_total += delivered + refused
            out.write(f"events demo: {slug}: served {delivered} deliveries to its recipients "
                      f"({refused} refused) in {time.monotonic() - served:.1f} s\n")
    if total or served_total:
        generated = time.monotonic()
        result = rollups.rebuild()
        out.write(f"events demo: {total} events, {served_total} assemblies served, in "
                  f"{generated - started:.1f} s; rollups "
                  f"rebuilt ({result['days']} journey-days) in "
                  f"{time.monotonic() - generated:.1f} s\n")
