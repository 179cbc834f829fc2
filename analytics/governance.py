"""Content governance: is every touchpoint covered by approved content today and in 30, 60
and 90 days (`journeys.health` run at those dates), approved versions nothing uses, review
workload, first-pass approval rate, overdue reviews and cycle time per brand and role
(`approvals.metrics`). What a person sees follows the brand rule (`restrict`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta

from django.utils import timezone

from approvals.metrics import cycle_times, humanize
from approvals.models import Meaning, ReviewRound, Signature
from approvals.roles import REQUIRED_ROLES, Role
from content.models import ModuleVersion
from delivery.usage import unused_approved_versions
from journeys.health import journeys_health
from journeys.models import Journey

HORIZONS = (0, 30, 60, 90)


def coverage(user, *, now=None) -> list[dict]:
    """One row per journey × step × market × locale: status today and in 30/60/90 days
    (ready, expiring, blocked, empty) and today's reasons for that market."""
    now = now or timezone.now()
    journeys = list(Journey.objects.restrict(user, "view")
                    .select_related("brand", "locale").prefetch_related("jurisdictions"))
    by_horizon = {days: journeys_health(journeys, now=now + timedelta(days=days))
                  for days in HORIZONS}
    rows = []
    for journey in journeys:
        markets = sorted(j.code for j in journey.jurisdictions.all())
        today = by_horizon[0].get(journey.pk)
        if today is None:
            continue
        for step_id, health in today.steps.items():
            for market in markets:
                statuses = []
                for days in HORIZONS:
                    h = by_horizon[days][journey.pk].steps.get(step_id)
                    blocked_here = h is not None and any(
                        market in r.markets for r in h.reasons)
                    status = h.status if h is not None else "—"
                    if status == "blocked" and h.reasons and not blocked_here:
                        status = "ready"  # blocked in another market only
                    statuses.append("empty" if h is not None and h.empty else status)
                reasons = [f"{r.code}: {r.detail}" for r in health.reasons if market in r.markets]
                rows.append({"journey": journey.name, "journey_slug": journey.slug,
                             "step": health.step.key, "market": market,
                             "locale": str(journey.locale.code), "statuses": statuses,
                             "reasons": reasons})
    return rows


def workload(user, *, now=None) -> dict:
    """Open and overdue review rounds per role still to decide; first-pass approval rate
    and change requests per brand."""
    now = now or timezone.now()
    rounds = ReviewRound.objects.restrict(user, "view")
    open_rounds = list(rounds.open().select_related("version__module__brand"))
    decided = set(Signature.objects.filter(
        version_id__in=[r.version_id for r in open_rounds],
        meaning__in=[Meaning.APPROVE, Meaning.REQUEST_CHANGES],
    ).values_list("version_id", "round", "role"))
    waiting: Counter = Counter()
    overdue: Counter = Counter()
    for r in open_rounds:
        for role in REQUIRED_ROLES:
            if (r.version_id, r.number, role) not in decided:
                waiting[role] += 1
                if r.due_at < now:
                    overdue[role] += 1
    first = defaultdict(lambda: [0, 0])  # brand -> [approved first time, closed first rounds]
    for brand, outcome in rounds.filter(number=1).exclude(
            outcome__in=[ReviewRound.Outcome.OPEN, ReviewRound.Outcome.RECALLED]).values_list(
            "version__module__brand__name", "outcome"):
        first[brand][1] += 1
        first[brand][0] += outcome == ReviewRound.Outcome.APPROVED
    changes = Counter(Signature.objects.restrict(user, "view").filter(
        meaning=Meaning.REQUEST_CHANGES).values_list("role", flat=True))
    return {
        "roles": [{"role": Role(role).label, "waiting": waiting[role], "overdue": overdue[role],
                   "change_requests": changes[role]} for role in REQUIRED_ROLES],
        "first_pass": [{"brand": b, "approved_first": a, "closed_first": n,
                        "rate": round(a / n, 3) if n else None}
                       for b, (a, n) in sorted(first.items())],
        "overdue_rounds": sum(1 for r in open_rounds if r.due_at < now),
        "open_rounds": len(open_rounds),
    }


def cycle_time_rows() -> list[dict]:
    rows = []
    for m in cycle_times():
        rows.append({"brand": m.brand, "role": "all roles", "count": m.total.count,
                     "median": humanize(m.total.median_seconds),
                     "median_days": _days(m.total.median_seconds)})
        for role, stats in m.roles.items():
            rows.append({"brand": m.brand, "role": Role(role).label, "count": stats.count,
                         "median": humanize(stats.median_seconds),
                         "median_days": _days(stats.median_seconds)})
    return rows


def _days(seconds):
    return None if seconds is None else round(seconds / 86400, 2)


def unused(user, limit: int = 50) -> list[dict]:
    versions = unused_approved_versions(ModuleVersion.objects.restrict(user, "view"))[:limit]
    return [{"module": v.module.code, "version": v.number, "brand": v.module.brand.name,
             "expires_at": v.expires_at.date().isoformat() if v.expires_at else ""}
            for v in versions]


def dashboard(user, *, now=None) -> dict:
    visible = set(ModuleVersion.objects.restrict(user, "view")
                  .values_list("module__brand__name", flat=True).distinct())
    return {"horizons": HORIZONS, "coverage": coverage(user, now=now),
            "unused": unused(user), "workload": workload(user, now=now),
            "cycle_times": [r for r in cycle_time_rows() if r["brand"] in visible]}
