"""The WSGI application: channel-token API calls through a lean middleware chain.

A channel calls `/api/` with `Authorization: Token <key>` once per recipient; it has no
session, no CSRF cookie, no second factor, no flash messages, no htmx, and no sign-in to
throttle. `settings.MIDDLEWARE` (15 layers) serves everything else — people's pages, the
admin, and API calls signed in with a session — while such token calls go through
`settings.API_MIDDLEWARE`: the same security headers (SecurityMiddleware: nosniff,
Referrer-Policy, Cross-Origin-Opener-Policy, HSTS and the HTTPS redirect when on; CSP;
X-Frame-Options), the request id and the request log line, and CommonMiddleware. The view,
its authentication (ChannelTokenAuthentication first: a token request never reads the
session), permissions and throttle are the same either way
(tests/api/test_api_stack.py sends the same token requests through both chains and
compares status, headers and body).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.utils.module_loading import import_string

TOKEN_KEYWORD = "token "  # ChannelTokenAuthentication's keyword, any case


class LeanWSGIHandler(WSGIHandler):
    """A WSGIHandler whose middleware chain is `settings.API_MIDDLEWARE` (synchronous
    middleware only, as every layer of ours is), built as Django builds MIDDLEWARE's."""

    setting = "API_MIDDLEWARE"

    def load_middleware(self, is_async=False):
        if is_async:
            raise ImproperlyConfigured("The lean API chain is for WSGI (synchronous) only.")
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response)
        for path in reversed(getattr(settings, self.setting)):
            try:
                instance = import_string(path)(handler)
            except MiddlewareNotUsed:
                continue
            if instance is None:
                raise ImproperlyConfigured(f"Middleware factory {path} returned None.")
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, instance.process_view)
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(instance.process_template_response)
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(instance.process_exception)
            handler = convert_exception_to_response(instance)
        self._middleware_chain = handler


def is_token_api_call(environ) -> bool:
    """A request to an API path (settings.API_PATH_PREFIXES) carrying a channel token."""
    path = environ.get("PATH_INFO", "")
    if not path.startswith(settings.API_PATH_PREFIXES):
        return False
    return environ.get("HTTP_AUTHORIZATION", "")[:6].lower() == TOKEN_KEYWORD


class Application:
    """Dispatch each request to the lean chain (token API calls) or the full one."""

    def __init__(self):
        self.full = WSGIHandler()
        self.lean = LeanWSGIHandler()

    def __call__(self, environ, start_response):
        handler = self.lean if is_token_api_call(environ) else self.full
        return handler(environ, start_response)
