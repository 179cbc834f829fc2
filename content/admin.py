"""The author admin: brand-scoped lists and forms, versions, preview, history, assets.

Who sees which row is decided once, by `<Model>.objects.restrict(user, action)` (content.permissions);
the admin only asks it. Object-level checks repeat the rule for pages that load rows by id
(change, delete, history), so a brand-B page answers 404/403 to a brand-A author.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import RelatedOnlyFieldListFilter
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import OuterRef, Subquery
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from guardian.admin import GuardedModelAdminMixin
from simple_history.admin import SimpleHistoryAdmin

from . import forms
from .assets import store_asset
from .models import (
    EDITABLE_STATES,
    Asset,
    Audience,
    Brand,
    Channel,
    ContentModule,
    Jurisdiction,
    Locale,
    MarketRule,
    ModuleVersion,
    Reference,
    Specialty,
    Stage,
)
from .permissions import can_author_brand
from .preview import SAMPLE_RECIPIENT, render_module_html, render_module_text, render_subject
from .rules import review_readiness_errors, sanitise_html
from .versioning import new_version

PREVIEW_WIDTHS = (("Email", 600), ("Portal", 960))

admin.site.site_header = "Tessera"
admin.site.site_title = "Tessera admin"
admin.site.index_title = "Content library, reviews and journeys"


def _brand_of(obj):
    """The Brand an admin row belongs to (the object itself for a Brand)."""
    if obj is None:
        return None
    if isinstance(obj, Brand):
        return obj
    if isinstance(obj, ModuleVersion):
        return obj.module.brand
    return obj.brand


class BrandScopedAdmin(SimpleHistoryAdmin):
    """Rows of brands the user may see; changes only on brands the user authors."""

    def get_queryset(self, request):
        return super().get_queryset(request).restrict(request.user, "view")

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            # Another brand's row (or none at all): the same answer either way.
            raise Http404("No such object, or not one of your brands.")
        return obj

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"user": request.user})

    def has_view_permission(self, request, obj=None):
        if not super().has_view_permission(request, obj):
            return False
        if obj is None:
            return True
        return type(obj).objects.restrict(request.user, "view").filter(pk=obj.pk).exists()

    def has_change_permission(self, request, obj=None):
        if not super().has_change_permission(request, obj):
            return False
        return obj is None or can_author_brand(request.user, _brand_of(obj))

    def has_add_permission(self, request):
        if not super().has_add_permission(request):
            return False
        # Asked several times per page; the answer cannot change within one request.
        if not hasattr(request, "_tessera_authors_any_brand"):
            request._tessera_authors_any_brand = (
                request.user.is_superuser or forms.authored_brands(request.user).exists())
        return request._tessera_authors_any_brand

    def has_delete_permission(self, request, obj=None):
        if not super().has_delete_permission(request, obj):
            return False
        return obj is None or can_author_brand(request.user, _brand_of(obj))


# --- Modules and versions -----------------------------------------------------------------


def _preview_link(version) -> str:
    url = reverse("admin:content_moduleversion_preview", args=[version.pk])
    return format_html('<a href="{}">Preview</a>', url)


class VersionInline(admin.TabularInline):
    model = ModuleVersion
    form = forms.VersionInlineForm
    fields = ["number", "state", "locale", "subject", "body_html", "links"]
    readonly_fields = ["number", "state", "links"]
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "versions (read-only once submitted; tags and references on each version's page)"

    def has_add_permission(self, request, obj=None):
        return False  # versions start on the version page or with the "New version" action

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("locale", "module").order_by("-number")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "locale":
            # Evaluate the few locales once for all rows instead of once per row.
            field.choices = list(field.choices)
        return field

    @admin.display(description="")
    def links(self, version):
        if not version.pk:
            return ""
        return _preview_link(version)


class StageListFilter(admin.RelatedFieldListFilter):
    """Stages are named after their audience: load both in one query."""

    def field_choices(self, field, request, model_admin):
        return [(stage.pk, str(stage)) for stage in Stage.objects.select_related("audience")]


def latest_state_subquery():
    return Subquery(ModuleVersion.objects.filter(module=OuterRef("pk"))
                    .order_by("-number").values("state")[:1])


@admin.action(description="New version (copy the latest approved/expired/withdrawn one into a draft)")
def make_new_version(modeladmin, request, queryset):
    modules = queryset if queryset.model is ContentModule else ContentModule.objects.filter(
        pk__in=queryset.values("module_id"))
    for module in modules.select_related("brand"):
        if not can_author_brand(request.user, module.brand):
            messages.error(request, f"{module.code}: you do not author {module.brand}.")
            continue
        try:
            draft = new_version(module, author=request.user)
        except ValidationError as exc:
            messages.error(request, f"{module.code}: {' '.join(exc.messages)}")
            continue
        url = reverse("admin:content_moduleversion_change", args=[draft.pk])
        messages.success(request, format_html('{}: draft <a href="{}">{}</a> created.',
                                              module.code, url, draft))


def _sanitise_message(request, version, report) -> None:
    if report is not None and report.changed:
        messages.warning(request, f"{version}: {report.message()}")


def _readiness_message(request, version) -> None:
    problems = review_readiness_errors(version)
    if problems:
        messages.warning(request, f"{version} is saved as a draft but cannot go to review yet: "
                                  + " ".join(problems))


@admin.register(ContentModule)
class ContentModuleAdmin(BrandScopedAdmin):
    form = forms.ContentModuleForm
    list_display = ["code", "title", "brand", "kind", "purpose", "latest_state"]
    list_select_related = ["brand"]
    list_filter = [
        ("brand", RelatedOnlyFieldListFilter), "kind", "purpose", "versions__state",
        "versions__audiences", ("versions__stages", StageListFilter), "versions__jurisdictions",
        "versions__channels", "versions__locale",
    ]
    search_fields = ["code", "title", "versions__subject", "versions__body_text"]
    inlines = [VersionInline]
    actions = [make_new_version]
    readonly_fields = ["owner", "created_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(latest_state_value=latest_state_subquery())

    @admin.display(description="Latest version", ordering="latest_state_value")
    def latest_state(self, module):
        return (module.latest_state_value or "no version").replace("_", " ")

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields += ["code", "brand"]  # the identity others refer to
            if not hasattr(obj, "_has_frozen_versions"):
                obj._has_frozen_versions = obj.versions.exclude(state__in=EDITABLE_STATES).exists()
            if obj._has_frozen_versions:
                fields += ["kind", "purpose"]  # reviewers judged the module as this
        return fields

    def save_model(self, request, obj, form, change):
        if not change:
            obj.owner = request.user
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        for inline_form in formset.forms:
            if inline_form.has_changed() and inline_form.instance.pk:
                _sanitise_message(request, inline_form.instance, inline_form.sanitise_report)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser  # modules are retired by withdrawal, not deleted


@admin.register(ModuleVersion)
class ModuleVersionAdmin(BrandScopedAdmin):
    form = forms.ModuleVersionForm
    list_display = ["__str__", "module_title", "brand", "state", "locale", "updated_at", "preview"]
    list_select_related = ["module", "module__brand", "locale"]
    list_filter = [
        ("module__brand", RelatedOnlyFieldListFilter), "module__kind", "state", "audiences",
        ("stages", StageListFilter), "jurisdictions", "channels", "locale",
    ]
    search_fields = ["module__code", "module__title", "subject", "body_text"]
    actions = [make_new_version]
    readonly_fields = ["number", "state", "sha256", "created_by", "created_at", "updated_at",
                       "approved_at", "expires_at", "withdrawn_at", "withdrawal_reason",
                       "preview"]
    filter_horizontal = ["audiences", "specialties", "stages", "jurisdictions", "channels",
                         "citations", "requires", "excludes"]
    change_form_template = "admin/content/moduleversion/change_form.html"

    @admin.display(description="Title", ordering="module__title")
    def module_title(self, version):
        return version.module.title

    @admin.display(description="Brand", ordering="module__brand__name")
    def brand(self, version):
        return version.module.brand

    @admin.display(description="Preview")
    def preview(self, version):
        return _preview_link(version) if version.pk else "—"

    def get_urls(self):
        return [
            path("<path:object_id>/preview/", self.admin_site.admin_view(self.preview_view),
                 name="content_moduleversion_preview"),
            path("<path:object_id>/new-version/", self.admin_site.admin_view(self.new_version_view),
                 name="content_moduleversion_new_version"),
        ] + super().get_urls()

    def new_version_view(self, request, object_id):
        """POST: start a draft from this (frozen) version's module; then open the draft."""
        version = self.get_object(request, object_id)
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:content_moduleversion_change", args=[version.pk]))
        if not can_author_brand(request.user, version.module.brand):
            raise PermissionDenied
        try:
            draft = new_version(version.module, author=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return HttpResponseRedirect(reverse("admin:content_moduleversion_change", args=[version.pk]))
        messages.success(request, f"{draft} created as a draft, a copy of {version.module}'s latest version.")
        return HttpResponseRedirect(reverse("admin:content_moduleversion_change", args=[draft.pk]))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and not obj.is_editable and request.method == "GET":
            messages.info(request, f"{obj} is {obj.get_state_display().lower()}: shown read-only. "
                                   "Use “New version” to change it.")
        context["can_start_new_version"] = bool(
            obj is not None and obj.is_locked and can_author_brand(request.user, obj.module.brand))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def has_change_permission(self, request, obj=None):
        # Frozen versions (in review, approved, expired, withdrawn) open read-only.
        if obj is not None and not obj.is_editable:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and not obj.is_editable:
            return False
        return super().has_delete_permission(request, obj)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and object_id:
            version = self.get_object(request, object_id)
            if not self.has_view_permission(request, version):
                raise PermissionDenied
            if not version.is_editable:
                # Say why instead of a bare 403; nothing is written.
                messages.error(request, f"{version} is {version.get_state_display().lower()}: "
                                        "its content cannot change. Use the “New version” "
                                        "action to start a draft.")
                return HttpResponseRedirect(request.path)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        _sanitise_message(request, obj, form.sanitise_report)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        _readiness_message(request, form.instance)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method == "POST":
            messages.error(request, "A version is never reverted in place: use the “New "
                                    "version” action and edit the draft.")
            return HttpResponseRedirect(request.path)
        return super().history_form_view(request, object_id, version_id, extra_context)

    def revert_disabled(self, request, obj=None):
        return True

    def preview_view(self, request, object_id):
        version = self.get_object(request, object_id)
        if not self.has_view_permission(request, version):
            raise PermissionDenied
        # The body was sanitised on save and token values are escaped by the renderer;
        # sanitising the result again costs little and keeps this page safe regardless.
        html = mark_safe(sanitise_html(render_module_html(version)).html)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Preview of {version}",
            "version": version,
            "subject": render_subject(version),
            "html": html,
            "text": render_module_text(version),
            "widths": PREVIEW_WIDTHS,
            "recipient": SAMPLE_RECIPIENT,
            "change_url": reverse("admin:content_moduleversion_change", args=[version.pk]),
            "requires": [
                (m, (m.latest_state_value or "no version").replace("_", " "))
                for m in version.requires.annotate(
                    latest_state_value=latest_state_subquery()).order_by("code")],
            "excludes": version.excludes.order_by("code"),
        }
        return TemplateResponse(request, "admin/content/moduleversion/preview.html", context)


# --- References and assets ----------------------------------------------------------------


@admin.register(Reference)
class ReferenceAdmin(BrandScopedAdmin):
    form = forms.ReferenceForm
    list_display = ["code", "brand", "source", "short_citation", "label_section"]
    list_select_related = ["brand"]
    list_filter = [("brand", RelatedOnlyFieldListFilter), "source"]
    search_fields = ["code", "citation", "label_section"]

    @admin.display(description="Citation")
    def short_citation(self, ref):
        return ref.citation[:90]


@admin.register(Asset)
class AssetAdmin(BrandScopedAdmin):
    form = forms.AssetForm
    list_display = ["title", "brand", "format", "width", "height", "thumbnail"]
    list_select_related = ["brand"]
    list_filter = [("brand", RelatedOnlyFieldListFilter), "format"]
    search_fields = ["title", "alt_text"]
    readonly_fields = ["thumbnail", "format", "width", "height", "content_sha256",
                       "rendition_links", "uploaded_by", "created_at"]

    @admin.display(description="Image")
    def thumbnail(self, asset):
        if not asset.pk or not asset.image:
            return "—"
        path = asset.renditions.get("thumbnail")
        url = asset.image.storage.url(path) if path else asset.image.url
        return format_html('<img src="{}" alt="{}" style="max-width:200px">', url, asset.alt_text)

    @admin.display(description="Renditions")
    def rendition_links(self, asset):
        storage = asset.image.storage
        return format_html_join(", ", '<a href="{}">{}</a>',
                                ((storage.url(p), name) for name, p in asset.renditions.items())) or "—"

    def save_model(self, request, obj, form, change):
        if form.clean_image is None:
            obj._history_user = request.user
            obj.save()  # title / alt text only
            return
        store_asset(brand=obj.brand, title=obj.title, alt_text=obj.alt_text,
                    upload=None, clean=form.clean_image, uploaded_by=request.user,
                    asset=obj)
        messages.info(request, f"{obj}: re-encoded as {obj.format}, {obj.width} × {obj.height} px; "
                               "renditions are being made.")


# --- Brands and taxonomy ------------------------------------------------------------------


@admin.register(Brand)
class BrandAdmin(GuardedModelAdminMixin, BrandScopedAdmin):
    """Brands; superusers grant `author_brand` under "Object permissions"."""

    form = forms.BrandForm
    list_display = ["name", "product_name", "approval_validity_days", "expiry_notice_days"]
    search_fields = ["name", "product_name"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request):
        return Brand.objects.restrict(request.user, "view")

    def get_form(self, request, obj=None, change=False, **kwargs):
        return super(BrandScopedAdmin, self).get_form(request, obj, change=change, **kwargs)

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False  # content points at brands (PROTECT)


class SpecialtyInline(admin.TabularInline):
    model = Specialty
    extra = 0


class StageInline(admin.TabularInline):
    model = Stage
    extra = 0
    fields = ["order", "code", "name", "description"]
    ordering = ["order"]


@admin.register(Audience)
class AudienceAdmin(SimpleHistoryAdmin):
    list_display = ["code", "name"]
    inlines = [StageInline, SpecialtyInline]


@admin.register(Stage)
class StageAdmin(SimpleHistoryAdmin):
    list_display = ["audience", "order", "code", "name"]
    list_filter = ["audience"]
    list_select_related = ["audience"]


@admin.register(Specialty)
class SpecialtyAdmin(SimpleHistoryAdmin):
    list_display = ["audience", "code", "name"]
    list_select_related = ["audience"]


@admin.register(Jurisdiction)
class JurisdictionAdmin(SimpleHistoryAdmin):
    list_display = ["code", "name"]
    search_fields = ["code", "name"]


@admin.register(Channel)
class ChannelAdmin(SimpleHistoryAdmin):
    list_display = ["code", "name"]


@admin.register(Locale)
class LocaleAdmin(SimpleHistoryAdmin):
    list_display = ["code", "name"]


# --- Market rules -------------------------------------------------------------------------


@admin.register(MarketRule)
class MarketRuleAdmin(SimpleHistoryAdmin):
    """Market rules (content.market_rules): every page is for superusers only, so no author
    (whatever model permissions a group grants) can switch one off; every change is kept."""

    list_display = ["jurisdiction", "kind", "active", "parameters", "rationale"]
    list_filter = ["kind", "active", "jurisdiction"]
    list_select_related = ["jurisdiction"]

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    has_add_permission = has_module_permission

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser
