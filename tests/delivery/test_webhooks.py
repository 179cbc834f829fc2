import json
import socket
import threading
import time

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from rest_framework.test import APIClient

from approvals.services import expire_due_versions, withdraw
from approvals.signing import Credentials
from delivery import webhooks
from delivery.models import WebhookAttempt, WebhookDelivery
from tests.api.builders import assemble_body, build_world, codes, token, token_client
from tests.delivery.receivers import Receiver
from tests.factories import UserFactory
from tests.security.corpus import STUB_DNS
from tests.security.stubs import StubDNS

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _receivers_on_loopback(settings, monkeypatch):
    # The receivers below are real HTTP servers on 127.0.0.1; production refuses loopback
    # and plain http (tests/security/test_webhook_urls.py). Names resolve from a table.
    settings.TESSERA_WEBHOOK_ALLOW_LOOPBACK = True
    monkeypatch.setattr(webhooks.outbound, "resolve", StubDNS(STUB_DNS))


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def channel(world):
    stored, key = token()
    return stored, token_client(key)


def register(client, url):
    response = client.post("/api/v1/webhooks/", {"url": url}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_registration_shows_secret_once_and_lists_own_subscriptions(channel):
    _, client = channel
    created = register(client, "https://channel.example/hooks")
    assert len(created["secret"]) == 64
    assert created["events"] == ["version.withdrawn", "version.expired"]
    listed = client.get("/api/v1/webhooks/").json()["results"]
    assert [w["id"] for w in listed] == [created["id"]] and "secret" not in listed[0]
    assert "secret" not in client.get(f"/api/v1/webhooks/{created['id']}/").json()
    _, other_key = token(name="Other")
    assert token_client(other_key).get(f"/api/v1/webhooks/{created['id']}/").status_code == 404
    assert client.delete(f"/api/v1/webhooks/{created['id']}/").status_code == 204


def test_bad_webhook_input_is_400(channel):
    _, client = channel
    response = client.post("/api/v1/webhooks/", {"url": "ftp://x.example/"}, format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "url"
    response = client.post("/api/v1/webhooks/", {"url": "https://x.example/", "events": ["x"]},
                           format="json")
    assert response.status_code == 400 and codes(response) == ["invalid_choice"]


def test_people_manage_webhooks_in_the_admin_not_the_api(world):
    client = APIClient()
    client.force_login(UserFactory(is_superuser=True))
    response = client.get("/api/v1/webhooks/")
    assert response.status_code == 403 and codes(response) == ["channel_token_required"]


def withdraw_as_regulatory(version, reason="Label change"):
    reviewer = UserFactory(username="reg-reviewer")
    Group.objects.get_or_create(name="mlr-regulatory")[0].user_set.add(reviewer)
    withdraw(version=version, actor=reviewer, reason=reason,
             credentials=Credentials(password="correct-horse-battery", username="reg-reviewer"),
             role="regulatory")


def test_withdrawal_sends_a_signed_notification_with_journeys_and_counts(
        world, channel, django_capture_on_commit_callbacks):
    _, client = channel
    assert client.post("/api/v1/journeys/hcp-new/steps/welcome/assemble/", assemble_body(),
                       format="json").status_code == 200
    claim = world["versions"]["claim"]
    with Receiver() as receiver:
        secret = register(client, receiver.url)["secret"]
        with django_capture_on_commit_callbacks(execute=True):
            withdraw_as_regulatory(claim)
    assert len(receiver.requests) == 1
    headers, body = receiver.requests[0]
    assert webhooks.verify(secret, headers["X-Tessera-Timestamp"], body,
                           headers["X-Tessera-Signature"])
    assert not webhooks.verify("wrong" * 8, headers["X-Tessera-Timestamp"], body,
                               headers["X-Tessera-Signature"])
    payload = json.loads(body)
    assert payload["event"] == "version.withdrawn"
    assert (payload["module"], payload["version"]) == (claim.module.code, 1)
    assert payload["reason"] == "Label change"
    assert payload["jurisdictions"] == ["US"]
    assert payload["affected_journeys"] == [
        {"journey": "hcp-new", "name": "Journey hcp-new", "steps": ["welcome"]}]
    assert payload["deliveries"] == [{"channel": "email", "jurisdiction": "US", "deliveries": 1}]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)


def test_receiver_failing_three_times_gets_it_once_after_retries(
        world, channel, settings, django_capture_on_commit_callbacks):
    settings.TESSERA_WEBHOOK_BACKOFF_SECONDS = 0
    _, client = channel
    with Receiver(statuses=[500, 503, 502, 200]) as receiver:
        register(client, receiver.url)
        with django_capture_on_commit_callbacks(execute=True):
            webhooks.notify(world["versions"]["isi"], "version.withdrawn", reason="Safety")
    assert len(receiver.requests) == 4
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("delivered", 4)
    assert list(WebhookAttempt.objects.filter(delivery=delivery).values_list(
        "number", "status_code")) == [(1, 500), (2, 503), (3, 502), (4, 200)]
    ids = {json.loads(body)["id"] for _, body in receiver.requests}
    assert len(ids) == 1  # the same event id each time: receivers can de-duplicate


def test_retries_give_up_after_max_attempts_and_mark_failed(
        world, channel, settings, django_capture_on_commit_callbacks):
    settings.TESSERA_WEBHOOK_BACKOFF_SECONDS = 0
    settings.TESSERA_WEBHOOK_MAX_ATTEMPTS = 3
    _, client = channel
    with Receiver(statuses=[500]) as receiver:
        register(client, receiver.url)
        with django_capture_on_commit_callbacks(execute=True):
            webhooks.notify(world["versions"]["isi"], "version.withdrawn")
    assert len(receiver.requests) == 3
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 3)


def test_expiry_notifies_and_out_of_scope_tokens_hear_nothing(
        world, channel, django_capture_on_commit_callbacks):
    _, client = channel
    _, german_key = token(jurisdictions=["DE"], name="DE sender")
    with Receiver() as receiver:
        register(client, receiver.url)
        register(token_client(german_key), receiver.url + "/de")
        isi = world["versions"]["isi"]
        isi.expires_at = timezone.now() - timezone.timedelta(minutes=1)
        isi.save(update_fields=["expires_at"])
        with django_capture_on_commit_callbacks(execute=True):
            expire_due_versions()
    paths = [json.loads(body)["event"] for _, body in receiver.requests]
    assert paths == ["version.expired"]
    assert WebhookDelivery.objects.get().subscription.url == receiver.url


def test_signature_verification_refuses_stale_timestamps():
    body = b'{"event":"version.withdrawn"}'
    signature = webhooks.sign("s3cret", "1000", body)
    assert webhooks.verify("s3cret", "1000", body, signature, now=1100)
    assert not webhooks.verify("s3cret", "1000", body, signature, now=2000)
    assert not webhooks.verify("s3cret", "1000", body + b" ", signature, now=1100)


def test_backoff_is_exponential(settings):
    settings.TESSERA_WEBHOOK_BACKOFF_SECONDS = 30
    assert [webhooks.backoff_seconds(n) for n in range(4)] == [30, 60, 120, 240]


def test_a_webhook_failure_never_fails_the_withdrawal(
        world, channel, monkeypatch, caplog, django_capture_on_commit_callbacks):
    _, client = channel
    register(client, "http://127.0.0.1:9/unreachable")

    def broken(*args, **kwargs):
        raise RuntimeError("usage query failed")

    monkeypatch.setattr(webhooks, "notification_payload", broken)
    claim = world["versions"]["claim"]
    with django_capture_on_commit_callbacks(execute=True):
        withdraw_as_regulatory(claim)
    claim.refresh_from_db()
    assert claim.state == "withdrawn"
    assert "not queued" in caplog.text


def test_email_only_token_hears_nothing_about_portal_or_other_markets(
        world, channel, django_capture_on_commit_callbacks):
    """The withdrawal payload is cut to the receiving token's channels and jurisdictions."""
    from delivery.models import DeliveredVersion
    from journeys.models import Slot

    _, client = channel
    assert client.post("/api/v1/journeys/hcp-new/steps/welcome/assemble/", assemble_body(),
                       format="json").status_code == 200
    claim = world["versions"]["claim"]
    Slot.objects.create(step=world["portal"], order=0, module=claim.module)
    logged = DeliveredVersion.objects.get(version=claim)
    DeliveredVersion.objects.create(delivery=logged.delivery, version=claim, channel="portal",
                                    jurisdiction="US")
    DeliveredVersion.objects.create(delivery=logged.delivery, version=claim, channel="email",
                                    jurisdiction="DE")
    _, omni_key = token(channels=["email", "portal"], jurisdictions=["US", "DE"], name="Omni")
    with Receiver() as receiver:
        register(client, receiver.url + "/email")
        register(token_client(omni_key), receiver.url + "/omni")
        with django_capture_on_commit_callbacks(execute=True):
            withdraw_as_regulatory(claim)
    sent = {path: json.loads(body) for path, body in
            ((WebhookDelivery.objects.get(event_id=json.loads(body)["id"]).subscription.url
              .rsplit("/", 1)[1], body) for _, body in receiver.requests)}
    email, omni = sent["email"], sent["omni"]
    assert email["deliveries"] == [{"channel": "email", "jurisdiction": "US", "deliveries": 1}]
    assert email["affected_journeys"][0]["steps"] == ["welcome"]
    assert email["channels"] == ["email"] and email["jurisdictions"] == ["US"]
    assert [(c["channel"], c["jurisdiction"]) for c in omni["deliveries"]] == [
        ("email", "DE"), ("email", "US"), ("portal", "US")]
    assert omni["affected_journeys"][0]["steps"] == ["portal-followup", "welcome"]


def test_redirects_are_not_followed(world, channel, settings, django_capture_on_commit_callbacks):
    settings.TESSERA_WEBHOOK_MAX_ATTEMPTS = 1
    _, client = channel
    with Receiver() as target, Receiver(statuses=[307], headers={"Location": target.url}) as hop:
        register(client, hop.url)
        with django_capture_on_commit_callbacks(execute=True):
            webhooks.notify(world["versions"]["isi"], "version.withdrawn")
    assert len(hop.requests) == 1 and target.requests == []
    attempt = WebhookAttempt.objects.get()
    assert (attempt.status_code, attempt.error) == (307, "HTTP 307")
    assert WebhookDelivery.objects.get().status == "failed"


def test_response_size_is_capped(world, channel, monkeypatch, django_capture_on_commit_callbacks):
    _, client = channel
    reads = []
    real_read = webhooks.outbound.http.client.HTTPResponse.read

    def counting_read(self, amt=None):
        data = real_read(self, amt)
        reads.append(len(data))
        return data

    monkeypatch.setattr(webhooks.outbound.http.client.HTTPResponse, "read", counting_read)
    with Receiver(body=b"x" * (4 * 1024 * 1024)) as big:
        register(client, big.url)
        with django_capture_on_commit_callbacks(execute=True):
            webhooks.notify(world["versions"]["isi"], "version.withdrawn")
    assert WebhookDelivery.objects.get().status == "delivered"
    assert 0 < sum(reads) <= webhooks.outbound.MAX_RESPONSE_BYTES


class DripReceiver:
    """A loopback server that answers one header line every 0.2 s, for 30 s: each read
    returns well within a socket timeout, so only a total time cap stops the client."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.getsockname()[1]}/slow"

    def serve(self):
        connection, _ = self.server.accept()
        with connection:
            connection.recv(65536)
            try:
                connection.sendall(b"HTTP/1.1 200 OK\r\n")
                for n in range(150):
                    if self.stop.wait(0.2):
                        return
                    connection.sendall(f"X-Pad-{n}: a\r\n".encode())
            except OSError:
                return

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.server.close()


def test_total_time_is_capped(world, channel, settings, django_capture_on_commit_callbacks):
    settings.TESSERA_WEBHOOK_TIMEOUT_SECONDS = 1
    settings.TESSERA_WEBHOOK_MAX_ATTEMPTS = 1
    _, client = channel
    with DripReceiver() as slow:
        register(client, slow.url)
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True):
            webhooks.notify(world["versions"]["isi"], "version.withdrawn")
        elapsed = time.monotonic() - started
    assert elapsed < 4, elapsed
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None and "within 1 s" in attempt.error
