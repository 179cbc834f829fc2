"""The transition table and the decision rules, exhaustively, without a database."""

import itertools

import pytest

from approvals.errors import ApprovalError
from approvals.workflow import (
    TRANSITIONS,
    Action,
    Decision,
    check_decision,
    check_withdrawal,
    next_state,
    round_outcome,
)
from content.models import VersionState

ALL_ACTIONS = [Action.SUBMIT, Action.REQUEST_CHANGES, Action.APPROVE, Action.EXPIRE,
               Action.WITHDRAW]
EXPECTED = {
    ("draft", "submit"): "in_review",
    ("changes_requested", "submit"): "in_review",
    ("in_review", "request_changes"): "changes_requested",
    ("in_review", "approve"): "approved",
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


@pytest.mark.parametrize("decisions,action,missing", [
    ([], None, ("medical", "legal", "regulatory")),
    ([Decision("medical", "approve", 1, SHA)], None, ("legal", "regulatory")),
    ([Decision("medical", "approve", 1, SHA), Decision("legal", "approve", 2, SHA),
      Decision("regulatory", "approve", 3, SHA)], "approve", ()),
    # Approvals on other bytes do not count.
    ([Decision("medical", "approve", 1, SHA), Decision("legal", "approve", 2, SHA),
      Decision("regulatory", "approve", 3, "b" * 64)], None, ("regulatory",)),
    # One person's signatures never make up two roles.
    ([Decision("medical", "approve", 1, SHA), Decision("legal", "approve", 1, SHA),
      Decision("regulatory", "approve", 3, SHA)], None, ()),
    ([Decision("medical", "approve", 1, SHA), Decision("legal", "request_changes", 2, SHA)],
     "request_changes", ()),
])
def test_round_outcome(decisions, action, missing):
    outcome = round_outcome(decisions, sha256=SHA)
    assert (outcome.action, outcome.missing_roles) == (action, missing)


def test_any_subset_of_approvals_without_all_three_roles_never_approves():
    pool = [Decision(role, "approve", i, SHA) for i, role in enumerate(["medical", "legal"])]
    for size in range(len(pool) + 1):
        for subset in itertools.combinations(pool, size):
            assert round_outcome(subset, sha256=SHA).action is None


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
