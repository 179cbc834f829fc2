import pytest

from journeys.models import EngagementEvent, Enrollment
from tests.api.builders import build_world, codes, token, token_client

pytestmark = pytest.mark.django_db
URL = "/api/v1/events/"


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def client(world):
    _, key = token(channels=["email", "portal"])
    return token_client(key)


def event(**overrides):
    return {"journey": "hcp-new", "step": "welcome", "recipient_id": "crm-77",
            "event": "ignored", **overrides}


def test_single_event_returns_next_step(client):
    response = client.post(URL, event(), format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["next_step"]["key"] == "welcome" and body["moved"] is False
    second = client.post(URL, event(), format="json").json()
    assert second["moved"] is True
    assert second["next_step"] == {"key": "portal-followup", "name": "Portal follow-up",
                                   "channel": "portal"}
    enrollment = Enrollment.objects.get()
    assert "crm-77" not in enrollment.recipient_hash


def test_list_of_events_is_recorded_together(client):
    response = client.post(URL, [event(), event(), event(recipient_id="crm-78")], format="json")
    assert response.status_code == 200
    assert [r["moved"] for r in response.json()] == [False, True, False]
    assert EngagementEvent.objects.count() == 3


@pytest.mark.parametrize("overrides, code", [
    ({"journey": "nope"}, "unknown_journey"),
    ({"step": "nope"}, "unknown_step"),
    ({"event": "liked"}, "unknown_event_type"),
])
def test_unknown_journey_step_or_event_type_is_422(client, overrides, code):
    response = client.post(URL, event(**overrides), format="json")
    assert response.status_code == 422 and codes(response) == [code]
    assert EngagementEvent.objects.count() == 0


def test_one_bad_event_in_a_list_records_none_and_names_its_row(client):
    response = client.post(URL, [event(), event(event="liked")], format="json")
    assert response.status_code == 422
    assert response.json()["errors"][0]["row"] == 1
    assert EngagementEvent.objects.count() == 0


def test_event_validation_errors_are_400(client):
    response = client.post(URL, {"journey": "hcp-new"}, format="json")
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {"step", "recipient_id", "event"}
    response = client.post(URL, [], format="json")
    assert response.status_code == 400
    response = client.post(URL, event(event="no_engagement_for"), format="json")
    assert response.status_code == 422 and codes(response) == ["invalid_event"]


def test_event_on_a_channel_outside_token_scope_is_403(world):
    _, key = token(channels=["sms"], name="SMS")
    response = token_client(key).post(URL, event(), format="json")
    assert response.status_code == 403 and codes(response) == ["channel_out_of_scope"]
