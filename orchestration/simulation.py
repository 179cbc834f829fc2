"""Dry run before go-live: a journey over a synthetic cohort for N days, deterministic.

What it answers: where people end up, what each channel would send per day, which
touchpoints would be refused and why (the assembly's own rules, checked as of each day —
content that expires on day 40 is refused from day 40), and which frequency caps bite.

The model is the scheduler's, in whole days: a step is due `delay_days` after the previous
touchpoint (or move), on a weekday the market's send window allows; email and sms need
consent (`consent_rate` of the cohort gives it); caps count per recipient and channel
(this journey's brand); a refused touchpoint moves the person on like the due queue does.
After each send one response is drawn (`responses`, per channel: opened / clicked /
ignored …); the step's transitions fire at their thresholds, and pattern trigger rules on
the recent events; 30 days without engagement after the first send pauses.

Work is per touchpoint, not per recipient per day: recipients wait in per-day buckets, so
10,000 recipients over 90 days is about one Python step per send (≈ 0.5 s).
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from journeys.assembly import StepContext, load_step
from journeys.models import Journey, Transition

from . import rep_tasks
from .caps import load_caps
from .due_queue import RECIPIENT_CODES, probe_recipient
from .enrollment import OPT_IN_CHANNELS
from .models import TriggerKind, TriggerRule
from .scheduler import load_steps
from .triggers import ENGAGED, SILENCE_DAYS
from .windows import load_windows, window_for

DEFAULT_RESPONSES = {
    "email": {"opened": 0.35, "clicked": 0.10, "ignored": 0.55},
    "portal": {"opened": 0.50, "clicked": 0.15, "ignored": 0.35},
    "rep": {"attended": 0.60, "declined": 0.40},
    "webinar": {"attended": 0.30, "ignored": 0.70},
    "sms": {"opened": 0.50, "ignored": 0.50},
}
MAX_SIZE = 100_000
MAX_DAYS = 365


@dataclass
class Cohort:
    size: int = 1000
    specialty_mix: dict[str, float] = field(default_factory=lambda: {"cardiology": 1.0})
    market_mix: dict[str, float] = field(default_factory=dict)  # default: journey's, evenly
    consent_rate: float = 0.9
    responses: dict[str, dict[str, float]] = field(default_factory=lambda: DEFAULT_RESPONSES)


@dataclass
class Result:
    journey: str
    size: int
    days: int
    seed: int
    start: str
    positions: dict[str, int]
    sends: list[dict[str, int]]          # per day: channel -> touchpoints sent
    channels: list[str]
    refusals: dict[str, dict]            # "step: code" -> {count, first_day, detail}
    caps: dict[str, int]                 # cap -> postponements
    skipped: dict[str, int]              # reason -> count
    moves: dict[str, int]                # rule / transition -> count
    seconds: float

    @property
    def total_sends(self) -> int:
        return sum(sum(day.values()) for day in self.sends)


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    u, acc = rng.random() * sum(weights.values()), 0.0
    for key, weight in weights.items():
        acc += weight
        if u < acc:
            return key
    return next(reversed(weights))


def compliance_calendar(step, *, channel: str, market: str, locale: str, start: datetime,
                        days: int) -> list[list[dict]]:
    """Per day, the refusals of the step's content as of noon UTC that day (the assembly's
    rules; recipient-level codes aside). Evaluated at day 0 and at each version validity
    boundary inside the horizon, constant in between."""
    if channel == rep_tasks.CHANNEL:
        out = []
        for day in range(days):
            code, _n = rep_tasks.rep_module(step.pk, start + timedelta(days=day, hours=12))
            out.append([] if code else [{"code": "not_approved",
                                         "detail": "no approved rep-facing module"}])
        return out
    snap = load_step(step)
    calendar: list[list[dict]] = []
    current: list[dict] | None = None
    boundary_days: set[int] = {0}
    for day in range(days):
        if day in boundary_days or current is None:
            at = start + timedelta(days=day, hours=12)
            ctx = StepContext(snap, channel=channel, jurisdiction=market, locale=locale,
                              layout=None, now=at)
            result = ctx.assemble(probe_recipient(channel))
            current = [e.as_dict() for e in result.errors if e.code not in RECIPIENT_CODES]
            for v in ctx.versions.values():
                for t in (v.valid_from, v.expires_at):
                    if t is not None and t > at:
                        boundary_days.add((t - start).days + ((t - start).seconds > 12 * 3600))
        calendar.append(current)
    return calendar


def simulate(journey: Journey, *, cohort: Cohort, days: int = 90, seed: int = 0,
             start: datetime | None = None) -> Result:
    began = time.perf_counter()
    size, days = max(1, min(cohort.size, MAX_SIZE)), max(1, min(days, MAX_DAYS))
    start = (start or datetime.now(UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
    rng = random.Random(seed)
    steps = load_steps([journey.pk])
    order = list(steps)  # journey order
    if not order:
        return Result(journey.slug, size, days, seed, start.date().isoformat(), {}, [], [], {},
                      {}, {}, {}, 0.0)
    info = list(steps.values())
    index = {pk: i for i, pk in enumerate(order)}
    markets = cohort.market_mix or {code: 1.0 for code in
                                    journey.jurisdictions.values_list("code", flat=True)} \
        or {"US": 1.0}
    locale = journey.locale.code
    windows = load_windows()
    allowed = {m: window_for(m, windows).weekdays for m in markets}
    caps = [c for c in load_caps() if c.brand_id in (None, journey.brand_id)]
    calendars = {(i, m): compliance_calendar(step_model, channel=info[i].channel, market=m,
                                             locale=locale, start=start, days=days)
                 for i, step_model in enumerate(journey.steps.order_by(
                     "stage__order", "order", "id").select_related("channel"))
                 for m in markets}
    transitions: dict[int, list] = defaultdict(list)
    for t in Transition.objects.filter(from_step__journey=journey):
        if t.from_step_id in index:
            target = index.get(t.to_step_id) if t.to_step_id else None
            transitions[index[t.from_step_id]].append((t.event_type, t.threshold, t.days,
                                                       target, t.pause, str(t)))
    patterns = []
    for rule in TriggerRule.objects.filter(journey=journey, active=True,
                                           kind=TriggerKind.PATTERN).select_related("transition"):
        if rule.transition_id and rule.transition.from_step_id in index:
            target = index.get(rule.transition.to_step_id) if rule.transition.to_step_id else None
            patterns.append((index[rule.transition.from_step_id], rule.conditions, target,
                             rule.transition.pause, f"rule: {rule.name}"))

    # Cohort, as parallel lists.
    market_of = [_pick(rng, markets) for _ in range(size)]
    consent = [rng.random() < cohort.consent_rate for _ in range(size)]
    position = [0] * size                 # step index; -1 completed; -2 paused
    entered = [0] * size
    step_events: list[Counter] = [Counter() for _ in range(size)]
    recent: list[list] = [[] for _ in range(size)]   # (day, event, channel)
    history: list[dict] = [defaultdict(list) for _ in range(size)]  # channel -> send days
    first_send = [None] * size
    last_engaged = [None] * size
    buckets: list[list[int]] = [[] for _ in range(days + 1)]
    due = [0] * size

    def schedule(r: int, day: int) -> None:
        due[r] = day
        if day < days:
            buckets[day].append(r)

    for r in range(size):
        schedule(r, info[0].delay.days)

    sends = [Counter() for _ in range(days)]
    refusals: dict[str, dict] = {}
    cap_hits: Counter = Counter()
    skipped: Counter = Counter()
    moves: Counter = Counter()
    weekday0 = start.weekday()

    def move_on(r: int, target: int | None, day: int, pause: bool = False) -> None:
        if pause:
            position[r] = -2
            return
        if target is None:
            position[r] = -1
            return
        position[r], entered[r] = target, day
        step_events[r].clear()
        schedule(r, day + info[target].delay.days)

    for day in range(days):
        bucket = buckets[day]
        i = 0
        while i < len(bucket):
            r = bucket[i]
            i += 1
            s = position[r]
            if s < 0 or due[r] != day:
                continue
            step = info[s]
            market = market_of[r]
            rule = next((p for p in patterns if p[0] == s and _pattern(recent[r], p[1], day)),
                        None)
            if rule is not None:  # a pattern trigger at this step moves them first
                moves[rule[4]] += 1
                move_on(r, rule[2], day, rule[3])
                continue
            if (weekday0 + day) % 7 not in allowed[market]:
                schedule(r, day + 1)
                continue
            anchor = last_engaged[r] if last_engaged[r] is not None else first_send[r]
            if anchor is not None and day - anchor >= SILENCE_DAYS:
                moves["silence: 30 days without engagement"] += 1
                position[r] = -2
                continue
            if step.channel in OPT_IN_CHANNELS and not consent[r]:
                skipped[f"no_consent ({step.channel})"] += 1
                move_on(r, s + 1 if s + 1 < len(info) else None, day)
                continue
            refused = calendars[(s, market)][day]
            if refused:
                for e in refused:
                    key = f"{step.key} ({market}): {e['code']}"
                    entry = refusals.setdefault(key, {"count": 0, "first_day": day,
                                                      "detail": e["detail"]})
                    entry["count"] += 1
                move_on(r, s + 1 if s + 1 < len(info) else None, day)
                continue
            postponed = None
            for cap in caps:
                if cap.applies(step.brand_id, step.channel, step.purpose):
                    counted = [d for d in history[r][step.channel] if d > day - cap.period_days]
                    if len(counted) >= cap.max_count:
                        until = sorted(counted)[len(counted) - cap.max_count] + cap.period_days
                        postponed = max(postponed or 0, until)
                        cap_hits[cap.describe()] += 1
            if postponed is not None:
                schedule(r, postponed)
                continue
            sends[day][step.channel] += 1
            history[r][step.channel].append(day)
            if first_send[r] is None:
                first_send[r] = day
            event = _pick(rng, cohort.responses.get(step.channel) or {"ignored": 1.0})
            if event in ENGAGED:
                last_engaged[r] = day
            step_events[r][event] += 1
            recent[r].append((day, event, step.channel))
            fired = None
            for event_type, threshold, _d, target, pause, label in transitions[s]:
                if event_type == event and step_events[r][event] >= threshold:
                    if fired is None or threshold > fired[0]:
                        fired = (threshold, target, pause, label)
            if fired is not None:
                moves[fired[3]] += 1
                move_on(r, fired[1], day, fired[2])
            else:
                move_on(r, s + 1 if s + 1 < len(info) else None, day)

    positions: Counter = Counter()
    for p in position:
        positions["completed" if p == -1 else "paused" if p == -2 else info[p].key] += 1
    channels = sorted({c for day in sends for c in day})
    return Result(journey.slug, size, days, seed, start.date().isoformat(),
                  dict(positions.most_common()), [dict(day) for day in sends], channels,
                  refusals, dict(cap_hits), dict(skipped), dict(moves),
                  round(time.perf_counter() - began, 3))


def _pattern(events: list, cond: dict, day: int) -> bool:
    since = day - int(cond.get("within_days") or 14)

    def seen(event, channel):
        return sum(1 for d, e, ch in events if d >= since and (not event or e == event)
                   and (not channel or ch == channel))

    return all(seen(e.get("event"), e.get("channel")) >= int(e.get("min", 1))
               for e in cond.get("events", [])) and \
        not any(seen(a.get("event"), a.get("channel")) for a in cond.get("absent", []))
