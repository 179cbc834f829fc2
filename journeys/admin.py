"""Journeys in the admin: every model with its history; stages, steps and slots inline."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from .models import EngagementEvent, Enrollment, Journey, Slot, Stage, Step, Transition


class StageInline(admin.StackedInline):
    model = Stage
    extra = 0
    fields = ("order", "audience_stage", ("needs", "emotions"), ("pain_points", "opportunities"))
    show_change_link = True


class StepInline(admin.TabularInline):
    model = Step
    extra = 0
    fields = ("stage", "order", "key", "name", "channel", "owner_function", "purpose", "layout",
              "timing", "preview_link")
    readonly_fields = ("preview_link",)
    show_change_link = True

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
class JourneyAdmin(SimpleHistoryAdmin):
    list_display = ("name", "slug", "brand", "audience", "locale", "map_link")
    list_filter = ("brand", "audience")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("jurisdictions",)
    inlines = [StageInline, StepInline]

    @admin.display(description="Journey map")
    def map_link(self, journey):
        url = reverse("journeys:map", args=[journey.slug])
        return format_html('<a href="{}">Map</a>', url)


class SlotInline(admin.StackedInline):
    model = Slot
    extra = 0
    fields = ("order", "module", ("selector_kind", "priority", "required"),
              ("selector_stages", "selector_specialties"))
    filter_horizontal = ("selector_stages", "selector_specialties")
    raw_id_fields = ("module",)


class TransitionInline(admin.TabularInline):
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
class StepAdmin(SimpleHistoryAdmin):
    list_display = ("key", "name", "journey", "stage", "channel", "owner_function", "purpose",
                    "layout", "preview")
    list_filter = ("journey", "channel", "owner_function", "purpose", "layout")
    search_fields = ("key", "name", "journey__slug")
    list_select_related = ("journey", "stage__audience_stage", "channel")
    readonly_fields = ("preview",)
    inlines = [SlotInline, TransitionInline]

    @admin.display(description="Preview")
    def preview(self, step):
        return _preview_link(step)


@admin.register(Stage)
class StageAdmin(SimpleHistoryAdmin):
    list_display = ("__str__", "journey", "order")
    list_filter = ("journey",)
    list_select_related = ("journey", "audience_stage")


@admin.register(Slot)
class SlotAdmin(SimpleHistoryAdmin):
    list_display = ("__str__", "step", "priority", "required")
    list_select_related = ("step", "module")
    filter_horizontal = ("selector_stages", "selector_specialties")
    raw_id_fields = ("module",)


@admin.register(Transition)
class TransitionAdmin(SimpleHistoryAdmin):
    list_display = ("__str__", "event_type", "threshold", "days", "pause")
    list_select_related = ("from_step", "to_step")


@admin.register(Enrollment)
class EnrollmentAdmin(SimpleHistoryAdmin):
    list_display = ("journey", "short_hash", "current_step", "paused", "updated_at")
    list_filter = ("journey", "paused")
    list_select_related = ("journey", "current_step")
    readonly_fields = ("recipient_hash", "enrolled_at", "updated_at")

    @admin.display(description="Recipient (pseudonym)")
    def short_hash(self, enrollment):
        return enrollment.recipient_hash[:12] + "…"


@admin.register(EngagementEvent)
class EngagementEventAdmin(SimpleHistoryAdmin):
    list_display = ("occurred_at", "event_type", "step", "enrollment")
    list_filter = ("event_type",)
    list_select_related = ("step", "enrollment__journey")
