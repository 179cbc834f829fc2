"""Property: no sequence of actions approves a version without three valid role signatures
on its exact sha256 in one round, and an approved version's content never changes
afterwards; no approving signer changed the version's content, and nobody decided for two
roles on it. Parallel review: a round returns the version only when every role decided (or
at its due date), with every role's change requests together; a recall happens only before
the round's first decision; an approved version has no open annotation."""

import itertools
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from approvals import annotations, services, snapshots
from approvals.errors import ApprovalError
from approvals.models import Annotation, AuditEntry, ReviewRound, Signature
from approvals.roles import REQUIRED_ROLES, role_group
from approvals.selectors import content_editor_ids
from approvals.signing import Credentials, unlock_signing
from content.models import ImmutableVersionError, ModuleVersion
from content.rules import compute_sha256
from tests.factories import UserFactory, VersionFactory

from .helpers import PASSWORD

pytestmark = pytest.mark.django_db
_ids = itertools.count()
LOCKED_ONCE_APPROVED = {"approved", "expired", "withdrawn"}
REACHED = {"approved": 0, "consolidated": 0, "recalled": 0, "due_date": 0, "blocked": 0}


class ReviewMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self):
        n = next(_ids)
        self.author = UserFactory(username=f"pbt-author-{n}")
        self.author.groups.add(role_group("regulatory"))  # an author who is also a reviewer
        self.people = [self.author]
        for role in REQUIRED_ROLES:
            user = UserFactory(username=f"pbt-{role}-{n}")
            user.groups.add(role_group(role))
            self.people.append(user)
        multi = UserFactory(username=f"pbt-multi-{n}")
        multi.groups.add(role_group("medical"), role_group("legal"))
        self.people.append(multi)
        # A medical reviewer who also edits drafts (the segregation-of-duties probe).
        co_editor = UserFactory(username=f"pbt-coeditor-{n}")
        co_editor.groups.add(role_group("medical"))
        self.people.append(co_editor)
        self.version = VersionFactory(module__owner=self.author, created_by=self.author)
        self.approved_snapshot = None

    def fresh(self):
        return ModuleVersion.objects.get(pk=self.version.pk)

    @rule()
    def submit(self):
        try:
            services.submit_for_review(version=self.fresh(), actor=self.author)
        except ApprovalError:
            pass

    @rule(person=st.integers(0, 5), role=st.sampled_from(REQUIRED_ROLES),
          decision=st.sampled_from(["approve", "approve", "request_changes"]),
          right_sha=st.booleans(), right_password=st.booleans())
    def decide(self, person, role, decision, right_sha, right_password):
        version = self.fresh()
        user = self.people[person]
        try:
            services.decide(
                version=version, actor=user, role=role, decision=decision,
                expected_sha256=version.sha256 if right_sha else "0" * 64,
                credentials=Credentials(password=PASSWORD if right_password else "x",
                                        username=user.username),
                comment="needs work" if decision == "request_changes" else "",
            )
        except ApprovalError:
            pass
        if not right_password:
            unlock_signing(user=user, actor=None)  # keep exploring past the lockout

    @rule(role=st.sampled_from(REQUIRED_ROLES))
    def proper_approval(self, role):
        """The right reviewer for `role` approves what they see (makes approval reachable)."""
        version = self.fresh()
        user = self.people[1 + REQUIRED_ROLES.index(role)]
        try:
            services.decide(version=version, actor=user, role=role, decision="approve",
                            expected_sha256=version.sha256,
                            credentials=Credentials(password=PASSWORD, username=user.username))
        except ApprovalError:
            pass

    @rule()
    def full_review(self):
        """Submit and let the three proper reviewers approve (makes approval reachable)."""
        self.submit()
        for role in REQUIRED_ROLES:
            self.proper_approval(role)

    @rule(text=st.text(alphabet="abc <>{}", max_size=12))
    def edit(self, text):
        version = self.fresh()
        version.body_html = f"<p>edit {text}</p>"
        try:
            version.save()
        except ImmutableVersionError:
            assert not version.is_editable
        except Exception:  # invalid token syntax etc.: refused, nothing saved
            pass

    @rule(editor=st.sampled_from([0, 5]), text=st.text(alphabet="xyz", max_size=6))
    def edit_by(self, editor, text):
        """A person's edit, recorded in the history as the admin records it."""
        version = self.fresh()
        version.body_html = f"<p>edited {text}</p>"
        version._history_user = self.people[editor]
        try:
            version.save()
        except ImmutableVersionError:
            assert not version.is_editable

    @rule(days=st.integers(0, 800))
    def time_passes(self, days):
        version = self.fresh()
        if version.expires_at:
            services.expire_due_versions(now=version.approved_at + timedelta(days=days))

    @rule(person=st.integers(0, 4), reason=st.sampled_from(["", "Label change"]))
    def withdraw(self, person, reason):
        user = self.people[person]
        try:
            services.withdraw(version=self.fresh(), actor=user, reason=reason,
                              credentials=Credentials(password=PASSWORD, username=user.username))
        except ApprovalError:
            pass

    @rule(right_password=st.booleans(), person=st.sampled_from([0, 1]))
    def recall(self, right_password, person):
        user = self.people[person]
        try:
            services.recall(version=self.fresh(), actor=user,
                            credentials=Credentials(password=PASSWORD if right_password else "x",
                                                    username=user.username))
        except ApprovalError:
            pass
        if not right_password:
            unlock_signing(user=user, actor=None)

    @rule(days=st.integers(0, 12))
    def review_clock(self, days):
        """Beat: reminders, escalation, and closing rounds past their due date."""
        round_ = ReviewRound.objects.filter(version_id=self.version.pk).order_by("-number").first()
        if round_ is None:
            return
        now = round_.submitted_at + timedelta(days=days)
        services.send_review_reminders(now=now)
        services.escalate_overdue_rounds(now=now)
        services.close_overdue_rounds(now=now)

    @rule(person=st.sampled_from([None, 0, 4, 5]), role=st.sampled_from(REQUIRED_ROLES))
    def annotate(self, person, role):
        """The role's proper reviewer (None) or someone else annotates the preview's text."""
        version = self.fresh()
        user = self.people[1 + REQUIRED_ROLES.index(role) if person is None else person]
        words = snapshots.rendered_blocks(version)["body"].split()
        try:
            annotations.create_annotation(
                version=version, actor=user, role=role, kind="text",
                anchor={"exact": " ".join(words[:2]), "block": "body"}, body="Source?")
        except ApprovalError:
            pass

    def _proper(self, role, decision):
        version = self.fresh()
        user = self.people[1 + REQUIRED_ROLES.index(role)]
        try:
            services.decide(version=version, actor=user, role=role, decision=decision,
                            expected_sha256=version.sha256, comment=f"{role}: fix it",
                            credentials=Credentials(password=PASSWORD, username=user.username))
        except ApprovalError:
            pass

    @rule(meanings=st.lists(st.sampled_from(["approve", "request_changes"]), min_size=3,
                            max_size=3))
    def parallel_round(self, meanings):
        """Submit and let the three proper reviewers decide (reaches consolidated returns)."""
        self.submit()
        for role, meaning in zip(REQUIRED_ROLES, meanings, strict=True):
            self._proper(role, meaning)

    @rule(role=st.sampled_from(REQUIRED_ROLES))
    def annotated_round(self, role):
        """Submit; a reviewer annotates, then tries to approve with it open (refused)."""
        self.submit()
        self.annotate(None, role)
        self._proper(role, "approve")

    @rule()
    def submit_and_recall(self):
        self.submit()
        self.recall(True, 0)

    @rule(role=st.sampled_from(REQUIRED_ROLES))
    def overdue_round(self, role):
        """One role requests changes, the others let the due date pass."""
        self.submit()
        self._proper(role, "request_changes")
        round_ = ReviewRound.objects.filter(version_id=self.version.pk).order_by("-number").first()
        if round_ is not None:
            services.close_overdue_rounds(now=round_.due_at + timedelta(seconds=1))

    @rule(person=st.integers(0, 5), reopen=st.booleans())
    def resolve_or_reopen(self, person, reopen):
        state = "resolved" if reopen else "open"
        target = Annotation.objects.filter(version_id=self.version.pk, state=state).last()
        if target is None:
            return
        fn = annotations.reopen_annotation if reopen else annotations.resolve_annotation
        try:
            fn(annotation=target, actor=self.people[person])
        except ApprovalError:
            pass

    @invariant()
    def rounds_close_only_when_every_role_decided_or_at_due_date(self):
        if not hasattr(self, "version"):
            return
        for round_ in ReviewRound.objects.filter(version_id=self.version.pk):
            decisions = list(Signature.objects.filter(
                version_id=self.version.pk, round=round_.number,
                meaning__in=["approve", "request_changes"]))
            roles = {s.role for s in decisions}
            requested = sorted(s.role for s in decisions if s.meaning == "request_changes")
            if round_.outcome == "changes_requested":
                assert requested, "returned without a change request"
                undecided = sorted(set(REQUIRED_ROLES) - roles)
                if round_.closed_at_due_date:
                    REACHED["due_date"] += 1
                    assert sorted(round_.undecided_roles) == undecided
                else:
                    assert not undecided, "returned before every role decided"
                    assert round_.undecided_roles == []
                if len(requested) > 1:
                    REACHED["consolidated"] += 1
                entry = AuditEntry.objects.filter(
                    event="changes_requested", target_id=str(self.version.pk),
                    data__round=round_.number).get()
                assert sorted(entry.data["roles"]) == requested, "not every request returned"
            elif round_.outcome == "open":
                assert self.fresh().state == "in_review"
            elif round_.outcome == "approved":
                assert {s.role for s in decisions if s.meaning == "approve"
                        and s.sha256 == round_.sha256} == set(REQUIRED_ROLES)
                assert not requested

    @invariant()
    def recall_only_before_the_first_decision(self):
        if not hasattr(self, "version"):
            return
        recalls = Signature.objects.filter(version_id=self.version.pk, meaning="recall")
        for recall in recalls:
            REACHED["recalled"] += 1
            assert not Signature.objects.filter(
                version_id=self.version.pk, round=recall.round,
                meaning__in=["approve", "request_changes"]).exists(), \
                "recalled after a decision (or decided after a recall)"
            assert ReviewRound.objects.get(version_id=self.version.pk,
                                           number=recall.round).outcome == "recalled"
        assert ReviewRound.objects.filter(version_id=self.version.pk,
                                          outcome="recalled").count() == recalls.count()

    @invariant()
    def no_open_annotation_on_an_approved_version(self):
        if not hasattr(self, "version"):
            return
        open_ = Annotation.objects.filter(version_id=self.version.pk, state="open")
        if self.fresh().approved_at is not None:
            assert not open_.exists(), "approved with an open annotation"
        elif self.fresh().state == "in_review" and open_.exists():
            REACHED["blocked"] += 1

    @invariant()
    def one_person_one_role_per_version(self):
        if not hasattr(self, "version"):
            return
        roles_by_signer = {}
        for signer_id, role in Signature.objects.filter(
                version_id=self.version.pk, meaning__in=["approve", "request_changes"],
        ).values_list("signer_id", "role"):
            roles_by_signer.setdefault(signer_id, set()).add(role)
        assert all(len(roles) == 1 for roles in roles_by_signer.values()), roles_by_signer

    @invariant()
    def approval_needs_three_valid_signatures(self):
        if not hasattr(self, "version"):
            return
        version = self.fresh()
        if version.approved_at is None:
            assert version.state not in LOCKED_ONCE_APPROVED
            return
        assert version.state in LOCKED_ONCE_APPROVED
        approvals = Signature.objects.filter(version=version, meaning="approve",
                                             sha256=version.sha256)
        by_round = {}
        for s in approvals:
            by_round.setdefault(s.round, []).append(s)
        valid_rounds = [
            sigs for sigs in by_round.values()
            if {s.role for s in sigs} == set(REQUIRED_ROLES)
            and len({s.signer_id for s in sigs}) == 3
            and self.author.pk not in {s.signer_id for s in sigs}
        ]
        assert valid_rounds, "approved without three valid role signatures on its sha256"
        editors = content_editor_ids([version.pk])[version.pk]
        assert any(not editors & {s.signer_id for s in sigs} for sigs in valid_rounds), \
            "approved with a decision by someone who edited the version"
        assert compute_sha256(version) == version.sha256
        snapshot = (version.body_html, version.body_text, version.sha256)
        if self.approved_snapshot is None:
            self.approved_snapshot = snapshot
            REACHED["approved"] += 1
        assert snapshot == self.approved_snapshot, "approved content changed"


ReviewMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=25, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_no_action_sequence_approves_without_three_valid_signatures(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from hypothesis.stateful import run_state_machine_as_test

    for key in REACHED:
        REACHED[key] = 0
    run_state_machine_as_test(ReviewMachine, settings=ReviewMachine.TestCase.settings)
    # Each property must have been exercised, or it holds vacuously.
    assert all(REACHED.values()), REACHED
