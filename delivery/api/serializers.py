"""Request and response shapes of the delivery API (assembly, batch, events, webhooks,
where-used): input serializers validate, output serializers render, so the schema is the
code."""

from __future__ import annotations

from rest_framework import serializers

from journeys import unsubscribe
from journeys.api.recipients import RecipientSerializer

from ..models import WebhookEvent


class StrictSerializer(serializers.Serializer):
    """Refuses unknown top-level keys (a typo must not silently change the meaning)."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = set(data) - set(self.fields)
            if unknown:
                raise serializers.ValidationError(
                    {str(name): [serializers.ErrorDetail("Unknown field.", code="unknown_field")]
                     for name in sorted(map(str, unknown))})
        return super().to_internal_value(data)


def validate_unsubscribe_url(value: str) -> str:
    problem = unsubscribe.url_problem(value)
    if problem:
        raise serializers.ValidationError(problem[0].upper() + problem[1:] + ".", code="invalid")
    return value


class AssembleRequestSerializer(StrictSerializer):
    channel = serializers.CharField(max_length=40)
    jurisdiction = serializers.CharField(min_length=2, max_length=2)
    locale = serializers.CharField(max_length=20)
    recipient = RecipientSerializer()
    unsubscribe_url = serializers.CharField(
        max_length=unsubscribe.MAX_LENGTH, required=False,
        validators=[validate_unsubscribe_url],
        help_text="The recipient's own one-click unsubscribe link (https, at most "
                  f"{unsubscribe.MAX_LENGTH} characters, no user name or password); required "
                  "for channel email (else 422 missing_unsubscribe). Rendered in the footer "
                  "and returned as List-Unsubscribe; never stored. `recipient.unsubscribe_url` "
                  "(as in batches) is the same field")

    def validate(self, data):
        url, recipient = data.get("unsubscribe_url"), data["recipient"]
        if url is not None:
            if recipient.get(unsubscribe.FIELD, url) != url:
                raise serializers.ValidationError({"unsubscribe_url": [serializers.ErrorDetail(
                    "Differs from recipient.unsubscribe_url; send it once.", code="invalid")]})
            data["recipient"] = {**recipient, unsubscribe.FIELD: url}
        return data


class AssemblyOutputSerializer(serializers.Serializer):
    subject = serializers.CharField(allow_blank=True)
    html = serializers.CharField(allow_blank=True)
    text = serializers.CharField(allow_blank=True)
    manifest = serializers.JSONField(help_text="Module versions with signatures and sha256, "
                                               "layout, time, output and recipient sha256")
    headers = serializers.DictField(
        child=serializers.CharField(),
        help_text="Mail headers to set on the message: for email List-Unsubscribe "
                  "(<unsubscribe_url>) and List-Unsubscribe-Post (List-Unsubscribe=One-Click, "
                  "RFC 8058); empty for other channels")


class BatchRequestSerializer(StrictSerializer):
    journey = serializers.SlugField(max_length=80)
    step = serializers.CharField(max_length=80)
    channel = serializers.CharField(max_length=40)
    jurisdiction = serializers.CharField(min_length=2, max_length=2)
    locale = serializers.CharField(max_length=20)
    recipients = serializers.ListField(
        child=serializers.JSONField(), allow_empty=False,
        help_text="Up to 10,000 recipient objects (same shape as the single assembly); for "
                  "email each carries its own unsubscribe_url")


class BatchCsvRequestSerializer(serializers.Serializer):
    journey = serializers.SlugField(max_length=80)
    step = serializers.CharField(max_length=80)
    channel = serializers.CharField(max_length=40)
    jurisdiction = serializers.CharField(min_length=2, max_length=2)
    locale = serializers.CharField(max_length=20)
    recipients = serializers.FileField(
        help_text="CSV with a header row (id,title,first_name,last_name,specialty,"
                  "practice_name,city, consent_<channel> columns (true/false) or a consent "
                  "column listing channels, seen_modules, unsubscribe_url (required for "
                  "email)), or a .json list / .ndjson file of recipient objects")


class JobSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField(help_text="queued, running, done or purged")
    journey = serializers.CharField()
    step = serializers.CharField()
    channel = serializers.CharField()
    jurisdiction = serializers.CharField()
    locale = serializers.CharField()
    total = serializers.IntegerField()
    done = serializers.IntegerField(help_text="Recipients processed (assembled or refused)")
    assembled = serializers.IntegerField()
    failed = serializers.IntegerField(help_text="Recipients refused (codes in the results)")
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(help_text="Results are purged after this")
    results = serializers.CharField(help_text="URL of the paginated results")


class JobResultSerializer(serializers.Serializer):
    """A result row: content and manifest when ok, else the refusal codes."""

    index = serializers.IntegerField(help_text="Position in the submitted list (0-based)")
    ok = serializers.BooleanField()
    subject = serializers.CharField(required=False)
    html = serializers.CharField(required=False)
    text = serializers.CharField(required=False)
    manifest = serializers.JSONField(required=False)
    errors = serializers.ListField(child=serializers.DictField(), required=False)

    CONTENT = ("subject", "html", "text", "manifest")

    def to_representation(self, row):
        data = super().to_representation(row)
        for name in ("errors",) if row["ok"] else self.CONTENT:
            data.pop(name, None)
        return data


class EventSerializer(StrictSerializer):
    journey = serializers.SlugField(max_length=80)
    step = serializers.CharField(max_length=80)
    recipient_id = serializers.CharField(max_length=200,
                                         help_text="Your pseudonymous id for the person")
    event = serializers.CharField(max_length=40, help_text="opened, clicked, downloaded, "
                                  "ignored, declined, attended, no_engagement_for")
    days = serializers.IntegerField(required=False, min_value=1, max_value=3650,
                                    help_text="For no_engagement_for: days of silence")
    occurred_at = serializers.DateTimeField(required=False)


class NextStepSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    channel = serializers.CharField(source="channel.code")


class EventResultSerializer(serializers.Serializer):
    """Renders an event as received merged with its outcome (moved, paused, next_step)."""

    journey = serializers.CharField()
    step = serializers.CharField(help_text="Where the event happened")
    event = serializers.CharField()
    moved = serializers.BooleanField(help_text="A transition fired")
    paused = serializers.BooleanField()
    next_step = NextStepSerializer(allow_null=True, help_text="null while paused")


class WebhookCreateSerializer(StrictSerializer):
    url = serializers.URLField(max_length=500)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.values), required=False,
        allow_empty=False, help_text="Default: version.withdrawn and version.expired; "
        "touchpoint.due and rep_task.created (pushes of the due queue) only when named")


class WebhookSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    events = serializers.ListField(child=serializers.CharField())
    active = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(help_text="HMAC-SHA256 key; shown only in this response")


# --- where-used ---------------------------------------------------------------------------

class StepUseSerializer(serializers.Serializer):
    journey = serializers.CharField()
    journey_name = serializers.CharField()
    step = serializers.CharField()
    step_name = serializers.CharField()
    channel = serializers.CharField()
    binding = serializers.ChoiceField(choices=["fixed", "selector"],
                                      help_text="fixed slot, or a selector that may pick it")


class DeliveryCountSerializer(serializers.Serializer):
    channel = serializers.CharField()
    jurisdiction = serializers.CharField()
    deliveries = serializers.IntegerField()


class UsageSerializer(serializers.Serializer):
    module = serializers.CharField()
    version = serializers.IntegerField()
    state = serializers.CharField()
    steps = StepUseSerializer(many=True)
    deliveries = DeliveryCountSerializer(many=True)
    total_deliveries = serializers.IntegerField()


class UnusedVersionSerializer(serializers.Serializer):
    """Renders a ModuleVersion (with module and brand selected)."""

    module = serializers.CharField(source="module.code")
    brand = serializers.CharField(source="module.brand.slug")
    title = serializers.CharField(source="module.title")
    version = serializers.IntegerField(source="number")
    state = serializers.CharField()
    approved_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
