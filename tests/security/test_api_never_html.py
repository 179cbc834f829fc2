"""The API answers JSON for every 4xx/5xx, never Django's HTML pages (which with DEBUG on
list settings): unknown URLs, unknown methods, and a crash inside a view."""

import pytest
from django.test import Client

from tests.api.builders import build_world, token

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(db):
    build_world()
    return token()[1]


def assert_json_error(response, status):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["errors"][0]["code"]
    assert b"<html" not in response.content.lower()


@pytest.mark.parametrize("path", ["/api/v1/nothing-here/", "/api/v1/journeys/no-such/",
                                  "/api/nope", "/api/v1/assemblies/not-a-uuid/"])
def test_unknown_api_urls_are_json_404(key, path):
    assert_json_error(Client().get(path, HTTP_AUTHORIZATION=f"Token {key}"), 404)


def crash_the_webhook_list(monkeypatch):
    from delivery.api import views

    def crash(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(views.WebhookListView, "list", crash)


def test_a_crash_in_an_api_view_is_a_json_500(key, monkeypatch):
    crash_the_webhook_list(monkeypatch)
    client = Client(raise_request_exception=False)
    assert_json_error(client.get("/api/v1/webhooks/", HTTP_AUTHORIZATION=f"Token {key}"), 500)


def test_a_crash_in_an_api_view_is_a_json_500_even_with_debug_on(key, settings, monkeypatch):
    settings.DEBUG = True  # the technical page lists settings: it must not answer the API
    crash_the_webhook_list(monkeypatch)
    client = Client(raise_request_exception=False)
    assert_json_error(client.get("/api/v1/webhooks/", HTTP_AUTHORIZATION=f"Token {key}"), 500)
