"""Admin for the review records: read-only for signatures and the audit trail (they are
append-only), an unlock action for signing, and the inspector export by module code.

Users get no delete permission here: they are deactivated, never deleted.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import path
from simple_history.admin import SimpleHistoryAdmin

from content.models import ContentModule, ModuleVersion

from . import export
from .models import (
    Annotation,
    AuditEntry,
    Comment,
    FirstUse,
    Form2253Submission,
    ReviewPolicy,
    ReviewRound,
    Signature,
    SigningState,
)
from .signing import unlock_signing


class ReadOnly:
    """Records the workflow writes; nobody adds, changes or deletes them by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(ReadOnly, SimpleHistoryAdmin):
    """Read-only, with the history page of a model that keeps one."""


class ReadOnlyAppendOnlyAdmin(ReadOnly, admin.ModelAdmin):
    """Read-only for append-only models without history (rows never change: nothing to show)."""


class ExportForm(forms.Form):
    module = forms.ModelChoiceField(queryset=ContentModule.objects.none(),
                                    to_field_name="code", label="Module")
    format = forms.ChoiceField(choices=[("csv", "CSV"), ("json", "JSON")])

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        # Only modules the person may see: an author of one brand exports only its history.
        self.fields["module"].queryset = ContentModule.objects.restrict(user).order_by("code")


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("seq", "created_at", "event", "actor_name", "target_repr", "module_code")
    list_filter = ("event",)
    search_fields = ("module_code", "actor_name", "target_repr", "event")
    ordering = ("-seq",)
    change_list_template = "approvals/auditentry_changelist.html"

    def get_urls(self):
        return [path("export/", self.admin_site.admin_view(self.export_view),
                     name="approvals_auditentry_export")] + super().get_urls()

    def export_view(self, request):
        """The inspector's export of one module's full history, from the admin."""
        form = ExportForm(request.GET or None, user=request.user)
        if form.is_valid():
            module = form.cleaned_data["module"]
            data = export.module_history(module)
            if form.cleaned_data["format"] == "json":
                response = HttpResponse(export.as_json(data), content_type="application/json")
            else:
                response = HttpResponse(export.as_csv(data), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = (
                f'attachment; filename="{module.code}-history.{form.cleaned_data["format"]}"')
            return response
        return render(request, "approvals/export.html", {
            **self.admin_site.each_context(request), "form": form,
            "title": "Export a module's history", "opts": self.model._meta,
        })


@admin.register(Signature)
class SignatureAdmin(ReadOnlyAdmin):
    list_display = ("version", "round", "role", "meaning", "printed_name", "signed_at")
    list_filter = ("role", "meaning")
    search_fields = ("printed_name", "version__module__code", "sha256")
    list_select_related = ("version__module",)


@admin.register(ReviewRound)
class ReviewRoundAdmin(ReadOnlyAdmin):
    list_display = ("version", "number", "submitted_by", "submitted_at", "due_at", "outcome")
    list_filter = ("outcome",)
    list_select_related = ("version__module", "submitted_by")


@admin.register(Comment)
class CommentAdmin(ReadOnlyAdmin):
    list_display = ("version", "anchor", "author", "created_at")
    list_select_related = ("version__module", "author")


@admin.register(Annotation)
class AnnotationAdmin(ReadOnlyAdmin):
    """Written by approvals.annotations only (audited); read here."""

    list_display = ("version", "round", "role", "kind", "state", "anchor_changed", "author",
                    "created_at")
    list_filter = ("state", "role", "kind")
    list_select_related = ("version__module", "author")


@admin.register(ReviewPolicy)
class ReviewPolicyAdmin(SimpleHistoryAdmin):
    """A brand's review clock: due date, reminder, escalation (approvals.review_policy)."""

    list_display = ("brand", "due_days", "reminder_days", "escalation_days", "escalate_to")
    list_select_related = ("brand",)


@admin.register(SigningState)
class SigningStateAdmin(ReadOnlyAdmin):
    list_display = ("user", "consecutive_failures", "locked_at", "last_failure_at")
    list_filter = (("locked_at", admin.EmptyFieldListFilter),)
    actions = ["unlock"]

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser  # the action needs it; no field is editable

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    @admin.action(description="Unlock signing for the selected users", permissions=["change"])
    def unlock(self, request, queryset):
        for state in queryset.select_related("user"):
            unlock_signing(user=state.user, actor=request.user)
        messages.success(request, f"Signing unlocked for {queryset.count()} user(s).")


@admin.register(FirstUse)
class FirstUseAdmin(ReadOnlyAppendOnlyAdmin):
    list_display = ("version", "jurisdiction", "first_used_at")
    list_filter = ("jurisdiction",)
    list_select_related = ("version__module",)


@admin.register(Form2253Submission)
class Form2253SubmissionAdmin(ReadOnlyAppendOnlyAdmin):
    list_display = ("version", "submitted_on", "reference", "recorded_by", "recorded_at")
    search_fields = ("reference", "version__module__code")
    list_select_related = ("version__module", "recorded_by")


# The version change page links the version's inspection package. Content is the lower
# floor and cannot name the approvals URL, so the link is added from here: a template that
# extends content's change form (content's admin is registered first, INSTALLED_APPS order).
try:
    admin.site.get_model_admin(ModuleVersion).change_form_template = (
        "approvals/moduleversion_change_form.html")
except admin.exceptions.NotRegistered:  # content's admin not installed: nothing to link from
    pass


User = get_user_model()


class DeactivateOnlyUserAdmin(UserAdmin):
    """Users are deactivated (clear "active"), never deleted: history keeps their names."""

    def has_delete_permission(self, request, obj=None):
        return False


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, DeactivateOnlyUserAdmin)
