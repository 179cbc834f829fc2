"""The recipient of the API (single and batch assembly): the declared fields give the
schema, and validation is the one recipients parser's (`journeys.recipients`), so the
API, the CSV/NDJSON uploads and the command accept exactly the same recipients."""

from __future__ import annotations

from rest_framework import serializers

from journeys import recipients as rules
from journeys import unsubscribe


def _text_field(name: str, **kwargs) -> serializers.CharField:
    return serializers.CharField(max_length=rules.FIELD_MAX_LENGTHS[name], required=False,
                                 allow_blank=True, **kwargs)


class RecipientSerializer(serializers.Serializer):
    """The recipient: used to personalise, then forgotten (never stored or logged).
    Unknown keys are refused; consent may only name the taxonomy's channels."""

    id = serializers.CharField(max_length=rules.ID_MAX_LENGTH,
                               help_text="Your pseudonymous id for the person")
    title = _text_field("title")
    first_name = _text_field("first_name")
    last_name = _text_field("last_name")
    specialty = _text_field("specialty")
    practice_name = _text_field("practice_name")
    city = _text_field("city")
    consent = serializers.DictField(
        child=serializers.BooleanField(), required=False,
        help_text='Per channel, e.g. {"email": true}; or a list of the channels consented '
                  'to; `consent_<channel>` keys are accepted too')
    seen_modules = serializers.ListField(
        child=serializers.CharField(max_length=rules.MODULE_CODE_MAX_LENGTH),
        max_length=rules.SEEN_MODULES_MAX, required=False,
        help_text="Module codes the person already saw elsewhere: selector slots skip them")
    unsubscribe_url = serializers.CharField(
        max_length=unsubscribe.MAX_LENGTH, required=False,
        help_text="The person's own one-click unsubscribe link (https); required for email. "
                  "Rendered in the footer and the List-Unsubscribe header, never stored")

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                serializers.ErrorDetail("Expected an object.", code="invalid"))
        recipient, problems = rules.clean_recipient(data, channels=self._channels())
        if problems:
            errors: dict[str, list] = {}
            for problem in problems:
                key = problem.field or serializers.api_settings.NON_FIELD_ERRORS_KEY
                message = problem.message[0].upper() + problem.message[1:] + "."
                errors.setdefault(key, []).append(
                    serializers.ErrorDetail(message, code=problem.code))
            raise serializers.ValidationError(errors)
        return recipient

    def _channels(self) -> frozenset[str]:
        # Read once per request, not once per recipient of a batch (`many=True` shares it).
        if "channels" in self.context:
            return frozenset(self.context["channels"])
        if not hasattr(self, "_channel_codes"):
            self._channel_codes = rules.channel_codes()
        return self._channel_codes


assert set(rules.KNOWN_COLUMNS) <= set(RecipientSerializer._declared_fields)
