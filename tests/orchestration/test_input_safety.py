"""Bad input to the orchestration API is a clear 4xx in the one error shape, never a 500,
and never echoes a recipient value."""

from pathlib import Path

import pytest

from journeys.models import Enrollment

CORPUS = Path("/work/shared/corpus/xss-vectors.txt")
BAD_ENROLLMENTS = [
    None, [], "x", {"journey": "hcp-new"}, {"journey": "hcp-new", "recipients": []},
    {"journey": "hcp-new", "recipients": "crm-1"}, {"journey": "hcp-new", "recipients": [None]},
    {"journey": "hcp-new", "recipients": [{"id": ""}]},
    {"journey": "hcp-new", "recipients": [{"id": {"a": 1}}]},
    {"journey": "hcp-new", "recipients": [{"id": "a", "consent": {"email": "yes"}}]},
    {"journey": "hcp-new", "recipients": [{"id": "a", "channels": ["fax"]}]},
    {"journey": "hcp-new", "recipients": [{"id": "a", "locale": "<script>"}]},
    {"journey": "hcp-new", "recipients": [{"id": "a" * 201}]},
    {"journey": "../x", "recipients": [{"id": "a"}]},
    {"journey": "hcp-new", "recipients": [{"id": "a"}], "extra": 1},
]


@pytest.mark.parametrize("body", BAD_ENROLLMENTS)
def test_bad_enrollments_are_refused_cleanly(world, email_client, body):
    response = email_client.post("/api/v1/enrollments/", body, format="json")
    assert 400 <= response.status_code < 500, response.content
    assert response.json()["errors"][0]["code"]
    assert not Enrollment.objects.exists()


def test_hostile_values_are_stored_as_data_or_refused(world, email_client):
    vectors = [v for v in CORPUS.read_text().splitlines() if v.strip()][:50] \
        if CORPUS.exists() else ["<script>alert(1)</script>"]
    for vector in vectors:
        response = email_client.post("/api/v1/enrollments/", {
            "journey": "hcp-new", "recipients": [{"id": vector, "market": "US",
                                                  "specialty": vector[:100]}]}, format="json")
        assert response.status_code in (200, 422), response.content
        if response.status_code == 422:
            assert vector not in response.content.decode()


@pytest.mark.parametrize("query", ["?channel=email&limit=0", "?channel=email&limit=x",
                                   "?channel=email&lease_seconds=5", "?channel=%00",
                                   "?channel=email&limit=99999"])
def test_bad_lease_parameters(world, email_client, query):
    response = email_client.get("/api/v1/due/" + query)
    assert response.status_code in (400, 403), response.content


def test_people_and_strangers_get_json_refusals(world, client, email_client):
    assert client.get("/api/v1/due/?channel=email").status_code in (401, 403)
    assert email_client.post("/api/v1/due/999/ack/", {"result": "delivered"},
                             format="json").status_code == 404
    assert email_client.post("/api/v1/due/1/ack/", {"result": "sent"},
                             format="json").status_code == 400
    assert email_client.post("/api/v1/signals/", {"signal": "<x>"},
                             format="json").status_code == 400
