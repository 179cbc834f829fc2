"""One error body for every API 4xx: `{"errors": [{"code", "detail", ...}]}`.

`exception_handler` is DRF's EXCEPTION_HANDLER; `handler400/403/404/500` answer the same
shape for /api/ paths that never reach a DRF view (unknown URLs, Django-level refusals)
and keep Django's HTML pages everywhere else. An exception no handler knows is logged and
answered as a JSON 500 — also under DEBUG, whose HTML page would list the settings. JSON
bodies are read by `cms.api.parsers` (size, depth and number limits).
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

logger = logging.getLogger(__name__)
SERVER_ERROR_DETAIL = "Something went wrong on our side; it is logged."

# Codes for refusals that DRF names generically; field validation keeps DRF's own codes
# (required, invalid, null, blank, max_length, ...).
DEFAULT_CODES = {
    exceptions.ParseError: "malformed_body",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "invalid_token",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}
GENERIC_DRF_CODES = {
    "parse_error", "authentication_failed", "not_authenticated", "permission_denied",
    "not_found", "method_not_allowed", "not_acceptable", "unsupported_media_type", "throttled",
    "error",
}


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than this server accepts."
    default_code = "request_too_large"


class Unprocessable(exceptions.APIException):
    """422: well-formed input that cannot be served compliantly (errors listed)."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "The request cannot be processed."
    default_code = "unprocessable"

    def __init__(self, errors: list[dict]):
        self.errors = errors
        super().__init__(detail=errors[0]["detail"] if errors else None,
                         code=errors[0]["code"] if errors else None)


def error(code: str, detail: str, **extra) -> dict:
    return {"code": code, "detail": str(detail), **extra}


def too_large_detail() -> str:
    return (f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes; "
            "send fewer recipients per request.")


def _flatten(detail, path: str = "") -> list[dict]:
    """Turn DRF's nested ValidationError detail into a flat list with field paths."""
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            if key in {"non_field_errors", "__all__"}:
                sub = path
            elif isinstance(key, int) or str(key).isdigit():
                sub = f"{path}[{key}]"  # a list index (ListField reports errors by index)
            else:
                sub = f"{path}.{key}" if path else str(key)
            out.extend(_flatten(value, sub))
        return out
    if isinstance(detail, list):
        out = []
        for i, value in enumerate(detail):
            if isinstance(value, dict | list):
                out.extend(_flatten(value, f"{path}[{i}]" if path else f"[{i}]"))
            else:
                out.extend(_flatten(value, path))
        return out
    item = {"code": getattr(detail, "code", None) or "invalid", "detail": str(detail)}
    if path:
        item["field"] = path
    return [item]


def errors_for(exc: exceptions.APIException) -> list[dict]:
    if isinstance(exc, Unprocessable):
        return exc.errors
    if isinstance(exc, exceptions.ValidationError):
        return _flatten(exc.detail) or [error("invalid", "Invalid input.")]
    code = exc.get_codes() if isinstance(exc.detail, str) else None
    if isinstance(exc, exceptions.PermissionDenied) and str(exc.detail).startswith("CSRF Failed"):
        code = "csrf_failed"  # session callers (people) must send the CSRF token
    if not isinstance(code, str) or code in GENERIC_DRF_CODES:
        code = next((c for cls, c in DEFAULT_CODES.items() if isinstance(exc, cls)), "error")
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    return [error(code, detail)]


def exception_handler(exc, context):
    """DRF exception handler: every refusal in the one error shape, never a 500 for input."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*(exc.args))
    elif isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge(too_large_detail())
    elif isinstance(exc, SuspiciousOperation):
        exc = exceptions.ParseError("The request was refused as malformed.", code="bad_request")
    if not isinstance(exc, exceptions.APIException):
        # A bug, not bad input: log it with its traceback and answer in the API's shape
        # (returning None would let DEBUG's technical page reach the caller).
        request = context.get("request")
        logger.error("Unhandled exception in %s", getattr(request, "path", "an API view"),
                     exc_info=(type(exc), exc, exc.__traceback__))
        set_rollback()
        return Response({"errors": [error("server_error", SERVER_ERROR_DETAIL)]},
                        status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(max(1, round(exc.wait)))
    set_rollback()
    return Response({"errors": errors_for(exc)}, status=exc.status_code, headers=headers)


# --- Django-level handlers (URLs outside DRF views) ---------------------------------------

def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def _json_error(status_code: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"errors": [error(code, detail)]}, status=status_code)


def handler400(request, exception=None):
    if _is_api(request):
        if isinstance(exception, RequestDataTooBig):
            return _json_error(413, "request_too_large", too_large_detail())
        return _json_error(400, "bad_request", "The request was refused as malformed.")
    return defaults.bad_request(request, exception)


def handler403(request, exception=None):
    if _is_api(request):
        return _json_error(403, "permission_denied", "You may not do this.")
    return defaults.permission_denied(request, exception)


def handler404(request, exception=None):
    if _is_api(request):
        return _json_error(404, "not_found", f"No API resource at {request.path}.")
    return defaults.page_not_found(request, exception)


def handler500(request):
    if _is_api(request):
        return _json_error(500, "server_error", SERVER_ERROR_DETAIL)
    return defaults.server_error(request)
