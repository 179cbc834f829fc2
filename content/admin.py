"""The author admin: brand-scoped lists and forms, versions, preview, history, assets.

Who sees which row is decided once, by `<Model>.objects.restrict(user, action)` (content.permissions);
the admin only asks it. Object-level checks repeat the rule for pages that load rows by id
(change, delete, history), so a brand-B page answers 404/403 to a brand-A author.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import RelatedOnlyFieldListFilter
from django.contrib.admin.widgets import AutocompleteMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import OuterRef, Subquery
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from guardian.admin import GuardedModelAdminMixin
from simple_history.admin import SimpleHistoryAdmin

from . import forms
from .assets import store_asset
from .footnotes import ordered_references
from .market_rules import version_violations as market_rule_violations
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
from .rules import review_readiness, review_readiness_errors, sanitise_html
from .versioning import new_version

PREVIEW_WIDTHS = (("Email", 600), ("Portal", 960))

admin.site.site_header = "Tessera"
admin.site.site_title = "Tessera admin"
admin.site.index_title = "Content library, reviews and journeys"
admin.site.site_url = "/journeys/"  # "View site": the journeys index (cms/urls.py)


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

# Panels a higher floor adds to the version page. Content cannot import approvals, so the
# review feedback (comments, change requests, annotations) and the recall form are
# registered at start-up by approvals (`register_version_panel`), like the token resolver.
VERSION_PAGE_PANELS: list = []


def register_version_panel(panel) -> None:
    """`panel(request, version)` returns None or {"template": name, **context} for the
    version's change page; it must only read."""
    if panel not in VERSION_PAGE_PANELS:
        VERSION_PAGE_PANELS.append(panel)


VERSION_PAGE_URLS: list = []


def register_version_page_url(route: str, view, name: str) -> None:
    """A higher floor's view under `/admin/content/moduleversion/<id>/<route>/` (the
    admin's login and staff checks apply); `view(request, object_id)`."""
    if all(existing[2] != name for existing in VERSION_PAGE_URLS):
        VERSION_PAGE_URLS.append((route, view, name))


def _preview_link(version) -> str:
    url = reverse("admin:content_moduleversion_preview", args=[version.pk])
    return format_html('<a href="{}">Preview</a>', url)


def _state_label(state: str | None) -> str:
    return (state or "no version").replace("_", " ")


class FirstVersionInline(admin.StackedInline):
    """The first version, written with the module on its add page."""

    model = ModuleVersion
    form = forms.FirstVersionForm
    fields = ["locale", "subject", "body_html", "citations", "audiences", "jurisdictions",
              "channels"]
    autocomplete_fields = ["citations", "audiences", "jurisdictions", "channels"]
    extra = 0
    min_num = 1
    max_num = 1
    can_delete = False
    verbose_name = "first version"
    verbose_name_plural = "first version (text, references and tags; more on the version's page)"

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.form = type(formset.form.__name__, (formset.form,), {"user": request.user})
        return formset


class VersionListInline(admin.TabularInline):
    """The module's versions, newest first, each with its state, expiry and pages."""

    model = ModuleVersion
    fields = ["version_link", "state_label", "locale", "expires_at", "links"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    verbose_name_plural = "versions"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("locale", "module").order_by("-number")

    @admin.display(description="Version")
    def version_link(self, version):
        url = reverse("admin:content_moduleversion_change", args=[version.pk])
        return format_html('<a href="{}">v{}</a>', url, version.number)

    @admin.display(description="State")
    def state_label(self, version):
        return version.get_state_display()

    @admin.display(description="")
    def links(self, version):
        if not version.pk:
            return ""
        review = reverse("approvals:review", args=[version.pk])
        return format_html('{} · <a href="{}">Review page</a>', _preview_link(version), review)


class StageListFilter(admin.RelatedFieldListFilter):
    """Stages are named after their audience: load both in one query."""

    def field_choices(self, field, request, model_admin):
        return [(stage.pk, str(stage)) for stage in Stage.objects.select_related("audience")]


def latest_state_subquery():
    return Subquery(ModuleVersion.objects.filter(module=OuterRef("pk"))
                    .order_by("-number").values("state")[:1])


def latest_expiry_subquery():
    return Subquery(ModuleVersion.objects.filter(module=OuterRef("pk"), state="approved")
                    .order_by("-number").values("expires_at")[:1])


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


def frozen_message(version) -> str:
    """Why a version's page is read-only, and what the author can do instead."""
    state = version.get_state_display().lower()
    if version.state == "in_review":
        return (f"{version} is in review: its content is frozen while MLR reviews it. Wait "
                "for the decision (changes requested reopen it), or recall the submission "
                "before the first reviewer decides.")
    return (f"{version} is {state}: its content cannot change (shown read-only). Use “New "
            "version” to start a draft from it.")


def readiness_checklist(version) -> list[dict]:
    """The submission checklist: each rule, met or not, and the field that fixes it."""
    problems = review_readiness(version)
    violations = market_rule_violations(version)
    items = [{"ok": False, "message": p.message, "anchor": f"id_{p.field}"} for p in problems]
    fields = {"fair_balance_missing_isi": "requires", "audience_not_permitted": "audiences"}
    items += [{"ok": False, "message": v.detail, "anchor": f"id_{fields.get(v.code, 'jurisdictions')}"}
              for v in violations]
    return items


def autocomplete_scope(request, queryset, *, brand_field="brand"):
    """What an autocomplete offers: rows of the brand the page names (`?brand=`), else of
    the brands the person authors; stages and specialties of the audiences it names."""
    if request.path != reverse("admin:autocomplete"):
        return queryset
    brand = request.GET.get("brand", "")
    if not brand_field:
        pass
    elif brand.isdigit():
        queryset = queryset.filter(**{brand_field: int(brand)})
    elif brand_field and not request.user.is_superuser:
        queryset = queryset.filter(**{f"{brand_field}__in": forms.authored_brands(request.user)})
    audiences = [a for a in request.GET.get("audience", "").split(",") if a.isdigit()]
    if audiences and hasattr(queryset.model, "audience"):
        queryset = queryset.filter(audience_id__in=audiences)
    return queryset


class PickerMedia:
    """Names the autocomplete pickers' search boxes for screen readers (pickers.js)."""

    class Media:
        js = ["content/pickers.js"]


class ScopedSearchMixin:
    """Autocomplete results limited by `autocomplete_scope`."""

    autocomplete_brand_field = "brand"

    def get_search_results(self, request, queryset, search_term):
        queryset = autocomplete_scope(request, queryset, brand_field=self.autocomplete_brand_field)
        return super().get_search_results(request, queryset, search_term)


def _with_params(widget, params: dict) -> None:
    """Add query parameters to an autocomplete widget's URL (select2 keeps them)."""
    inner = getattr(widget, "widget", widget)
    if not isinstance(inner, AutocompleteMixin) or not params:
        return
    query = urlencode({k: v for k, v in params.items() if v})
    if not query:
        return
    get_url = inner.get_url
    inner.get_url = lambda: f"{get_url()}?{query}"


@admin.register(ContentModule)
class ContentModuleAdmin(PickerMedia, ScopedSearchMixin, BrandScopedAdmin):
    form = forms.ContentModuleForm
    list_display = ["code", "title", "brand", "kind", "purpose", "latest_state", "expires"]
    list_select_related = ["brand"]
    list_filter = [
        ("brand", RelatedOnlyFieldListFilter), "kind", "purpose", "versions__state",
        "versions__audiences", ("versions__stages", StageListFilter), "versions__jurisdictions",
        "versions__channels", "versions__locale",
    ]
    search_fields = ["code", "title", "versions__subject", "versions__body_text"]
    actions = [make_new_version]
    readonly_fields = ["owner", "created_at"]
    change_form_template = "admin/content/contentmodule/change_form.html"

    def get_inlines(self, request, obj):
        return [FirstVersionInline] if obj is None else [VersionListInline]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["brand", "code", "kind", "purpose", "title"]
        return ["code", "brand", "kind", "purpose", "title", "owner", "created_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            latest_state_value=latest_state_subquery(), expires_value=latest_expiry_subquery())

    @admin.display(description="Latest version", ordering="latest_state_value")
    def latest_state(self, module):
        return _state_label(module.latest_state_value)

    @admin.display(description="Approval expires", ordering="expires_value")
    def expires(self, module):
        return module.expires_value.date() if module.expires_value else "—"

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields += ["code", "brand"]  # the identity others refer to
            if self._has_frozen_versions(obj):
                fields += ["kind", "purpose"]  # reviewers judged the module as this
        return fields

    @staticmethod
    def _has_frozen_versions(obj) -> bool:
        if not hasattr(obj, "_has_frozen_versions"):
            obj._has_frozen_versions = obj.versions.exclude(state__in=EDITABLE_STATES).exists()
        return obj._has_frozen_versions

    def has_change_permission(self, request, obj=None):
        if not super().has_change_permission(request, obj):
            return False
        # A module whose versions are all frozen has nothing left to write here: the page
        # is read-only (a change is a new version).
        if obj is not None:
            if not hasattr(obj, "_tessera_states"):
                obj._tessera_states = set(obj.versions.values_list("state", flat=True).distinct())
            if obj._tessera_states and not obj._tessera_states & EDITABLE_STATES:
                return False
        return True

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            latest = obj.latest_version()
            context["latest_version"] = latest
            context["can_start_new_version"] = bool(
                latest is not None and latest.is_locked
                and can_author_brand(request.user, obj.brand))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.owner = request.user
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        if formset.model is not ModuleVersion:
            return super().save_formset(request, form, formset, change)
        versions = formset.save(commit=False)
        for inline_form in formset.forms:
            version = inline_form.instance
            if version not in versions:
                continue
            version.created_by = request.user
            version._history_user = request.user
            version.save()
            inline_form.save_m2m()
            _sanitise_message(request, version, inline_form.sanitise_report)
            request._tessera_first_version = version

    def response_add(self, request, obj, post_url_continue=None):
        version = getattr(request, "_tessera_first_version", None)
        if version is not None and "_continue" not in request.POST and "_addanother" not in request.POST:
            _readiness_message(request, version)
            messages.success(request, f"{obj} created with its first version, {version}.")
            return HttpResponseRedirect(reverse("admin:content_moduleversion_change", args=[version.pk]))
        return super().response_add(request, obj, post_url_continue)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser  # modules are retired by withdrawal, not deleted


@admin.register(ModuleVersion)
class ModuleVersionAdmin(PickerMedia, BrandScopedAdmin):
    form = forms.ModuleVersionForm
    list_display = ["__str__", "module_title", "brand", "state", "locale", "expires_at",
                    "updated_at", "preview"]
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
    autocomplete_fields = ["asset", "audiences", "specialties", "stages", "jurisdictions",
                           "channels", "citations", "requires", "excludes"]
    fieldsets = [
        (None, {"fields": ["module", "locale", "subject", "body_html", "citations"]}),
        ("Where it may be used", {"fields": ["audiences", "specialties", "stages",
                                             "jurisdictions", "channels", "valid_from"]}),
        ("Companions, image and personalisation", {
            "classes": ["collapse"],
            "fields": ["requires", "excludes", "asset", "token_fallbacks", "body_text"]}),
        ("Record", {"classes": ["collapse"],
                    "fields": ["number", "state", "sha256", "created_by", "created_at",
                               "updated_at", "approved_at", "expires_at", "withdrawn_at",
                               "withdrawal_reason", "preview"]}),
    ]
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

    def get_form(self, request, obj=None, change=False, **kwargs):
        request._tessera_version = obj  # scopes the autocompletes (formfield_for_*)
        return super().get_form(request, obj, change=change, **kwargs)

    def _autocomplete_params(self, request, name):
        version = getattr(request, "_tessera_version", None)
        params = {}
        if version is not None and name in {"citations", "requires", "excludes", "asset"}:
            params["brand"] = version.module.brand_id
        if version is not None and name in {"stages", "specialties"}:
            params["audience"] = ",".join(str(pk) for pk in version.audiences.values_list("pk", flat=True))
        return params

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if field is not None:
            _with_params(field.widget, self._autocomplete_params(request, db_field.name))
        return field

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None:
            _with_params(field.widget, self._autocomplete_params(request, db_field.name))
        return field

    def get_urls(self):
        return [
            path("<path:object_id>/preview/", self.admin_site.admin_view(self.preview_view),
                 name="content_moduleversion_preview"),
            path("<path:object_id>/new-version/", self.admin_site.admin_view(self.new_version_view),
                 name="content_moduleversion_new_version"),
            *(path(f"<path:object_id>/{route}/", self.admin_site.admin_view(view), name=name)
              for route, view, name in VERSION_PAGE_URLS),
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
            messages.info(request, frozen_message(obj))
        authors = obj is not None and can_author_brand(request.user, obj.module.brand)
        context["can_start_new_version"] = bool(obj is not None and obj.is_locked and authors)
        if obj is not None:
            context["readiness"] = readiness_checklist(obj) if obj.is_editable else None
            context["can_submit"] = bool(authors and obj.is_editable)
            context["review_url"] = reverse("approvals:review", args=[obj.pk])
            context["numbered_references"] = ordered_references(obj)
            context["version_panels"] = [p for p in (panel(request, obj) for panel in VERSION_PAGE_PANELS) if p]
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
                messages.error(request, frozen_message(version))
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
            "numbered_references": ordered_references(version),
        }
        return TemplateResponse(request, "admin/content/moduleversion/preview.html", context)


# --- References and assets ----------------------------------------------------------------


@admin.register(Reference)
class ReferenceAdmin(ScopedSearchMixin, BrandScopedAdmin):
    form = forms.ReferenceForm
    list_display = ["code", "brand", "source", "short_citation", "label_section"]
    list_select_related = ["brand"]
    list_filter = [("brand", RelatedOnlyFieldListFilter), "source"]
    search_fields = ["code", "citation", "label_section"]

    @admin.display(description="Citation")
    def short_citation(self, ref):
        return ref.citation[:90]


@admin.register(Asset)
class AssetAdmin(ScopedSearchMixin, BrandScopedAdmin):
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


class TaxonomyAdmin(ScopedSearchMixin, SimpleHistoryAdmin):
    """Taxonomy terms; searchable, so version pages pick them in compact autocompletes."""

    autocomplete_brand_field = None
    search_fields = ["code", "name"]


@admin.register(Audience)
class AudienceAdmin(TaxonomyAdmin):
    list_display = ["code", "name"]
    inlines = [StageInline, SpecialtyInline]


@admin.register(Stage)
class StageAdmin(TaxonomyAdmin):
    list_display = ["audience", "order", "code", "name"]
    search_fields = ["code", "name", "audience__code"]
    list_filter = ["audience"]
    list_select_related = ["audience"]


@admin.register(Specialty)
class SpecialtyAdmin(TaxonomyAdmin):
    list_display = ["audience", "code", "name"]
    search_fields = ["code", "name", "audience__code"]
    list_select_related = ["audience"]


@admin.register(Jurisdiction)
class JurisdictionAdmin(TaxonomyAdmin):
    list_display = ["code", "name"]
    search_fields = ["code", "name"]


@admin.register(Channel)
class ChannelAdmin(TaxonomyAdmin):
    list_display = ["code", "name"]


@admin.register(Locale)
class LocaleAdmin(TaxonomyAdmin):
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
