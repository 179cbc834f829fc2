"""The module list answers channel tokens with an ETag and 304 on an unchanged page; the
ETag changes with the catalog (epoch), the filters and the validity windows."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from content.api import views
from tests.api.conftest import approved_version, token_client
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/modules/"


@pytest.fixture
def client(make_token):
    approved_version()
    _, key = make_token()
    return token_client(key)


def test_an_unchanged_page_is_304(client):
    first = client.get(URL)
    assert first.status_code == 200
    etag = first["ETag"]
    again = client.get(URL, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert client.get(URL, HTTP_IF_NONE_MATCH=f'"other", {etag}').status_code == 304


def test_a_catalog_change_changes_the_etag(client):
    etag = client.get(URL)["ETag"]
    approved_version()
    changed = client.get(URL, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert len(changed.json()["results"]) == 2


def test_filters_and_pages_have_their_own_etag(client):
    etag = client.get(URL)["ETag"]
    filtered = client.get(URL, {"kind": "isi"}, HTTP_IF_NONE_MATCH=etag)
    assert filtered.status_code == 200
    assert filtered["ETag"] != etag


def test_a_version_entering_its_window_changes_the_etag(client, monkeypatch):
    starts = timezone.now() + timedelta(hours=1)
    approved_version(valid_from=starts)
    before = client.get(URL)
    assert len(before.json()["results"]) == 1
    monkeypatch.setattr(views, "timezone", SimpleNamespace(now=lambda: starts + timedelta(seconds=1)))
    after = client.get(URL, HTTP_IF_NONE_MATCH=before["ETag"])
    assert after.status_code == 200
    assert after["ETag"] != before["ETag"]


def test_an_out_of_scope_filter_is_still_refused_after_a_cached_page(client):
    client.get(URL)
    assert client.get(URL, {"jurisdiction": "DE"}).status_code == 403


def test_people_get_no_etag(client):
    from rest_framework.test import APIClient

    person = APIClient()
    person.force_authenticate(UserFactory(is_superuser=True, is_staff=True))
    response = person.get(URL)
    assert response.status_code == 200
    assert "ETag" not in response
