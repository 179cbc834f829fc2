"""Where-used figures (API and admin) and hostile text in every input a channel controls."""

from pathlib import Path

import pytest
from django.test import Client
from rest_framework.test import APIClient

from delivery.models import Delivery
from tests.api.builders import RECIPIENT, assemble_body, build_world, codes, token, token_client
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
CORPUS = Path("/work/shared/corpus")
URL = "/api/v1/journeys/hcp-new/steps/welcome/assemble/"


def corpus_lines():
    lines = []
    for name in ("xss-vectors.txt", "template-injection.txt"):
        path = CORPUS / name
        if path.exists():
            lines += [line for line in path.read_text().splitlines() if line.strip()]
    return lines or ["<script>alert(1)</script>", "{{ 7*7 }}", "{% debug %}"]


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def channel(world):
    _, key = token(channels=["email", "portal"])
    return token_client(key)


def admin_client():
    client = APIClient()
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    return client


def test_usage_counts_deliveries_per_channel_and_jurisdiction_and_names_steps(world, channel):
    for _ in range(3):
        assert channel.post(URL, assemble_body(), format="json").status_code == 200
    claim = world["versions"]["claim"]
    usage = admin_client().get(f"/api/v1/modules/{claim.module.code}/versions/1/usage/").json()
    assert usage["steps"] == [{"journey": "hcp-new", "journey_name": "Journey hcp-new",
                               "step": "welcome", "step_name": "Welcome email",
                               "channel": "email", "binding": "fixed"}]
    assert usage["deliveries"] == [{"channel": "email", "jurisdiction": "US", "deliveries": 3}]
    assert usage["total_deliveries"] == 3
    unused = admin_client().get("/api/v1/modules/unused/").json()["results"]
    assert claim.module.code not in {u["module"] for u in unused}


def test_admin_pages_for_delivery_render(world, channel):
    assert channel.post(URL, assemble_body(), format="json").status_code == 200
    client = Client()
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    claim = world["versions"]["claim"]
    for path in ["/admin/delivery/channeltoken/", "/admin/delivery/channeltoken/add/",
                 "/admin/delivery/delivery/", f"/admin/delivery/delivery/{Delivery.objects.get().pk}/change/",
                 "/admin/delivery/assemblyjob/", "/admin/delivery/webhookdelivery/",
                 "/admin/delivery/webhooksubscription/", "/admin/delivery/moduleusage/",
                 f"/admin/delivery/moduleusage/{claim.pk}/change/",
                 "/admin/delivery/unusedapprovedversion/"]:
        response = client.get(path)
        assert response.status_code == 200, path
    page = client.get(f"/admin/delivery/moduleusage/{claim.pk}/change/").content.decode()
    assert "hcp-new / welcome" in page and "email / US: 1" in page


def test_hostile_recipient_values_come_out_as_inert_text(channel):
    for payload in corpus_lines():
        recipient = dict(RECIPIENT, last_name=payload, title=payload)
        response = channel.post(URL, assemble_body(recipient=recipient), format="json")
        assert response.status_code == 200, payload
        body = response.json()
        if "<" in payload:
            assert payload not in body["html"], payload  # escaped, never raw markup
        assert "49" not in body["subject"].replace(payload, ""), payload  # not evaluated


def test_hostile_text_in_other_inputs_is_refused_or_inert(channel):
    for payload in corpus_lines():
        response = channel.post("/api/v1/events/", {"journey": payload, "step": payload,
                                                    "recipient_id": payload, "event": payload},
                                format="json")
        assert response.status_code in {400, 422}, payload
        assert all(e["code"] for e in response.json()["errors"])
        response = channel.get("/api/v1/modules/", {"brand": payload[:60], "stage": payload[:40]})
        assert response.status_code in {200, 400}, payload
        response = channel.post("/api/v1/webhooks/", {"url": payload}, format="json")
        assert response.status_code == 400 and codes(response)[0] in {"invalid", "max_length"}
