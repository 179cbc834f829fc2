"""The SSRF corpus: every hostile webhook URL is refused at subscription and at delivery,
and a name that is rebound to an internal address after registration is refused at send.
DNS and the network are stubbed: nothing here connects anywhere."""

import json

import pytest

from cms import outbound
from delivery import webhooks
from delivery.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from tests.api.builders import build_world, token, token_client
from tests.security.corpus import ACCEPTED_URLS, REFUSED_BY_DNS, REFUSED_URLS, STUB_DNS
from tests.security.stubs import install

HOSTILE = REFUSED_URLS + REFUSED_BY_DNS


@pytest.fixture
def net(monkeypatch, settings):
    settings.TESSERA_WEBHOOK_ALLOW_LOOPBACK = False
    settings.TESSERA_WEBHOOK_BACKOFF_SECONDS = 0
    settings.TESSERA_WEBHOOK_MAX_ATTEMPTS = 2
    return install(monkeypatch, STUB_DNS)


@pytest.fixture
def channel(db, net):
    world = build_world()
    stored, key = token()
    return world, stored, token_client(key)


@pytest.mark.parametrize("url", HOSTILE)
def test_policy_refuses_every_hostile_url(net, url):
    _, transport = net
    with pytest.raises(outbound.URLRefused):
        outbound.vet_url(url)
    assert transport.connections == []


@pytest.mark.parametrize("url", ACCEPTED_URLS)
def test_policy_accepts_public_https_and_pins_the_resolved_addresses(net, url):
    destination = outbound.vet_url(url)
    host = url.split("/")[2].split(":")[0]
    assert destination.addresses == tuple(STUB_DNS[host]) and destination.host == host


@pytest.mark.parametrize("url", HOSTILE)
def test_api_refuses_every_hostile_url_at_subscription(channel, url):
    _, _, client = channel
    response = client.post("/api/v1/webhooks/", {"url": url}, format="json")
    assert response.status_code == 400, (url, response.content)
    assert response.json()["errors"][0]["field"] == "url"
    assert not WebhookSubscription.objects.exists()


@pytest.mark.parametrize("url", ["https://169.254.169.254/latest/meta-data/",
                                 "https://metadata.example.com/", "https://[::ffff:127.0.0.1]/"])
def test_admin_form_refuses_hostile_urls(channel, url):
    from django.core.exceptions import ValidationError

    _, stored, _ = channel
    with pytest.raises(ValidationError) as refused:
        WebhookSubscription(token=stored, url=url, secret="x" * 64).full_clean()
    assert "url" in refused.value.message_dict


def test_loopback_switch_admits_loopback_only_never_private_or_link_local(net, settings):
    settings.TESSERA_WEBHOOK_ALLOW_LOOPBACK = True
    assert outbound.vet_url("http://127.0.0.1:8080/hook").addresses == ("127.0.0.1",)
    assert outbound.vet_url("http://localtest.me/hook").addresses == ("127.0.0.1",)
    for url in ["http://10.0.0.1/", "http://169.254.169.254/", "https://[fe80::1]/",
                "http://hooks.example.com/", "https://mixed.example.com/",
                "http://user:pw@127.0.0.1/"]:
        with pytest.raises(outbound.URLRefused):
            outbound.vet_url(url)


def test_registration_accepts_a_name_that_does_not_resolve_yet_but_delivery_refuses_it(
        channel, net, django_capture_on_commit_callbacks):
    world, _, client = channel
    assert client.post("/api/v1/webhooks/", {"url": "https://later.example.com/h"},
                       format="json").status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.notify(world["versions"]["isi"], "version.withdrawn")
    assert net[1].connections == []
    assert all("does not resolve" in a.error for a in WebhookAttempt.objects.all())
    assert WebhookDelivery.objects.get().status == "failed"


@pytest.mark.parametrize("internal", [["127.0.0.1"], ["10.0.0.5"], ["169.254.169.254"],
                                      ["93.184.215.14", "fd00::1"], ["::ffff:192.168.0.1"]])
def test_dns_rebinding_after_registration_is_refused_at_delivery(
        channel, net, internal, django_capture_on_commit_callbacks):
    world, _, client = channel
    dns, transport = net
    assert client.post("/api/v1/webhooks/", {"url": "https://hooks.example.com/tessera"},
                       format="json").status_code == 201
    dns.table["hooks.example.com"] = internal  # the attacker's DNS now points inside
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.notify(world["versions"]["isi"], "version.withdrawn")
    assert transport.connections == []  # never connected, not even once
    attempts = WebhookAttempt.objects.all()
    assert len(attempts) == 2 and all(a.error.startswith("refused:") for a in attempts)
    assert WebhookDelivery.objects.get().status == "failed"


def test_delivery_connects_to_the_vetted_address_without_resolving_again(
        channel, net, monkeypatch, django_capture_on_commit_callbacks):
    """Between the check and the connection nothing resolves the name a second time."""
    world, _, client = channel
    dns, transport = net
    assert client.post("/api/v1/webhooks/", {"url": "https://hooks.example.com:8443/tessera"},
                       format="json").status_code == 201
    dns.lookups.clear()
    real_getaddrinfo = outbound.socket.getaddrinfo

    def no_second_lookup(host, *args, **kwargs):
        raise AssertionError(f"resolved {host} outside the vetted path")

    monkeypatch.setattr(outbound.socket, "getaddrinfo", no_second_lookup)
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.notify(world["versions"]["isi"], "version.withdrawn")
    monkeypatch.setattr(outbound.socket, "getaddrinfo", real_getaddrinfo)
    assert dns.lookups == ["hooks.example.com"] * 2  # one vetting per attempt
    assert transport.connections == [("93.184.215.14", 8443)] * 2
    assert "stub transport" in WebhookAttempt.objects.first().error


def test_stored_payload_is_what_the_token_may_see(channel, net):
    world, stored, client = channel
    assert client.post("/api/v1/webhooks/", {"url": "https://hooks.example.com/h"},
                       format="json").status_code == 201
    base = {"deliveries": [{"channel": "email", "jurisdiction": "US", "deliveries": 2},
                           {"channel": "portal", "jurisdiction": "US", "deliveries": 5},
                           {"channel": "email", "jurisdiction": "DE", "deliveries": 7}],
            "jurisdictions": ["DE", "US"], "channels": ["email", "portal"],
            "affected_journeys": [{"journey": "j", "name": "J", "steps": [
                {"step": "mail", "channel": "email"}, {"step": "web", "channel": "portal"}]},
                {"journey": "p", "name": "P", "steps": [{"step": "web", "channel": "portal"}]}]}
    cut = webhooks.payload_for(stored, base)
    assert cut["deliveries"] == [{"channel": "email", "jurisdiction": "US", "deliveries": 2}]
    assert cut["total_deliveries"] == 2
    assert (cut["jurisdictions"], cut["channels"]) == (["US"], ["email"])
    assert cut["affected_journeys"] == [{"journey": "j", "name": "J", "steps": ["mail"]}]
    assert "portal" not in json.dumps(cut)
