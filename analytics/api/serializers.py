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


class RateSerializer(serializers.Serializer):
    recipients = Suppressible()
    engaged = Suppressible(help_text="Recipients who opened or clicked at a step where served")
    rate = Suppressible(help_text="engaged / recipients")
    ci_low = Suppressible(help_text="95 % Wilson interval, lower bound")
    ci_high = Suppressible(help_text="95 % Wilson interval, upper bound")


class VersionPerformanceSerializer(RateSerializer):
    module = serializers.CharField()
    version = serializers.IntegerField()
    version_id = serializers.IntegerField()
    kind = serializers.CharField()
    steps = serializers.ListField(child=serializers.CharField())
    deliveries = Suppressible()


class ComparisonSerializer(serializers.Serializer):
    a = serializers.CharField()
    b = serializers.CharField()
    difference = Suppressible(help_text="Rate of b minus rate of a")
    ci_low = Suppressible(help_text="95 % interval of the difference (Newcombe), lower bound")
    ci_high = Suppressible()
    reading = serializers.CharField(help_text='"<b> engages more|less", "no clear difference" '
                                              'or "too few recipients to compare"')


class ModuleComparisonSerializer(ComparisonSerializer):
    module = serializers.CharField()


class CandidateSerializer(RateSerializer):
    module = serializers.CharField()
    version = serializers.IntegerField()
    version_id = serializers.IntegerField()


class SelectorSlotSerializer(serializers.Serializer):
    step = serializers.CharField()
    kind = serializers.CharField()
    leader = serializers.CharField(allow_null=True)
    candidates = CandidateSerializer(many=True)
    comparisons = ComparisonSerializer(many=True, help_text="Each candidate against the leader")


class ContentSerializer(serializers.Serializer):
    versions = VersionPerformanceSerializer(many=True)
    module_comparisons = ModuleComparisonSerializer(many=True)
    selector_slots = SelectorSlotSerializer(many=True)


class FlowSerializer(serializers.Serializer):
    locals()["from"] = serializers.CharField(help_text='A step key, or "start"')
    to = serializers.CharField()
    recipients = Suppressible()
    designed = serializers.BooleanField()


class ReengagementSerializer(serializers.Serializer):
    step = serializers.CharField(help_text='Where the silence paused them, or "all steps"')
    paused = Suppressible()
    reengaged = Suppressible()
    share = Suppressible()
    median_days = Suppressible()
    p90_days = Suppressible()


class StageTimeSerializer(serializers.Serializer):
    stage = serializers.CharField()
    recipients = Suppressible()
    median_days = Suppressible()
    p90_days = Suppressible()


class TouchpointSerializer(serializers.Serializer):
    step = serializers.CharField()
    channel = serializers.CharField()
    deliveries = serializers.IntegerField()
    reached = Suppressible()
    opened_rate = Suppressible()
    clicked_rate = Suppressible()
    declined_rate = Suppressible()
    ignored_rate = Suppressible()


class JourneyAnalyticsSerializer(serializers.Serializer):
    journey = serializers.CharField()
    filters = serializers.DictField()
    min_cohort = serializers.IntegerField()
    funnel = FunnelStageSerializer(many=True)
    velocity = VelocitySerializer(many=True)
    velocity_trend = TrendSerializer(many=True)
    coherence = CoherenceSerializer()
    time_in_stage = StageTimeSerializer(many=True, required=False)
    touchpoints = TouchpointSerializer(many=True, required=False)
    flows = FlowSerializer(many=True, required=False)
    reengagement = ReengagementSerializer(many=True, required=False)
    content = ContentSerializer(required=False)


class FilterSerializer(serializers.Serializer):
    start = serializers.DateField(required=False, help_text="First arrival on or after (UTC day)")
    end = serializers.DateField(required=False, help_text="First arrival on or before")
    market = serializers.CharField(required=False, max_length=2)
    channel = serializers.CharField(required=False, max_length=40)

    def validate(self, data):
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise serializers.ValidationError({"end": "The end must not be before the start."})
        return data
