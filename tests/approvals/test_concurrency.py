"""Two reviewers deciding at the same moment, and a double click, on real PostgreSQL."""

import threading

import pytest
from django.db import connection

from approvals import services
from approvals.audit import record, verify_chain
from approvals.errors import ApprovalError
from approvals.models import AuditEntry, Signature
from approvals.roles import REQUIRED_ROLES, role_group
from content.models import ModuleVersion
from tests.factories import UserFactory, VersionFactory

from .helpers import sign

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_together(calls):
    """Start every call at once (a barrier), collect each result or ApprovalError."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def worker(i, fn):
        try:
            barrier.wait()
            results[i] = fn()
        except ApprovalError as refusal:
            results[i] = refusal
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.fixture
def setup(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    people = {}
    for role in REQUIRED_ROLES:
        user = UserFactory(username=f"cc-{role}")
        user.groups.add(role_group(role))
        people[role] = user
    version = VersionFactory()
    services.submit_for_review(version=version, actor=version.created_by)
    return version, people


def test_last_two_reviewers_deciding_at_once_approve_exactly_once(setup):
    version, people = setup
    sign(version, people["medical"], "medical")
    results = run_together([
        lambda: sign(version, people["legal"], "legal"),
        lambda: sign(version, people["regulatory"], "regulatory"),
    ])
    assert not any(isinstance(r, ApprovalError) for r in results), results
    version.refresh_from_db()
    assert version.state == "approved"
    assert Signature.objects.filter(version=version).count() == 3
    assert AuditEntry.objects.filter(event="approved").count() == 1
    assert verify_chain()[1] is None


def test_double_click_signs_once(setup):
    version, people = setup
    results = run_together([lambda: sign(version, people["legal"], "legal") for _ in range(4)])
    refusals = [r for r in results if isinstance(r, ApprovalError)]
    assert len(refusals) == 3 and {r.code for r in refusals} == {"already_decided"}
    assert Signature.objects.filter(version=version).count() == 1
    assert ModuleVersion.objects.get(pk=version.pk).state == "in_review"


def test_approve_and_request_changes_at_once_leave_one_consistent_outcome(setup):
    version, people = setup
    sign(version, people["medical"], "medical")
    results = run_together([
        lambda: sign(version, people["legal"], "legal"),
        lambda: sign(version, people["regulatory"], "regulatory", "request_changes",
                     comment="Missing ISI"),
    ])
    version.refresh_from_db()
    assert version.state == "changes_requested"
    # Whichever came second: the approval either counted before the request, or was refused
    # because the version had already gone back to its author.
    legal = results[0]
    if isinstance(legal, ApprovalError):
        assert legal.code == "invalid_state"
    assert not isinstance(results[1], ApprovalError)
    assert Signature.objects.filter(version=version, meaning="request_changes").count() == 1


def test_concurrent_audit_writers_never_fork_the_chain():
    results = run_together([lambda n=n: record("load", data={"n": n}) for n in range(8)])
    assert all(not isinstance(r, Exception) for r in results)
    assert verify_chain() == (8, None)
