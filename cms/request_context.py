"""Per-request context shared with logging (the request id), without touching the request."""

from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
