"""Parallel review (issue 13): consolidated return, due dates and the review clock, recall,
anchored annotations — through the services every screen and the API call."""

from datetime import timedelta

import pytest

from approvals import annotations, services
from approvals.errors import ApprovalError
from approvals.models import Annotation, AuditEntry, ReviewPolicy, ReviewRound, Signature
from approvals.rounds import feedback_for_author, round_status
from approvals.signing import Credentials
from content.models import ModuleVersion
from tests.factories import ReferenceFactory, UserFactory, VersionFactory

from .helpers import PASSWORD, approve_all, finish_round, sign

pytestmark = pytest.mark.django_db


def refused(code, fn, *args, **kwargs):
    with pytest.raises(ApprovalError) as refusal:
        fn(*args, **kwargs)
    assert refusal.value.code == code, refusal.value.message
    return refusal.value


def current_round(version):
    return ReviewRound.objects.filter(version=version).order_by("-number").first()


def state(version):
    return ModuleVersion.objects.get(pk=version.pk).state


# --- parallel rounds ----------------------------------------------------------------------

def test_every_role_reviews_and_all_change_requests_return_together(submitted, reviewers):
    sign(submitted, reviewers["medical"], "medical", "request_changes", comment="Cite the label")
    assert state(submitted) == "in_review"
    status = round_status(submitted)
    assert status.pending_roles == ("legal", "regulatory")
    assert status.changes_requested_by == ("medical",)
    assert status.label == f"v{submitted.number} · round 1"
    sign(submitted, reviewers["legal"], "legal")
    sign(submitted, reviewers["regulatory"], "regulatory", "request_changes", comment="Add ISI")
    assert state(submitted) == "changes_requested"
    round_ = current_round(submitted)
    assert (round_.outcome, round_.closed_at_due_date, round_.undecided_roles) == (
        "changes_requested", False, [])
    feedback = feedback_for_author(submitted)
    assert [s.comment for s in feedback.change_requests] == ["Cite the label", "Add ISI"]
    assert feedback.label.endswith("round 1")


def test_due_date_returns_the_requests_and_records_who_did_not_decide(submitted, reviewers):
    sign(submitted, reviewers["legal"], "legal", "request_changes", comment="Fix the claim")
    round_ = current_round(submitted)
    assert services.close_overdue_rounds(now=round_.due_at - timedelta(seconds=1)) == []
    closed = services.close_overdue_rounds(now=round_.due_at + timedelta(seconds=1))
    assert [r.pk for r in closed] == [round_.pk]
    round_.refresh_from_db()
    assert round_.closed_at_due_date and round_.undecided_roles == ["medical", "regulatory"]
    assert state(submitted) == "changes_requested"
    entry = AuditEntry.objects.get(event="changes_requested")
    assert entry.data["at_due_date"] and entry.data["undecided_roles"] == ["medical", "regulatory"]
    assert feedback_for_author(submitted).undecided_roles == ("medical", "regulatory")


def test_due_date_leaves_a_round_without_change_requests_open(submitted, reviewers):
    sign(submitted, reviewers["legal"], "legal")
    round_ = current_round(submitted)
    later = round_.due_at + timedelta(days=1)
    assert services.close_overdue_rounds(now=later) == []
    assert state(submitted) == "in_review"
    assert list(ReviewRound.objects.overdue(now=later)) == [round_]
    assert not round_.is_overdue  # due in five days from now
    # The late roles still decide, and three approvals in the round approve it.
    sign(submitted, reviewers["medical"], "medical")
    sign(submitted, reviewers["regulatory"], "regulatory")
    assert state(submitted) == "approved"
    assert not ReviewRound.objects.overdue(now=later).exists()


def test_resubmission_is_the_next_round_with_what_reviewers_saw(submitted, reviewers):
    sign(submitted, reviewers["legal"], "legal", "request_changes", comment="Fix")
    finish_round(submitted, reviewers)
    first = current_round(submitted)
    assert first.content_snapshot["sha256"] == first.sha256
    assert "Morgan" in first.content_snapshot["rendered"]["body"]  # the sample recipient
    submitted.body_html = "<p>Rewritten {{ recipient.last_name }}.</p>"
    submitted.save()
    services.submit_for_review(version=submitted, actor=submitted.created_by)
    second = current_round(submitted)
    assert second.number == 2 and second.label == f"v{submitted.number} · round 2"
    assert second.content_snapshot["body_html"] == "<p>Rewritten {{ recipient.last_name }}.</p>"
    assert first.content_snapshot["body_html"] != second.content_snapshot["body_html"]


# --- review policy and the clock ----------------------------------------------------------

def test_brand_policy_sets_due_date_reminder_and_escalation(reviewers, mailoutbox,
                                                             django_capture_on_commit_callbacks):
    version = VersionFactory()
    ReviewPolicy.objects.create(brand=version.module.brand, due_days=2, reminder_days=1,
                                escalation_days=1, escalate_to="legal")
    services.submit_for_review(version=version, actor=version.created_by)
    round_ = current_round(version)
    assert round_.due_at - round_.submitted_at == timedelta(days=2)
    sign(version, reviewers["medical"], "medical")
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert services.send_review_reminders(now=round_.submitted_at + timedelta(hours=12)) == []
        reminded = services.send_review_reminders(now=round_.submitted_at + timedelta(days=1))
    assert [r.pk for r in reminded] == [round_.pk]
    assert len(mailoutbox) == 1 and "Reminder" in mailoutbox[0].subject
    assert sorted(mailoutbox[0].to) == sorted([reviewers["legal"].email,
                                               reviewers["regulatory"].email])
    assert services.send_review_reminders(now=round_.due_at) == []  # once per round
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert services.escalate_overdue_rounds(now=round_.due_at + timedelta(hours=1)) == []
        escalated = services.escalate_overdue_rounds(now=round_.due_at + timedelta(days=1))
    assert [r.pk for r in escalated] == [round_.pk]
    assert mailoutbox[0].to == [reviewers["legal"].email]
    assert "overdue" in mailoutbox[0].subject.lower()
    entry = AuditEntry.objects.get(event="review_escalated")
    assert entry.data["roles"] == ["legal", "regulatory"] and entry.data["to"] == "legal"
    assert services.escalate_overdue_rounds(now=round_.due_at + timedelta(days=5)) == []


def test_without_a_policy_the_defaults_apply_and_escalation_goes_to_the_owner(
        submitted, reviewers, mailoutbox, django_capture_on_commit_callbacks):
    round_ = current_round(submitted)
    assert round_.due_at - round_.submitted_at == timedelta(days=5)
    with django_capture_on_commit_callbacks(execute=True):
        services.escalate_overdue_rounds(now=round_.due_at + timedelta(days=2))
    assert mailoutbox[-1].to == [submitted.module.owner.email]


def test_the_beat_tasks_run_the_clock(submitted, reviewers):
    from approvals import tasks

    round_ = current_round(submitted)
    ReviewRound.objects.filter(pk=round_.pk).update(
        submitted_at=round_.submitted_at - timedelta(days=30),
        due_at=round_.due_at - timedelta(days=30))
    sign(submitted, reviewers["medical"], "medical", "request_changes", comment="Fix")
    assert tasks.send_review_reminders() == [round_.pk]
    assert tasks.escalate_overdue_rounds() == [round_.pk]
    assert tasks.close_overdue_rounds() == [round_.pk]
    assert state(submitted) == "changes_requested"


# --- recall -------------------------------------------------------------------------------

def recall(version, user, password=PASSWORD, **kwargs):
    return services.recall(version=version, actor=user,
                           credentials=Credentials(password=password, username=user.username),
                           **kwargs)


def test_the_author_recalls_before_any_decision_signed_and_audited(submitted, reviewers,
                                                                   mailoutbox,
                                                                   django_capture_on_commit_callbacks):
    author = submitted.created_by
    assert services.may_recall(author, submitted)
    assert not services.may_recall(reviewers["legal"], submitted)
    with django_capture_on_commit_callbacks(execute=True):
        signature = recall(submitted, author, reason="Wrong claim attached")
    assert state(submitted) == "draft"
    assert (signature.meaning, signature.role, signature.sha256) == (
        "recall", "author", submitted.sha256)
    assert current_round(submitted).outcome == "recalled"
    entry = AuditEntry.objects.get(event="recalled")
    assert entry.data["reason"] == "Wrong claim attached" and entry.data["round"] == 1
    assert "recalled" in mailoutbox[-1].subject.lower()
    # The draft is editable again and its next submission is round 2.
    submitted.refresh_from_db()
    submitted.body_html = "<p>Better {{ recipient.last_name }}.</p>"
    submitted.save()
    services.submit_for_review(version=submitted, actor=author)
    assert current_round(submitted).number == 2


def test_recall_after_any_decision_is_refused_with_its_code(submitted, reviewers):
    sign(submitted, reviewers["regulatory"], "regulatory")
    assert not services.may_recall(submitted.created_by, submitted)
    refusal = refused("recall_after_decision", recall, submitted, submitted.created_by)
    assert refusal.details == ["regulatory"]
    assert state(submitted) == "in_review"
    assert not Signature.objects.filter(meaning="recall").exists()
    assert AuditEntry.objects.filter(event="recall_refused",
                                     data__code="recall_after_decision").exists()


def test_recall_needs_the_authors_password_and_only_the_author(submitted, reviewers):
    refused("wrong_password", recall, submitted, submitted.created_by, password="nope")
    refused("credentials_required", services.recall, version=submitted,
            actor=submitted.created_by, credentials=None)
    stranger = UserFactory()
    refused("not_permitted", recall, submitted, stranger)
    assert AuditEntry.objects.filter(event="recall_refused", data__code="not_permitted",
                                     data__security_event=True).exists()
    assert state(submitted) == "in_review"
    assert not Signature.objects.filter(meaning="recall").exists()


def test_recall_of_a_draft_or_approved_version_is_invalid_state(reviewers):
    draft = VersionFactory()
    refused("invalid_state", recall, draft, draft.created_by)
    services.submit_for_review(version=draft, actor=draft.created_by)
    approve_all(draft, reviewers)
    refused("invalid_state", recall, draft, draft.created_by)


# --- annotations --------------------------------------------------------------------------

def quote(version, words=2, block="body"):
    from approvals.snapshots import rendered_blocks

    return {"exact": " ".join(rendered_blocks(version)[block].split()[:words]), "block": block,
            "prefix": "", "suffix": ""}


def annotate(version, user, role, **kwargs):
    kwargs.setdefault("kind", "text")
    kwargs.setdefault("anchor", quote(version))
    kwargs.setdefault("body", "Which source supports this?")
    return annotations.create_annotation(version=version, actor=user, role=role, **kwargs)


def test_a_role_cannot_approve_with_its_own_open_annotations(submitted, reviewers):
    legal = reviewers["legal"]
    note = annotate(submitted, legal, "legal")
    assert note.round == 1 and note.sha256 == submitted.sha256 and note.is_open
    assert annotations.open_annotations_for_role(submitted, "legal") == [note]
    refusal = refused("open_annotations", sign, submitted, legal, "legal")
    assert refusal.details[0].startswith(f"#{note.pk}: “Hello Dr.”")
    assert AuditEntry.objects.filter(event="decision_refused",
                                     data__code="open_annotations").exists()
    # Other roles are not blocked by it; requesting changes is not either.
    sign(submitted, reviewers["medical"], "medical")
    sign(submitted, legal, "legal", "request_changes", comment="See my annotation")
    assert Signature.objects.filter(role="legal", meaning="request_changes").exists()


def test_the_author_resolves_and_the_reviewer_then_approves(submitted, reviewers):
    legal = reviewers["legal"]
    note = annotate(submitted, legal, "legal")
    annotations.resolve_annotation(annotation=note, actor=submitted.created_by,
                                   note="Reference 2 supports it")
    note.refresh_from_db()
    assert (note.state, note.resolved_by, note.resolution_note) == (
        "resolved", submitted.created_by, "Reference 2 supports it")
    approve_all(submitted, reviewers)
    assert submitted.state == "approved"
    assert [e for e in AuditEntry.objects.values_list("event", flat=True)
            if e.startswith("annotation_")] == ["annotation_created", "annotation_resolved"]
    assert note.history.count() == 2  # created, resolved: kept by django-simple-history
    # Approved: annotations are closed records.
    refused("invalid_state", annotations.reopen_annotation, annotation=note, actor=legal)


def test_who_may_annotate_resolve_and_reopen(submitted, reviewers):
    author, legal, medical = submitted.created_by, reviewers["legal"], reviewers["medical"]
    assert annotations.annotatable_roles(legal, submitted) == ["legal"]
    assert annotations.annotatable_roles(author, submitted) == []
    refused("role_not_held", annotate, submitted, author, "legal")
    refused("role_not_held", annotate, submitted, medical, "legal")
    note = annotate(submitted, legal, "legal")
    refused("not_permitted", annotations.resolve_annotation, annotation=note, actor=medical)
    annotations.resolve_annotation(annotation=note, actor=legal)
    refused("invalid_state", annotations.resolve_annotation, annotation=note, actor=legal)
    refused("not_permitted", annotations.reopen_annotation, annotation=note, actor=author)
    annotations.reopen_annotation(annotation=note, actor=legal, note="Still unsupported")
    note.refresh_from_db()
    assert note.is_open and note.resolved_by is None
    # Once a role decided in the round it annotates no more, and an approval is not undone.
    annotations.resolve_annotation(annotation=note, actor=legal)
    sign(submitted, legal, "legal")
    refused("already_decided", annotate, submitted, legal, "legal")
    refused("not_permitted", annotations.reopen_annotation, annotation=note, actor=legal)
    assert annotations.annotatable_roles(legal, submitted) == []


@pytest.mark.parametrize("kind,anchor,code", [
    ("text", {"exact": "Not in the text at all", "block": "body"}, "invalid_anchor"),
    ("text", {"exact": "", "block": "body"}, "invalid_anchor"),
    ("text", {"exact": "Hello", "block": "footer"}, "invalid_anchor"),
    ("text", {"exact": ["Hello"]}, "invalid_anchor"),
    ("text", "Hello", "invalid_anchor"),
    ("reference", {"reference_id": 999999}, "invalid_anchor"),
    ("reference", {"reference_id": "1"}, "invalid_anchor"),
    ("tag", {"tag": "audience:nobody"}, "invalid_anchor"),
    ("companion", {"module_code": "NOPE"}, "invalid_anchor"),
    ("image", {}, "invalid_anchor"),  # the version has no image
    ("sticker", {}, "unknown_anchor"),
])
def test_bad_anchors_are_refused_and_nothing_is_written(submitted, reviewers, kind, anchor, code):
    refused(code, annotate, submitted, reviewers["legal"], "legal", kind=kind, anchor=anchor)
    assert not Annotation.objects.exists()


def test_bad_bodies_are_refused(submitted, reviewers):
    refused("comment_required", annotate, submitted, reviewers["legal"], "legal", body="  ")
    refused("too_long", annotate, submitted, reviewers["legal"], "legal", body="x" * 5001)


def test_reference_and_tag_anchors(reviewers):
    version = VersionFactory()
    reference = ReferenceFactory(brand=version.module.brand)
    version.citations.add(reference)
    services.submit_for_review(version=version, actor=version.created_by)
    version.refresh_from_db()
    note = annotate(version, reviewers["medical"], "medical", kind="reference",
                    anchor={"reference_id": reference.pk})
    assert note.anchor == {"reference_id": reference.pk}
    audience = version.audiences.first()
    if audience is not None:
        tagged = annotate(version, reviewers["medical"], "medical", kind="tag",
                          anchor={"tag": f"audience:{audience.code}"})
        assert tagged.anchor == {"tag": f"audience:{audience.code}"}


def test_annotations_carry_into_the_next_round_marked_where_the_text_changed(submitted,
                                                                            reviewers):
    kept = annotate(submitted, reviewers["legal"], "legal", anchor=quote(submitted, 1))
    moved = annotate(submitted, reviewers["medical"], "medical", anchor=quote(submitted, 2))
    sign(submitted, reviewers["legal"], "legal", "request_changes", comment="See annotations")
    finish_round_with_requests(submitted, reviewers)
    assert state(submitted) == "changes_requested"
    submitted.refresh_from_db()
    submitted.body_html = "<p>Hello again, {{ recipient.last_name }}.</p>"  # "Hello Dr." gone
    submitted.save()
    services.submit_for_review(version=submitted, actor=submitted.created_by)
    kept.refresh_from_db()
    moved.refresh_from_db()
    assert (kept.anchor_changed, moved.anchor_changed) == (False, True)
    assert kept.round == 1 and kept.is_open  # still open, shown in round 2
    assert AuditEntry.objects.filter(event="submitted", data__round=2).get().data[
        "anchors_changed"] == [moved.pk]
    # Round 2: legal must still resolve its carried annotation before approving.
    refused("open_annotations", sign, submitted, reviewers["legal"], "legal")
    assert list(annotations.annotations_for(submitted)) == [kept, moved]
    assert [a.pk for a in feedback_for_author(submitted).open_annotations] == [kept.pk, moved.pk]


def finish_round_with_requests(version, reviewers):
    """Roles with open annotations request changes; the others approve."""
    from approvals.rounds import round_status

    for role in round_status(version).pending_roles:
        if annotations.open_annotations_for_role(version, role):
            sign(version, reviewers[role], role, "request_changes", comment="See annotation")
        else:
            sign(version, reviewers[role], role)


def test_beat_schedules_the_review_clock(settings):
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"approvals.send_review_reminders", "approvals.escalate_overdue_rounds",
            "approvals.close_overdue_rounds"} <= scheduled
