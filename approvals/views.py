"""Reviewer screens (/review/): thin views that validate a form and call a service.

Server-rendered, CSRF-protected, no inline scripts (CSP `script-src 'self'`). A refused
action re-renders the page with the service's message and a 4xx status; nothing is saved.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_POST

from content.models import EDITABLE_STATES, ContentModule, ModuleVersion, VersionState
from content.permissions import visible_brands
from content.preview import render_module_html, render_module_text, render_subject

from . import (
    diffs,
    errors,
    export,
    form_2253,
    inspection,
    metrics,
    second_factor,
    selectors,
    services,
)
from .errors import ApprovalError
from .forms import CommentForm, DecisionForm, WithdrawForm
from .models import Comment, Meaning, ReviewRound, Signature
from .roles import REQUIRED_ROLES, roles_of
from .signing import Credentials, needs_username
from .workflow import decidable_roles

PREVIEW_WIDTHS = {"email": 600, "portal": 1024}
PREVIEW_CSP = ("default-src 'none'; img-src 'self' data: https:; style-src 'unsafe-inline'; "
               "frame-ancestors 'self'; base-uri 'none'; form-action 'none'")


class ReviewLoginView(auth_views.LoginView):
    template_name = "review/login.html"
    redirect_authenticated_user = True


class ReviewLogoutView(auth_views.LogoutView):
    next_page = "approvals:login"


def may_view(user) -> bool:
    """Reviewers and authors (who submit from here) see the reviewer screens; what each
    sees inside follows `content.permissions.visible_brands` (authors: their brands)."""
    return bool(user.is_active and (user.is_superuser or roles_of(user)
                                    or visible_brands(user).exists()))


def _visible_brand_ids(request) -> set[int]:
    cached = getattr(request, "_tessera_visible_brand_ids", None)
    if cached is None:
        cached = set(visible_brands(request.user).values_list("pk", flat=True))
        request._tessera_visible_brand_ids = cached
    return cached


def _require_visible(request, brand_id: int) -> None:
    # 404, not 403: an author of another brand learns nothing about this content.
    if brand_id not in _visible_brand_ids(request):
        raise Http404("No such version")


def reviewer_screen(view):
    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not may_view(request.user):
            raise PermissionDenied("The reviewer screens are for MLR reviewers and authors.")
        return view(request, *args, **kwargs)

    return wrapped


@reviewer_screen
@require_GET
def inbox(request):
    my_roles = roles_of(request.user)
    everything = selectors.review_queue()
    mine = selectors.inbox_for(request.user, queue=everything)
    visible = _visible_brand_ids(request)
    queue = [row for row in everything if row.version.module.brand_id in visible]
    my_versions = (
        ModuleVersion.objects.filter(state__in=EDITABLE_STATES)
        .filter(created_by=request.user).select_related("module__brand").order_by("-updated_at")[:50]
    )
    approved = (ModuleVersion.objects.filter(state=VersionState.APPROVED)
                .select_related("module__brand").order_by("expires_at")[:50]) if my_roles else []
    return render(request, "review/inbox.html", {
        "my_roles": my_roles, "mine": mine, "queue": queue, "my_versions": my_versions,
        "approved": approved, "now": timezone.now(),
    })


def _version_for_review(request, version_id: int) -> ModuleVersion:
    version = get_object_or_404(
        ModuleVersion.objects.select_related("module__brand", "module__owner", "locale",
                                             "created_by", "asset")
        .prefetch_related("audiences", "specialties", "stages__audience", "jurisdictions",
                          "channels", "citations",
                          Prefetch("requires", queryset=ContentModule.objects.order_by("code")),
                          Prefetch("excludes", queryset=ContentModule.objects.order_by("code"))),
        pk=version_id,
    )
    _require_visible(request, version.module.brand_id)
    return version


def _related_state(modules) -> list[dict]:
    """Companion / excluded modules with their newest approved version (one query)."""
    modules = list(modules)
    approved = {}
    for v in ModuleVersion.objects.filter(module__in=modules, state=VersionState.APPROVED).order_by("number"):
        approved[v.module_id] = v
    return [{"module": m, "approved": approved.get(m.pk)} for m in modules]


def _page_context(request, version, *, decision_form=None, withdraw_form=None,
                  comment_form=None, error=None) -> dict:
    user = request.user
    rounds = list(ReviewRound.objects.filter(version=version).select_related("submitted_by"))
    current_round = rounds[-1] if rounds else None
    signatures = list(Signature.objects.filter(version=version).select_related("signer"))
    held = roles_of(user)
    pending, decidable, barred = [], [], None
    if version.state == VersionState.IN_REVIEW and current_round:
        decided = {s.role for s in signatures if s.round == current_round.number
                   and s.meaning in (Meaning.APPROVE, Meaning.REQUEST_CHANGES)}
        pending = [r for r in REQUIRED_ROLES if r not in decided]
        # Segregation of duties: no form for a decision the service would refuse; say why.
        decidable, barred = decidable_roles(
            actor_id=user.pk, actor_roles=held, pending_roles=pending,
            author_ids=selectors.author_ids_for_versions([version])[version.pk],
            version_decisions=selectors.decisions_for_versions([version.pk])[version.pk])
    username_needed = needs_username(request.session, user)
    if decision_form is None and decidable:
        decision_form = DecisionForm(roles=decidable, needs_username=username_needed,
                                     initial={"expected_sha256": version.sha256,
                                              "decision": Meaning.APPROVE})
    if withdraw_form is None and version.state == VersionState.APPROVED and held:
        withdraw_form = WithdrawForm(roles=held, needs_username=username_needed)
    # No signing form before this session passed the second factor: a link to it instead.
    second_factor_needed = ((decision_form is not None or withdraw_form is not None)
                            and not second_factor.may_sign(request))
    if second_factor_needed:
        decision_form = withdraw_form = None
    review_diffs = diffs.for_review(version)
    return {
        "version": version, "module": version.module, "rounds": rounds,
        "current_round": current_round, "signatures": signatures, "pending_roles": pending,
        "decision_form": decision_form, "withdraw_form": withdraw_form,
        "comment_form": comment_form or CommentForm(),
        "comments": Comment.objects.filter(version=version).select_related("author"),
        "diffs": review_diffs, "error": error,
        "subject": render_subject(version), "plain_text": render_module_text(version),
        "companions": _related_state(version.requires.all()),
        "exclusions": _related_state(version.excludes.all()),
        "may_submit": version.is_editable and services.may_submit(user, version),
        "username_needed": username_needed, "preview_widths": PREVIEW_WIDTHS,
        "my_roles": held, "barred": barred, "second_factor_needed": second_factor_needed,
        "form_2253": form_2253.review_panel(version, held),
    }


@reviewer_screen
@require_GET
def review(request, version_id: int):
    version = _version_for_review(request, version_id)
    return render(request, "review/review.html", _page_context(request, version))


def _refused(request, version, refusal: ApprovalError, **forms):
    version = _version_for_review(request, version.pk)
    context = _page_context(request, version, error=refusal, **forms)
    return render(request, "review/review.html", context,
                  status=errors.HTTP_STATUS.get(refusal.code, 400))


def _second_factor_refused(request, version, *, event: str):
    """A signing POST from a session that has not passed the second factor: 403, audited."""
    refusal = second_factor.refusal()
    services.record_refusal(refusal, actor=request.user, target=version, event=event)
    return _refused(request, version, refusal)


@reviewer_screen
@require_POST
def decide(request, version_id: int):
    version = _version_for_review(request, version_id)
    if not second_factor.may_sign(request):
        return _second_factor_refused(request, version, event="decision_refused")
    # Any MLR role is accepted by the form: a role the signer lacks is refused (and audited)
    # by the service with its own message.
    form = DecisionForm(request.POST, roles=REQUIRED_ROLES,
                        needs_username=needs_username(request.session, request.user))
    if not form.is_valid():
        refusal = form.refusal()
        services.record_refusal(refusal, actor=request.user, target=version,
                                event="decision_refused", fields=form.fields_at_fault)
        return _refused(request, version, refusal, decision_form=form)
    data = form.cleaned_data
    try:
        result = services.decide(
            version=version, actor=request.user, role=data["role"], decision=data["decision"],
            expected_sha256=data["expected_sha256"], comment=data["comment"],
            credentials=Credentials(password=data["password"], username=data["username"] or None),
            session=request.session,
        )
    except ApprovalError as refusal:
        fresh = DecisionForm(roles=[r for r in REQUIRED_ROLES if r in roles_of(request.user)],
                             needs_username=needs_username(request.session, request.user),
                             initial={"expected_sha256": data["expected_sha256"],
                                      "role": data["role"], "decision": data["decision"],
                                      "comment": data["comment"]})
        return _refused(request, version, refusal, decision_form=fresh)
    verb = "approved" if data["decision"] == Meaning.APPROVE else "requested changes to"
    messages.success(request, f"Signed: you {verb} {version} as {data['role']}."
                     + (" The version is now approved." if result.version.state == VersionState.APPROVED else ""))
    return redirect("approvals:review", version_id=version.pk)


@reviewer_screen
@require_POST
def withdraw(request, version_id: int):
    version = _version_for_review(request, version_id)
    if not second_factor.may_sign(request):
        return _second_factor_refused(request, version, event="withdrawal_refused")
    held = roles_of(request.user)
    form = WithdrawForm(request.POST, roles=REQUIRED_ROLES,
                        needs_username=needs_username(request.session, request.user))
    if not form.is_valid():
        refusal = form.refusal()
        services.record_refusal(refusal, actor=request.user, target=version,
                                event="withdrawal_refused", fields=form.fields_at_fault)
        return _refused(request, version, refusal, withdraw_form=form)
    data = form.cleaned_data
    try:
        services.withdraw(
            version=version, actor=request.user, reason=data["reason"], role=data["role"],
            credentials=Credentials(password=data["password"], username=data["username"] or None),
            session=request.session,
        )
    except ApprovalError as refusal:
        return _refused(request, version, refusal, withdraw_form=WithdrawForm(
            roles=held, needs_username=needs_username(request.session, request.user),
            initial={"role": data["role"], "reason": data["reason"]}))
    messages.success(request, f"Signed: {version} is withdrawn everywhere it was served.")
    return redirect("approvals:review", version_id=version.pk)


@reviewer_screen
@require_POST
def submit(request, version_id: int):
    version = _version_for_review(request, version_id)
    try:
        services.submit_for_review(version=version, actor=request.user)
    except ApprovalError as refusal:
        return _refused(request, version, refusal)
    messages.success(request, f"{version} is submitted for MLR review; the reviewers are notified.")
    return redirect("approvals:review", version_id=version.pk)


@reviewer_screen
@require_POST
def comment(request, version_id: int):
    version = _version_for_review(request, version_id)
    form = CommentForm(request.POST)
    if not form.is_valid():
        refusal = ApprovalError(errors.COMMENT_REQUIRED, "Write the comment (at most 5000 characters).")
        return _refused(request, version, refusal, comment_form=form)
    try:
        services.add_comment(version=version, actor=request.user, body=form.cleaned_data["body"],
                             anchor=form.cleaned_data["anchor"])
    except ApprovalError as refusal:
        return _refused(request, version, refusal, comment_form=form)
    messages.success(request, "Comment saved.")
    return redirect(reverse("approvals:review", args=[version.pk]) + "#comments")


@reviewer_screen
@require_GET
@xframe_options_sameorigin
def preview(request, version_id: int, width: str):
    """The version as the reader sees it, framed by the review page at a channel's width."""
    if width not in PREVIEW_WIDTHS:
        raise Http404("Unknown preview width")
    version = _version_for_review(request, version_id)
    html = render_module_html(version)
    page = (
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Preview</title>"
        "<style>body{margin:0;padding:16px;font-family:Arial,Helvetica,sans-serif;"
        f"max-width:{PREVIEW_WIDTHS[width]}px;color:#222;line-height:1.45}}"
        "img{max-width:100%;height:auto}</style></head>"
        f"<body>{html}</body></html>"
    )
    response = HttpResponse(page)
    response["Content-Security-Policy"] = PREVIEW_CSP
    return response


@reviewer_screen
@require_GET
def history(request, code: str):
    module = get_object_or_404(ContentModule.objects.select_related("brand", "owner"), code=code)
    _require_visible(request, module.brand_id)
    data = export.module_history(module)
    return render(request, "review/history.html", {"module": module, "history": data})


@reviewer_screen
@require_GET
def export_history(request, code: str, fmt: str):
    module = get_object_or_404(ContentModule.objects.select_related("brand", "owner"), code=code)
    _require_visible(request, module.brand_id)
    data = export.module_history(module)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    if fmt == "json":
        response = HttpResponse(export.as_json(data), content_type="application/json")
    else:
        response = HttpResponse(export.as_csv(data), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{module.code}-history-{stamp}.{fmt}"'
    return response


@reviewer_screen
@require_GET
def metrics_dashboard(request):
    visible = _visible_brand_ids(request)
    data = [m for m in metrics.cycle_times() if m.brand_id in visible]
    queue = [row for row in selectors.review_queue() if row.version.module.brand_id in visible]
    return render(request, "review/metrics.html", {
        "metrics": data, "chart": metrics.bar_chart(data),
        "open_reviews": len(queue), "overdue": sum(1 for row in queue if row.overdue),
    })


@reviewer_screen
@require_GET
def inspection_package(request, version_id: int):
    """The version's inspection package (PDF), for reviewers and authors of its brand."""
    version = get_object_or_404(ModuleVersion.objects.restrict(request.user, "view")
                                .select_related("module"), pk=version_id)
    response = HttpResponse(inspection.render_pdf(version), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{inspection.filename(version)}"'
    return response


@reviewer_screen
@require_POST
def record_form_2253(request, version_id: int):
    version = _version_for_review(request, version_id)
    form = form_2253.SubmissionForm(request.POST)
    if not form.is_valid():
        return _refused(request, version, ApprovalError(
            errors.INVALID_FORM, "Give the submission date (YYYY-MM-DD) and its reference "
            f"(at most {form_2253.REFERENCE_MAX} characters)."))
    try:
        form_2253.record_submission(version=version, actor=request.user, **form.cleaned_data)
    except ApprovalError as refusal:
        return _refused(request, version, refusal)
    messages.success(request, f"Form 2253 submission recorded for {version}.")
    return redirect(reverse("approvals:review", args=[version.pk]) + "#form-2253")


@reviewer_screen
@require_GET
def form_2253_due(request):
    """Versions first used in the US whose Form 2253 submission is not recorded yet."""
    return render(request, "review/form_2253.html", {"due": form_2253.due(request.user)})


def csrf_failure(request, reason=""):
    """A POST without a valid CSRF token (a forged form): refused, nothing saved, and for a
    logged-in person recorded as a security event in the audit trail."""
    from . import audit

    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        audit.record("csrf_refused", actor=user, data={"path": request.path[:200],
                                                       "reason": str(reason)[:200]})
    if request.path.startswith("/api/"):
        from django.http import JsonResponse

        return JsonResponse({"errors": [{"code": "csrf_failed", "detail":
                            "CSRF token missing or incorrect: nothing was saved."}]}, status=403)
    return render(request, "review/csrf_failure.html", {"reason": reason}, status=403)
