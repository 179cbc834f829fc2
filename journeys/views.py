"""Journey pages: index, journey map and step preview. Thin: selectors do the reading.

Every page shows only journeys the user may view (`restrict`: authors their brands,
reviewers and superusers all); another brand's journey answers 404, as a missing one does.
"""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, render

from .models import Journey, Step
from .selectors import can_preview, journey_map, journeys_for_index, preview_step


@login_required
def index(request):
    return render(request, "journeys/index.html", {
        "journeys": journeys_for_index().restrict(request.user, "view"),
        "can_preview": can_preview(request.user)})


@login_required
def map_view(request, slug):
    journey = get_object_or_404(
        Journey.objects.restrict(request.user, "view").select_related("brand", "audience", "locale")
        .prefetch_related("jurisdictions"),
        slug=slug)
    return render(request, "journeys/map.html", {
        "journey": journey, "map": journey_map(journey), "can_preview": can_preview(request.user)})


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
