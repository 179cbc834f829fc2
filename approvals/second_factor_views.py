"""/review/second-factor/: enrol an authenticator app, or pass the second factor for this
session (approvals/second_factor.py states who needs it and what a code proves)."""

from __future__ import annotations

from io import BytesIO

import qrcode
import qrcode.image.svg
from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from . import errors, second_factor
from .views import reviewer_screen


class CodeForm(forms.Form):
    code = forms.CharField(max_length=40, strip=True)
    next = forms.CharField(max_length=500, required=False)


def _next_url(request) -> str:
    """Where to go after verifying: a page of this site only (never an open redirect)."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return candidate
    return reverse("approvals:inbox")


def _qr_svg(url: str) -> str:
    # Generated here from the otpauth URL (no user markup), drawn as SVG paths: no inline
    # style, so the page's CSP holds.
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    out = BytesIO()
    image.save(out)
    return out.getvalue().decode()


def _page(request, *, status=200, error="", recovery_codes=None):
    user = request.user
    enrolled = second_factor.is_enrolled(user)
    context = {
        "enrolled": enrolled, "required": second_factor.required_for(user),
        "verified": enrolled and second_factor.session_verified(request),
        "recovery_codes": recovery_codes, "error": error, "next": _next_url(request),
        "recovery_codes_left": second_factor.recovery_codes_left(user) if enrolled else 0,
    }
    if not enrolled:
        device = second_factor.pending_device(user)
        context["secret"] = _b32_secret(device)
        context["config_url"] = device.config_url
        context["qr_svg"] = _qr_svg(device.config_url)
    return render(request, "review/second_factor.html", context, status=status)


def _b32_secret(device) -> str:
    from base64 import b32encode

    secret = b32encode(device.bin_key).decode()
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


@reviewer_screen
@require_http_methods(["GET", "POST"])
def second_factor_page(request):
    if request.method == "GET":
        return _page(request)
    if request.POST.get("action") == "recovery_codes":
        if not second_factor.session_verified(request):
            return _page(request, status=errors.HTTP_STATUS[errors.SECOND_FACTOR_REQUIRED],
                         error="Enter a code first: new recovery codes need a verified session.")
        return _page(request, recovery_codes=second_factor.new_recovery_codes(request))
    form = CodeForm(request.POST)
    if not form.is_valid():
        return _page(request, status=400, error="Enter the code (at most 40 characters).")
    code = form.cleaned_data["code"]
    if not second_factor.is_enrolled(request.user):
        codes = second_factor.confirm_enrolment(request, code)
        if codes is None:
            return _page(request, status=400, error="That code does not match: check the "
                         "time on your phone and enter the code the app shows now.")
        return _page(request, recovery_codes=codes)
    if not second_factor.verify(request, code):
        return _page(request, status=400, error="Wrong or already used code (after several "
                     "wrong codes, wait a little before the next try).")
    messages.success(request, "Second factor accepted: you can sign in this session.")
    return redirect(_next_url(request))
