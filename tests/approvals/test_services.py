"""The review services: the rules through the layer every caller uses, and the bad inputs."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone

from approvals import services, signals
from approvals.audit import verify_chain
from approvals.errors import ApprovalError
from approvals.models import AppendOnlyError, AuditEntry, ReviewRound, Signature
from approvals.roles import role_group
from approvals.signing import Credentials, unlock_signing
from content.models import ImmutableVersionError, ModuleVersion
from tests.factories import BrandFactory, ModuleFactory, UserFactory, VersionFactory

from .helpers import PASSWORD, approve_all, sign

pytestmark = pytest.mark.django_db


def snapshot(version):
    """Everything a refused action must leave as it was."""
    version = ModuleVersion.objects.get(pk=version.pk)
    return (version.state, version.sha256, version.approved_at, version.expires_at,
            Signature.objects.filter(version=version).count(),
            ReviewRound.objects.filter(version=version).count())


def refused(code, fn, *args, **kwargs):
    with pytest.raises(ApprovalError) as refusal:
        fn(*args, **kwargs)
    assert refusal.value.code == code, refusal.value.message
    assert refusal.value.message
    return refusal.value


def events():
    return list(AuditEntry.objects.values_list("event", flat=True))


# --- the happy path ----------------------------------------------------------------------

def test_three_roles_approving_the_same_sha_approve_the_version(submitted, reviewers,
                                                                django_capture_on_commit_callbacks):
    received = []
    signals.version_approved.connect(lambda sender, version, **kw: received.append(version.pk),
                                     dispatch_uid="test-approved", weak=False)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            approve_all(submitted, reviewers)
    finally:
        signals.version_approved.disconnect(dispatch_uid="test-approved")
    assert submitted.state == "approved"
    assert submitted.approved_at is not None
    assert submitted.expires_at == submitted.approved_at + timedelta(days=365)
    signatures = Signature.objects.filter(version=submitted)
    assert sorted(s.role for s in signatures) == ["legal", "medical", "regulatory"]
    assert {s.sha256 for s in signatures} == {submitted.sha256}
    assert {s.round for s in signatures} == {1}
    assert signatures.get(role="legal").printed_name == "Legal Reviewer (rev-legal)"
    assert received == [submitted.pk]
    assert events()[-5:] == ["submitted", "decided", "decided", "decided", "approved"][-5:]
    assert ReviewRound.objects.get(version=submitted).outcome == "approved"
    assert verify_chain()[1] is None


def test_brand_validity_days_set_the_expiry(reviewers):
    version = VersionFactory(module=ModuleFactory(brand=BrandFactory(approval_validity_days=30)))
    services.submit_for_review(version=version, actor=version.created_by)
    approve_all(version, reviewers)
    assert version.expires_at - version.approved_at == timedelta(days=30)


def test_submission_emails_the_reviewers_of_every_role(reviewers, mailoutbox,
                                                       django_capture_on_commit_callbacks):
    version = VersionFactory()
    with django_capture_on_commit_callbacks(execute=True):
        services.submit_for_review(version=version, actor=version.created_by)
    assert len(mailoutbox) == 1
    assert sorted(mailoutbox[0].to) == sorted(u.email for u in reviewers.values())
    assert version.module.code in mailoutbox[0].subject
    assert f"/review/v/{version.pk}/" in mailoutbox[0].body


def test_changes_requested_return_it_and_resubmission_opens_a_new_round(submitted, reviewers,
                                                                        mailoutbox,
                                                                        django_capture_on_commit_callbacks):
    sign(submitted, reviewers["medical"], "medical")
    with django_capture_on_commit_callbacks(execute=True):
        sign(submitted, reviewers["legal"], "legal", "request_changes", comment="Add the ISI")
    submitted.refresh_from_db()
    # Parallel review: one change request does not end the round; regulatory still reviews.
    assert submitted.state == "in_review"
    assert not [m for m in mailoutbox if submitted.created_by.email in m.to]
    with django_capture_on_commit_callbacks(execute=True):
        sign(submitted, reviewers["regulatory"], "regulatory", "request_changes",
             comment="Shorten the claim")
    submitted.refresh_from_db()
    assert submitted.state == "changes_requested"
    # Consolidated: one mail to the author with every role's request.
    assert "Add the ISI" in mailoutbox[-1].body and "Shorten the claim" in mailoutbox[-1].body
    assert submitted.created_by.email in mailoutbox[-1].to
    entry = AuditEntry.objects.filter(event="changes_requested").get()
    assert entry.data["roles"] == ["legal", "regulatory"]

    submitted.body_html = "<p>Hello again {{ recipient.last_name }}.</p>"
    submitted.save()
    services.submit_for_review(version=submitted, actor=submitted.created_by)
    assert submitted.review_rounds.count() == 2
    # The round-1 medical approval does not count: two approvals in round 2 are not enough.
    sign(submitted, reviewers["legal"], "legal")
    sign(submitted, reviewers["regulatory"], "regulatory")
    submitted.refresh_from_db()
    assert submitted.state == "in_review"
    sign(submitted, reviewers["medical"], "medical")
    submitted.refresh_from_db()
    assert submitted.state == "approved"


# --- bad input: refused with a reason, nothing changed, security events audited -----------

def test_author_cannot_approve_own_version(submitted, reviewers):
    author = submitted.created_by
    author.groups.add(role_group("medical"))
    before = snapshot(submitted)
    refused("own_version", sign, submitted, author, "medical")
    assert snapshot(submitted) == before
    assert AuditEntry.objects.filter(event="decision_refused", actor=author,
                                     data__code="own_version").exists()


def test_reviewer_cannot_decide_for_a_role_they_lack(submitted, reviewers):
    before = snapshot(submitted)
    refused("role_not_held", sign, submitted, reviewers["legal"], "medical")
    assert snapshot(submitted) == before
    assert AuditEntry.objects.get(event="decision_refused").data["code"] == "role_not_held"


def test_deciding_twice_is_refused(submitted, reviewers):
    sign(submitted, reviewers["medical"], "medical")
    before = snapshot(submitted)
    refused("already_decided", sign, submitted, reviewers["medical"], "medical")
    assert snapshot(submitted) == before


def test_one_person_cannot_sign_for_two_roles(submitted, reviewers):
    both = reviewers["medical"]
    both.groups.add(role_group("legal"))
    sign(submitted, both, "medical")
    before = snapshot(submitted)
    refused("second_role", sign, submitted, both, "legal")
    assert snapshot(submitted) == before
    assert AuditEntry.objects.filter(event="decision_refused", data__code="second_role").exists()


def test_stale_sha256_is_refused(submitted, reviewers):
    before = snapshot(submitted)
    refused("stale_version", sign, submitted, reviewers["medical"], "medical", sha256="0" * 64)
    assert snapshot(submitted) == before


def test_wrong_password_is_refused_and_audited(submitted, reviewers):
    before = snapshot(submitted)
    refused("wrong_password", sign, submitted, reviewers["medical"], "medical", password="nope")
    assert snapshot(submitted) == before
    entry = AuditEntry.objects.get(event="signature_failed")
    assert entry.actor == reviewers["medical"]
    assert entry.data == {"consecutive_failures": 1}


def test_wrong_user_id_is_refused_like_a_wrong_password(submitted, reviewers):
    medical = reviewers["medical"]
    with pytest.raises(ApprovalError) as refusal:
        services.decide(version=submitted, actor=medical, role="medical", decision="approve",
                        expected_sha256=submitted.sha256,
                        credentials=Credentials(password=PASSWORD, username="rev-legal"))
    assert refusal.value.code == "wrong_password"
    assert Signature.objects.count() == 0


def test_five_wrong_passwords_lock_signing_until_unlocked(submitted, reviewers):
    medical = reviewers["medical"]
    for _ in range(4):
        refused("wrong_password", sign, submitted, medical, "medical", password="nope")
    refused("signing_locked", sign, submitted, medical, "medical", password="nope")
    assert AuditEntry.objects.filter(event="signing_locked", actor=medical).count() == 1
    # Locked: even the right password does not sign.
    refused("signing_locked", sign, submitted, medical, "medical")
    assert AuditEntry.objects.filter(event="signature_refused_locked").count() == 1
    assert Signature.objects.count() == 0
    admin = UserFactory(username="admin-x", is_staff=True, is_superuser=True)
    unlock_signing(user=medical, actor=admin)
    sign(submitted, medical, "medical")
    assert Signature.objects.count() == 1


def test_a_right_password_resets_the_failure_count(submitted, reviewers):
    medical = reviewers["medical"]
    for _ in range(4):
        refused("wrong_password", sign, submitted, medical, "medical", password="nope")
    sign(submitted, medical, "medical")
    refused("wrong_password", sign, submitted, reviewers["legal"], "legal", password="nope")
    assert medical.signing_state.consecutive_failures == 0


def test_missing_credentials_never_sign(submitted, reviewers):
    refused("credentials_required", services.decide, version=submitted,
            actor=reviewers["medical"], role="medical", decision="approve",
            expected_sha256=submitted.sha256, credentials=None)
    refused("credentials_required", services.decide, version=submitted,
            actor=reviewers["medical"], role="medical", decision="approve",
            expected_sha256=submitted.sha256, credentials=Credentials(password=PASSWORD))
    assert Signature.objects.count() == 0
    assert AuditEntry.objects.filter(event="signature_refused").count() == 2


def test_request_changes_needs_a_comment(submitted, reviewers):
    before = snapshot(submitted)
    refused("comment_required", services.decide, version=submitted, actor=reviewers["legal"],
            role="legal", decision="request_changes", expected_sha256=submitted.sha256,
            credentials=Credentials(password=PASSWORD, username="rev-legal"), comment=" ")
    assert snapshot(submitted) == before


def test_deciding_on_a_draft_is_refused(reviewers):
    version = VersionFactory()
    refused("invalid_state", sign, version, reviewers["medical"], "medical")
    assert snapshot(version)[0] == "draft"


def test_submission_lists_what_keeps_a_claim_from_review(reviewers):
    version = VersionFactory(module=ModuleFactory(kind="claim"))
    error = refused("not_ready", services.submit_for_review, version=version,
                    actor=version.created_by)
    assert any("reference" in d for d in error.details)
    assert snapshot(version)[0] == "draft"
    assert ReviewRound.objects.count() == 0


def test_an_author_of_another_brand_cannot_submit(reviewers):
    version = VersionFactory()
    refused("not_permitted", services.submit_for_review, version=version,
            actor=UserFactory(username="outsider"))
    assert snapshot(version)[0] == "draft"
    assert AuditEntry.objects.filter(event="submission_refused").exists()


def test_submitting_twice_is_refused(submitted):
    refused("invalid_state", services.submit_for_review, version=submitted,
            actor=submitted.created_by)
    assert submitted.review_rounds.count() == 1


# --- signing session ---------------------------------------------------------------------

def test_later_signings_of_a_session_need_only_the_password(reviewers, settings):
    first, second = VersionFactory(), VersionFactory()
    for version in (first, second):
        services.submit_for_review(version=version, actor=version.created_by)
    session = {}
    medical = reviewers["medical"]
    refused("credentials_required", services.decide, version=first, actor=medical,
            role="medical", decision="approve", expected_sha256=first.sha256,
            credentials=Credentials(password=PASSWORD), session=session)
    sign(first, medical, "medical", session=session)
    services.decide(version=second, actor=medical, role="medical", decision="approve",
                    expected_sha256=second.sha256, credentials=Credentials(password=PASSWORD),
                    session=session)
    assert Signature.objects.filter(signer=medical).count() == 2


def test_after_the_idle_timeout_user_id_and_password_are_needed_again(submitted, reviewers):
    from approvals.signing import SESSION_AT_KEY, needs_username

    medical = reviewers["medical"]
    session = {}
    sign(submitted, medical, "medical", session=session)
    assert not needs_username(session, medical)
    session[SESSION_AT_KEY] -= 16 * 60
    assert needs_username(session, medical)
    assert needs_username(session, reviewers["legal"])  # another user in the same browser


# --- withdrawal and expiry ---------------------------------------------------------------

def test_withdrawal_needs_a_reason(submitted, reviewers):
    approve_all(submitted, reviewers)
    before = snapshot(submitted)
    refused("reason_required", services.withdraw, version=submitted, actor=reviewers["legal"],
            reason="  ", credentials=Credentials(password=PASSWORD, username="rev-legal"))
    assert snapshot(submitted) == before


def test_withdrawal_is_signed_and_announced(submitted, reviewers,
                                             django_capture_on_commit_callbacks):
    approve_all(submitted, reviewers)
    received = []
    signals.version_withdrawn.connect(
        lambda sender, version, reason, actor, **kw: received.append((version.pk, reason, actor)),
        dispatch_uid="test-withdrawn", weak=False)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            signature = services.withdraw(
                version=submitted, actor=reviewers["regulatory"], reason="Safety signal",
                credentials=Credentials(password=PASSWORD, username="rev-regulatory"))
    finally:
        signals.version_withdrawn.disconnect(dispatch_uid="test-withdrawn")
    submitted.refresh_from_db()
    assert (submitted.state, submitted.withdrawal_reason) == ("withdrawn", "Safety signal")
    assert (signature.meaning, signature.role, signature.sha256) == ("withdraw", "regulatory",
                                                                     submitted.sha256)
    assert received == [(submitted.pk, "Safety signal", reviewers["regulatory"])]
    assert AuditEntry.objects.filter(event="withdrawn", data__reason="Safety signal").exists()


def test_only_reviewers_may_withdraw(submitted, reviewers):
    approve_all(submitted, reviewers)
    author = submitted.created_by
    refused("role_not_held", services.withdraw, version=submitted, actor=author,
            reason="Mine", credentials=Credentials(password=PASSWORD, username=author.username))
    assert snapshot(submitted)[0] == "approved"


def test_versions_past_their_date_expire_and_owners_are_told(reviewers, mailoutbox,
                                                               django_capture_on_commit_callbacks):
    due, later = VersionFactory(), VersionFactory()
    for version in (due, later):
        services.submit_for_review(version=version, actor=version.created_by)
        approve_all(version, reviewers)
    received = []
    signals.version_expired.connect(lambda sender, version, **kw: received.append(version.pk),
                                    dispatch_uid="test-expired", weak=False)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            expired = services.expire_due_versions(now=due.expires_at + timedelta(seconds=1))
    finally:
        signals.version_expired.disconnect(dispatch_uid="test-expired")
    assert [v.pk for v in expired] == [due.pk, later.pk] or [v.pk for v in expired] == [due.pk]
    due.refresh_from_db()
    assert due.state == "expired"
    assert due.pk in received
    assert any("expired" in m.subject for m in mailoutbox)
    assert services.expire_due_versions(now=due.expires_at + timedelta(seconds=1)) == []


def test_owners_are_notified_once_before_expiry(submitted, reviewers, mailoutbox,
                                                django_capture_on_commit_callbacks):
    approve_all(submitted, reviewers)
    early = submitted.expires_at - timedelta(days=31)
    assert services.notify_expiring(now=early) == []
    inside = submitted.expires_at - timedelta(days=29)
    with django_capture_on_commit_callbacks(execute=True):
        assert [v.pk for v in services.notify_expiring(now=inside)] == [submitted.pk]
    assert services.notify_expiring(now=inside) == []
    assert "expires on" in mailoutbox[-1].subject
    submitted.refresh_from_db()
    assert submitted.expiry_notified_at == inside


def test_beat_tasks_run_the_services(submitted, reviewers):
    from approvals import tasks

    approve_all(submitted, reviewers)
    version = ModuleVersion.objects.get(pk=submitted.pk)
    version.expires_at = timezone.now() - timedelta(minutes=1)
    version.save(update_fields=["expires_at"])
    admin = UserFactory(username="ops", is_superuser=True)
    assert tasks.expire_due_versions.delay(acting_user_id=admin.pk).get() == [submitted.pk]
    entry = AuditEntry.objects.get(event="expired")
    assert entry.actor == admin
    assert version.history.first().history_user == admin


# --- immutability and records ---------------------------------------------------------------

def test_approved_content_cannot_change(submitted, reviewers):
    approve_all(submitted, reviewers)
    submitted.body_html = "<p>Better results!</p>"
    with pytest.raises(ImmutableVersionError):
        submitted.save()
    with pytest.raises(ValidationError):
        submitted.jurisdictions.clear()


def test_content_cannot_change_while_in_review(submitted):
    submitted.body_html = "<p>Sneaky edit</p>"
    with pytest.raises(ImmutableVersionError):
        submitted.save()


def test_signatures_cannot_be_edited_or_deleted(submitted, reviewers):
    signature = sign(submitted, reviewers["medical"], "medical").signature
    signature.meaning = "request_changes"
    with pytest.raises(AppendOnlyError):
        signature.save()
    with pytest.raises(AppendOnlyError):
        signature.delete()
    with pytest.raises(AppendOnlyError):
        Signature.objects.filter(pk=signature.pk).update(role="legal")
    with pytest.raises(AppendOnlyError):
        Signature.objects.all().delete()
    assert Signature.objects.get(pk=signature.pk).meaning == "approve"


def test_users_are_deactivated_never_deleted(submitted, reviewers):
    medical = reviewers["medical"]
    sign(submitted, medical, "medical")
    with pytest.raises(ProtectedError):
        medical.delete()
    bystander = UserFactory(username="bystander")
    with pytest.raises(ProtectedError, match="deactivate"), transaction.atomic():
        bystander.delete()
    with pytest.raises(ProtectedError, match="deactivate"), transaction.atomic():
        type(bystander).objects.filter(pk=bystander.pk).delete()
    assert type(bystander).objects.filter(pk=bystander.pk).exists()


def test_a_deactivated_reviewer_cannot_sign(submitted, reviewers):
    medical = reviewers["medical"]
    medical.is_active = False
    medical.save()
    refused("role_not_held", sign, submitted, medical, "medical")


def test_group_membership_is_read_at_signing_time(submitted, reviewers):
    medical = reviewers["medical"]
    Group.objects.get(name="mlr-medical").user_set.remove(medical)
    refused("role_not_held", sign, submitted, medical, "medical")


@pytest.mark.postgres
def test_postgres_trigger_refuses_signature_update(submitted, reviewers):
    from django.db import DatabaseError, connection, transaction

    signature = sign(submitted, reviewers["medical"], "medical").signature
    for sql in ("UPDATE approvals_signature SET role = 'legal' WHERE id = %s",
                "DELETE FROM approvals_signature WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql, [signature.pk])
    assert Signature.objects.get(pk=signature.pk).role == "medical"


def test_overlong_comments_and_reasons_are_refused(submitted, reviewers):
    refused("too_long", services.decide, version=submitted, actor=reviewers["legal"],
            role="legal", decision="approve", expected_sha256=submitted.sha256,
            credentials=Credentials(password=PASSWORD, username="rev-legal"), comment="x" * 5001)
    refused("too_long", services.add_comment, version=submitted, actor=reviewers["legal"],
            body="x" * 5001)
    refused("unknown_anchor", services.add_comment, version=submitted, actor=reviewers["legal"],
            body="ok", anchor="footer")
    assert Signature.objects.count() == 0


def test_content_changed_outside_the_app_cannot_be_signed(submitted, reviewers):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("UPDATE content_moduleversion SET body_html = %s WHERE id = %s",
                       ["<p>Cures everything.</p>", submitted.pk])
    before = snapshot(submitted)
    refused("stale_version", sign, submitted, reviewers["medical"], "medical")
    assert snapshot(submitted) == before
