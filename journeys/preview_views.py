"""The step preview page and the congress handout's PDF. Thin: `journeys.previews` decides
what a channel shows and for whom; `journeys.assembly` decides what may be sent.

Previews are for staff and MLR reviewers (`can_preview`); a step of a journey the user
may not view answers 404 like a missing one.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.text import slugify

from . import previews
from .models import Step
from .selectors import can_preview

MAX_LOCALE = 20


def _preview(request, slug: str, key: str) -> tuple[previews.Preview, list[str]]:
    if not can_preview(request.user):
        raise PermissionDenied("Previews are for staff and MLR reviewers.")
    step = get_object_or_404(
        Step.objects.restrict(request.user, "view").select_related(
            "journey__brand", "journey__locale", "journey__audience", "stage__audience_stage",
            "channel"),
        journey__slug=slug, key=key)
    journey = step.journey
    markets = sorted(journey.jurisdictions.values_list("code", flat=True))
    jurisdiction = request.GET.get("jurisdiction", "").upper()
    if jurisdiction not in markets:
        jurisdiction = markets[0] if markets else ""
    locale = (request.GET.get("locale") or journey.locale.code).strip()[:MAX_LOCALE] or journey.locale.code
    sample = previews.pick_sample(journey.audience.code, request.GET.get("sample"))
    preview = previews.build_preview(step, jurisdiction=jurisdiction, locale=locale, sample=sample)
    return preview, markets


@login_required
def step_preview(request, slug, key):
    preview, markets = _preview(request, slug, key)
    step = preview.step
    query = {"jurisdiction": preview.jurisdiction, "locale": preview.locale,
             "sample": preview.sample.key}
    pdf_url = None
    if preview.shown == previews.HANDOUT and preview.result.ok:
        pdf_url = reverse("journeys:step-preview-pdf", args=[step.journey.slug, step.key]) + \
            "?" + urlencode(query)
    return render(request, "journeys/preview.html", {
        "journey": step.journey, "step": step, "preview": preview, "result": preview.result,
        "markets": markets, "jurisdiction": preview.jurisdiction, "locale": preview.locale,
        "samples": previews.samples_for(step.journey.audience.code), "sample": preview.sample,
        "reasons": previews.reasons(preview, staff=request.user.is_staff) if not preview.result.ok else [],
        "manifest_rows": previews.manifest_rows(preview.result.manifest),
        "manifest_json": json.dumps(preview.result.manifest, indent=2, ensure_ascii=False),
        "sms": preview.sms, "sms_text": previews.sms_text(preview.result.text),
        "pdf_url": pdf_url,
    })


@login_required
def step_preview_pdf(request, slug, key):
    preview, _ = _preview(request, slug, key)
    if preview.shown != previews.HANDOUT:
        raise Http404("Only congress handouts are printed as PDF.")
    if not preview.result.ok:
        lines = [f"{e.code}: {e.module + ': ' if e.module else ''}{e.detail}" for e in preview.result.errors]
        return HttpResponse("This handout cannot be assembled compliantly:\n" + "\n".join(lines),
                            status=422, content_type="text/plain; charset=utf-8")
    name = slugify(f"{preview.step.journey.slug}-{preview.step.key}-{preview.jurisdiction}-{preview.locale}")
    response = HttpResponse(previews.handout_pdf(preview), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{name}.pdf"'
    return response
