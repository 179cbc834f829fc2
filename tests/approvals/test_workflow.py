"""The transition table and the decision rules, exhaustively, without a database."""

import itertools

import pytest

from approvals.errors import ApprovalError
from approvals.workflow import (
    TRANSITIONS,
    Action,
    Decision,
    check_decision,
    check_open_annotations,
    check_recall,
    check_withdrawal,
    next_state,
    round_label,
    round_outcome,
)
from content.models import VersionState

ALL_ACTIONS = [Action.SUBMIT, Action.REQUEST_CHANGES, Action.APPROVE, Action.EXPIRE,
               Action.WITHDRAW, Action.RECALL]
EXPECTED = {
    ("draft", "submit"): "in_review",
    ("changes_requested", "submit"): "in_review",
    ("in_review", "request_changes"): "changes_requested",
    ("in_review", "approve"): "approved",
    ("in_review", "recall"): "draft",
    ("approved", "expire"): "expired",
    ("approved", "withdraw"): "withdrawn",
}


@pytest.mark.parametrize("state,action", list(itertools.product(VersionState.values, ALL_ACTIONS)))
def test_every_state_action_pair_follows_the_table(state, action):
    if (state, action) in EXPECTED:
        assert next_state(state, action) == EXPECTED[(state, action)]
    else:
        with pytest.raises(ApprovalError) as refusal:
            next_state(state, action)
        assert refusal.value.code == "invalid_state"
        assert VersionState(state).label.lower() in refusal.value.message


def test_table_has_no_transition_out_of_expired_or_withdrawn():
    assert {source for source, _ in TRANSITIONS} == {"draft", "changes_requested", "in_review",
                                                     "approved"}
    assert dict(TRANSITIONS) == EXPECTED


def facts(**overrides):
    base = dict(state="in_review", current_sha256="a" * 64, expected_sha256="a" * 64,
                author_ids={1}, actor_id=2, actor_roles=["medical"], role="medical",
                meaning="approve", comment="", round_decisions=[])
    base.update(overrides)
    return base


def refusal_code(**overrides):
    try:
        check_decision(**facts(**overrides))
    except ApprovalError as refusal:
        assert refusal.message
        return refusal.code
    return None


def test_reviewer_holding_the_role_may_approve_current_sha():
    assert refusal_code() is None


@pytest.mark.parametrize("overrides,code", [
    ({"role": "marketing"}, "unknown_role"),
    ({"meaning": "withdraw"}, "unknown_decision"),
    ({"state": "draft"}, "invalid_state"),
    ({"state": "approved"}, "invalid_state"),
    ({"state": "changes_requested"}, "invalid_state"),
    ({"actor_roles": ["legal"]}, "role_not_held"),
    ({"actor_roles": []}, "role_not_held"),
    ({"author_ids": {2}}, "own_version"),
    ({"expected_sha256": "b" * 64}, "stale_version"),
    ({"expected_sha256": ""}, "stale_version"),
    ({"round_decisions": [Decision("medical", "approve", 3, "a" * 64)]}, "already_decided"),
    ({"round_decisions": [Decision("medical", "approve", 2, "a" * 64)]}, "already_decided"),
    ({"actor_roles": ["medical", "legal"], "role": "legal",
      "round_decisions": [Decision("medical", "approve", 2, "a" * 64)]}, "second_role"),
    ({"meaning": "request_changes", "comment": "  "}, "comment_required"),
])
def test_decision_refusals(overrides, code):
    assert refusal_code(**overrides) == code


def test_request_changes_with_a_comment_is_allowed():
    assert refusal_code(meaning="request_changes", comment="Cite the label") is None


SHA = "a" * 64


MED_OK = Decision("medical", "approve", 1, SHA)
LEG_OK = Decision("legal", "approve", 2, SHA)
REG_OK = Decision("regulatory", "approve", 3, SHA)
MED_CR = Decision("medical", "request_changes", 1, SHA)
LEG_CR = Decision("legal", "request_changes", 2, SHA)
REG_CR = Decision("regulatory", "request_changes", 3, SHA)


@pytest.mark.parametrize("decisions,action,missing,requested", [
    ([], None, ("medical", "legal", "regulatory"), ()),
    ([MED_OK], None, ("legal", "regulatory"), ()),
    ([MED_OK, LEG_OK, REG_OK], "approve", (), ()),
    # Parallel review: a change request waits for the other roles...
    ([MED_CR], None, ("legal", "regulatory"), ("medical",)),
    ([MED_OK, LEG_CR], None, ("regulatory",), ("legal",)),
    # ...and every role's requests return together when the last role decides.
    ([MED_CR, LEG_OK, REG_OK], "request_changes", (), ("medical",)),
    ([MED_CR, LEG_OK, REG_CR], "request_changes", (), ("medical", "regulatory")),
    ([MED_CR, LEG_CR, REG_CR], "request_changes", (), ("medical", "legal", "regulatory")),
    # Approvals on other bytes do not count: all decided without three approvals of one
    # sha256 returns the version (never approves it).
    ([MED_OK, LEG_OK, Decision("regulatory", "approve", 3, "b" * 64)],
     "request_changes", (), ()),
    # One person's signatures never make up two roles.
    ([MED_OK, Decision("legal", "approve", 1, SHA), REG_OK], "request_changes", (), ()),
])
def test_round_outcome(decisions, action, missing, requested):
    outcome = round_outcome(decisions, sha256=SHA)
    assert (outcome.action, outcome.missing_roles, outcome.changes_requested_by) == (
        action, missing, requested)


@pytest.mark.parametrize("decisions,action,missing", [
    ([], None, ("medical", "legal", "regulatory")),             # nothing to return: stays open
    ([MED_OK, LEG_OK], None, ("regulatory",)),                  # approvals only: stays open
    ([MED_CR], "request_changes", ("legal", "regulatory")),     # undecided roles recorded
    ([MED_OK, LEG_CR], "request_changes", ("regulatory",)),
    ([MED_OK, LEG_OK, REG_OK], "approve", ()),
])
def test_round_outcome_at_the_due_date(decisions, action, missing):
    outcome = round_outcome(decisions, sha256=SHA, at_due_date=True)
    assert (outcome.action, outcome.missing_roles) == (action, missing)


def test_any_subset_of_approvals_without_all_three_roles_never_approves():
    pool = [Decision(role, "approve", i, SHA) for i, role in enumerate(["medical", "legal"])]
    for size in range(len(pool) + 1):
        for subset in itertools.combinations(pool, size):
            assert round_outcome(subset, sha256=SHA).action is None


def test_any_change_request_never_approves_and_returns_once_all_decided():
    for meanings in itertools.product(["approve", "request_changes"], repeat=3):
        decisions = [Decision(role, meaning, i, SHA) for i, (role, meaning)
                     in enumerate(zip(["medical", "legal", "regulatory"], meanings, strict=True))]
        expected = "approve" if set(meanings) == {"approve"} else "request_changes"
        assert round_outcome(decisions, sha256=SHA).action == expected
        for size in range(3):  # before the last role decided, nothing happens
            assert round_outcome(decisions[:size], sha256=SHA).action is None


@pytest.mark.parametrize("state,actor,decisions,code", [
    ("in_review", 1, [], None),
    ("in_review", 9, [], "not_permitted"),
    ("in_review", 1, [MED_OK], "recall_after_decision"),
    ("in_review", 1, [LEG_CR], "recall_after_decision"),
    ("draft", 1, [], "invalid_state"),
    ("changes_requested", 1, [], "invalid_state"),
    ("approved", 1, [], "invalid_state"),
])
def test_recall_rules(state, actor, decisions, code):
    try:
        check_recall(state=state, actor_id=actor, recaller_ids={1, 2}, round_decisions=decisions)
    except ApprovalError as refusal:
        assert refusal.code == code
    else:
        assert code is None


def test_open_annotations_block_only_that_roles_approval():
    check_open_annotations(role="legal", meaning="approve", open_annotations=[])
    check_open_annotations(role="legal", meaning="request_changes",
                           open_annotations=[(4, "“x”: y")])
    with pytest.raises(ApprovalError) as refusal:
        check_open_annotations(role="legal", meaning="approve",
                               open_annotations=[(4, "“x”: y"), (7, "image: z")])
    assert refusal.value.code == "open_annotations"
    assert refusal.value.details == ["#4: “x”: y", "#7: image: z"]


def test_round_label():
    assert round_label(2, 3) == "v2 \u00b7 round 3"
    assert round_label(1, None) == "v1"


@pytest.mark.parametrize("state,reason,roles,role,code", [
    ("approved", "Label change", ["legal"], "legal", None),
    ("approved", "", ["legal"], "legal", "reason_required"),
    ("approved", "   ", ["legal"], "legal", "reason_required"),
    ("approved", "Label change", [], "", "role_not_held"),
    ("approved", "Label change", ["legal"], "medical", "role_not_held"),
    ("in_review", "Label change", ["legal"], "legal", "invalid_state"),
    ("withdrawn", "Label change", ["legal"], "legal", "invalid_state"),
    ("expired", "Label change", ["legal"], "legal", "invalid_state"),
])
def test_withdrawal_rules(state, reason, roles, role, code):
    try:
        check_withdrawal(state=state, reason=reason, actor_roles=roles, role=role)
        got = None
    except ApprovalError as refusal:
        got = refusal.code
    assert got == code
