"""Journey pages: index, journey map and step preview. Thin: selectors do the reading.

Every page shows only journeys the user may view (`restrict`: authors their brands,
reviewers and superusers all); another brand's journey answers 404, as a missing one does.
"""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, render

from .builder.forms import StageAddForm, StepAddForm, TransitionForm
from .builder.services import can_build
from .health import journey_health, journeys_health
from .models import Journey, Step
from .selectors import can_preview, journey_map, journeys_for_index, preview_step


@login_required
def index(request):
    journeys = list(journeys_for_index().restrict(request.user, "view"))
    health = journeys_health(journeys)
    for journey in journeys:
        journey.health = health[journey.pk]
    return render(request, "journeys/index.html", {
        "journeys": journeys, "can_preview": can_preview(request.user)})


def visible_journey(request, slug: str) -> Journey:
    return get_object_or_404(
        Journey.objects.restrict(request.user, "view").select_related("brand", "audience", "locale")
        .prefetch_related("jurisdictions"),
        slug=slug)


@login_required
def map_view(request, slug):
    return render_map(request, visible_journey(request, slug))


def render_map(request, journey: Journey, *, forms: dict | None = None, status: int = 200,
               problem: str = ""):
    """The map with each touchpoint's health; for a person who may change the journey,
    the builder's forms too (`forms`: bound forms to show again with their errors)."""
    grid = journey_map(journey)
    health = journey_health(journey)
    for cell in grid["cells"].values():
        cell.health = health.steps.get(cell.step.pk)
    editable = can_build(request.user, journey)
    context = {"journey": journey, "map": grid, "health": health,
               "can_preview": can_preview(request.user), "can_build": editable,
               "problem": problem, "unreachable": [s.step.key for s in health.unreachable],
               "dead_ends": [s.step.key for s in health.dead_ends]}
    if editable:
        forms = forms or {}
        context["stage_add"] = forms.get("stage_add") or StageAddForm(journey=journey)
        context["step_add"] = forms.get("step_add") or StepAddForm(journey=journey)
        context["transition_add"] = forms.get("transition_add") or TransitionForm(journey=journey)
        # Open on an empty journey and when a form has something to say.
        context["tools_open"] = bool(forms) or not grid["cells"]
    return render(request, "journeys/map.html", context, status=status)


@login_required
def step_preview(request, slug, key):
    if not can_preview(request.user):
        raise PermissionDenied("Previews are for staff and MLR reviewers.")
    step = get_object_or_404(
        Step.objects.restrict(request.user, "view").select_related(
            "journey__brand", "journey__locale", "stage__audience_stage", "channel"),
        journey__slug=slug, key=key)
    journey = step.journey
    markets = sorted(journey.jurisdictions.values_list("code", flat=True))
    jurisdiction = request.GET.get("jurisdiction", "").upper()
    if jurisdiction not in markets:
        jurisdiction = markets[0] if markets else ""
    locale = (request.GET.get("locale") or journey.locale.code)[:20]
    results = preview_step(step, jurisdiction=jurisdiction, locale=locale)
    forms = []
    for layout, result in results.items():
        forms.append({
            "layout": layout, "result": result,
            "manifest_json": json.dumps(result.manifest, indent=2, ensure_ascii=False),
        })
    return render(request, "journeys/preview.html", {
        "journey": journey, "step": step, "forms": forms, "markets": markets,
        "jurisdiction": jurisdiction, "locale": locale,
        "email": results["email"], "portal": results["portal"],
    })
