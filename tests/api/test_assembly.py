import json

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from rest_framework.test import APIClient

from content.models import ModuleVersion
from content.permissions import grant_author_brand
from delivery.models import DeliveredVersion, Delivery
from tests.api.builders import (
    RECIPIENT,
    assemble_body,
    build_world,
    codes,
    token,
    token_client,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/journeys/hcp-new/steps/welcome/assemble/"


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def client(world):
    _, key = token()
    return token_client(key)


def test_assemble_returns_content_and_manifest_and_logs_the_delivery(client, world):
    response = client.post(URL, assemble_body(), format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"subject", "html", "text", "manifest", "headers"}
    assert body["subject"] == "News for Dr. Morgan"
    assert "Hello Dr. Morgan" in body["html"]
    manifest = body["manifest"]
    delivery = Delivery.objects.get()
    assert delivery.output_sha256 == manifest["output_sha256"]
    assert (delivery.channel, delivery.jurisdiction, delivery.step_key) == ("email", "US", "welcome")
    assert delivery.token is not None
    assert RECIPIENT["id"] not in delivery.recipient_pseudonym
    assert len(delivery.recipient_pseudonym) == 64
    assert DeliveredVersion.objects.filter(delivery=delivery).count() == 5  # 4 slots + footer
    stored = json.dumps(delivery.manifest)
    assert "Morgan" not in stored and "Alex" not in stored and "unsubscribe" not in stored


def test_no_consent_is_422_and_nothing_is_logged(client):
    recipient = dict(RECIPIENT, consent={"email": False})
    response = client.post(URL, assemble_body(recipient=recipient), format="json")
    assert response.status_code == 422
    assert "no_consent" in codes(response)
    assert Delivery.objects.count() == 0


def test_withdrawn_module_in_step_is_422_naming_the_module(client, world):
    claim = world["versions"]["claim"]
    claim.state = "withdrawn"
    claim.save(update_fields=["state"])
    response = client.post(URL, assemble_body(), format="json")
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert {"code": "withdrawn", "module": claim.module.code} in [
        {"code": e["code"], "module": e.get("module")} for e in errors]
    assert Delivery.objects.count() == 0


def test_expired_module_in_step_is_422(client, world):
    from django.utils import timezone

    isi = world["versions"]["isi"]
    isi.expires_at = timezone.now() - timezone.timedelta(minutes=1)
    isi.save(update_fields=["expires_at"])
    response = client.post(URL, assemble_body(), format="json")
    assert response.status_code == 422
    assert "expired" in codes(response)


def test_missing_recipient_field_is_422(client):
    recipient = {k: v for k, v in RECIPIENT.items() if k != "last_name"}
    response = client.post(URL, assemble_body(recipient=recipient), format="json")
    assert response.status_code == 422
    assert "missing_recipient_field" in codes(response)


def test_wrong_types_and_missing_fields_are_400_with_field_paths(client):
    response = client.post(URL, {"channel": 5, "jurisdiction": "USA", "recipient": "x"},
                           format="json")
    assert response.status_code == 400
    fields = {e["field"]: e["code"] for e in response.json()["errors"]}
    assert fields["locale"] == "required"
    assert fields["jurisdiction"] == "max_length"
    assert fields["recipient"] == "invalid"
    response = client.post(URL, assemble_body(recipient={"last_name": "Morgan"}), format="json")
    assert {"field": "recipient.id", "code": "required"} in [
        {"field": e.get("field"), "code": e["code"]} for e in response.json()["errors"]]
    response = client.post(URL, assemble_body(colour="blue"), format="json")
    assert codes(response) == ["unknown_field"]


def test_malformed_json_is_400(client):
    response = client.post(URL, data='{"channel": "email",', content_type="application/json")
    assert response.status_code == 400
    assert codes(response) == ["malformed_json"]
    assert Delivery.objects.count() == 0


def test_huge_body_is_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = assemble_body(recipient=dict(RECIPIENT, city="x" * 2000))
    response = client.post(URL, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 413
    assert codes(response) == ["request_too_large"]


def test_wrong_media_type_is_415_and_wrong_method_405(client):
    response = client.post(URL, data="channel=email", content_type="text/plain")
    assert response.status_code == 415 and codes(response) == ["unsupported_media_type"]
    response = client.get(URL)
    assert response.status_code == 405 and codes(response) == ["method_not_allowed"]


def test_token_out_of_scope_is_403_with_reason(world):
    _, key = token(channels=["portal"], jurisdictions=["US"], name="Portal")
    response = token_client(key).post(URL, assemble_body(), format="json")
    assert response.status_code == 403 and codes(response) == ["channel_out_of_scope"]
    _, key = token(channels=["email"], jurisdictions=["US"], name="Email")
    response = token_client(key).post(URL, assemble_body(jurisdiction="DE"), format="json")
    assert response.status_code == 403 and codes(response) == ["jurisdiction_out_of_scope"]


def test_unknown_journey_or_step_is_404(client):
    response = client.post("/api/v1/journeys/nope/steps/welcome/assemble/", assemble_body(),
                           format="json")
    assert response.status_code == 404 and codes(response) == ["not_found"]
    response = client.post("/api/v1/journeys/hcp-new/steps/nope/assemble/", assemble_body(),
                           format="json")
    assert response.status_code == 404


def test_assembly_query_count_is_bounded(client, django_assert_max_num_queries):
    with django_assert_max_num_queries(40):
        assert client.post(URL, assemble_body(), format="json").status_code == 200


def test_journey_list_and_detail(client, world):
    listed = client.get("/api/v1/journeys/").json()
    assert [j["slug"] for j in listed["results"]] == ["hcp-new"]
    detail = client.get("/api/v1/journeys/hcp-new/").json()
    steps = detail["stages"][0]["steps"]
    assert [s["key"] for s in steps] == ["welcome", "portal-followup"]
    assert steps[0]["channel"] == "email"
    assert [s["module"] for s in steps[0]["slots"]] == [
        "CAR-SUBJ-001", "CAR-HEAD-001", "CAR-EFF-001", "CAR-ISI-US"]
    assert steps[0]["transitions"][0]["to_step"] == "portal-followup"


def test_person_sees_only_journeys_of_their_brand(world):
    other = build_world(slug="other", brand_slug="respivane")
    author = UserFactory()
    Group.objects.get_or_create(name="authors")[0].user_set.add(author)
    grant_author_brand(author, world["brand"])
    client = APIClient()
    client.force_login(author)
    assert [j["slug"] for j in client.get("/api/v1/journeys/").json()["results"]] == ["hcp-new"]
    assert client.get(f"/api/v1/journeys/{other['journey'].slug}/").status_code == 404


def test_people_need_csrf_for_session_posts(world):
    admin = UserFactory(is_superuser=True, is_staff=True)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(admin)
    response = client.post(URL, assemble_body(), format="json")
    assert response.status_code == 403 and codes(response) == ["csrf_failed"]


def test_withdrawal_committed_before_the_locked_recheck_stops_delivery(world):
    """The re-check under lock sees a withdrawal that commits between read and write."""
    from delivery import serving
    from journeys.assembly import load_context

    step = world["step"]
    result = load_context(step, channel="email", jurisdiction="US", locale="en").assemble(RECIPIENT)
    assert result.ok
    claim = ModuleVersion.objects.get(pk=world["versions"]["claim"].pk)
    claim.state = "withdrawn"
    claim.save(update_fields=["state"])
    from django.db import transaction

    with transaction.atomic():
        refusals = serving.commit_deliveries([(result, "crm-1")],
                                             caller=serving.Caller(None, None))
    assert [e.code for e in refusals[0]] == ["withdrawn"]
    assert Delivery.objects.count() == 0
    assert connection.vendor in {"sqlite", "postgresql"}


@pytest.mark.parametrize("state, valid_from_days, expires_days, code", [
    ("approved", 1, None, "not_approved"),    # not valid yet: the window has not started
    ("approved", None, -1, "expired"),        # approval ran out
    ("withdrawn", None, None, "withdrawn"),
    ("in_review", None, None, "not_approved"),
    ("approved", -1, 1, None),                # inside its window: still deliverable
])
def test_locked_recheck_applies_the_whole_deliverability_rule(state, valid_from_days,
                                                               expires_days, code):
    """The re-check at commit uses content.deliverability, valid_from included."""
    from datetime import timedelta

    from django.utils import timezone

    from delivery import serving
    from journeys.assembly import AssemblyResult

    now = timezone.now()

    def days(n):
        return None if n is None else now + timedelta(days=n)

    result = AssemblyResult(ok=True, manifest={"modules": [
        {"version_id": 7, "module": "CZN-EFF-001", "version": 2}]})
    errors = serving.recheck(result, {7: (state, days(valid_from_days), days(expires_days), None)},
                             now)
    assert [e.code for e in errors] == ([code] if code else [])
    assert all(e.module == "CZN-EFF-001" for e in errors)


def test_enrolled_recipient_is_not_served_the_same_selector_module_twice(client, world):
    from journeys.models import Enrollment, Slot
    from tests.api.builders import make_version

    make_version(world["brand"], "CAR-CASE-001", body="<p>Case study one</p>")
    make_version(world["brand"], "CAR-CASE-002", body="<p>Case study two</p>")
    Slot.objects.create(step=world["step"], order=9, selector_kind="body", priority=1)
    # The channel reports an engagement first: that enrolls the recipient.
    enrolled = client.post("/api/v1/events/", {"journey": "hcp-new", "step": "welcome",
                                               "recipient_id": RECIPIENT["id"],
                                               "event": "opened"}, format="json")
    assert enrolled.status_code == 200, enrolled.content

    served = [client.post(URL, assemble_body(), format="json") for _ in range(2)]
    assert [r.status_code for r in served] == [200, 200], served[-1].content
    cases = [next(m["module"] for m in r.json()["manifest"]["modules"] if "CASE" in m["module"])
             for r in served]
    assert sorted(cases) == ["CAR-CASE-001", "CAR-CASE-002"]
    enrollment = Enrollment.objects.get()
    assert enrollment.history.first().history_user is None  # a token is not a person


def test_recipient_without_enrollment_is_served_and_nothing_is_enrolled(client, world):
    from journeys.models import Enrollment

    assert client.post(URL, assemble_body(), format="json").status_code == 200
    assert not Enrollment.objects.exists()


def test_recipient_seen_modules_steer_selector_slots(client, world):
    from journeys.models import Slot
    from tests.api.builders import make_version

    make_version(world["brand"], "CAR-CASE-001", body="<p>Case study one</p>")
    make_version(world["brand"], "CAR-CASE-002", body="<p>Case study two</p>")
    Slot.objects.create(step=world["step"], order=9, selector_kind="body", priority=1)
    picked = []
    for seen in (["CAR-CASE-001"], ["CAR-CASE-002"]):
        body = assemble_body(recipient=dict(RECIPIENT, seen_modules=seen))
        response = client.post(URL, body, format="json")
        assert response.status_code == 200, response.content
        picked.append(next(m["module"] for m in response.json()["manifest"]["modules"]
                           if "CASE" in m["module"]))
    assert picked == ["CAR-CASE-002", "CAR-CASE-001"]
    # The one recipients parser reads "A;B" (the CSV form) in JSON too; other shapes are
    # refused, naming the field.
    for malformed in (42, {"CAR-CASE-001": True}, [1, 2]):
        bad = client.post(URL, assemble_body(recipient=dict(RECIPIENT, seen_modules=malformed)),
                          format="json")
        assert bad.status_code == 400, malformed
        assert any(e.get("field") == "recipient.seen_modules" for e in bad.json()["errors"])
