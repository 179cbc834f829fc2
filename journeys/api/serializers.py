"""Output shapes of the journey API, read from the model instances the views load (with
their relations prefetched): the views render these, so the schema is the code."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from journeys.models import SelectorRanking


@extend_schema_field(serializers.ListField(child=serializers.CharField()))
class SortedCodesField(serializers.Field):
    """A to-many relation of taxonomy terms as their sorted codes."""

    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, related):
        return sorted(term.code for term in related.all())


class SelectorSerializer(serializers.Serializer):
    kind = serializers.CharField(source="selector_kind")
    stages = SortedCodesField(source="selector_stages")
    specialties = SortedCodesField(source="selector_specialties")
    priority = serializers.IntegerField()
    ranking = serializers.ChoiceField(
        choices=SelectorRanking.values,
        help_text="default: the recipient's specialty, then the newest approval; engagement: "
                  "the recipient's engagement with the candidates' topics first (next-best "
                  "content; the manifest entry's `ranking` says why)")


class SlotSerializer(serializers.Serializer):
    order = serializers.IntegerField()
    module = serializers.CharField(source="module.code", allow_null=True,
                                   help_text="Fixed module code, or null")
    selector = serializers.SerializerMethodField(
        help_text="How a slot without a fixed module picks one, or null")
    required = serializers.BooleanField()

    @extend_schema_field(SelectorSerializer(allow_null=True))
    def get_selector(self, slot):
        return None if slot.module_id is not None else SelectorSerializer(slot).data


class TransitionSerializer(serializers.Serializer):
    event = serializers.CharField(source="event_type")
    threshold = serializers.IntegerField()
    days = serializers.IntegerField(allow_null=True)
    to_step = serializers.CharField(source="to_step.key", allow_null=True,
                                    help_text="Key of the next step, or null")
    pause = serializers.BooleanField()
    label = serializers.CharField(allow_blank=True)


class StepSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="Unique in its journey")
    name = serializers.CharField()
    channel = serializers.CharField(source="channel.code")
    owner_function = serializers.CharField()
    purpose = serializers.CharField()
    timing = serializers.CharField(allow_blank=True)
    delay_days = serializers.IntegerField()
    decision_moment = serializers.CharField(allow_blank=True)
    layout = serializers.CharField()
    slots = SlotSerializer(many=True)
    transitions = TransitionSerializer(many=True, source="transitions_out")


class StageSerializer(serializers.Serializer):
    code = serializers.CharField(source="audience_stage.code")
    name = serializers.CharField(source="audience_stage.name")
    order = serializers.IntegerField()
    steps = StepSerializer(many=True)


class JourneySummarySerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    brand = serializers.CharField(source="brand.slug")
    audience = serializers.CharField(source="audience.code")
    jurisdictions = SortedCodesField()
    locale = serializers.CharField(source="locale.code")


class JourneyDetailSerializer(JourneySummarySerializer):
    description = serializers.CharField(allow_blank=True)
    stages = StageSerializer(many=True)

