"""The orchestration API as channels use it: enroll, lease, ack, signals; errors and scope."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from journeys.models import Enrollment, pseudonymous_id
from orchestration import due_queue, scheduler
from orchestration.models import DueTouchpoint, Move, SendWindow, TriggerRule
from tests.api.builders import token, token_client


@pytest.fixture
def always_open(db):
    """The real clock drives the API: open the US window around the clock."""
    SendWindow.objects.create(market="US", time_zone="UTC", start_hour=0, end_hour=24,
                              weekdays=[0, 1, 2, 3, 4, 5, 6])


def enroll(client, *recipients, journey="hcp-new"):
    return client.post("/api/v1/enrollments/", {"journey": journey, "recipients": list(recipients)},
                       format="json")


def codes(response):
    return [e["code"] for e in response.json()["errors"]]


def test_enrollment_is_idempotent_and_pseudonymous(world, email_client):
    first = enroll(email_client, {"id": "crm-1", "market": "US", "specialty": "Cardiology",
                                  "consent": {"email": True}}, {"id": "crm-2", "market": "DE"})
    assert first.status_code == 200, first.content
    body = first.json()
    assert (body["created"], body["already_enrolled"]) == (2, 0)
    assert body["recipients"][0]["pseudonym"] == pseudonymous_id("crm-1")
    assert body["recipients"][0]["step"] == "welcome"
    again = enroll(email_client, {"id": "crm-1", "market": "US"})
    assert again.json()["created"] == 0 and again.json()["already_enrolled"] == 1
    assert Enrollment.objects.filter(journey=world["journey"]).count() == 2
    assert not Enrollment.objects.filter(recipient_hash="crm-1").exists()


def test_enrollment_refuses_names_bad_rows_and_other_markets(world, email_client):
    response = enroll(email_client, {"id": "crm-1", "first_name": "Alex"}, {"market": "US"})
    assert response.status_code == 422
    assert codes(response) == ["invalid_recipient", "invalid_recipient"]
    assert "Alex" not in response.content.decode()
    assert enroll(email_client, {"id": "x"}, journey="nope").json()["errors"][0]["code"] \
        == "unknown_journey"
    assert enroll(email_client, {"id": "x", "market": "FR"}).status_code == 422
    us_only = token_client(token(channels=("email",), jurisdictions=("US",), name="US")[1])
    assert enroll(us_only, {"id": "x", "market": "DE"}).status_code == 403
    assert not Enrollment.objects.exists()


def test_the_due_queue_leases_acks_and_stops_withdrawn_content(world, email_client, always_open):
    enroll(email_client, *[{"id": f"crm-{i}", "market": "US", "consent": {"email": True}}
                           for i in range(3)])
    scheduler.run(now=timezone.now())
    assert DueTouchpoint.objects.filter(status="due").count() == 3
    assert email_client.get("/api/v1/due/").json()["errors"][0]["code"] == "channel_required"
    assert email_client.get("/api/v1/due/?channel=portal").status_code == 403
    leased = email_client.get("/api/v1/due/?channel=email&limit=2")
    assert leased.status_code == 200, leased.content
    items = leased.json()["items"]
    assert len(items) == 2
    first = items[0]
    assert first["touchpoint"]["recipient"] in {pseudonymous_id(f"crm-{i}") for i in range(3)}
    assert first["assemble_url"] == "/api/v1/journeys/hcp-new/steps/welcome/assemble/"
    ack = email_client.post(first["ack_url"], {"result": "delivered"}, format="json")
    assert ack.status_code == 200 and ack.json()["status"] == "delivered"
    assert email_client.post(first["ack_url"], {"result": "delivered"},
                             format="json").json()["errors"][0]["code"] == "not_leased"
    other = token_client(token(channels=("email",), jurisdictions=("US",), name="Other")[1])
    assert other.post(items[1]["ack_url"], {"result": "delivered"},
                      format="json").status_code == 404
    # Withdraw the claim: the next lease refuses the remaining touchpoint with the code.
    claim = world["versions"]["claim"]
    claim.state, claim.withdrawn_at = "withdrawn", timezone.now()
    claim.save(update_fields=["state", "withdrawn_at"])
    again = email_client.get("/api/v1/due/?channel=email")
    assert again.json()["items"] == []
    refused = DueTouchpoint.objects.get(status="refused")
    assert [e["code"] for e in refused.errors] == ["withdrawn"]
    assert refused.reason == "refused at lease: withdrawn"


def test_an_expired_lease_returns_to_the_queue_once(world, email_client, always_open):
    enroll(email_client, {"id": "crm-1", "market": "US", "consent": {"email": True}})
    now = timezone.now()
    scheduler.run(now=now)
    tp = DueTouchpoint.objects.get()
    assert len(due_queue.lease(token_id=1, channel="email", markets={"US"}, limit=5,
                               now=now)) == 1
    assert due_queue.lease(token_id=2, channel="email", markets={"US"}, limit=5, now=now) == []
    later = now + timedelta(seconds=due_queue.LEASE_SECONDS + 1)
    again = due_queue.lease(token_id=2, channel="email", markets={"US"}, limit=5, now=later)
    assert [i.touchpoint.pk for i in again] == [tp.pk]
    tp.refresh_from_db()
    assert (tp.leases, tp.lease_token_id) == (2, 2)


def test_a_signal_moves_every_matching_recipient_in_a_stage(world, email_client):
    enroll(email_client, {"id": "cardio", "market": "US", "specialty": "cardiology"},
           {"id": "neuro", "market": "US", "specialty": "neurology"})
    rule = TriggerRule.objects.create(
        journey=world["journey"], name="new guideline", kind="signal",
        signal="guideline-published", stage=world["step"].stage, to_step=world["rep"],
        conditions={"attributes": {"specialty": "cardiology"}})
    response = email_client.post("/api/v1/signals/", {"signal": "guideline-published"},
                                 format="json")
    assert response.status_code == 200, response.content
    assert response.json()["moved"] == 1
    move = Move.objects.get()
    assert move.rule == rule and move.enrollment.recipient_hash == pseudonymous_id("cardio")
    assert "fired on signal 'guideline-published'" in move.reason
    assert Enrollment.objects.get(recipient_hash=pseudonymous_id("neuro")).current_step \
        == world["step"]


def test_the_schema_documents_the_orchestration_endpoints(client):
    schema = client.get("/api/schema/?format=json").json()
    for path in ("/api/v1/enrollments/", "/api/v1/due/", "/api/v1/due/{id}/ack/",
                 "/api/v1/signals/"):
        assert path in schema["paths"], path


def test_assemble_true_serves_what_needs_no_personal_data(world, email_client, always_open,
                                                         settings):
    settings.TESSERA_UNSUBSCRIBE_URL_TEMPLATE = "https://prefs.example.com/u/{pseudonym}"
    enroll(email_client, {"id": "crm-1", "market": "US", "consent": {"email": True}})
    scheduler.run(now=timezone.now())
    response = email_client.get("/api/v1/due/?channel=email&assemble=true")
    assert response.status_code == 200, response.content
    [item] = response.json()["items"]
    # The subject greets {{ recipient.last_name }}: personal, so the channel assembles it
    # itself; the lease stays and says why.
    assert item["assembled"] is None
    assert {e["code"] for e in item["errors"]} == {"missing_recipient_field"}
    assert DueTouchpoint.objects.get().status == "leased"


def test_one_request_enrolls_thousands_with_their_history(world, email_client):
    """Up to 10,000 at once: the new enrollments and their "+" history rows (SQLite used to
    refuse this with a 500 past ~900 rows, PostgreSQL took minutes for 10,000)."""
    rows = [{"id": f"crm-{i}", "market": "US"} for i in range(2_000)]
    response = enroll(email_client, *rows)
    assert response.status_code == 200, response.content[:300]
    assert response.json()["created"] == 2_000
    enrollments = Enrollment.objects.filter(journey=world["journey"])
    assert enrollments.count() == 2_000
    assert Enrollment.history.filter(history_type="+").count() == 2_000
    again = enroll(email_client, *rows[:10], {"id": "crm-new", "market": "US"})
    assert (again.json()["created"], again.json()["already_enrolled"]) == (1, 10)
    assert Enrollment.history.filter(history_type="+").count() == 2_001
