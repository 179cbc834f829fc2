"""Reviewer screens (/review/): thin views that validate a form and call a service.

Server-rendered, CSRF-protected, no inline scripts (CSP `script-src 'self'`). A refused
action re-renders the page with the service's message and a 4xx status; nothing is saved.
"""

from __future__ import annotations

from datetime import datetime
from functools import wraps

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_POST

from content.footnotes import ordered_references
from content.models import EDITABLE_STATES, Brand, ContentModule, ModuleVersion, VersionState
from content.permissions import visible_brands
from content.preview import render_module_html, render_module_text, render_subject

from . import (
    annotations,
    diffs,
    errors,
    export,
    form_2253,
    history_text,
    inspection,
    metrics,
    second_factor,
    selectors,
    services,
    workflow,
)
from .errors import ApprovalError
from .forms import (
    AnnotationForm,
    AnnotationNoteForm,
    ApprovedFilter,
    CommentForm,
    DecisionForm,
    InboxFilterForm,
    WithdrawForm,
)
from .models import Annotation, Comment, Meaning, ReviewRound, Signature
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


INBOX_PAGE_SIZE = 25


def _page(request, rows, param: str):
    """One page of `rows` (Django's Paginator; out-of-range or junk page numbers give the
    nearest page, never a 404)."""
    return Paginator(rows, INBOX_PAGE_SIZE).get_page(request.GET.get(param))


def _query_without(request, *names) -> str:
    """The current query string minus `names` (for paging links that keep the filters)."""
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


@reviewer_screen
@require_GET
def inbox(request):
    """What waits for my role and every review in progress: filters (brand, role, due,
    overdue), search by code or title, sort and paging. Approved content has its own page."""
    now = timezone.now()
    my_roles = roles_of(request.user)
    visible = _visible_brand_ids(request)
    everything = [row for row in selectors.review_queue(now=now)
                  if row.version.module.brand_id in visible]
    mine = selectors.inbox_for(request.user, now=now, queue=everything)
    brands = Brand.objects.filter(pk__in=visible).order_by("name")
    form = InboxFilterForm(request.GET or None, brands=brands)
    filtered_mine = form.apply(mine, now=now)
    filtered_all = form.apply(everything, now=now)
    my_versions = (
        ModuleVersion.objects.filter(state__in=EDITABLE_STATES, created_by=request.user)
        .select_related("module__brand").order_by("-updated_at")[:50]
    )
    return render(request, "review/inbox.html", {
        "my_roles": my_roles, "form": form, "now": now,
        "mine_page": _page(request, filtered_mine, "mine_page"),
        "queue_page": _page(request, filtered_all, "page"),
        "mine_total": len(mine), "queue_total": len(everything),
        "overdue_count": sum(1 for row in everything if row.round.due_at < now),
        "my_versions": my_versions,
        "keep_mine": _query_without(request, "mine_page"),
        "keep_all": _query_without(request, "page"),
        "filtered": bool(form.is_bound and any(form.data.get(k) for k in form.fields)),
    })


@reviewer_screen
@require_GET
def approved(request):
    """Approved versions of the brands I may see: expiry filters (30/60/90 days), brand,
    search, sort, paging."""
    visible = _visible_brand_ids(request)
    brands = Brand.objects.filter(pk__in=visible).order_by("name")
    queryset = (ModuleVersion.objects.filter(state=VersionState.APPROVED,
                                             module__brand_id__in=visible)
                .select_related("module__brand").order_by("expires_at", "module__code"))
    filterset = ApprovedFilter(request.GET or None, queryset=queryset, brands=brands)
    rows = filterset.qs if filterset.is_valid() else queryset
    return render(request, "review/approved.html", {
        "filter": filterset, "page": _page(request, rows, "page"), "now": timezone.now(),
        "keep": _query_without(request, "page"),
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


def _annotation_targets(version) -> list[tuple[str, str]]:
    """What besides a text quote an annotation may be about: the version's references,
    tags, companions, exclusions and image (values `AnnotationForm.kind_and_anchor` reads)."""
    targets = [(f"reference:{r.pk}", f"Reference {r.code}") for r in version.citations.all()]
    for field, kind in (("audiences", "audience"), ("specialties", "specialty"),
                        ("stages", "stage"), ("jurisdictions", "jurisdiction"),
                        ("channels", "channel")):
        targets += [(f"tag:{kind}:{t.code}", f"Tag {kind}: {t.code}")
                    for t in getattr(version, field).all()]
    targets += [(f"companion:{m.code}", f"Companion {m.code}") for m in version.requires.all()]
    targets += [(f"companion:{m.code}", f"Exclusion {m.code}") for m in version.excludes.all()]
    if version.asset_id:
        targets.append(("image", "The image"))
    return targets


def _annotation_rows(request, version, rounds) -> list[dict]:
    user = request.user
    labels = {r.number: workflow.round_label(version.number, r.number) for r in rounds}
    references = {r.pk: r for r in version.citations.all()}
    rows = []
    # Who may resolve / reopen depends on the annotation's role and the version, not on the
    # annotation itself: ask the service once per role (no query per annotation).
    resolvable, reopenable = {}, {}
    for a in annotations.annotations_for(version):
        if a.is_open and a.role not in resolvable:
            resolvable[a.role] = annotations.may_resolve(user, a, version=version)
        if not a.is_open and a.role not in reopenable:
            reopenable[a.role] = annotations.may_reopen(user, a, version=version)
        anchor = a.anchor or {}
        target = {
            Annotation.Kind.TEXT: anchor.get("exact", ""),
            Annotation.Kind.REFERENCE: (lambda r: f"{r.code}: {r.citation}" if r else
                                        f"reference #{anchor.get('reference_id')}")(
                references.get(anchor.get("reference_id"))),
            Annotation.Kind.TAG: anchor.get("tag", ""),
            Annotation.Kind.COMPANION: anchor.get("module_code", ""),
            Annotation.Kind.IMAGE: "the image",
        }.get(a.kind, "")
        rows.append({
            "a": a, "target": target, "round_label": labels.get(a.round, f"round {a.round}"),
            "earlier_round": bool(rounds) and a.round != rounds[-1].number,
            "may_resolve": a.is_open and resolvable[a.role],
            "may_reopen": (not a.is_open) and reopenable[a.role],
        })
    return rows


def _admin_links(request, version) -> dict:
    """The module and version pages in the admin, for staff."""
    if not request.user.is_staff:
        return {}
    try:
        return {"admin_version_url": reverse("admin:content_moduleversion_change",
                                             args=[version.pk]),
                "admin_module_url": reverse("admin:content_contentmodule_change",
                                            args=[version.module_id])}
    except NoReverseMatch:
        return {}


def _journeys_using(module) -> list[dict]:
    """Journeys whose fixed slots bind this module (read through the reverse relation
    `slots`, so approvals does not import journeys, which sits a floor above)."""
    related = getattr(module, "slots", None)
    if related is None:
        return []
    seen, result = set(), []
    for slug, name in related.values_list("step__journey__slug", "step__journey__name") \
            .order_by("step__journey__name"):
        if slug in seen:
            continue
        seen.add(slug)
        try:
            url = reverse("journeys:map", args=[slug])
        except NoReverseMatch:
            url = ""
        result.append({"slug": slug, "name": name, "url": url})
    return result


def _page_context(request, version, *, decision_form=None, withdraw_form=None,
                  comment_form=None, annotation_form=None, error=None) -> dict:
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
                                     initial={"expected_sha256": version.sha256})
    if withdraw_form is None and version.state == VersionState.APPROVED and held:
        withdraw_form = WithdrawForm(roles=held, needs_username=username_needed)
    # No signing form before this session passed the second factor: a link to it instead.
    second_factor_needed = ((decision_form is not None or withdraw_form is not None)
                            and not second_factor.may_sign(request))
    if second_factor_needed:
        decision_form = withdraw_form = None
    review_diffs = diffs.for_review(version)
    annotation_roles = annotations.annotatable_roles(user, version)
    if annotation_form is None and annotation_roles:
        annotation_form = AnnotationForm(targets=_annotation_targets(version),
                                         roles=annotation_roles)
    annotation_rows = _annotation_rows(request, version, rounds)
    # The signing panel: what blocks each role this person may decide from approving.
    blocking = {role: annotations.open_annotations_for_role(version, role)
                for role in (decidable or [])}
    return {
        "version": version, "module": version.module, "rounds": rounds,
        "current_round": current_round, "signatures": signatures, "pending_roles": pending,
        "decision_form": decision_form, "withdraw_form": withdraw_form,
        "comment_form": comment_form or CommentForm(),
        "comments": Comment.objects.filter(version=version).select_related("author"),
        "diffs": review_diffs, "error": error,
        "round_label": workflow.round_label(version.number,
                                            current_round.number if current_round else None),
        "annotation_form": annotation_form, "annotation_roles": annotation_roles,
        "annotation_rows": annotation_rows,
        "open_annotation_count": sum(1 for r in annotation_rows if r["a"].is_open),
        "blocking_annotations": {role: rows for role, rows in blocking.items() if rows},
        "journeys": _journeys_using(version.module), **_admin_links(request, version),
        "subject": render_subject(version), "plain_text": render_module_text(version),
        # Sanitised at save (nh3) and tokens escaped: shown inline so text can be selected.
        "rendered_body": render_module_html(version),
        "companions": _related_state(version.requires.all()),
        # Numbered as the body's superscripts (content.footnotes), not in database order.
        "numbered_references": ordered_references(version),
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
@require_POST
def annotate(request, version_id: int):
    version = _version_for_review(request, version_id)
    form = AnnotationForm(request.POST, targets=_annotation_targets(version),
                          roles=REQUIRED_ROLES)
    if not form.is_valid():
        refusal = ApprovalError(errors.COMMENT_REQUIRED if "body" in form.errors
                                else errors.INVALID_ANCHOR,
                                "Check the annotation: " + "; ".join(
                                    f"{form.fields[n].label or n}: {' '.join(e)}"
                                    for n, e in form.errors.items()))
        return _refused(request, version, refusal, annotation_form=_fresh_annotation_form(
            version, request.user, form.data))
    kind, anchor = form.kind_and_anchor()
    try:
        annotation = annotations.create_annotation(
            version=version, actor=request.user, kind=kind, anchor=anchor,
            body=form.cleaned_data["body"], role=form.cleaned_data["role"] or None)
    except ApprovalError as refusal:
        return _refused(request, version, refusal, annotation_form=_fresh_annotation_form(
            version, request.user, form.data))
    messages.success(request, f"Annotation saved for {annotation.get_role_display()}.")
    return redirect(reverse("approvals:review", args=[version.pk]) + f"#annotation-{annotation.pk}")


def _fresh_annotation_form(version, user, data):
    roles = annotations.annotatable_roles(user, version)
    return AnnotationForm(data, targets=_annotation_targets(version), roles=roles or REQUIRED_ROLES)


def _annotation_of(request, version_id: int, annotation_id: int):
    version = _version_for_review(request, version_id)
    annotation = get_object_or_404(Annotation, pk=annotation_id, version=version)
    return version, annotation


@reviewer_screen
@require_POST
def resolve_annotation(request, version_id: int, annotation_id: int):
    version, annotation = _annotation_of(request, version_id, annotation_id)
    form = AnnotationNoteForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    try:
        annotations.resolve_annotation(annotation=annotation, actor=request.user, note=note)
    except ApprovalError as refusal:
        return _refused(request, version, refusal)
    messages.success(request, "Annotation resolved.")
    return redirect(reverse("approvals:review", args=[version.pk]) + f"#annotation-{annotation.pk}")


@reviewer_screen
@require_POST
def reopen_annotation(request, version_id: int, annotation_id: int):
    version, annotation = _annotation_of(request, version_id, annotation_id)
    form = AnnotationNoteForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    try:
        annotations.reopen_annotation(annotation=annotation, actor=request.user, note=note)
    except ApprovalError as refusal:
        return _refused(request, version, refusal)
    messages.success(request, "Annotation reopened.")
    return redirect(reverse("approvals:review", args=[version.pk]) + f"#annotation-{annotation.pk}")


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


def _readable_history(data: dict) -> dict:
    """The export's history with readable times (`*_when`) and a sentence per audit entry."""
    when = history_text.readable_time
    for v in data["versions"]:
        v["created_when"], v["approved_when"] = when(v["created_at"]), when(v["approved_at"])
        v["expires_when"] = when(v["expires_at"])
        v["state_label"] = VersionState(v["state"]).label
        for r in v["review_rounds"]:
            r["label"] = workflow.round_label(v["number"], r["number"])
            r["outcome_label"] = ReviewRound.Outcome(r["outcome"]).label.lower()
            r["submitted_when"], r["due_when"] = when(r["submitted_at"]), when(r["due_at"])
    for s in data["signatures"]:
        s["signed_when"] = when(s["signed_at"])
        s["label"] = workflow.round_label(s["version"], s["round"])
        s["sentence"] = history_text.signature_sentence(
            printed_name=s["printed_name"], role=s["role"], meaning=s["meaning"],
            version=s["version"], round_number=s["round"])
    for c in data["comments"]:
        c["created_when"] = when(c["created_at"])
    for a in data.get("annotations", []):
        a["created_when"], a["resolved_when"] = when(a["created_at"]), when(a["resolved_at"])
        a["label"] = workflow.round_label(a["version"], a["round"])
    for e in data["audit_entries"]:
        e["created_when"] = when(e["created_at"])
    for h in data["field_history"]:
        h["when"] = when(h["history_date"])
        h["changes"] = {name: [when(v) if isinstance(v, datetime) else v for v in pair]
                        for name, pair in h["changes"].items()}
        h["who"] = history_text.person(h["history_user"]) if h["history_user"] else "The system"
    return data


@reviewer_screen
@require_GET
def history(request, code: str):
    module = get_object_or_404(ContentModule.objects.select_related("brand", "owner"), code=code)
    _require_visible(request, module.brand_id)
    data = _readable_history(export.module_history(module))
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
