"""Journey measures: funnel, engagement velocity, journey coherence, time in stage, paused
recipients, re-engagement after pauses, per-touchpoint rates; content performance
(`content_performance.py`) and the flow view (`flows.py`). Defined precisely in docs/analytics.md, whose worked
example tests/analytics/test_metrics.py asserts.

Everything reads the rollup tables (`RecipientStep`, `DailyRollup`) — except re-engagement,
which reads the silence events and what followed them (the rollups keep no per-recipient
silence), and content performance, which joins the delivery log to `RecipientStep` — and
every count of people goes through `analytics.privacy` (small cohorts show as "< 5").

Inputs: a journey and a `Filters` (date range on first arrival, market, channel). The
pure functions (`velocity_of`, `coherence_of`, ...) take plain paths so they can be tested
on hand-made examples.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass

from django.db.models import Count, Max, Q, Sum

from journeys.models import EngagementEvent, Enrollment, EventType, Journey, Stage, Step, Transition

from . import flows, privacy
from .content_performance import content_performance
from .models import DailyRollup, RecipientStep

DAY = 86400.0


@dataclass(frozen=True)
class Filters:
    start: dt.date | None = None
    end: dt.date | None = None  # inclusive
    market: str = ""
    channel: str = ""

    def key(self) -> str:
        return f"{self.start}|{self.end}|{self.market}|{self.channel}"

    def rollups(self, journey: Journey, *, versions: bool, by_channel: bool = True):
        """The journey's daily rollup rows inside these filters: the per-version rows, or the
        step totals (version id 0). `by_channel=False` leaves the channel filter out."""
        daily = (DailyRollup.objects.filter(journey=journey, module_version_id__gt=0) if versions
                 else DailyRollup.objects.filter(journey=journey, module_version_id=0))
        if self.start:
            daily = daily.filter(day__gte=self.start)
        if self.end:
            daily = daily.filter(day__lte=self.end)
        if self.market:
            daily = daily.filter(market=self.market)
        if by_channel and self.channel:
            daily = daily.filter(channel=self.channel)
        return daily


@dataclass(frozen=True)
class Design:
    """The designed map: stages and steps in map order, designed moves between steps."""

    stages: list[tuple[int, str]]  # (stage id, name) in order
    steps: list[tuple[int, str, int, str]]  # (step id, key, stage id, channel) in map order
    moves: frozenset[tuple[int, int]]  # (from step, to step) of the journey's transitions

    @property
    def entry_steps(self) -> frozenset[int]:
        """Steps no designed move leads to: where a path may begin."""
        targets = {b for _, b in self.moves}
        return frozenset(s for s, *_ in self.steps if s not in targets)

    @property
    def stage_of(self) -> dict[int, int]:
        return {s: stage for s, _, stage, _ in self.steps}

    @property
    def key_of(self) -> dict[int, str]:
        return {s: key for s, key, _, _ in self.steps}


def design_of(journey: Journey) -> Design:
    stages = [(s.pk, s.name) for s in Stage.objects.filter(journey=journey)
              .select_related("audience_stage").order_by("order", "id")]
    steps = [(s.pk, s.key, s.stage_id, s.channel.code) for s in Step.objects.filter(
        journey=journey).select_related("channel").order_by("stage__order", "order", "id")]
    moves = frozenset(Transition.objects.filter(from_step__journey=journey, to_step__isnull=False)
                      .values_list("from_step_id", "to_step_id"))
    return Design(stages=stages, steps=steps, moves=moves)


# --- the paths, read from RecipientStep ------------------------------------------------------

@dataclass(frozen=True)
class Visit:
    step: int
    first_at: dt.datetime
    last_at: dt.datetime


def _rows(journey: Journey, filters: Filters, design: Design):
    rows = RecipientStep.objects.filter(journey=journey)
    if filters.start:
        rows = rows.filter(first_at__gte=dt.datetime.combine(filters.start, dt.time.min, dt.UTC))
    if filters.end:
        rows = rows.filter(first_at__lt=dt.datetime.combine(
            filters.end + dt.timedelta(days=1), dt.time.min, dt.UTC))
    if filters.market:
        rows = rows.filter(market=filters.market)
    if filters.channel:
        rows = rows.filter(step_id__in=[s for s, _, _, c in design.steps if c == filters.channel])
    return rows


def paths_of(journey: Journey, filters: Filters, design: Design) -> dict[int, list[Visit]]:
    """Each enrollment's visits in the order of first arrival (ties: map order)."""
    order = {s: i for i, (s, *_) in enumerate(design.steps)}
    paths: dict[int, list[Visit]] = defaultdict(list)
    for enrollment_id, step_id, first_at, last_at in _rows(journey, filters, design).values_list(
            "enrollment_id", "step_id", "first_at", "last_at").iterator(chunk_size=20_000):
        paths[enrollment_id].append(Visit(step_id, first_at, last_at))
    for visits in paths.values():
        visits.sort(key=lambda v: (v.first_at, order.get(v.step, 0)))
    return paths


# --- pure measures over paths ----------------------------------------------------------------

def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least p % of values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def stage_entries(visits: list[Visit], stage_of: dict[int, int]) -> dict[int, dt.datetime]:
    entries: dict[int, dt.datetime] = {}
    for v in visits:
        stage = stage_of.get(v.step)
        if stage is not None and (stage not in entries or v.first_at < entries[stage]):
            entries[stage] = v.first_at
    return entries


def velocity_of(paths: dict[int, list[Visit]], design: Design) -> list[dict]:
    """Days between entering consecutive stages (map order), per pair of stages, over the
    recipients who entered both (the later no earlier than the former): median and p90."""
    stage_of = design.stage_of
    entries = [stage_entries(v, stage_of) for v in paths.values()]
    out = []
    pairs = list(zip(design.stages, design.stages[1:], strict=False))
    if len(design.stages) > 2:
        pairs.append((design.stages[0], design.stages[-1]))
    for (a, a_name), (b, b_name) in pairs:
        gaps = [(e[b] - e[a]).total_seconds() / DAY for e in entries
                if a in e and b in e and e[b] >= e[a]]
        out.append({"from": a_name, "to": b_name, "recipients": len(gaps),
                    "median_days": statistics.median(gaps) if gaps else None,
                    "p90_days": percentile(gaps, 90)})
    return out


def velocity_trend(paths: dict[int, list[Visit]], design: Design) -> list[dict]:
    """Per calendar month of entering the later stage: median and p90 days over every move
    between consecutive stages that month."""
    stage_of = design.stage_of
    order = [s for s, _ in design.stages]
    months: dict[str, list[float]] = defaultdict(list)
    for visits in paths.values():
        e = stage_entries(visits, stage_of)
        for a, b in zip(order, order[1:], strict=False):
            if a in e and b in e and e[b] >= e[a]:
                months[e[b].strftime("%Y-%m")].append((e[b] - e[a]).total_seconds() / DAY)
    return [{"month": m, "recipients": len(g), "median_days": statistics.median(g),
             "p90_days": percentile(g, 90)} for m, g in sorted(months.items())]


def coherence_of(paths: dict[int, list[Visit]], design: Design) -> dict:
    """Coherent path: it starts at an entry step and each next step is a designed move from
    the one before. Share of coherent recipients; each incoherent recipient's FIRST
    off-path move ("start → X" or "A → B") counted; steps nobody reached."""
    entry, moves, key = design.entry_steps, design.moves, design.key_of
    coherent = 0
    off_path: Counter = Counter()
    reached: set[int] = set()
    for visits in paths.values():
        steps = [v.step for v in visits]
        reached.update(steps)
        if not steps:
            continue
        if steps[0] not in entry:
            off_path[("start", key.get(steps[0], "?"))] += 1
            continue
        bad = next(((a, b) for a, b in zip(steps, steps[1:], strict=False) if (a, b) not in moves), None)
        if bad is None:
            coherent += 1
        else:
            off_path[(key.get(bad[0], "?"), key.get(bad[1], "?"))] += 1
    total = sum(1 for v in paths.values() if v)
    return {"recipients": total, "coherent": coherent,
            "off_path": off_path.most_common(),
            "unreached": [k for s, k, _, _ in design.steps if s not in reached]}


def time_in_stage_of(paths: dict[int, list[Visit]], design: Design) -> list[dict]:
    """Days from entering a stage to the last event in it: median and p90 per stage."""
    stage_of = design.stage_of
    per_stage: dict[int, list[float]] = defaultdict(list)
    for visits in paths.values():
        first: dict[int, dt.datetime] = {}
        last: dict[int, dt.datetime] = {}
        for v in visits:
            s = stage_of.get(v.step)
            if s is None:
                continue
            first[s] = min(first.get(s, v.first_at), v.first_at)
            last[s] = max(last.get(s, v.last_at), v.last_at)
        for s in first:
            per_stage[s].append((last[s] - first[s]).total_seconds() / DAY)
    return [{"stage": name, "recipients": len(per_stage[s]),
             "median_days": statistics.median(per_stage[s]) if per_stage[s] else None,
             "p90_days": percentile(per_stage[s], 90)} for s, name in design.stages]


def funnel_of(paths: dict[int, list[Visit]], design: Design) -> dict:
    """Recipients reaching each stage and step; conversion from a stage to the next one =
    recipients who reached both / recipients who reached the first; drop-off = 1 - that."""
    stage_of = design.stage_of
    by_stage: dict[int, set] = defaultdict(set)
    by_step: dict[int, set] = defaultdict(set)
    for enrollment_id, visits in paths.items():
        for v in visits:
            by_step[v.step].add(enrollment_id)
            if v.step in stage_of:
                by_stage[stage_of[v.step]].add(enrollment_id)
    stages = []
    for i, (s, name) in enumerate(design.stages):
        nxt = design.stages[i + 1][0] if i + 1 < len(design.stages) else None
        both = len(by_stage[s] & by_stage[nxt]) if nxt is not None else None
        stages.append({"stage": name, "reached": len(by_stage[s]), "to_next": both,
                       "steps": [{"step": k, "channel": c, "reached": len(by_step[st])}
                                 for st, k, sg, c in design.steps if sg == s]})
    return {"stages": stages}


# --- shown, suppressed ------------------------------------------------------------------------

def shown_funnel(raw: dict) -> list[dict]:
    out = []
    for row in raw["stages"]:
        to_next = row["to_next"]
        conversion = privacy.rate(to_next, row["reached"]) if to_next is not None else None
        drop = (round(1 - conversion, 3) if isinstance(conversion, float) else conversion)
        out.append({"stage": row["stage"], "reached": privacy.count(row["reached"]),
                    "conversion_to_next": conversion, "drop_off": drop,
                    "steps": [{"step": s["step"], "channel": s["channel"],
                               "reached": privacy.count(s["reached"])} for s in row["steps"]]})
    return out


def _shown_stats(rows: list[dict]) -> list[dict]:
    return [{**{k: v for k, v in row.items() if k not in ("recipients", "median_days", "p90_days")},
             "recipients": privacy.count(row["recipients"]),
             "median_days": privacy.statistic(row["median_days"], row["recipients"]),
             "p90_days": privacy.statistic(row["p90_days"], row["recipients"])} for row in rows]


def shown_coherence(raw: dict, top: int = 5) -> dict:
    return {"recipients": privacy.count(raw["recipients"]),
            "coherent": privacy.count(raw["coherent"]),
            "share": privacy.rate(raw["coherent"], raw["recipients"]),
            "off_path": [{"from": a, "to": b, "recipients": privacy.count(n)}
                         for (a, b), n in raw["off_path"][:top]],
            "unreached_steps": raw["unreached"]}


def touchpoints(journey: Journey, filters: Filters, design: Design) -> list[dict]:
    """Per step: recipients reached and the share who opened / clicked / declined / ignored
    there (RecipientStep); deliveries and events from the daily rollups in the range."""
    rows = _rows(journey, filters, design).values("step_id").annotate(
        reached=Count("pk"), opened=Count("pk", filter=Q(opened=True)),
        clicked=Count("pk", filter=Q(clicked=True)), declined=Count("pk", filter=Q(declined=True)),
        ignored=Count("pk", filter=Q(ignored=True)))
    people = {r["step_id"]: r for r in rows}
    daily = filters.rollups(journey, versions=False, by_channel=False)
    sent = dict(daily.values("step_id").annotate(n=Sum("deliveries")).values_list("step_id", "n"))
    out = []
    for step_id, key, _, channel in design.steps:
        if filters.channel and channel != filters.channel:
            continue
        p = people.get(step_id, {"reached": 0, "opened": 0, "clicked": 0, "declined": 0,
                                 "ignored": 0})
        out.append({"step": key, "channel": channel, "deliveries": sent.get(step_id) or 0,
                    "reached": privacy.count(p["reached"]),
                    **{f"{k}_rate": privacy.rate(p[k], p["reached"])
                       for k in ("opened", "clicked", "declined", "ignored")}})
    return out


def paused(journey: Journey, design: Design) -> list[dict]:
    """Recipients paused now, per step they stopped at (current state, not the range)."""
    counts = dict(Enrollment.objects.filter(journey=journey, paused=True)
                  .values("current_step_id").annotate(n=Count("pk"))
                  .values_list("current_step_id", "n"))
    return [{"step": key, "paused": privacy.count(counts.get(s, 0))}
            for s, key, _, _ in design.steps]


def daily_trend(journey: Journey, filters: Filters) -> list[dict]:
    """Events per day (rollups). A day is shown only when one of its cells holds at least k
    distinct recipients (so the day's distinct recipients are ≥ k)."""
    daily = filters.rollups(journey, versions=False)
    rows = daily.values("day").annotate(
        most=Max("recipients"), deliveries=Sum("deliveries"), opened=Sum("opened"),
        clicked=Sum("clicked"), declined=Sum("declined"), ignored=Sum("ignored")).order_by("day")
    k = privacy.min_cohort()
    out = []
    for r in rows:
        shown = r["most"] >= k
        out.append({"day": r["day"].isoformat(),
                    **{f: (r[f] if shown else privacy.suppressed_label())
                       for f in ("deliveries", "opened", "clicked", "declined", "ignored")}})
    return out


ENGAGED = (EventType.OPENED, EventType.CLICKED, EventType.DOWNLOADED, EventType.ATTENDED)


def pausing_silences(journey: Journey) -> dict[int, list[tuple[int, bool]]]:
    """Per step: its `no_engagement_for` transitions as (days, pauses?), largest days first."""
    out: dict[int, list[tuple[int, bool]]] = defaultdict(list)
    for step_id, days, pause in Transition.objects.filter(
            from_step__journey=journey, event_type=EventType.NO_ENGAGEMENT_FOR).values_list(
            "from_step_id", "days", "pause"):
        out[step_id].append((days or 0, pause))
    for options in out.values():
        options.sort(reverse=True)
    return out


def pauses(silence_events, transitions: dict[int, list[tuple[int, bool]]]) -> dict[int, tuple]:
    """Enrollment -> (step, paused at) of its first silence that paused it: a
    `no_engagement_for` event whose firing transition (the one with the largest days not
    above the silence, as journeys.engagement picks it) is a pause."""
    out: dict[int, tuple] = {}
    for enrollment_id, step_id, days, at in sorted(silence_events, key=lambda e: (e[3], e[0])):
        if enrollment_id in out:
            continue
        fired = next((pause for d, pause in transitions.get(step_id, []) if d <= (days or 0)), False)
        if fired:
            out[enrollment_id] = (step_id, at)
    return out


def reengagement_of(paused_at: dict[int, tuple], returns: dict[int, dt.datetime],
                    design: Design) -> list[dict]:
    """Per step where recipients were paused by silence (and in all): how many, how many
    engaged again afterwards (`returns`: their first open, click, download or attendance
    after the pause), and the days from the pause to that engagement: median and p90."""
    per_step: dict[int, list] = defaultdict(list)
    for enrollment_id, (step_id, at) in paused_at.items():
        back = returns.get(enrollment_id)
        per_step[step_id].append(None if back is None else (back - at).total_seconds() / DAY)

    def row(name, values):
        days = [v for v in values if v is not None]
        return {"step": name, "paused": len(values), "reengaged": len(days),
                "median_days": statistics.median(days) if days else None,
                "p90_days": percentile(days, 90)}

    rows = [row(key, per_step[s]) for s, key, _, _ in design.steps if per_step.get(s)]
    rows.append(row("all steps", [v for vs in per_step.values() for v in vs]))
    return rows


def _silences_and_returns(journey: Journey, filters: Filters, design: Design):
    transitions = pausing_silences(journey)
    steps = [s for s, _, _, c in design.steps
             if s in transitions and (not filters.channel or c == filters.channel)]
    events = EngagementEvent.objects.filter(step_id__in=steps,
                                            event_type=EventType.NO_ENGAGEMENT_FOR)
    if filters.start:
        events = events.filter(occurred_at__gte=dt.datetime.combine(filters.start, dt.time.min,
                                                                    dt.UTC))
    if filters.end:
        events = events.filter(occurred_at__lt=dt.datetime.combine(
            filters.end + dt.timedelta(days=1), dt.time.min, dt.UTC))
    paused_at = pauses(events.values_list("enrollment_id", "step_id", "days", "occurred_at"),
                       transitions)
    if filters.market and paused_at:
        market = dict(RecipientStep.objects.filter(
            journey=journey, enrollment_id__in=list(paused_at)).values_list(
            "enrollment_id", "market"))
        paused_at = {e: p for e, p in paused_at.items() if market.get(e) == filters.market}
    returns: dict[int, dt.datetime] = {}
    ids = sorted(paused_at)
    for i in range(0, len(ids), 5000):
        chunk = ids[i:i + 5000]
        since = min(paused_at[e][1] for e in chunk)
        for enrollment_id, at in EngagementEvent.objects.filter(
                enrollment_id__in=chunk, event_type__in=ENGAGED, occurred_at__gt=since
        ).values_list("enrollment_id", "occurred_at"):
            if at > paused_at[enrollment_id][1] and (enrollment_id not in returns
                                                     or at < returns[enrollment_id]):
                returns[enrollment_id] = at
    return paused_at, returns


def shown_reengagement(rows: list[dict]) -> list[dict]:
    return [{"step": r["step"], "paused": privacy.count(r["paused"]),
             "reengaged": privacy.count(r["reengaged"]),
             "share": privacy.rate(r["reengaged"], r["paused"]),
             "median_days": privacy.statistic(r["median_days"], r["reengaged"]),
             "p90_days": privacy.statistic(r["p90_days"], r["reengaged"])} for r in rows]


def journey_analytics(journey: Journey, filters: Filters | None = None) -> dict:
    """Everything the page and the API show, suppressed."""
    filters = filters or Filters()
    design = design_of(journey)
    paths = paths_of(journey, filters, design)
    funnel = shown_funnel(funnel_of(paths, design))
    flow = flows.flow_rows(flows.flows_of(paths, design), design)
    reached = {st["step"]: st["reached"] for stage in funnel for st in stage["steps"]}
    return {
        "journey": journey.slug,
        "filters": {"start": filters.start and filters.start.isoformat(),
                    "end": filters.end and filters.end.isoformat(),
                    "market": filters.market or None, "channel": filters.channel or None},
        "min_cohort": privacy.min_cohort(),
        "funnel": funnel,
        "velocity": _shown_stats(velocity_of(paths, design)),
        "velocity_trend": _shown_stats(velocity_trend(paths, design)),
        "coherence": shown_coherence(coherence_of(paths, design)),
        "time_in_stage": _shown_stats(time_in_stage_of(paths, design)),
        "touchpoints": touchpoints(journey, filters, design),
        "paused": paused(journey, design),
        "daily": daily_trend(journey, filters),
        "reengagement": shown_reengagement(reengagement_of(
            *_silences_and_returns(journey, filters, design), design)),
        "flows": flow,
        "flow_picture": flows.flow_picture(flow, design, reached),
        "content": content_performance(journey, filters, design),
    }
