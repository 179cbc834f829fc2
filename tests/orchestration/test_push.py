"""Webhook push of the due queue (`touchpoint.due`, `rep_task.created`) to a real HTTP
receiver on 127.0.0.1: signed, leased to the subscribing token, acknowledged through the
ack endpoint, retried on 500; a push whose leases ran out is not sent and its touchpoints
are pushed again."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from delivery import webhooks
from delivery.models import WebhookDelivery
from journeys.models import Enrollment, pseudonymous_id
from orchestration import push, tasks
from orchestration.models import DueTouchpoint, EnrollmentProfile, SendWindow
from tests.api.builders import token, token_client
from tests.delivery.receivers import Receiver
from tests.security.corpus import STUB_DNS
from tests.security.stubs import StubDNS

from .conftest import MONDAY

NOW = MONDAY.replace(hour=15)  # 10:00 in New York, 16:00 in Berlin: both windows open


@pytest.fixture(autouse=True)
def _receivers_on_loopback(settings, monkeypatch):
    settings.TESSERA_WEBHOOK_ALLOW_LOOPBACK = True
    settings.TESSERA_WEBHOOK_BACKOFF_SECONDS = 0
    monkeypatch.setattr(webhooks.outbound, "resolve", StubDNS(STUB_DNS))


def subscribe(client, url, events):
    response = client.post("/api/v1/webhooks/", {"url": url, "events": events}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["secret"]


def enroll(client, *ids):
    response = client.post("/api/v1/enrollments/", {"journey": "hcp-new", "recipients": [
        {"id": rid, "market": "US", "specialty": "cardiology", "consent": {"email": True}}
        for rid in ids]}, format="json")
    assert response.status_code == 200, response.content


def pushed(receiver, secret):
    """The receiver's requests, each checked as a receiver must: signature and timestamp."""
    bodies = []
    for headers, body in receiver.requests:
        assert webhooks.verify(secret, headers["X-Tessera-Timestamp"], body,
                               headers["X-Tessera-Signature"])
        bodies.append((headers["X-Tessera-Event"], json.loads(body)))
    return bodies


def test_due_touchpoints_are_pushed_signed_leased_retried_and_acked(
        world, django_capture_on_commit_callbacks):
    stored, key = token(channels=("email",), jurisdictions=("US", "DE"), name="Email sender")
    client = token_client(key)
    with Receiver(statuses=[500, 200]) as receiver:
        secret = subscribe(client, receiver.url, ["touchpoint.due"])
        enroll(client, "crm-1", "crm-2")
        with django_capture_on_commit_callbacks(execute=True):
            pushes = push.push_due(now=NOW)  # nothing planned yet
            assert pushes.items == 0
            from orchestration import scheduler

            scheduler.run(now=NOW)
            pushes = push.push_due(now=NOW)
        assert (pushes.pushes, pushes.items) == (1, 2)
        sent = pushed(receiver, secret)
    assert len(sent) == 2  # the 500 was retried with the same event id
    assert sent[0] == sent[1]
    event, body = sent[0]
    assert event == body["event"] == "touchpoint.due" and body["channel"] == "email"
    assert WebhookDelivery.objects.get().status == "delivered"
    items = body["items"]
    assert {i["touchpoint"]["recipient"] for i in items} == {pseudonymous_id("crm-1"),
                                                            pseudonymous_id("crm-2")}
    assert all(i["touchpoint"]["step"] == "welcome" and i["touchpoint"]["status"] == "leased"
               for i in items)
    # Nothing personal: the pseudonym and what the journey needs, never the channel's id.
    assert "crm-1" not in json.dumps(body) and "cardiology" not in json.dumps(body)
    # Leased to the subscribing token: polling finds nothing, another token cannot ack.
    assert set(DueTouchpoint.objects.values_list("status", "lease_token_id")) == {
        ("leased", stored.pk)}
    assert client.get("/api/v1/due/?channel=email").json()["items"] == []
    other = token_client(token(channels=("email",), jurisdictions=("US",), name="Other")[1])
    assert other.post(items[0]["ack_url"], {"result": "delivered"},
                      format="json").status_code == 404
    for item in items:
        ack = client.post(item["ack_url"], {"result": "delivered"}, format="json")
        assert ack.status_code == 200 and ack.json()["status"] == "delivered"
    # The next step (portal, +3 days) is not this token's channel: nothing more is pushed.
    assert push.push_due(now=NOW + timedelta(days=4)).items == 0


def test_a_push_not_delivered_before_its_leases_run_out_is_dropped_and_pushed_again(
        world, django_capture_on_commit_callbacks):
    # The real clock: a push made two hours ago (leases of 15 minutes) has run out.
    SendWindow.objects.create(market="US", time_zone="UTC", start_hour=0, end_hour=24,
                              weekdays=list(range(7)))
    stored, key = token(channels=("email",), jurisdictions=("US",))
    client = token_client(key)
    earlier = timezone.now() - timedelta(hours=2)
    with Receiver() as receiver:
        secret = subscribe(client, receiver.url, ["touchpoint.due"])
        enroll(client, "crm-1")
        EnrollmentProfile.objects.update(step_entered_at=earlier, next_check_at=earlier)
        with django_capture_on_commit_callbacks(execute=True):
            from orchestration import scheduler

            scheduler.run(now=earlier)
            assert push.push_due(now=earlier).items == 1
        assert receiver.requests == []  # expired before it could be sent: never sent
        assert WebhookDelivery.objects.get().status == "failed"
        with django_capture_on_commit_callbacks(execute=True):
            report = tasks.tick()  # the lease ran out: back in the queue, pushed again
        assert (report["released"], report["pushed"]) == (1, 1)
        [(_event, body)] = pushed(receiver, secret)
    touchpoint = DueTouchpoint.objects.get()
    assert (touchpoint.status, touchpoint.leases, touchpoint.lease_token_id) == (
        "leased", 2, stored.pk)
    assert body["items"][0]["touchpoint"]["id"] == touchpoint.pk
    ack = client.post(body["items"][0]["ack_url"], {"result": "delivered"}, format="json")
    assert ack.json()["status"] == "delivered"


def test_rep_tasks_are_pushed_to_the_crm_webhook(world, django_capture_on_commit_callbacks):
    _email, email_key = token(channels=("email",), jurisdictions=("US",), name="Email")
    crm, crm_key = token(channels=("rep",), jurisdictions=("US",), name="CRM")
    crm_client = token_client(crm_key)
    with Receiver() as receiver, Receiver() as email_receiver:
        secret = subscribe(crm_client, receiver.url, ["rep_task.created"])
        # The email sender asked for touchpoint.due only: rep tasks never go there.
        subscribe(token_client(email_key), email_receiver.url, ["touchpoint.due"])
        enroll(token_client(email_key), "crm-1")
        enrollment = Enrollment.objects.get()
        # A trigger moved the person to the rep visit three days ago.
        Enrollment.objects.update(current_step=world["rep"])
        EnrollmentProfile.objects.update(planned_step=world["rep"],
                                         step_entered_at=NOW - timedelta(days=3),
                                         next_check_at=NOW)
        with django_capture_on_commit_callbacks(execute=True):
            from orchestration import scheduler

            scheduler.run(now=NOW)
            assert push.push_due(now=NOW).items == 1
        [(event, body)] = pushed(receiver, secret)
    assert email_receiver.requests == []
    assert event == "rep_task.created" and body["channel"] == "rep"
    [item] = body["items"]
    assert item["touchpoint"]["recipient"] == enrollment.recipient_hash
    assert item["rep_task"]["module_code"] == "CAR-CALL-001"
    assert set(item["rep_task"]["summary"]) == {
        "topics_engaged", "events", "channels_engaged", "touchpoints_delivered", "last_touch",
        "last_engagement"}
    assert "crm-1" not in json.dumps(body) and "cardiology" not in json.dumps(body)
    ack = crm_client.post(item["ack_url"], {"result": "delivered"}, format="json")
    assert ack.status_code == 200 and ack.json()["status"] == "delivered"


def test_push_events_are_opt_in_and_in_the_schema(world, client):
    _stored, key = token(channels=("email",), jurisdictions=("US",))
    channel = token_client(key)
    default = channel.post("/api/v1/webhooks/", {"url": "https://channel.example/hooks"},
                           format="json").json()
    assert default["events"] == ["version.withdrawn", "version.expired"]
    schema = client.get("/api/schema/?format=json").json()
    callbacks = schema["paths"]["/api/v1/due/"]["get"]["callbacks"]
    assert set(callbacks) == {"touchpoint.due", "rep_task.created"}
    events = schema["components"]["schemas"]["WebhookCreateRequest"]["properties"]["events"]
    assert "touchpoint.due" in json.dumps(schema["components"]["schemas"]) and events
    assert "Push" in schema["components"]["schemas"]
