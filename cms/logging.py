"""Structured logs: one JSON object per line, a request log line, and no recipient data.

TESSERA_LOG_FORMAT=json selects `JsonFormatter` (the default under gunicorn and `make serve`);
`plain` (the development default) keeps readable lines. Either way `PersonalDataFilter`
sits on the handler, so a value logged under a personal key never reaches the output.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime

from .request_context import request_id_var

# Keys under which recipient personal data travels in Tessera (the assemble body's
# "recipient" and its fields, contact details). A log call passing any of them, as an
# `extra` or inside a mapping argument, gets the value replaced by REDACTED.
PERSONAL_KEYS = frozenset({
    "recipient", "recipients", "recipient_data", "first_name", "last_name", "full_name",
    "title", "email", "email_address", "phone", "mobile", "address", "street",
    "city", "postcode", "zip", "birth_date", "date_of_birth", "dob", "specialty",
    "npi", "ssn", "password", "body", "html", "text", "subject",
})
REDACTED = "[redacted]"
# A task's arguments and result may carry recipients; Celery logs them in mapping arguments
# and in its `data` extra.
TASK_PAYLOAD_KEYS = frozenset({"args", "kwargs", "return_value"})

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "request_id", "taskName",
}


def _scrub(value, depth: int = 0):
    """A copy of `value` with every personal key's value replaced (nested dicts and lists)."""
    if depth > 6:
        return value
    if isinstance(value, dict):
        return {key: REDACTED if str(key).lower() in PERSONAL_KEYS | TASK_PAYLOAD_KEYS
                else _scrub(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(item, depth + 1) for item in value)
    return value


class PersonalDataFilter(logging.Filter):
    """Redact personal keys from a record's extras and mapping arguments; tag the request id."""

    def filter(self, record: logging.LogRecord) -> bool:
        redacted = []
        for key in list(vars(record)):
            if key in _STANDARD_ATTRIBUTES:
                continue
            if key.lower() in PERSONAL_KEYS:
                setattr(record, key, REDACTED)
                redacted.append(key)
            else:
                setattr(record, key, _scrub(getattr(record, key)))
        if isinstance(record.args, dict):
            # Celery's task lines pass a task's arguments and return value this way.
            record.args = _scrub(record.args)
        elif isinstance(record.args, tuple) and any(isinstance(a, dict) for a in record.args):
            record.args = _scrub(record.args)
        if redacted:
            record.redacted = sorted(redacted)
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, then extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """Readable development lines, with the request id."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return super().format(record)


def logging_config(*, log_format: str, level: str) -> dict:
    """The LOGGING dict for settings: one console handler with the chosen format."""
    formatter = "json" if log_format.strip().lower() == "json" else "plain"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"personal_data": {"()": "cms.logging.PersonalDataFilter"}},
        "formatters": {
            "json": {"()": "cms.logging.JsonFormatter"},
            "plain": {"()": "cms.logging.PlainFormatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": formatter,
                "filters": ["personal_data"],
            },
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            # Our request line replaces Django's and gunicorn's access logs.
            "django.server": {"level": "WARNING"},
            "django.request": {"level": "ERROR"},
        },
    }


request_logger = logging.getLogger("tessera.request")


class RequestLogMiddleware:
    """One log line per request: method, path, status, duration, request id — never bodies,
    never the query string (it could carry personal data)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        duration_ms = round((time.perf_counter() - started) * 1000, 2)
        status = response.status_code
        level = logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO
        request_logger.log(
            level, "%s %s %s %.1fms", request.method, request.path, status, duration_ms,
            extra={"method": request.method, "path": request.path, "status": status,
                   "duration_ms": duration_ms},
        )
        return response
