"""The dry-run page: /journeys/<slug>/simulate/ (people who may see the journey)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from journeys.models import Journey

from .simulation import Cohort, simulate

LIMITS = {"size": (1, 20_000, 2_000), "days": (1, 365, 90), "seed": (0, 2**31, 0)}


def _int(request, name):
    low, high, default = LIMITS[name]
    try:
        return min(high, max(low, int(request.GET.get(name, default))))
    except ValueError:
        return default


@login_required
def simulate_view(request, slug: str):
    journey = Journey.objects.restrict(request.user, "view").filter(slug=slug).first()
    if journey is None:
        raise Http404("No such journey.")
    size, days, seed = _int(request, "size"), _int(request, "days"), _int(request, "seed")
    try:
        consent = min(1.0, max(0.0, float(request.GET.get("consent", 0.9))))
    except ValueError:
        consent = 0.9
    result = simulate(journey, cohort=Cohort(size=size, consent_rate=consent), days=days,
                      seed=seed)
    chart = {"sends": {"labels": [f"day {d}" for d in range(result.days)],
                       "series": {c: [day.get(c, 0) for day in result.sends]
                                  for c in result.channels}},
             "positions": {"labels": list(result.positions),
                           "series": {"recipients": list(result.positions.values())}}}
    totals = {c: sum(day.get(c, 0) for day in result.sends) for c in result.channels}
    busiest = max(range(result.days), key=lambda d: sum(result.sends[d].values()), default=0)
    return render(request, "orchestration/simulate.html", {
        "journey": journey, "result": result, "chart": chart, "totals": totals,
        "busiest": busiest, "size": size, "days": days, "seed": seed, "consent": consent,
        "weeks": [(w, {c: sum(day.get(c, 0) for day in result.sends[w * 7:(w + 1) * 7])
                       for c in result.channels}) for w in range((result.days + 6) // 7)],
    })
