"""FDA Form 2253: the first US delivery of a promotional version records its date of first
use (once); the review screens list the versions whose submission is due; a brand can
require the submission to be recorded before first use (refusal form_2253_missing)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals import form_2253
from approvals.errors import ApprovalError
from approvals.models import AuditEntry, FirstUse, Form2253Submission
from approvals.roles import Role, role_group
from delivery.serving import Caller, serve_many, serve_one
from tests.api.builders import RECIPIENT, build_world
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

OPERATOR = Caller(token_id=None, user_id=None)


def serve(world, recipient=None, jurisdiction="US"):
    return serve_one(world["step"], recipient or dict(RECIPIENT), channel="email",
                     jurisdiction=jurisdiction, locale="en", caller=OPERATOR)


def promotional(world):
    """The world's promotional versions in the step (the footer is legal text, not promotion)."""
    return {v.pk for v in world["versions"].values()}


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def regulatory(db):
    user = UserFactory(username="reg", first_name="Rita", last_name="Gulatory")
    user.groups.add(role_group(Role.REGULATORY))
    return user


def test_first_us_use_is_recorded_once_with_the_first_delivery_time(world):
    first = serve(world)
    assert first.ok, first.errors
    recorded = {u.version_id: u.first_used_at for u in FirstUse.objects.all()}
    assert set(recorded) == promotional(world)
    assert world["footer"].pk not in recorded
    assert all(u.jurisdiction == "US" for u in FirstUse.objects.all())

    second = serve(world, {**RECIPIENT, "id": "crm-0002"})
    assert second.ok, second.errors
    assert FirstUse.objects.count() == len(promotional(world))
    assert {u.version_id: u.first_used_at for u in FirstUse.objects.all()} == recorded


def test_a_batch_records_first_use_in_one_statement_per_chunk(world):
    recipients = [{**RECIPIENT, "id": f"crm-{i}"} for i in range(5)]
    with CaptureQueriesContext(connection) as queries:
        results = list(serve_many(world["step"], recipients, channel="email", jurisdiction="US",
                                  locale="en", caller=OPERATOR, chunk_size=5))
    assert all(r.ok for r in results)
    # INSERT ... ON CONFLICT DO NOTHING (PostgreSQL) / INSERT OR IGNORE (SQLite).
    inserts = [q["sql"] for q in queries.captured_queries
               if q["sql"].startswith("INSERT") and '"approvals_firstuse"' in q["sql"]]
    assert len(inserts) == 1
    assert FirstUse.objects.count() == len(promotional(world))


def test_the_due_list_shows_first_used_versions_until_their_submission_is_recorded(
        world, regulatory):
    serve(world)
    claim = world["versions"]["claim"]
    client = Client()
    client.force_login(regulatory)
    page = client.get("/review/form-2253/")
    assert page.status_code == 200
    assert f'href="/review/v/{claim.pk}/#form-2253"' in page.content.decode()
    assert "/review/form-2253/" in client.get("/review/").content.decode()  # the nav links it

    response = client.post(f"/review/v/{claim.pk}/form-2253/",
                           {"submitted_on": date.today().isoformat(), "reference": "FDA-2253-0001"})
    assert response.status_code == 302
    assert Form2253Submission.objects.get(version=claim).reference == "FDA-2253-0001"
    assert AuditEntry.objects.filter(event="form_2253_recorded").count() == 1
    due = client.get("/review/form-2253/").content.decode()
    assert f'href="/review/v/{claim.pk}/#form-2253"' not in due
    assert f'href="/review/v/{world["versions"]["isi"].pk}/#form-2253"' in due
    assert "FDA-2253-0001" in client.get(f"/review/v/{claim.pk}/").content.decode()


def test_only_a_regulatory_reviewer_records_a_submission_and_bad_input_is_a_4xx(world,
                                                                                regulatory):
    claim = world["versions"]["claim"]
    medical = UserFactory()
    medical.groups.add(role_group(Role.MEDICAL))
    with pytest.raises(ApprovalError):
        form_2253.record_submission(version=claim, actor=medical, submitted_on=date.today(),
                                    reference="X-1")
    client = Client()
    client.force_login(medical)
    assert client.post(f"/review/v/{claim.pk}/form-2253/",
                       {"submitted_on": date.today().isoformat(), "reference": "X"}).status_code == 403
    client.force_login(regulatory)
    for bad in ({"submitted_on": "yesterday", "reference": "X"},
                {"submitted_on": date.today().isoformat(), "reference": ""},
                {"submitted_on": (date.today() + timedelta(days=3)).isoformat(), "reference": "X"},
                {"submitted_on": date.today().isoformat(), "reference": "X" * 101}):
        assert 400 <= client.post(f"/review/v/{claim.pk}/form-2253/", bad).status_code < 500
    assert not Form2253Submission.objects.exists()


def test_a_brand_requiring_it_refuses_first_use_until_the_submission_is_recorded(
        world, regulatory):
    brand = world["brand"]
    brand.requires_form_2253_before_first_use = True
    brand.save()

    refused = serve(world, {**RECIPIENT, "consent": {}})
    assert not refused.ok
    codes = [e.code for e in refused.errors]
    # Every failing rule together: the missing consent and each promotional version.
    assert "no_consent" in codes
    missing = {e.module for e in refused.errors if e.code == "form_2253_missing"}
    assert missing == {v.module.code for v in world["versions"].values()}
    assert not FirstUse.objects.exists()

    for version in world["versions"].values():
        form_2253.record_submission(version=version, actor=regulatory,
                                    submitted_on=timezone.localdate(), reference=f"R-{version.pk}")
    served = serve(world)
    assert served.ok, served.errors
    assert FirstUse.objects.count() == len(promotional(world))


def test_other_markets_and_brands_without_the_setting_are_not_held_back(world):
    assert serve(world).ok  # the setting is off by default
    assert not form_2253.missing_submissions(promotional(world))
