"""Journeys in the admin: every model with its history; stages, steps and slots inline.

Limited by brand like the content admin: every list, page, choice and popup asks
`<Model>.objects.restrict(user, action)` (authors their brands, reviewers and superusers
all); another brand's row answers 404. A fixed slot offers only modules of the journey's
brand (and `Slot` refuses any other on save).
"""

from django.contrib import admin
from django.http import Http404
from django.urls import reverse
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from content.admin import _with_params
from content.models import ContentModule

from .builder import services
from .builder.forms import AdminVersionedForm
from .models import EngagementEvent, Enrollment, Journey, Slot, Stage, Step, Transition


def _restricted(model, user, action: str):
    """The rows of `model` `user` may `action`, or None for a model without the rule
    (shared taxonomy: audiences, stages of an audience, markets, channels, locales)."""
    manager = model._default_manager
    return manager.restrict(user, action) if hasattr(manager, "restrict") else None


class ScopedChoicesMixin:
    """Foreign-key choices limited by the brand rule: brands the user authors, journeys
    and steps they may change."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "queryset" not in kwargs:
            rows = _restricted(db_field.related_model, request.user, "change")
            if rows is not None:
                kwargs["queryset"] = rows
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class BrandScopedAdmin(ScopedChoicesMixin, SimpleHistoryAdmin):
    """Rows of the brands the user may see; changes only on the brands the user authors;
    foreign-key choices limited the same way."""

    def get_queryset(self, request):
        return super().get_queryset(request).restrict(request.user, "view")

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No such object, or not one of your brands.")
        return obj

    def _may(self, request, obj, action: str) -> bool:
        return obj is None or type(obj).objects.restrict(request.user, action).filter(
            pk=obj.pk).exists()

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and self._may(request, obj, "view")

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._may(request, obj, "change")

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._may(request, obj, "change")


class VersionedAdmin(BrandScopedAdmin):
    """Journeys, stages and steps: the admin's form carries the edit counter, a save over
    someone's newer save is refused (the builder's conflict rule), and saving goes through
    the builder's service (validation, history)."""

    form = AdminVersionedForm

    def save_model(self, request, obj, form, change):
        services.save_versioned(obj, expected=form.cleaned_data.get("edit_version") if change else None)


class StageInline(ScopedChoicesMixin, admin.TabularInline):
    """Compact: one line per stage (insights are edited on the map's builder or the
    stage's own page)."""

    model = Stage
    extra = 0
    fields = ("order", "audience_stage")
    show_change_link = True
    classes = ("collapse",)
    verbose_name_plural = "Stages (edit insights on the map's builder)"


class StepInline(ScopedChoicesMixin, admin.TabularInline):
    """Compact: one line per touchpoint; everything else on the map's builder."""

    model = Step
    extra = 0
    fields = ("stage", "order", "key", "name", "channel", "preview_link")
    readonly_fields = ("preview_link",)
    show_change_link = True
    classes = ("collapse",)
    verbose_name_plural = "Touchpoints (edit them on the map's builder)"

    def get_formset(self, request, obj=None, **kwargs):
        self._journey = obj
        return super().get_formset(request, obj, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "stage" and getattr(self, "_journey", None) is not None:
            kwargs["queryset"] = Stage.objects.filter(journey=self._journey).select_related("audience_stage")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="Preview")
    def preview_link(self, step):
        return _preview_link(step)


def _preview_link(step):
    if not step or not step.pk:
        return "—"
    url = reverse("journeys:step-preview", args=[step.journey.slug, step.key])
    return format_html('<a href="{}" target="_blank" rel="noopener">Preview email and portal</a>', url)


@admin.register(Journey)
class JourneyAdmin(VersionedAdmin):
    list_display = ("name", "slug", "brand", "audience", "locale", "map_link")
    list_filter = (("brand", admin.RelatedOnlyFieldListFilter), "audience")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    fieldsets = (
        (None, {"fields": (("name", "slug"), ("brand", "audience", "locale"), "jurisdictions",
                           "description", "builder_link", "edit_version")}),
    )
    readonly_fields = ("builder_link",)
    inlines = [StageInline, StepInline]

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "jurisdictions":
            from django.forms import CheckboxSelectMultiple

            kwargs["widget"] = CheckboxSelectMultiple
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @admin.display(description="Journey map")
    def map_link(self, journey):
        url = reverse("journeys:map", args=[journey.slug])
        return format_html('<a href="{}">Map</a>', url)

    @admin.display(description="Build")
    def builder_link(self, journey):
        if not journey or not journey.pk:
            return "Save the journey, then build its stages and touchpoints on its map."
        url = reverse("journeys:map", args=[journey.slug])
        return format_html('<a href="{}">Open the map to build stages, touchpoints, slots and '
                           'paths</a>', url)


class SlotInline(admin.StackedInline):
    """Modules are found by code or title (autocomplete, limited to the journey's brand),
    never typed as database ids."""

    model = Slot
    extra = 0
    fields = ("order", "module", ("selector_kind", "priority", "required"), "ranking",
              ("selector_stages", "selector_specialties"))
    filter_horizontal = ("selector_stages", "selector_specialties")
    autocomplete_fields = ("module",)

    def get_formset(self, request, obj=None, **kwargs):
        self._step = obj
        return super().get_formset(request, obj, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        step = getattr(self, "_step", None)
        if db_field.name == "module":
            kwargs["queryset"] = slot_module_choices(request.user, step)
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "module" and step is not None:
            _with_params(field.widget, {"brand": str(step.journey.brand_id)})
        return field


def slot_module_choices(user, step: Step | None):
    """Modules a fixed slot may bind: the user's visible modules, of the step's brand."""
    modules = ContentModule.objects.restrict(user, "view")
    if step is not None:
        modules = modules.filter(brand_id=step.journey.brand_id)
    return modules


class TransitionInline(ScopedChoicesMixin, admin.TabularInline):
    model = Transition
    fk_name = "from_step"
    extra = 0
    fields = ("event_type", "threshold", "days", "to_step", "pause", "label")

    def get_formset(self, request, obj=None, **kwargs):
        self._step = obj
        return super().get_formset(request, obj, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "to_step" and getattr(self, "_step", None) is not None:
            kwargs["queryset"] = Step.objects.filter(journey_id=self._step.journey_id)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Step)
class StepAdmin(VersionedAdmin):
    list_display = ("key", "name", "journey", "stage", "channel", "owner_function", "purpose",
                    "layout", "preview")
    list_filter = (("journey", admin.RelatedOnlyFieldListFilter), "channel", "owner_function",
                   "purpose", "layout")
    search_fields = ("key", "name", "journey__slug")
    list_select_related = ("journey", "stage__audience_stage", "channel")
    readonly_fields = ("preview",)
    inlines = [SlotInline, TransitionInline]

    @admin.display(description="Preview")
    def preview(self, step):
        return _preview_link(step)


@admin.register(Stage)
class StageAdmin(VersionedAdmin):
    list_display = ("__str__", "audience", "journey", "order")
    list_filter = (("journey", admin.RelatedOnlyFieldListFilter), "journey__audience")
    list_select_related = ("journey__audience", "audience_stage__audience")
    ordering = ("journey__name", "order")

    @admin.display(description="Audience", ordering="audience_stage__audience__name")
    def audience(self, stage):
        return stage.audience_stage.audience


@admin.register(Slot)
class SlotAdmin(BrandScopedAdmin):
    list_display = ("__str__", "step", "priority", "required", "ranking")
    list_filter = ("ranking",)
    list_select_related = ("step", "module")
    filter_horizontal = ("selector_stages", "selector_specialties")
    autocomplete_fields = ("module",)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "module":
            # The slot's own brand is checked by Slot.clean (the step may change in the form).
            kwargs["queryset"] = slot_module_choices(request.user, None)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Transition)
class TransitionAdmin(BrandScopedAdmin):
    list_display = ("__str__", "event_type", "threshold", "days", "pause")
    list_select_related = ("from_step", "to_step")


@admin.register(Enrollment)
class EnrollmentAdmin(BrandScopedAdmin):
    list_display = ("journey", "short_hash", "current_step", "paused", "updated_at")
    list_filter = (("journey", admin.RelatedOnlyFieldListFilter), "paused")
    list_select_related = ("journey", "current_step")
    readonly_fields = ("recipient_hash", "enrolled_at", "updated_at")

    @admin.display(description="Recipient (pseudonym)")
    def short_hash(self, enrollment):
        return enrollment.recipient_hash[:12] + "…"


@admin.register(EngagementEvent)
class EngagementEventAdmin(BrandScopedAdmin):
    list_display = ("occurred_at", "event_type", "step", "enrollment")
    list_filter = ("event_type",)
    list_select_related = ("step", "enrollment__journey")
