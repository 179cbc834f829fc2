"""The review side of the author's version page in the admin (content's ModuleVersionAdmin).

Content is the lower floor and cannot ask the workflow, so this module registers, at
start-up (`ApprovalsConfig.ready`), a panel that shows the consolidated feedback (every
role's change requests, open and resolved annotations, who is still to decide) and the
recall form, and the recall view under the version's admin URL. Thin: the rules are
`services.may_recall` / `services.recall`; signing is the same re-authentication and
second factor as on the review pages.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse

from content.admin import register_version_page_url, register_version_panel
from content.models import ModuleVersion

from . import second_factor, services
from .errors import CREDENTIALS_REQUIRED, ApprovalError
from .models import Comment
from .rounds import feedback_for_author, round_status
from .signing import Credentials, needs_username

PANEL_TEMPLATE = "admin/content/moduleversion/_review_feedback.html"


class RecallForm(forms.Form):
    """What a recall signature asks: the reason (optional), the user id when the session
    has not signed recently, and the password."""

    reason = forms.CharField(required=False, max_length=services.RECALL_REASON_MAX_LENGTH,
                             widget=forms.Textarea(attrs={"rows": 2}))
    username = forms.CharField(required=False)
    password = forms.CharField(widget=forms.PasswordInput)

    def __init__(self, *args, needs_username: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.needs_username = needs_username
        self.fields["username"].required = needs_username


def review_panel(request, version: ModuleVersion) -> dict | None:
    """Feedback and recall for the version page (reads only)."""
    if version.pk is None:
        return None
    feedback = feedback_for_author(version)
    status = round_status(version)
    can_recall = services.may_recall(request.user, version)
    comments = list(Comment.objects.filter(version=version).select_related("author")
                    .order_by("created_at", "pk"))
    if status.round is None and not (feedback.annotations or comments):
        return None  # never submitted, nothing said: no panel
    return {
        "template": PANEL_TEMPLATE,
        "feedback": feedback,
        "comments": comments,
        "status": status,
        "can_recall": can_recall,
        "recall_url": reverse("admin:content_moduleversion_recall", args=[version.pk]),
        "recall_form": RecallForm(needs_username=needs_username(request.session, request.user))
        if can_recall else None,
        "second_factor_url": reverse("approvals:second_factor"),
        "needs_second_factor": can_recall and not second_factor.may_sign(request),
        "review_url": reverse("approvals:review", args=[version.pk]),
    }


def recall_view(request, object_id):
    """POST: the author's signed recall of a submission no reviewer has decided yet."""
    version = (ModuleVersion.objects.restrict(request.user, "view").select_related("module")
               .filter(pk=object_id if str(object_id).isdigit() else None).first())
    if version is None:
        raise Http404("No such version, or not one of your brands.")
    page = reverse("admin:content_moduleversion_change", args=[version.pk])
    if request.method != "POST":
        return HttpResponseRedirect(page)
    if not second_factor.may_sign(request):
        refusal = second_factor.refusal()
        services.record_refusal(refusal, actor=request.user, target=version, event="recall_refused")
        messages.error(request, refusal.message)
        return HttpResponseRedirect(page)
    form = RecallForm(request.POST, needs_username=needs_username(request.session, request.user))
    if not form.is_valid():
        fields = sorted(form.errors)
        refusal = ApprovalError(CREDENTIALS_REQUIRED,
                                "Enter your password" + (" and user id" if form.needs_username else "")
                                + " to sign the recall.")
        services.record_refusal(refusal, actor=request.user, target=version,
                                event="recall_refused", fields=fields)
        messages.error(request, refusal.message)
        return HttpResponseRedirect(page)
    data = form.cleaned_data
    try:
        services.recall(version=version, actor=request.user, reason=data["reason"],
                        credentials=Credentials(password=data["password"],
                                                username=data["username"] or None),
                        session=request.session)
    except ApprovalError as refusal:
        messages.error(request, refusal.message)
        return HttpResponseRedirect(page)
    messages.success(request, f"Signed: you recalled {version}. It is a draft again: edit it and "
                              "submit when ready.")
    return HttpResponseRedirect(page)


def connect() -> None:
    register_version_panel(review_panel)
    register_version_page_url("recall", recall_view, "content_moduleversion_recall")
