"""Read-only shapes of the journey API (for the schema; views build dicts)."""

from rest_framework import serializers


class SlotSerializer(serializers.Serializer):
    order = serializers.IntegerField()
    module = serializers.CharField(allow_null=True, help_text="Fixed module code, or null")
    selector = serializers.DictField(allow_null=True,
                                     help_text='{"kind", "stages", "specialties", "priority"}')
    required = serializers.BooleanField()


class StepSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="Unique in its journey")
    name = serializers.CharField()
    channel = serializers.CharField()
    owner_function = serializers.CharField()
    purpose = serializers.CharField()
    timing = serializers.CharField(allow_blank=True)
    delay_days = serializers.IntegerField()
    decision_moment = serializers.CharField(allow_blank=True)
    layout = serializers.CharField()
    slots = SlotSerializer(many=True)
    transitions = serializers.ListField(child=serializers.DictField())


class StageSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    order = serializers.IntegerField()
    steps = StepSerializer(many=True)


class JourneySummarySerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    brand = serializers.CharField()
    audience = serializers.CharField()
    jurisdictions = serializers.ListField(child=serializers.CharField())
    locale = serializers.CharField()


class JourneyDetailSerializer(JourneySummarySerializer):
    description = serializers.CharField(allow_blank=True)
    stages = StageSerializer(many=True)
