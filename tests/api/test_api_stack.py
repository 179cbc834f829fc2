"""The WSGI application's two middleware chains (cms/handlers.py): a channel-token call to
the API takes the lean chain (settings.API_MIDDLEWARE) and gets the same answer — status,
security headers, body — as through the full chain; people and every other path keep the
full chain. Requests go through the real WSGI application, as gunicorn calls it (the test
client would use its own handler and the full chain)."""

from __future__ import annotations

import json
import logging

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import RequestFactory

from cms.handlers import Application, is_token_api_call
from tests.api.builders import assemble_body, build_world, token
from tests.factories import UserFactory

ASSEMBLE = "/api/v1/journeys/hcp-new/steps/welcome/assemble/"
SECURITY_HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options",
                    "Referrer-Policy", "Cross-Origin-Opener-Policy")
# Differ between two calls by nature (a fresh id, a time in the manifest).
VOLATILE_HEADERS = {"X-Request-ID", "Content-Length"}


@pytest.fixture(autouse=True)
def _fresh_throttle_cache():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def key(world):
    return token()[1]


@pytest.fixture
def app():
    return Application()


def call(handler, method, path, *, body=None, headers=None, host="testserver"):
    """(status, headers, body bytes) of one request through a WSGI handler."""
    factory = RequestFactory(HTTP_HOST=host)
    extra = {f"HTTP_{name.upper().replace('-', '_')}": value
             for name, value in (headers or {}).items()}
    if body is not None:
        request = factory.generic(method, path, json.dumps(body) if not isinstance(body, bytes)
                                  else body, content_type="application/json", **extra)
    else:
        request = factory.generic(method, path, **extra)
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"] = int(status.split()[0])
        answer["headers"] = response_headers

    # As the test client does: a request must not close the test's database connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        result = handler(request.environ, start_response)
        data = b"".join(result)
        result.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return answer["status"], answer["headers"], data


def header_names(headers) -> list[str]:
    return sorted(name for name, _ in headers)


def comparable(headers) -> list[tuple[str, str]]:
    return sorted((name, value) for name, value in headers if name not in VOLATILE_HEADERS)


def without_times(data: bytes):
    body = json.loads(data)
    if isinstance(body, dict) and "manifest" in body:
        body["manifest"].pop("assembled_at", None)
        body["manifest"].pop("output_sha256", None)
        body.pop("html"), body.pop("text")  # the footer carries the time too
    return body


def test_token_api_calls_take_the_lean_chain_and_nothing_else_does():
    assert is_token_api_call({"PATH_INFO": ASSEMBLE, "HTTP_AUTHORIZATION": "Token abc"})
    assert is_token_api_call({"PATH_INFO": "/api/v1/modules/", "HTTP_AUTHORIZATION": "token x"})
    assert not is_token_api_call({"PATH_INFO": "/api/v1/modules/"})  # a person's session
    assert not is_token_api_call({"PATH_INFO": "/api/v1/modules/",
                                  "HTTP_AUTHORIZATION": "Basic abc"})
    assert not is_token_api_call({"PATH_INFO": "/admin/", "HTTP_AUTHORIZATION": "Token abc"})
    assert not is_token_api_call({"PATH_INFO": "/review/", "HTTP_AUTHORIZATION": "Token abc"})


@pytest.mark.parametrize("case", [
    "assemble", "bad_body", "unknown_step", "out_of_scope", "wrong_method", "modules",
    "unknown_token", "malformed_token", "bad_host", "unknown_url", "bad_json",
])
def test_the_lean_chain_answers_as_the_full_chain(app, key, case):
    auth = {"Authorization": f"Token {key}"}
    method, path, body, headers, host = {
        "assemble": ("POST", ASSEMBLE, assemble_body(), auth, "testserver"),
        "bad_body": ("POST", ASSEMBLE, assemble_body(recipient={"first_name": "A"},
                                                     extra_field=1), auth, "testserver"),
        "unknown_step": ("POST", ASSEMBLE.replace("welcome", "nope"), assemble_body(), auth,
                         "testserver"),
        "out_of_scope": ("POST", ASSEMBLE, assemble_body(jurisdiction="DE"), auth,
                         "testserver"),
        "wrong_method": ("GET", ASSEMBLE, None, auth, "testserver"),
        "modules": ("GET", "/api/v1/modules/", None, auth, "testserver"),
        "unknown_token": ("GET", "/api/v1/modules/", None,
                          {"Authorization": "Token tsr_nope"}, "testserver"),
        "malformed_token": ("GET", "/api/v1/modules/", None,
                            {"Authorization": "Token a b"}, "testserver"),
        "bad_host": ("GET", "/api/v1/modules/", None, auth, "evil.example"),
        "unknown_url": ("GET", "/api/v1/nothing-here/", None, auth, "testserver"),
        "bad_json": ("POST", ASSEMBLE, b'{"channel": ', auth, "testserver"),
    }[case]
    assert is_token_api_call({"PATH_INFO": path, "HTTP_AUTHORIZATION": headers["Authorization"]})
    full = call(app.full, method, path, body=body, headers=headers, host=host)
    lean = call(app.lean, method, path, body=body, headers=headers, host=host)
    assert lean[0] == full[0]
    assert comparable(lean[1]) == comparable(full[1])
    assert header_names(lean[1]) == header_names(full[1])
    assert without_times(lean[2]) == without_times(full[2])
    if case != "bad_host":  # refused before any middleware adds them (both chains alike)
        for name in SECURITY_HEADERS:
            assert name in dict(lean[1]), (name, lean[1])


def test_assembly_through_the_application_is_logged_and_has_the_security_headers(
        app, key, caplog):
    from delivery.models import Delivery

    with caplog.at_level(logging.INFO, logger="tessera.request"):
        status, headers, data = call(app, "POST", ASSEMBLE, body=assemble_body(),
                                     headers={"Authorization": f"Token {key}",
                                              "X-Request-ID": "channel-call-1"})
    assert status == 200, data
    headers = dict(headers)
    assert headers["X-Request-ID"] == "channel-call-1"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert "Set-Cookie" not in headers and "Vary" not in headers
    assert Delivery.objects.count() == 1
    [line] = [r for r in caplog.records if r.name == "tessera.request"]
    assert (line.method, line.path, line.status) == ("POST", ASSEMBLE, 200)
    assert line.request_id == "channel-call-1"
    assert "Morgan" not in line.getMessage()


def test_throttled_token_is_429_through_the_lean_chain(app, world):
    _, key = token(rate_limit="2/min", name="Slow sender")
    auth = {"Authorization": f"Token {key}"}
    statuses = [call(app, "GET", "/api/v1/modules/", headers=auth)[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    status, headers, data = call(app, "GET", "/api/v1/modules/", headers=auth)
    assert status == 429 and json.loads(data)["errors"][0]["code"] == "throttled"
    assert int(dict(headers)["Retry-After"]) >= 1


def test_a_person_signed_in_on_the_api_keeps_the_full_chain(app, client, world):
    person = UserFactory(is_superuser=True, is_staff=True)
    client.force_login(person)
    cookie = client.cookies["sessionid"].value
    status, _, data = call(app, "GET", "/api/v1/modules/",
                           headers={"Cookie": f"sessionid={cookie}"})
    assert status == 200, data
    # The lean chain has no session: the same request is not signed in there.
    assert call(app.lean, "GET", "/api/v1/modules/",
                headers={"Cookie": f"sessionid={cookie}"})[0] in (401, 403)


def test_a_token_header_on_a_page_keeps_the_full_chain(app, key):
    status, headers, _ = call(app, "GET", "/admin/login/",
                              headers={"Authorization": f"Token {key}"})
    assert status == 200
    assert any(name == "Set-Cookie" and "csrftoken" in value for name, value in headers)


def test_https_deployment_headers_on_the_lean_chain(settings, key):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    app = Application()  # the middleware read their settings when built
    auth = {"Authorization": f"Token {key}"}
    status, headers, _ = call(app.lean, "GET", "/api/v1/modules/", headers=auth)
    assert status == 301 and dict(headers)["Location"].startswith("https://")
    status, headers, _ = call(app.lean, "GET", "/api/v1/modules/",
                              headers={**auth, "X-Forwarded-Proto": "https"})
    assert status == 200
    assert dict(headers)["Strict-Transport-Security"].startswith("max-age=31536000")


@pytest.mark.redis
def test_the_token_counter_is_one_expiring_redis_key(app, world, settings):
    from django.core.cache import caches

    from cms.api.auth import count_in_window

    cache = caches["default"]
    if cache.__class__.__name__ != "RedisCache":
        pytest.skip("the services profile's cache is Redis")
    assert [count_in_window(cache, "stack-test", 61) for _ in range(3)] == [1, 2, 3]
    assert cache.get("stack-test") == 3  # readable by Django's own cache API
    ttl = cache._cache.get_client().ttl(cache.make_and_validate_key("stack-test"))
    assert 0 < ttl <= 61
