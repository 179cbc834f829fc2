"""Admin: channel tokens (key shown once, revoke action), batch jobs, the delivery log,
webhooks with their attempt log, and where-used / unused approved modules."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.html import format_html, format_html_join

from cms.api.parsers import GuardedJSONFormField
from content.models import Channel, Jurisdiction

from . import usage
from .models import (
    AssemblyJob,
    ChannelToken,
    Delivery,
    ModuleUsage,
    UnusedApprovedVersion,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from .tokens import create_token, revoke_token, valid_rate


class ChannelTokenForm(forms.ModelForm):
    class Meta:
        model = ChannelToken
        fields = ["name", "rate_limit"]

    def clean_rate_limit(self):
        rate = (self.cleaned_data.get("rate_limit") or "").strip()
        if rate and not valid_rate(rate):
            raise forms.ValidationError("Write the rate as <number>/<s|min|hour|day>, e.g. 600/min.")
        return rate


class ChannelTokenAddForm(ChannelTokenForm):
    channels = forms.ModelMultipleChoiceField(queryset=Channel.objects.all())
    jurisdictions = forms.ModelMultipleChoiceField(queryset=Jurisdiction.objects.all())

    class Meta(ChannelTokenForm.Meta):
        fields = ["name", "channels", "jurisdictions", "rate_limit"]


@admin.register(ChannelToken)
class ChannelTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "key_prefix", "scope", "created_at", "revoked_at"]
    list_filter = ["revoked_at", "channels", "jurisdictions"]
    search_fields = ["name", "key_prefix"]
    actions = ["revoke_selected"]
    form = ChannelTokenForm
    readonly_fields = ["key_prefix", "created_by", "created_at", "revoked_at", "revoked_by"]
    filter_horizontal = ["channels", "jurisdictions"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("channels", "jurisdictions")

    @admin.display(description="Scope")
    def scope(self, obj):
        return (", ".join(c.code for c in obj.channels.all()) + " / "
                + ", ".join(j.code for j in obj.jurisdictions.all()))

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ChannelTokenAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "channels", "jurisdictions", "rate_limit"]
        return ["name", "key_prefix", "channels", "jurisdictions", "rate_limit",
                "created_by", "created_at", "revoked_at", "revoked_by"]

    def get_readonly_fields(self, request, obj=None):
        # A token's scope is fixed at creation (audited); to change it, create a new token.
        if obj is None:
            return []
        return [*self.readonly_fields, "channels", "jurisdictions"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        try:
            token, key = create_token(
                name=form.cleaned_data["name"],
                channels=[c.code for c in form.cleaned_data["channels"]],
                jurisdictions=[j.code for j in form.cleaned_data["jurisdictions"]],
                rate_limit=form.cleaned_data.get("rate_limit", ""),
                actor=request.user,
            )
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages)
        obj.pk = token.pk
        obj.__dict__.update({k: v for k, v in token.__dict__.items() if not k.startswith("_")})
        messages.warning(request, format_html(
            "Token created. Copy the key now; it is not stored and will not be shown again: "
            "<code>{}</code>", key))

    def save_related(self, request, form, formsets, change):
        if change:
            super().save_related(request, form, formsets, change)
        # On add, create_token already set the scope.

    def has_delete_permission(self, request, obj=None):
        return False  # tokens are revoked, never deleted (the delivery log points at them)

    @admin.action(description="Revoke selected tokens")
    def revoke_selected(self, request, queryset):
        revoked = sum(revoke_token(token, actor=request.user) for token in queryset)
        messages.success(request, f"Revoked {revoked} token(s).")


@admin.register(AssemblyJob)
class AssemblyJobAdmin(admin.ModelAdmin):
    list_display = ["id", "journey_slug", "step_key", "channel", "jurisdiction", "status",
                    "total", "created_at", "finished_at", "purged_at"]
    list_filter = ["status", "channel"]
    # Recipients are personal data: never shown in the admin.
    exclude = ["recipients"]
    readonly_fields = [f for f in ("token", "user", "owner_key", "idempotency_key", "journey_slug",
                                   "step_key", "channel", "jurisdiction", "locale", "status",
                                   "total", "chunk_size", "input_errors", "created_at",
                                   "finished_at", "results_fetched_at", "purged_at")]

    def has_add_permission(self, request):
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["served_at", "journey_slug", "step_key", "channel", "jurisdiction", "token",
                    "output_sha256"]
    list_filter = ["channel", "jurisdiction", "journey_slug"]
    search_fields = ["output_sha256", "recipient_pseudonym", "journey_slug"]
    date_hierarchy = "served_at"
    list_select_related = ["token"]
    readonly_fields = ["served_at", "channel", "jurisdiction", "locale", "journey_slug",
                       "step_key", "token", "user", "job", "recipient_pseudonym", "layout",
                       "output_sha256", "manifest"]
    exclude = ["versions"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["number", "at", "status_code", "error"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "event", "subscription", "status", "attempts",
                    "last_status_code", "delivered_at"]
    list_filter = ["status", "event"]
    readonly_fields = ["subscription", "event", "event_id", "payload", "status", "attempts",
                       "last_status_code", "created_at", "delivered_at"]
    inlines = [WebhookAttemptInline]
    list_select_related = ["subscription"]

    def has_add_permission(self, request):
        return False


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    formfield_overrides = {models.JSONField: {"form_class": GuardedJSONFormField}}
    list_display = ["url", "token", "events", "active", "created_at"]
    list_filter = ["active"]
    readonly_fields = ["created_at"]
    list_select_related = ["token"]


def _usage_html(version):
    data = usage.usage(version)
    steps = format_html_join(
        "", "<li>{} / {} ({}, {})</li>",
        ((s["journey"], s["step"], s["channel"], s["binding"]) for s in data["steps"]),
    ) or "—"
    counts = format_html_join(
        "", "<li>{} / {}: {}</li>",
        ((c["channel"], c["jurisdiction"], c["deliveries"]) for c in data["deliveries"]),
    ) or "—"
    return format_html("<p>Steps:</p><ul>{}</ul><p>Deliveries ({} in all):</p><ul>{}</ul>",
                       steps, data["total_deliveries"], counts)


@admin.register(ModuleUsage)
class ModuleUsageAdmin(admin.ModelAdmin):
    """Where-used: per module version, the steps that use it and the deliveries it was in."""

    list_display = ["__str__", "state", "approved_at", "expires_at"]
    list_filter = ["state", "module__brand"]
    search_fields = ["module__code", "module__title"]
    list_select_related = ["module"]
    fields = ["state", "where_used"]
    readonly_fields = ["state", "where_used"]

    @admin.display(description="Where used")
    def where_used(self, obj):
        return _usage_html(obj)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return request.method in {"GET", "HEAD"} and super().has_view_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(UnusedApprovedVersion)
class UnusedApprovedVersionAdmin(ModuleUsageAdmin):
    """Approved versions no journey binds and nothing delivered: candidates not to re-certify."""

    list_display = ["__str__", "approved_at", "expires_at"]
    list_filter = ["module__brand"]

    def get_queryset(self, request):
        return usage.unused_approved_versions(super().get_queryset(request))
