"""Refusals outside the happy paths: Django-level 400s, CSV limits, query budgets."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from delivery.models import AssemblyJob
from tests.api.builders import build_world, codes, token, token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def client(world):
    _, key = token()
    return token_client(key)


def csv_form(text):
    return {"journey": "hcp-new", "step": "welcome", "channel": "email", "jurisdiction": "US",
            "locale": "en",
            "recipients": SimpleUploadedFile("r.csv", text.encode(), content_type="text/csv")}


def test_bad_host_on_an_api_path_is_a_json_400():
    response = Client(HTTP_HOST="evil.example").get("/api/v1/modules/")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "bad_request"


def test_csv_larger_than_the_upload_limit_is_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 200
    rows = "id,last_name,consent_email\n" + "".join(f"r{i},N{i},true\n" for i in range(50))
    response = client.post("/api/v1/assemblies/", csv_form(rows), format="multipart")
    assert response.status_code == 413 and codes(response) == ["request_too_large"]
    assert AssemblyJob.objects.count() == 0


def test_csv_with_10001_rows_is_422(client):
    rows = "id,consent_email\n" + "".join(f"r{i},true\n" for i in range(10_001))
    response = client.post("/api/v1/assemblies/", csv_form(rows), format="multipart")
    assert response.status_code == 422 and codes(response) == ["too_many_recipients"]
    assert AssemblyJob.objects.count() == 0


def test_csv_that_is_not_utf8_is_400(client):
    form = csv_form("")
    form["recipients"] = SimpleUploadedFile("r.csv", b"id\n\xff\xfe\n", content_type="text/csv")
    response = client.post("/api/v1/assemblies/", form, format="multipart")
    assert response.status_code == 400 and codes(response) == ["invalid_csv"]


def test_journey_detail_and_results_pages_have_bounded_queries(
        client, django_assert_max_num_queries, django_capture_on_commit_callbacks):
    with django_assert_max_num_queries(20):
        assert client.get("/api/v1/journeys/hcp-new/").status_code == 200
    body = {"journey": "hcp-new", "step": "welcome", "channel": "email", "jurisdiction": "US",
            "locale": "en", "recipients": [{"id": f"r{i}", "title": "Dr.", "last_name": "N",
                                            "consent": {"email": True},
                                            "unsubscribe_url": f"https://prefs.example.test/u/{i}"}
                                           for i in range(30)]}
    with django_capture_on_commit_callbacks(execute=True):
        job_id = client.post("/api/v1/assemblies/", body, format="json").json()["id"]
    with django_assert_max_num_queries(12):
        page = client.get(f"/api/v1/assemblies/{job_id}/results/").json()
    assert len(page["results"]) == 30
