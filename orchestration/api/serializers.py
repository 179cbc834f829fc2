"""Request and response shapes of the orchestration API (the schema is the code)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from delivery.api.serializers import StrictSerializer

from .. import leases


class EnrollRequestSerializer(StrictSerializer):
    journey = serializers.SlugField(max_length=80)
    recipients = serializers.ListField(
        child=serializers.JSONField(), min_length=1, max_length=10_000,
        help_text="Up to 10,000 objects: id (required; hashed, never stored), audience, "
                  "specialty, market, locale, channels (preferences), consent {channel: bool}")


class EnrolledSerializer(serializers.Serializer):
    row = serializers.IntegerField()
    pseudonym = serializers.CharField(help_text="The keyed hash the due queue names the person by")
    created = serializers.BooleanField()
    step = serializers.CharField(allow_null=True)


class EnrollResponseSerializer(serializers.Serializer):
    journey = serializers.CharField()
    created = serializers.IntegerField()
    already_enrolled = serializers.IntegerField()
    recipients = EnrolledSerializer(many=True)


class RepTaskSerializer(serializers.Serializer):
    module_code = serializers.CharField()
    module_version = serializers.IntegerField(allow_null=True)
    summary = serializers.JSONField()


@extend_schema_serializer(component_name="DueTouchpoint")  # analytics has a "Touchpoint"
class TouchpointSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    journey = serializers.CharField(source="step.journey.slug")
    step = serializers.CharField(source="step.key")
    channel = serializers.CharField()
    market = serializers.CharField()
    locale = serializers.CharField()
    recipient = serializers.CharField(source="recipient_hash",
                                      help_text="The pseudonym returned at enrollment")
    due_at = serializers.DateTimeField()
    status = serializers.CharField()
    reason = serializers.CharField()
    lease_expires_at = serializers.DateTimeField(allow_null=True)
    errors = serializers.JSONField()
    result = serializers.JSONField(allow_null=True)

    def to_representation(self, instance):
        # The fields above declare the shape for the schema; `leases` builds it, so the ack
        # response, a polled lease and a pushed one cannot drift apart.
        return leases.touchpoint(instance)


class LeasedSerializer(serializers.Serializer):
    touchpoint = TouchpointSerializer()
    ack_url = serializers.CharField()
    assemble_url = serializers.CharField()
    rep_task = RepTaskSerializer(allow_null=True, required=False)
    assembled = serializers.JSONField(allow_null=True, required=False,
                                      help_text="With ?assemble=true: subject, html, text, "
                                                "headers, manifest")
    errors = serializers.JSONField(required=False)


class LeaseResponseSerializer(serializers.Serializer):
    channel = serializers.CharField()
    items = LeasedSerializer(many=True)


class PushSerializer(serializers.Serializer):
    """The body of a `touchpoint.due` / `rep_task.created` push (signed like every webhook:
    X-Tessera-Timestamp, X-Tessera-Signature = sha256=HMAC(secret, timestamp + "." + body))."""

    id = serializers.UUIDField(help_text="The push's event id: the same on every retry")
    event = serializers.ChoiceField(choices=["touchpoint.due", "rep_task.created"])
    occurred_at = serializers.DateTimeField()
    channel = serializers.CharField()
    lease_expires_at = serializers.DateTimeField(
        help_text="Acknowledge each item before this, or it returns to the queue (and is "
                  "pushed again)")
    items = LeasedSerializer(many=True, help_text="As GET /api/v1/due/ returns them; leased "
                                                  "to your token")


class AckRequestSerializer(StrictSerializer):
    result = serializers.ChoiceField(choices=["delivered", "failed", "retry"])
    detail = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class SignalRequestSerializer(StrictSerializer):
    signal = serializers.SlugField(max_length=80)
    attributes = serializers.DictField(child=serializers.CharField(max_length=100),
                                       required=False, default=dict,
                                       help_text="Narrow to audience, specialty, market, locale")
    journey = serializers.SlugField(max_length=80, required=False)


class SignalResponseSerializer(serializers.Serializer):
    signal = serializers.CharField(source="name")
    moved = serializers.IntegerField()
    received_at = serializers.DateTimeField()
