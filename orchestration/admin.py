"""Admin for what operators set (send windows, caps, trigger rules) and read (releases,
due touchpoints, moves, signals, rep tasks: read-only, every decision with its reason)."""

from django.contrib import admin

from .models import (
    DueTouchpoint,
    FrequencyCap,
    JourneyRelease,
    Move,
    RepTask,
    SendWindow,
    Signal,
    TriggerRule,
)


@admin.register(SendWindow)
class SendWindowAdmin(admin.ModelAdmin):
    list_display = ["market", "time_zone", "start_hour", "end_hour", "weekdays"]

    def has_module_permission(self, request):
        return request.user.is_superuser


@admin.register(FrequencyCap)
class FrequencyCapAdmin(admin.ModelAdmin):
    list_display = ["__str__", "brand", "channel", "purpose", "max_count", "period_days"]

    def has_module_permission(self, request):
        return request.user.is_superuser


@admin.register(TriggerRule)
class TriggerRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "journey", "kind", "signal", "active"]
    list_filter = ["kind", "active"]
    raw_id_fields = ["transition", "stage", "to_step"]

    def has_module_permission(self, request):
        return request.user.is_superuser


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(JourneyRelease)
class JourneyReleaseAdmin(ReadOnly):
    list_display = ["journey", "number", "state", "live_at", "retired_at"]


@admin.register(DueTouchpoint)
class DueTouchpointAdmin(ReadOnly):
    list_display = ["id", "channel", "market", "step", "status", "due_at", "reason"]
    list_filter = ["status", "channel", "market"]


@admin.register(Move)
class MoveAdmin(ReadOnly):
    list_display = ["at", "enrollment", "from_step", "to_step", "paused", "rule", "reason"]


@admin.register(Signal)
class SignalAdmin(ReadOnly):
    list_display = ["received_at", "name", "moved"]


@admin.register(RepTask)
class RepTaskAdmin(ReadOnly):
    list_display = ["touchpoint", "module_code", "module_version", "created_at"]
