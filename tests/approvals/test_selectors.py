import pytest

from approvals import services
from approvals.selectors import (
    approval_signatures_for_versions,
    inbox_for,
    signatures_for_versions,
)
from tests.factories import VersionFactory

from .helpers import approve_all, finish_round, sign

pytestmark = pytest.mark.django_db


def test_signatures_for_versions_in_one_query(submitted, reviewers, django_assert_num_queries):
    approve_all(submitted, reviewers)
    unsigned = VersionFactory()
    with django_assert_num_queries(1):
        result = signatures_for_versions([submitted.pk, unsigned.pk])
    assert result[unsigned.pk] == []
    first = result[submitted.pk][0]
    assert set(first) == {"signer_id", "printed_name", "role", "meaning", "signed_at",
                          "sha256", "round"}
    assert first["signed_at"].endswith("Z")
    assert {s["sha256"] for s in result[submitted.pk]} == {submitted.sha256}


def test_approval_signatures_keep_only_the_approving_round(submitted, reviewers):
    sign(submitted, reviewers["medical"], "medical")
    sign(submitted, reviewers["legal"], "legal", "request_changes", comment="Fix")
    finish_round(submitted, reviewers)  # regulatory approves too: round 1 has two approvals
    services.submit_for_review(version=submitted, actor=submitted.created_by)
    approve_all(submitted, reviewers)
    result = approval_signatures_for_versions([submitted.pk])[submitted.pk]
    assert [s["round"] for s in result] == [2, 2, 2]
    assert sorted(s["role"] for s in result) == ["legal", "medical", "regulatory"]


def test_inbox_leaves_out_decided_roles_own_versions_and_second_roles(reviewers):
    from approvals.roles import role_group

    mine = VersionFactory()
    services.submit_for_review(version=mine, actor=mine.created_by)
    authored = VersionFactory(created_by=reviewers["legal"], module__owner=reviewers["legal"])
    services.submit_for_review(version=authored, actor=reviewers["legal"])
    assert [row.version.pk for row in inbox_for(reviewers["legal"])] == [mine.pk]
    sign(mine, reviewers["legal"], "legal")
    assert inbox_for(reviewers["legal"]) == []
    reviewers["legal"].groups.add(role_group("medical"))
    assert inbox_for(reviewers["legal"]) == []  # signed legal: may not also sign medical
    assert [row.my_roles for row in inbox_for(reviewers["medical"])] == [("medical",),
                                                                         ("medical",)]
