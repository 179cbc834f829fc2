"""Segregation of duties, complete: whoever changed a version's content may not decide on it,
and one person decides for one role per version across all its rounds — at the service, on
the review page (GET and POST), in the inbox; and every refusal at signing is audited,
including those of a signing form that did not validate."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from approvals import services
from approvals.models import AuditEntry, Signature
from approvals.roles import role_group
from approvals.selectors import author_ids_for_versions, content_editor_ids, inbox_for
from content.models import Channel, ModuleVersion
from content.permissions import AUTHORS_GROUP, ensure_group_permissions, grant_author_brand
from tests.content.helpers import version_form_data
from tests.factories import UserFactory, VersionFactory, term

from .helpers import PASSWORD, approve_all, request_changes, sign

pytestmark = pytest.mark.django_db


@pytest.fixture
def co_editor(db):
    """A medical reviewer who also holds author rights on the brand (the issue's probe)."""
    ensure_group_permissions()
    user = UserFactory(username="co-editor", is_staff=True)
    user.groups.add(role_group("medical"), Group.objects.get_or_create(name=AUTHORS_GROUP)[0])
    return user


@pytest.fixture
def draft(co_editor):
    """A draft someone else created, on a brand the co-editor may author."""
    version = VersionFactory()
    grant_author_brand(co_editor, version.module.brand)
    return version


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def decide_post(client, version, **overrides):
    data = {"role": "medical", "decision": "approve", "password": PASSWORD, "comment": "",
            "username": "co-editor", "expected_sha256": version.sha256}
    data.update(overrides)
    return client.post(reverse("approvals:decide", args=[version.pk]),
                       {k: v for k, v in data.items() if v is not None})


def edit_as(version, user, **fields):
    """Save a change the way the admin does: the history record names the person."""
    version = ModuleVersion.objects.get(pk=version.pk)
    for name, value in fields.items():
        setattr(version, name, value)
    version._history_user = user
    version.save()
    return version


def refusals(code, event="decision_refused"):
    return AuditEntry.objects.filter(event=event, data__code=code)


# --- the probe: a reviewer with author rights edits, then tries to approve ------------------

def test_probe_through_the_admin_and_the_review_page_is_refused_and_audited(draft, co_editor):
    client = logged_in(co_editor)
    url = reverse("admin:content_moduleversion_change", args=[draft.pk])
    response = client.post(url, version_form_data(draft, body_html="<p>Co-edited claim.</p>",
                                                  body_text=""))
    assert response.status_code == 302, response.content.decode()[:500]
    assert draft.history.filter(history_user=co_editor).exists()
    services.submit_for_review(version=draft, actor=draft.created_by)
    draft.refresh_from_db()

    page = client.get(reverse("approvals:review", args=[draft.pk])).content.decode()
    assert 'id="decision-barred" data-code="own_version"' in page
    assert 'id="sign-decision"' not in page
    assert inbox_for(co_editor) == []

    response = decide_post(client, draft)
    assert response.status_code == 403
    assert 'data-code="own_version"' in response.content.decode()
    assert Signature.objects.count() == 0
    entry = refusals("own_version").get()
    assert entry.actor == co_editor and entry.target_id == str(draft.pk)


def test_probe_through_the_model_is_refused_at_the_service(draft, co_editor, reviewers):
    edit_as(draft, co_editor, body_html="<p>Edited by a reviewer.</p>", body_text="")
    services.submit_for_review(version=draft, actor=draft.created_by)
    draft.refresh_from_db()
    with pytest.raises(services.ApprovalError) as refusal:
        sign(draft, co_editor, "medical")
    assert refusal.value.code == "own_version"
    assert "changed" in refusal.value.message
    assert refusals("own_version").filter(actor=co_editor).exists()
    assert not Signature.objects.filter(signer=co_editor).exists()


def test_a_tag_change_alone_makes_an_editor(draft, co_editor):
    version = ModuleVersion.objects.get(pk=draft.pk)
    version._history_user = co_editor
    version.channels.add(term(Channel, "portal"))
    assert co_editor.pk in content_editor_ids([draft.pk])[draft.pk]
    services.submit_for_review(version=draft, actor=draft.created_by)
    draft.refresh_from_db()
    with pytest.raises(services.ApprovalError) as refusal:
        sign(draft, co_editor, "medical")
    assert refusal.value.code == "own_version"


def test_an_earlier_rounds_submitter_is_an_author(reviewers, co_editor):
    version = VersionFactory()
    grant_author_brand(co_editor, version.module.brand)
    services.submit_for_review(version=version, actor=co_editor)  # round 1, by the co-editor
    request_changes(version, reviewers["legal"], "legal", reviewers, comment="Fix the claim")
    services.submit_for_review(version=version, actor=version.created_by)  # round 2
    version.refresh_from_db()
    assert co_editor.pk in author_ids_for_versions([version])[version.pk]
    with pytest.raises(services.ApprovalError) as refusal:
        sign(version, co_editor, "medical")
    assert refusal.value.code == "own_version"


def test_workflow_moves_are_not_edits(submitted, reviewers):
    """Requesting changes writes the version's history under the reviewer's name; that
    reviewer may still decide the next round (for the same role)."""
    legal = reviewers["legal"]
    sign(submitted, legal, "legal", "request_changes", comment="Fix the claim")
    # The last role's decision returns the version: its history names that reviewer.
    sign(submitted, reviewers["medical"], "medical")
    sign(submitted, reviewers["regulatory"], "regulatory")
    assert submitted.history.filter(history_user=reviewers["regulatory"]).exists()
    assert reviewers["regulatory"].pk not in content_editor_ids([submitted.pk])[submitted.pk]
    assert legal.pk not in content_editor_ids([submitted.pk])[submitted.pk]
    edit_as(submitted, submitted.created_by, body_html="<p>Fixed.</p>", body_text="")
    services.submit_for_review(version=submitted, actor=submitted.created_by)
    submitted.refresh_from_db()
    approve_all(submitted, reviewers)
    assert submitted.state == "approved"


def test_an_edit_that_changes_nothing_is_not_an_edit(draft, co_editor):
    edit_as(draft, co_editor)  # saved through the admin without changing a field
    assert co_editor.pk not in content_editor_ids([draft.pk])[draft.pk]


# --- one person, one role per version across all rounds -----------------------------------

def test_one_role_per_person_across_rounds(submitted, reviewers):
    both = reviewers["medical"]
    both.groups.add(role_group("legal"))
    request_changes(submitted, both, "medical", reviewers, comment="Fix the claim")
    services.submit_for_review(version=submitted, actor=submitted.created_by)
    submitted.refresh_from_db()
    with pytest.raises(services.ApprovalError) as refusal:
        sign(submitted, both, "legal")
    assert refusal.value.code == "second_role"
    assert "round 1" in refusal.value.message
    assert refusals("second_role").filter(actor=both).exists()
    # The inbox and the page offer them only their earlier role.
    assert [row.my_roles for row in inbox_for(both)] == [("medical",)]
    page = logged_in(both).get(reverse("approvals:review", args=[submitted.pk])).content.decode()
    assert '<option value="medical"' in page and '<option value="legal"' not in page
    sign(submitted, both, "medical")  # the same role in the new round is fine
    assert Signature.objects.filter(signer=both, round=2, role="medical").exists()


def test_second_role_across_rounds_through_the_review_page(submitted, reviewers):
    both = reviewers["medical"]
    both.groups.add(role_group("legal"))
    request_changes(submitted, both, "medical", reviewers, comment="Fix the claim")
    services.submit_for_review(version=submitted, actor=submitted.created_by)
    submitted.refresh_from_db()
    response = decide_post(logged_in(both), submitted, role="legal", username="rev-medical")
    assert response.status_code == 403
    assert 'data-code="second_role"' in response.content.decode()
    assert refusals("second_role").exists()


def test_barred_from_every_pending_role_the_page_says_why(submitted, reviewers):
    only = reviewers["regulatory"]
    only.groups.add(role_group("medical"))
    request_changes(submitted, only, "regulatory", reviewers, comment="Fix")
    services.submit_for_review(version=submitted, actor=submitted.created_by)
    sign(submitted, reviewers["medical"], "medical")
    page = logged_in(only).get(reverse("approvals:review", args=[submitted.pk])).content.decode()
    assert '<option value="regulatory"' in page  # still theirs to decide
    sign(submitted, only, "regulatory")
    page = logged_in(only).get(reverse("approvals:review", args=[submitted.pk])).content.decode()
    assert 'id="sign-decision"' not in page


# --- every refusal at signing is audited ---------------------------------------------------

def test_signing_form_without_a_password_is_refused_with_a_code_and_audited(submitted,
                                                                            reviewers):
    client = logged_in(reviewers["legal"])
    response = decide_post(client, submitted, role="legal", username="rev-legal", password="")
    assert response.status_code == 400
    assert 'data-code="credentials_required"' in response.content.decode()
    entry = refusals("credentials_required").get()
    assert entry.actor == reviewers["legal"] and entry.target_id == str(submitted.pk)
    assert entry.data["fields"] == ["password"]
    assert Signature.objects.count() == 0


@pytest.mark.parametrize("overrides,code", [
    ({"decision": None}, "unknown_decision"),
    ({"decision": "rubber-stamp"}, "unknown_decision"),
    ({"role": None}, "unknown_role"),
    ({"comment": "x" * 5001}, "too_long"),
    ({"username": None}, "credentials_required"),
    ({"expected_sha256": None}, "invalid_form"),
])
def test_every_form_level_refusal_at_signing_is_audited(submitted, reviewers, overrides, code):
    data = {"role": "legal", "username": "rev-legal", **overrides}
    response = decide_post(logged_in(reviewers["legal"]), submitted, **data)
    assert response.status_code == 400
    assert f'data-code="{code}"' in response.content.decode()
    entry = refusals(code).get()
    assert PASSWORD not in str(entry.data)
    assert Signature.objects.count() == 0


def test_a_withdrawal_form_without_a_password_is_audited(submitted, reviewers):
    approve_all(submitted, reviewers)
    client = logged_in(reviewers["regulatory"])
    response = client.post(reverse("approvals:withdraw", args=[submitted.pk]), {
        "role": "regulatory", "reason": "Label change", "username": "rev-regulatory"})
    assert response.status_code == 400
    assert 'data-code="credentials_required"' in response.content.decode()
    assert refusals("credentials_required", "withdrawal_refused").exists()
    assert ModuleVersion.objects.get(pk=submitted.pk).state == "approved"


@pytest.mark.parametrize("case,code", [
    ("stale", "stale_version"),
    ("twice", "already_decided"),
    ("no_comment", "comment_required"),
    ("long_comment", "too_long"),
])
def test_service_refusals_that_are_not_security_events_are_audited_too(submitted, reviewers,
                                                                       case, code):
    medical = reviewers["medical"]
    kwargs = {}
    if case == "stale":
        kwargs["sha256"] = "0" * 64
    elif case == "twice":
        sign(submitted, medical, "medical")
    elif case == "long_comment":
        kwargs["comment"] = "x" * 5001
    decision = "approve"
    if case == "no_comment":
        decision = "request_changes"
        kwargs["comment"] = " "
        with pytest.raises(services.ApprovalError) as refusal:
            services.decide(version=submitted, actor=medical, role="medical", decision=decision,
                            expected_sha256=submitted.sha256, comment=" ",
                            credentials=services.Credentials(password=PASSWORD,
                                                             username=medical.username))
    else:
        with pytest.raises(services.ApprovalError) as refusal:
            sign(submitted, medical, "medical", decision, **kwargs)
    assert refusal.value.code == code
    entry = refusals(code).get()
    assert entry.data["security_event"] is False


def test_a_deactivated_signer_is_refused_and_audited(submitted, reviewers):
    medical = reviewers["medical"]
    medical.is_active = False
    medical.save()
    with pytest.raises(services.ApprovalError) as refusal:
        sign(submitted, medical, "medical")
    assert refusal.value.code in {"role_not_held", "inactive_user"}
    assert refusals(refusal.value.code).exists()


def test_the_inbox_asks_the_history_in_a_fixed_number_of_queries(co_editor):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def add_versions(n):
        for _ in range(n):
            version = VersionFactory()
            grant_author_brand(co_editor, version.module.brand)
            edit_as(version, co_editor)  # saved without a change: its tags decide
            services.submit_for_review(version=version, actor=version.created_by)

    counts = []
    for n in (1, 4):
        add_versions(n)
        with CaptureQueriesContext(connection) as captured:
            assert len(inbox_for(co_editor)) == len(counts) * 4 + 1
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1]
