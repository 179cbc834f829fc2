"""Shapes of `GET /api/v1/analytics/journeys/{slug}/` (the OpenAPI schema reads these).

A count of recipients is an integer, or the string "< 5" when fewer than
TESSERA_MIN_COHORT recipients are behind it; rates and day figures likewise."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

SUPPRESSIBLE = {"oneOf": [{"type": "number"}, {"type": "string", "example": "< 5"}],
                "nullable": True}


@extend_schema_field(SUPPRESSIBLE)
class Suppressible(serializers.JSONField):
    """A figure or "< k"."""


class StepReachSerializer(serializers.Serializer):
    step = serializers.CharField()
    channel = serializers.CharField()
    reached = Suppressible()


class FunnelStageSerializer(serializers.Serializer):
    stage = serializers.CharField()
    reached = Suppressible()
    conversion_to_next = Suppressible(help_text="Reached this and the next stage / reached this")
    drop_off = Suppressible()
    steps = StepReachSerializer(many=True)


class VelocitySerializer(serializers.Serializer):
    locals()["from"] = serializers.CharField()  # a keyword in Python, a field in JSON
    to = serializers.CharField()
    recipients = Suppressible()
    median_days = Suppressible()
    p90_days = Suppressible()


class TrendSerializer(serializers.Serializer):
    month = serializers.CharField()
    recipients = Suppressible()
    median_days = Suppressible()
    p90_days = Suppressible()


class OffPathSerializer(serializers.Serializer):
    locals()["from"] = serializers.CharField()
    to = serializers.CharField()
    recipients = Suppressible()


class CoherenceSerializer(serializers.Serializer):
    recipients = Suppressible()
    coherent = Suppressible()
    share = Suppressible(help_text="Coherent recipients / recipients with a path")
    off_path = OffPathSerializer(many=True)
    unreached_steps = serializers.ListField(child=serializers.CharField())


class JourneyAnalyticsSerializer(serializers.Serializer):
    journey = serializers.CharField()
    filters = serializers.DictField()
    min_cohort = serializers.IntegerField()
    funnel = FunnelStageSerializer(many=True)
    velocity = VelocitySerializer(many=True)
    velocity_trend = TrendSerializer(many=True)
    coherence = CoherenceSerializer()


class FilterSerializer(serializers.Serializer):
    start = serializers.DateField(required=False, help_text="First arrival on or after (UTC day)")
    end = serializers.DateField(required=False, help_text="First arrival on or before")
    market = serializers.CharField(required=False, max_length=2)
    channel = serializers.CharField(required=False, max_length=40)

    def validate(self, data):
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise serializers.ValidationError({"end": "The end must not be before the start."})
        return data
