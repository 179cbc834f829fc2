"""Content performance per module version in one journey (docs/analytics.md, "Content
performance"): deliveries, the engagement rate of the recipients it was served to, with
95 % Wilson intervals; versions of one module compared, and the candidates of a selector
slot compared, each as a difference with its 95 % interval (Newcombe) and a plain reading.

Engagement events carry no version, so a version's engagement is attributed per
recipient: a recipient served the version at a step (the delivery log's where-used rows)
*engaged* when their `RecipientStep` at that step shows an open or a click. Deliveries come
from the daily rollups (`DailyRollup` rows with a version id).

Every count of people and every rate, interval and difference built on them goes through
`analytics.privacy`: fewer than TESSERA_MIN_COHORT recipients shows "< 5".
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db.models import Q, Sum

from content.models import ModuleVersion
from delivery.models import DeliveredVersion
from journeys.models import Journey, Slot

from . import privacy
from .models import RecipientStep

NO_CLEAR_DIFFERENCE = "no clear difference"
TOO_FEW = "too few recipients to compare"


# --- pure: shown figures ----------------------------------------------------------------------

def shown_rate(engaged: int, recipients: int) -> dict:
    """Recipients, engaged, rate and its 95 % Wilson interval as shown: the rate and the
    interval are suppressed with the counts (never a bare ratio from a small cohort)."""
    rate = privacy.rate(engaged, recipients)
    shown = isinstance(rate, float)
    bounds = privacy.wilson_interval(engaged, recipients) if shown else None
    label = None if rate is None else privacy.suppressed_label()
    return {"recipients": privacy.count(recipients), "engaged": privacy.count(engaged),
            "rate": rate, "ci_low": bounds[0] if bounds else label,
            "ci_high": bounds[1] if bounds else label}


def compare(a: tuple[int, int], b: tuple[int, int], a_name: str, b_name: str) -> dict:
    """b's rate minus a's, (engaged, recipients) each, with its 95 % interval and a reading:
    "<b> engages more" / "<b> engages less" when the interval excludes 0, else
    "no clear difference"; suppressed when either side is (fewer than k recipients or
    engaged)."""
    shown = all(isinstance(privacy.rate(e, n), float) for e, n in (a, b))
    if not shown:
        label = privacy.suppressed_label()
        return {"a": a_name, "b": b_name, "difference": label, "ci_low": label,
                "ci_high": label, "reading": TOO_FEW}
    d, low, high = privacy.difference_interval(a[0], a[1], b[0], b[1])
    if low > 0:
        reading = f"{b_name} engages more"
    elif high < 0:
        reading = f"{b_name} engages less"
    else:
        reading = NO_CLEAR_DIFFERENCE
    return {"a": a_name, "b": b_name, "difference": round(d, 3), "ci_low": round(low, 3),
            "ci_high": round(high, 3), "reading": reading}


# --- reading the facts ------------------------------------------------------------------------

def _served(journey: Journey, filters):
    rows = DeliveredVersion.objects.filter(delivery__journey_slug=journey.slug)
    if filters.start:
        rows = rows.filter(delivery__served_at__gte=dt.datetime.combine(
            filters.start, dt.time.min, dt.UTC))
    if filters.end:
        rows = rows.filter(delivery__served_at__lt=dt.datetime.combine(
            filters.end + dt.timedelta(days=1), dt.time.min, dt.UTC))
    if filters.market:
        rows = rows.filter(jurisdiction=filters.market)
    if filters.channel:
        rows = rows.filter(channel=filters.channel)
    return rows


def _tallies(journey: Journey, filters) -> tuple[dict, dict]:
    """(engaged, recipients) per version and per (version, step key): distinct recipients
    served the version (at that step), and those of them who opened or clicked at a step
    where they were served it. Two plain reads (the engaged recipient-steps, the served
    rows), joined here. A correlated EXISTS per served row was slower on PostgreSQL
    (bench/analytics_sections.py, 34,000 deliveries: 0.91 of the path read's time against
    0.67 for this)."""
    engaged = set(RecipientStep.objects.filter(journey=journey).filter(
        Q(opened=True) | Q(clicked=True)).values_list("enrollment__recipient_hash", "step__key"))
    served: dict[tuple, set] = defaultdict(set)
    won: dict[tuple, set] = defaultdict(set)
    for version_id, key, who in _served(journey, filters).values_list(
            "version_id", "delivery__step_key", "delivery__recipient_pseudonym").iterator(
            chunk_size=20_000):
        served[(version_id,)].add(who)
        served[(version_id, key)].add(who)
        if (who, key) in engaged:
            won[(version_id,)].add(who)
            won[(version_id, key)].add(who)
    tallies = {k: (len(won.get(k, ())), len(people)) for k, people in served.items()}
    return ({k: t for k, t in tallies.items() if len(k) == 1},
            {k: t for k, t in tallies.items() if len(k) == 2})


def _deliveries(journey: Journey, filters, design) -> dict[tuple[int, int], int]:
    """(version id, step id) -> deliveries that contained the version (daily rollups)."""
    daily = filters.rollups(journey, versions=True)
    return {(v, s): n for v, s, n in daily.values("module_version_id", "step_id")
            .annotate(n=Sum("deliveries")).values_list("module_version_id", "step_id", "n")}


def content_performance(journey: Journey, filters, design) -> dict:
    """Everything the content-performance sections show, suppressed."""
    per_version, per_step = _tallies(journey, filters)
    sent = _deliveries(journey, filters, design)
    ids = {v for (v,) in per_version} | {v for v, _ in sent}
    info = {v["id"]: v for v in ModuleVersion.objects.filter(pk__in=ids).values(
        "id", "number", "module_id", "module__code", "module__kind")}
    step_id = {key: s for s, key, _, _ in design.steps}
    key_of = design.key_of
    order = {s: i for i, (s, *_) in enumerate(design.steps)}

    def name(v):
        return f"{info[v]['module__code']} v{info[v]['number']}"

    steps_of: dict[int, set[int]] = defaultdict(set)
    for (v, key) in per_step:
        if key in step_id:
            steps_of[v].add(step_id[key])
    for (v, s) in sent:
        steps_of[v].add(s)
    delivered: dict[int, int] = defaultdict(int)
    for (v, _), n in sent.items():
        delivered[v] += n
    k = privacy.min_cohort()
    versions = []
    for v in sorted(ids & set(info), key=lambda v: (info[v]["module__code"], info[v]["number"])):
        engaged, recipients = per_version.get((v,), (0, 0))
        versions.append({
            "module": info[v]["module__code"], "version": info[v]["number"], "version_id": v,
            "kind": info[v]["module__kind"],
            "steps": [key_of[s] for s in sorted(steps_of[v], key=lambda s: order.get(s, 0))
                      if s in key_of],
            "deliveries": delivered[v] if recipients == 0 or recipients >= k
            else privacy.suppressed_label(),
            **shown_rate(engaged, recipients)})

    by_module: dict[int, list[int]] = defaultdict(list)
    for v in info:
        if (v,) in per_version:
            by_module[info[v]["module_id"]].append(v)
    module_comparisons = []
    for vs in sorted(by_module.values(), key=lambda vs: info[vs[0]]["module__code"]):
        vs.sort(key=lambda v: info[v]["number"])
        for a, b in zip(vs, vs[1:], strict=False):
            module_comparisons.append({"module": info[a]["module__code"],
                                       **compare(per_version[(a,)], per_version[(b,)],
                                                 name(a), name(b))})
    return {"versions": versions, "module_comparisons": module_comparisons,
            "selector_slots": _selector_slots(journey, design, per_step, info, name)}


def _selector_slots(journey, design, per_step, info, name) -> list[dict]:
    """Per step and selector kind: the candidates served there (versions of modules no
    fixed slot of the step binds, of the selector's kind), each with its rate, and each
    compared with the leader (the highest shown rate)."""
    fixed: dict[int, set[int]] = defaultdict(set)
    kinds: dict[int, set[str]] = defaultdict(set)
    for step_id, module_id, kind in Slot.objects.filter(step__journey=journey).values_list(
            "step_id", "module_id", "selector_kind"):
        if module_id:
            fixed[step_id].add(module_id)
        elif kind:
            kinds[step_id].add(kind)
    out = []
    for step_id, key, _, _ in design.steps:
        for kind in sorted(kinds[step_id]):
            candidates = sorted(
                (v for (v, k) in per_step if k == key and v in info
                 and info[v]["module__kind"] == kind and info[v]["module_id"] not in fixed[step_id]),
                key=lambda v: (info[v]["module__code"], info[v]["number"]))
            if not candidates:
                continue
            rows = [{"module": info[v]["module__code"], "version": info[v]["number"],
                     "version_id": v, **shown_rate(*per_step[(v, key)])} for v in candidates]
            shown = [v for v, r in zip(candidates, rows, strict=True) if isinstance(r["rate"], float)]
            leader = max(shown, key=lambda v: (per_step[(v, key)][0] / per_step[(v, key)][1],
                                               -candidates.index(v)), default=None)
            comparisons = [] if leader is None else [
                compare(per_step[(leader, key)], per_step[(v, key)], name(leader), name(v))
                for v in candidates if v != leader]
            out.append({"step": key, "kind": kind, "leader": leader and name(leader),
                        "candidates": rows, "comparisons": comparisons})
    return out
