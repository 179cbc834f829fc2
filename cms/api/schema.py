"""OpenAPI: every operation documents the error shape (cms.api.errors) and its codes."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers


class ErrorItemSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable reason, e.g. `no_consent`")
    detail = serializers.CharField(help_text="The reason in words")
    field = serializers.CharField(required=False, help_text="Input field, for validation errors")
    module = serializers.CharField(required=False, help_text="Module code the refusal is about")
    row = serializers.IntegerField(required=False, help_text="CSV row (1 = header) or list index")


class ErrorResponseSerializer(serializers.Serializer):
    errors = ErrorItemSerializer(many=True)


COMMON_ERRORS: dict[int, tuple[str, list[str]]] = {
    400: ("Malformed or invalid input: the `field` names the input. Codes: malformed_json, "
          "required, invalid, null, blank, max_length, min_value, max_value, invalid_choice, "
          "not_a_list, bad_request.",
          ["malformed_json", "required", "invalid"]),
    401: ("No or bad credentials. Codes: not_authenticated, invalid_token, token_revoked.",
          ["not_authenticated", "invalid_token", "token_revoked"]),
    403: ("Authenticated but not allowed. Codes: permission_denied, channel_out_of_scope, "
          "jurisdiction_out_of_scope, csrf_failed, people_only.",
          ["channel_out_of_scope", "jurisdiction_out_of_scope", "permission_denied"]),
    404: ("Not found (or not visible to you). Code: not_found.", ["not_found"]),
    405: ("Method not allowed. Code: method_not_allowed.", ["method_not_allowed"]),
    406: ("Only application/json is produced. Code: not_acceptable.", ["not_acceptable"]),
    413: ("Body larger than DATA_UPLOAD_MAX_MEMORY_SIZE. Code: request_too_large.",
          ["request_too_large"]),
    415: ("Send application/json. Code: unsupported_media_type.", ["unsupported_media_type"]),
    429: ("Rate limit of the token exceeded; see Retry-After. Code: throttled.", ["throttled"]),
}
BODY_ERRORS = (400, 413, 415)


def error_response(description: str, codes: list[str]) -> OpenApiResponse:
    return OpenApiResponse(
        response=ErrorResponseSerializer,
        description=description,
        examples=[
            OpenApiExample(code, value={"errors": [{"code": code, "detail": "…"}]},
                           response_only=True)
            for code in codes
        ],
    )


def unprocessable(codes: list[str], description: str = "") -> OpenApiResponse:
    """422 for an operation, naming its codes."""
    return error_response(
        (description or "Well-formed but refused.") + " Codes: " + ", ".join(codes) + ".", codes
    )


class ErrorAwareAutoSchema(AutoSchema):
    """Adds the shared error responses (with their codes) to every operation."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        statuses = [401, 403, 404, 405, 406, 429]
        if self.method in {"POST", "PUT", "PATCH"}:
            statuses += list(BODY_ERRORS)
        elif self.method == "GET":
            statuses.append(400)  # invalid filter / query parameter values
        for status_code in statuses:
            if str(status_code) not in responses:
                description, codes = COMMON_ERRORS[status_code]
                responses[str(status_code)] = self._get_response_for_code(
                    error_response(description, codes), str(status_code), direction=direction
                )
        return responses


class ChannelTokenScheme(OpenApiAuthenticationExtension):
    target_class = "cms.api.auth.ChannelTokenAuthentication"
    name = "ChannelToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey", "in": "header", "name": "Authorization",
            "description": "`Token <key>`: a channel token from `create_channel_token` "
                           "(scoped to channels and jurisdictions).",
        }
