"""Pages: a journey's analytics (`/journeys/<slug>/analytics/`, CSV per table with
`?csv=<table>`) and the governance dashboard (`/review/governance/`). Figures come from
`analytics.queries` (cached per rollup watermark) and `analytics.governance`."""

from __future__ import annotations

import csv

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render

from content.models import Channel, Jurisdiction
from journeys.models import Journey

from . import governance, privacy, queries
from .metrics import Filters


class FilterForm(forms.Form):
    start = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    market = forms.ChoiceField(required=False, label="Market")
    channel = forms.ChoiceField(required=False, label="Channel")

    def __init__(self, *args, journey: Journey, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["market"].choices = [("", "All markets")] + [
            (j.code, j.code) for j in Jurisdiction.objects.filter(journeys=journey).order_by("code")]
        self.fields["channel"].choices = [("", "All channels")] + [
            (c.code, c.name) for c in Channel.objects.filter(steps__journey=journey).distinct()
            .order_by("code")]

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise forms.ValidationError("The start date must not be after the end date.")
        return data

    def filters(self) -> Filters:
        if not self.is_valid():
            return Filters()
        d = self.cleaned_data
        return Filters(start=d.get("start"), end=d.get("end"), market=d.get("market") or "",
                       channel=d.get("channel") or "")


def _cell(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def tables(data: dict) -> dict[str, dict]:
    """Every table of the page (the same rows feed the charts and the CSV downloads)."""
    funnel_rows = []
    for stage in data["funnel"]:
        funnel_rows.append([stage["stage"], "(stage)", "", stage["reached"],
                            stage["conversion_to_next"], stage["drop_off"]])
        for step in stage["steps"]:
            funnel_rows.append([stage["stage"], step["step"], step["channel"], step["reached"],
                                None, None])
    return {
        "funnel": {"title": "Funnel: recipients reaching each stage and step",
                   "head": ["Stage", "Step", "Channel", "Recipients", "Conversion to next stage",
                            "Drop-off"], "rows": funnel_rows},
        "velocity": {"title": "Engagement velocity: days between stages",
                     "head": ["From", "To", "Recipients", "Median days", "p90 days"],
                     "rows": [[r["from"], r["to"], r["recipients"], r["median_days"], r["p90_days"]]
                              for r in data["velocity"]]},
        "velocity_trend": {"title": "Velocity trend: days between consecutive stages, by month",
                           "head": ["Month", "Recipients", "Median days", "p90 days"],
                           "rows": [[r["month"], r["recipients"], r["median_days"], r["p90_days"]]
                                    for r in data["velocity_trend"]]},
        "coherence": {"title": "Journey coherence: first off-path moves",
                      "head": ["From", "To", "Recipients"],
                      "rows": [[r["from"], r["to"], r["recipients"]]
                               for r in data["coherence"]["off_path"]]},
        "time_in_stage": {"title": "Time in stage (first to last event), days",
                          "head": ["Stage", "Recipients", "Median days", "p90 days"],
                          "rows": [[r["stage"], r["recipients"], r["median_days"], r["p90_days"]]
                                   for r in data["time_in_stage"]]},
        "touchpoints": {"title": "Touchpoints: deliveries and engagement rates",
                        "head": ["Step", "Channel", "Deliveries", "Recipients", "Opened",
                                 "Clicked", "Declined", "Ignored"],
                        "rows": [[r["step"], r["channel"], r["deliveries"], r["reached"],
                                  r["opened_rate"], r["clicked_rate"], r["declined_rate"],
                                  r["ignored_rate"]] for r in data["touchpoints"]]},
        "paused": {"title": "Paused recipients now, by the step they stopped at",
                   "head": ["Step", "Paused"],
                   "rows": [[r["step"], r["paused"]] for r in data["paused"]]},
        "daily": {"title": "Engagement per day",
                  "head": ["Day", "Deliveries", "Opened", "Clicked", "Declined", "Ignored"],
                  "rows": [[r["day"], r["deliveries"], r["opened"], r["clicked"], r["declined"],
                            r["ignored"]] for r in data["daily"]]},
    }


def csv_response(name: str, table: dict) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    writer = csv.writer(response)
    writer.writerow(table["head"])
    for row in table["rows"]:
        writer.writerow(["" if v is None else v for v in row])
    return response


def _chart_data(data: dict) -> dict:
    """What the charts draw: suppressed values ("< 5") become gaps, never numbers."""
    def num(v):
        return v if isinstance(v, int | float) and not isinstance(v, bool) else None

    return {
        "funnel": {"labels": [s["stage"] for s in data["funnel"]],
                   "series": {"Recipients": [num(s["reached"]) for s in data["funnel"]]}},
        "velocity": {"labels": [f"{r['from']} → {r['to']}" for r in data["velocity"]],
                     "series": {"Median days": [num(r["median_days"]) for r in data["velocity"]],
                                "p90 days": [num(r["p90_days"]) for r in data["velocity"]]}},
        "velocity_trend": {"labels": [r["month"] for r in data["velocity_trend"]],
                           "series": {"Median days": [num(r["median_days"])
                                                      for r in data["velocity_trend"]]}},
        "touchpoints": {"labels": [r["step"] for r in data["touchpoints"]],
                        "series": {k.title(): [num(r[f"{k}_rate"]) for r in data["touchpoints"]]
                                   for k in ("opened", "clicked", "declined", "ignored")}},
        "daily": {"labels": [r["day"] for r in data["daily"]],
                  "series": {k.title(): [num(r[k]) for r in data["daily"]]
                             for k in ("opened", "clicked", "ignored")}},
    }


CHARTS = {  # table -> chart type
    "funnel": "bar", "velocity": "bar", "velocity_trend": "line", "touchpoints": "bar",
    "daily": "line",
}


@login_required
def journey_analytics(request, slug):
    journey = get_object_or_404(Journey.objects.restrict(request.user, "view")
                                .select_related("brand", "audience"), slug=slug)
    form = FilterForm(request.GET or None, journey=journey)
    filters = form.filters()
    data = queries.journey_analytics(journey, filters)
    all_tables = tables(data)
    wanted = request.GET.get("csv")
    if wanted:
        if wanted not in all_tables:
            raise Http404("No such table.")
        return csv_response(f"{journey.slug}-{wanted}", all_tables[wanted])
    query = request.GET.copy()
    query.pop("csv", None)
    sections = [{"name": name, "chart": CHARTS.get(name), **table,
                 "rows": [[_cell(v) for v in row] for row in table["rows"]]}
                for name, table in all_tables.items()]
    return render(request, "analytics/journey.html", {
        "journey": journey, "form": form, "data": data, "sections": sections,
        "coherence": data["coherence"], "charts": _chart_data(data),
        "query": query.urlencode(), "min_cohort": privacy.min_cohort(),
        "suppressed": privacy.suppressed_label(),
    })


@login_required
def governance_dashboard(request):
    data = governance.dashboard(request.user)
    wanted = request.GET.get("csv")
    if wanted == "coverage":
        return csv_response("governance-coverage", {
            "head": ["Journey", "Step", "Market", "Locale",
                     *[("today" if d == 0 else f"in {d} days") for d in data["horizons"]],
                     "Reasons today"],
            "rows": [[r["journey"], r["step"], r["market"], r["locale"], *r["statuses"],
                      " | ".join(r["reasons"])] for r in data["coverage"]]})
    if wanted == "cycle_times":
        return csv_response("governance-cycle-times", {
            "head": ["Brand", "Role", "Approvals", "Median days"],
            "rows": [[r["brand"], r["role"], r["count"], r["median_days"]]
                     for r in data["cycle_times"]]})
    if wanted:
        raise Http404("No such table.")
    chart = {"labels": [f"{r['brand']} · {r['role']}" for r in data["cycle_times"]],
             "series": {"Median days": [r["median_days"] for r in data["cycle_times"]]}}
    return render(request, "analytics/governance.html", {
        "data": data, "chart": chart,
        "horizon_labels": [("today" if d == 0 else f"in {d} days") for d in data["horizons"]],
    })
