"""Segregation of duties as pure rules (approvals.workflow), exhaustively, no database."""

import itertools

import pytest

from approvals.errors import ApprovalError
from approvals.roles import REQUIRED_ROLES
from approvals.workflow import (
    Decision,
    check_decision,
    check_not_author,
    check_one_role,
    decidable_roles,
)

SHA = "a" * 64


def decided(role, signer, round_=1, meaning="approve"):
    return Decision(role, meaning, signer, SHA, round_)


def code_of(fn, **kwargs):
    try:
        fn(**kwargs)
    except ApprovalError as refusal:
        return refusal.code
    return None


@pytest.mark.parametrize("author_ids,code", [
    (set(), None), ({1}, None), ({2}, "own_version"), ({1, 2, 3}, "own_version"),
])
def test_anyone_among_the_authors_is_refused(author_ids, code):
    assert code_of(check_not_author, actor_id=2, author_ids=author_ids) == code


@pytest.mark.parametrize("earlier_role,role,round_", itertools.product(REQUIRED_ROLES,
                                                                       REQUIRED_ROLES, [1, 2, 7]))
def test_one_role_per_person_in_every_round(earlier_role, role, round_):
    code = code_of(check_one_role, actor_id=2, role=role,
                   version_decisions=[decided(earlier_role, 2, round_)])
    assert code == (None if role == earlier_role else "second_role")
    # Someone else's decision never bars you.
    assert code_of(check_one_role, actor_id=2, role=role,
                   version_decisions=[decided(earlier_role, 3, round_)]) is None


def test_check_decision_counts_earlier_rounds():
    facts = dict(state="in_review", current_sha256=SHA, expected_sha256=SHA, author_ids={1},
                 actor_id=2, actor_roles=["medical", "legal"], role="legal", meaning="approve",
                 comment="", round_decisions=[])
    assert code_of(check_decision, **facts) is None
    earlier = [decided("medical", 2, 1, "request_changes")]
    assert code_of(check_decision, **facts, version_decisions=earlier) == "second_role"
    assert code_of(check_decision, **{**facts, "role": "medical"}, version_decisions=earlier) is None
    assert code_of(check_decision, **{**facts, "author_ids": {1, 2}}) == "own_version"


def test_decidable_roles_offers_what_the_rule_allows_and_says_why_not():
    common = dict(actor_id=2, actor_roles=["medical", "legal"], pending_roles=REQUIRED_ROLES)
    assert decidable_roles(**common, author_ids=set(), version_decisions=[]) == (
        ["medical", "legal"], None)
    roles, barred = decidable_roles(**common, author_ids={2}, version_decisions=[])
    assert roles == [] and barred.code == "own_version"
    roles, barred = decidable_roles(**common, author_ids=set(),
                                    version_decisions=[decided("legal", 2)])
    assert roles == ["legal"] and barred is None
    roles, barred = decidable_roles(actor_id=2, actor_roles=["medical", "legal"],
                                    pending_roles=["medical"], author_ids=set(),
                                    version_decisions=[decided("legal", 2)])
    assert roles == [] and barred.code == "second_role"
    # Nothing pending for a role you hold: nothing to explain.
    assert decidable_roles(actor_id=2, actor_roles=["medical"], pending_roles=["legal"],
                           author_ids={2}, version_decisions=[]) == ([], None)
