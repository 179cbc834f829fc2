"""Pages: a journey's analytics (`/journeys/<slug>/analytics/`, CSV per table with
`?csv=<table>`) and the governance dashboard (`/review/governance/`). Figures come from
`analytics.queries` (cached per rollup watermark) and `analytics.governance`."""

from __future__ import annotations

import csv

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

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


class Link:
    """A table cell that links somewhere on the page (its text) and in the CSV (`csv`)."""

    def __init__(self, text, href: str, csv: str | None = None):
        self.text, self.href, self.csv = str(text), href, csv if csv is not None else str(text)

    def __str__(self) -> str:
        return self.text


def _cell(value) -> dict:
    if isinstance(value, Link):
        return {"text": value.text, "href": value.href}
    if value is None:
        return {"text": "—"}
    if isinstance(value, float):
        return {"text": f"{value:g}"}
    return {"text": str(value)}


def _version_link(row: dict) -> Link:
    return Link(f"{row['module']} v{row['version']}",
                reverse("admin:content_moduleversion_change", args=[row["version_id"]]))


def _usage_link(row: dict) -> Link:
    href = reverse("admin:delivery_moduleusage_change", args=[row["version_id"]])
    return Link("where used", href, csv=href)


def _content_tables(content: dict) -> dict[str, dict]:
    selector_rows = []
    for slot in content.get("selector_slots", []):
        versus = {c["b"]: c for c in slot["comparisons"]}
        for cand in slot["candidates"]:
            name = f"{cand['module']} v{cand['version']}"
            c = versus.get(name)
            lead = ("leader" if name == slot["leader"] else
                    "no comparison (too few recipients)" if c is None else c["reading"])
            selector_rows.append([
                slot["step"], slot["kind"], _version_link(cand), cand["recipients"],
                cand["engaged"], cand["rate"], cand["ci_low"], cand["ci_high"],
                c and c["difference"], c and c["ci_low"], c and c["ci_high"], lead])
    return {
        "content": {
            "title": "Content performance per module version",
            "note": "Recipients served the version at a step, and the share of them who opened "
                    "or clicked there, with its 95 % confidence interval (Wilson). An interval "
                    "is the range the true rate plausibly lies in: wide intervals mean few "
                    "recipients.",
            "head": ["Module version", "Kind", "Steps served", "Deliveries", "Recipients served",
                     "Engaged (opened or clicked)", "Engagement rate", "95 % CI low",
                     "95 % CI high", "Where used"],
            "rows": [[_version_link(r), r["kind"], " ".join(r["steps"]), r["deliveries"],
                      r["recipients"], r["engaged"], r["rate"], r["ci_low"], r["ci_high"],
                      _usage_link(r)] for r in content.get("versions", [])]},
        "content_versions": {
            "title": "Versions of one module compared (later minus earlier)",
            "note": "The difference of engagement rates with its 95 % interval (Newcombe). "
                    "When the interval contains 0 the data show no clear difference.",
            "head": ["Module", "Earlier", "Later", "Difference", "95 % CI low", "95 % CI high",
                     "Reading"],
            "rows": [[r["module"], r["a"], r["b"], r["difference"], r["ci_low"], r["ci_high"],
                      r["reading"]] for r in content.get("module_comparisons", [])]},
        "content_selectors": {
            "title": "Selector slots: candidates compared with the leader",
            "note": "Per step and selector kind, the versions the selector served there. Each is "
                    "compared with the leader (the highest shown rate): its rate minus the "
                    "leader's, with the 95 % interval.",
            "head": ["Step", "Slot kind", "Candidate", "Recipients served", "Engaged",
                     "Engagement rate", "95 % CI low", "95 % CI high", "Difference to leader",
                     "Difference CI low", "Difference CI high", "Reading"],
            "rows": selector_rows},
    }


def tables(data: dict) -> dict[str, dict]:
    """Every table of the page (the same rows feed the charts and the CSV downloads)."""
    funnel_rows = []
    for stage in data["funnel"]:
        funnel_rows.append([stage["stage"], "(stage)", "", stage["reached"],
                            stage["conversion_to_next"], stage["drop_off"]])
        for step in stage["steps"]:
            funnel_rows.append([stage["stage"], step["step"], step["channel"], step["reached"],
                                None, None])
    tables = {
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
        "flows": {"title": "Flow: actual moves over the designed map",
                  "note": "Every move between consecutive steps of recipients' paths (and from "
                          "the start to their first step), with every designed transition, "
                          "taken or not. Off-path moves are not on the designed map.",
                  "svg": True,
                  "head": ["From", "To", "Recipients", "On the map"],
                  "rows": [[r["from"], r["to"], r["recipients"],
                            "designed" if r["designed"] else "off-path"]
                           for r in data.get("flows", [])]},
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
        "reengagement": {
            "title": "Re-engagement after pauses by silence",
            "note": "Recipients whose outreach a silence (no engagement for N days) paused, by "
                    "the step where it happened; how many opened, clicked, downloaded or "
                    "attended again afterwards, and how many days after the pause.",
            "head": ["Paused at step", "Paused by silence", "Engaged again", "Share",
                     "Median days to re-engage", "p90 days"],
            "rows": [[r["step"], r["paused"], r["reengaged"], r["share"], r["median_days"],
                      r["p90_days"]] for r in data.get("reengagement", [])]},
        "daily": {"title": "Engagement per day",
                  "head": ["Day", "Deliveries", "Opened", "Clicked", "Declined", "Ignored"],
                  "rows": [[r["day"], r["deliveries"], r["opened"], r["clicked"], r["declined"],
                            r["ignored"]] for r in data["daily"]]},
    }
    content = _content_tables(data.get("content", {}))
    order = ["funnel", "velocity", "velocity_trend", "coherence", "flows", "time_in_stage",
             "touchpoints", *content, "paused", "reengagement", "daily"]
    tables.update(content)
    return {name: tables[name] for name in order}


def csv_response(name: str, table: dict) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    writer = csv.writer(response)
    writer.writerow(table["head"])
    for row in table["rows"]:
        writer.writerow(["" if v is None else v.csv if isinstance(v, Link) else v for v in row])
    return response


def _chart_data(data: dict) -> dict:
    """What the charts draw: suppressed values ("< 5") become gaps, never numbers."""
    def num(v):
        return v if isinstance(v, int | float) and not isinstance(v, bool) else None

    versions = data.get("content", {}).get("versions", [])

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
        "content": {
            "labels": [f"{r['module']} v{r['version']}" for r in versions],
            "series": {"95 % interval": [[r["ci_low"], r["ci_high"]] if num(r["rate"]) is not None
                                         else None for r in versions],
                       "Engagement rate": [num(r["rate"]) for r in versions]},
            "types": {"Engagement rate": "line"},
            "colors": {"95 % interval": "#9cc3e4", "Engagement rate": "#1f4e79"}},
        "reengagement": {"labels": [r["step"] for r in data.get("reengagement", [])],
                         "series": {"Share engaged again": [
                             num(r["share"]) for r in data.get("reengagement", [])]}},
    }


CHARTS = {  # table -> chart type
    "funnel": "bar", "velocity": "bar", "velocity_trend": "line", "touchpoints": "bar",
    "daily": "line", "content": "bar", "reengagement": "bar",
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
        "flow": data.get("flow_picture"),
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
