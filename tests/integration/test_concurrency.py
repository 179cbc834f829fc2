"""Concurrency on PostgreSQL: many people (or double clicks) acting on one record at once."""

import time
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db.models import Count

from approvals import services
from approvals.errors import ApprovalError
from approvals.models import AuditEntry, Signature
from approvals.roles import REQUIRED_ROLES, role_group
from approvals.signing import Credentials
from content.models import ModuleVersion, VersionState
from content.versioning import new_version
from delivery.models import AssemblyJob, AssemblyJobResult, DeliveredVersion, JobStatus
from tests.api.builders import RECIPIENT, build_world, token, token_client
from tests.factories import UserFactory, VersionFactory
from tests.integration.concurrent import run_at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Every decision re-checks a password; the default hasher would dominate 20 threads.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def reviewer(role, n):
    user = UserFactory(username=f"conc-{role}-{n}")
    user.groups.add(role_group(role))
    return user


def decide(version, user, role, decision="approve"):
    return services.decide(
        version=version, actor=user, role=role, decision=decision,
        expected_sha256=version.sha256, comment="" if decision == "approve" else "Fix it",
        credentials=Credentials(password=PASSWORD, username=user.username))


def assert_audit_chain_intact():
    out = StringIO()
    call_command("verify_audit", stdout=out, stderr=out)  # raises SystemExit/CommandError on a break


def approved_version():
    version = VersionFactory()
    version.state = VersionState.APPROVED
    version.save(update_fields=["state"])
    return version


def test_twenty_authors_starting_a_new_version_at_once_get_one_draft_and_clear_refusals():
    approved = approved_version()
    authors = [UserFactory() for _ in range(20)]

    outcomes = run_at_once(lambda i: new_version(approved.module, author=authors[i]))

    drafts = [o.value for o in outcomes if o.error is None]
    refusals = [o.error for o in outcomes if o.error is not None]
    assert len(drafts) == 1
    assert drafts[0].number == approved.number + 1
    assert len(refusals) == 19
    assert all(isinstance(error, ValidationError) for error in refusals), refusals
    assert all("edit it instead" in str(error) for error in refusals)
    numbers = list(ModuleVersion.objects.filter(module=approved.module)
                   .values_list("number", flat=True))
    assert sorted(numbers) == [1, 2]


def test_new_versions_started_while_others_approve_them_never_share_a_number():
    """Each thread starts a version and approves it at once, so the next call may succeed:
    whatever interleaving happens, numbers stay distinct and consecutive."""
    approved = approved_version()
    author = UserFactory()

    def start_and_approve(index):
        draft = new_version(approved.module, author=author)
        draft.state = VersionState.APPROVED
        draft.save(update_fields=["state"])
        return draft.number

    outcomes = run_at_once(start_and_approve)

    unexpected = [o.error for o in outcomes
                  if o.error is not None and not isinstance(o.error, ValidationError)]
    assert unexpected == []
    numbers = sorted(ModuleVersion.objects.filter(module=approved.module)
                     .values_list("number", flat=True))
    assert numbers == list(range(1, len(numbers) + 1))
    assert len(numbers) == 1 + sum(1 for o in outcomes if o.error is None)


def test_twenty_reviewers_deciding_on_one_review_at_once_lose_nothing_and_approve_once():
    version = VersionFactory()
    services.submit_for_review(version=version, actor=version.created_by)
    people = [(role, reviewer(role, n)) for n in range(7) for role in REQUIRED_ROLES][:20]

    outcomes = run_at_once(lambda i: decide(ModuleVersion.objects.get(pk=version.pk),
                                            people[i][1], people[i][0]))

    unexpected = [o.error for o in outcomes
                  if o.error is not None and not isinstance(o.error, ApprovalError)]
    assert unexpected == []
    succeeded = [people[i] for i, o in enumerate(outcomes) if o.error is None]
    signatures = list(Signature.objects.filter(version=version).values_list("role", "signer_id"))
    # No lost decision: every decision that returned is signed; one per role, nothing more.
    assert sorted(signatures) == sorted((role, user.pk) for role, user in succeeded)
    assert sorted(role for role, _ in signatures) == sorted(REQUIRED_ROLES)
    refused = {o.error.code for o in outcomes if o.error is not None}
    assert refused <= {"already_decided", "invalid_state"}, refused
    version.refresh_from_db()
    assert version.state == VersionState.APPROVED
    assert AuditEntry.objects.filter(event="approved", target_id=str(version.pk)).count() == 1
    assert_audit_chain_intact()


def test_a_reviewer_double_clicking_twenty_times_signs_once():
    version = VersionFactory()
    services.submit_for_review(version=version, actor=version.created_by)
    medical = reviewer("medical", 0)

    outcomes = run_at_once(lambda i: decide(ModuleVersion.objects.get(pk=version.pk),
                                            medical, "medical"))

    assert sum(o.error is None for o in outcomes) == 1
    assert {o.error.code for o in outcomes if o.error is not None} == {"already_decided"}
    assert Signature.objects.filter(version=version).count() == 1
    assert_audit_chain_intact()


@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.slow
def test_no_delivery_of_a_withdrawn_version_after_its_withdrawal_committed(celery_worker,
                                                                          settings):
    """A batch job runs on a real worker while a regulatory reviewer withdraws the ISI the
    step needs. Every delivery that contains the ISI must have been committed before the
    withdrawal was; every recipient still gets exactly one result."""
    settings.TESSERA_BATCH_CHUNK_SIZE = 25
    world = build_world()
    isi = world["versions"]["isi"]
    regulatory = reviewer("regulatory", 0)
    _token, key = token()
    total = 2000
    response = token_client(key).post("/api/v1/assemblies/", {
        "journey": "hcp-new", "step": "welcome", "channel": "email", "jurisdiction": "US",
        "locale": "en",
        "recipients": [dict(RECIPIENT, id=f"w-{i}", last_name=f"N{i}") for i in range(total)]},
        format="json")
    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    deadline = time.monotonic() + 120
    while AssemblyJobResult.objects.filter(job_id=job_id).count() < 200:
        assert time.monotonic() < deadline, celery_worker.log_text()[-2000:]
        time.sleep(0.05)

    services.withdraw(version=ModuleVersion.objects.get(pk=isi.pk), actor=regulatory,
                      reason="Safety signal", role="regulatory",
                      credentials=Credentials(password=PASSWORD, username=regulatory.username))
    withdrawn_at = ModuleVersion.objects.get(pk=isi.pk).withdrawn_at

    deadline = time.monotonic() + 180
    while not AssemblyJob.objects.filter(pk=job_id, status=JobStatus.DONE).exists():
        assert time.monotonic() < deadline, celery_worker.log_text()[-2000:]
        time.sleep(0.2)
    results = AssemblyJobResult.objects.filter(job_id=job_id)
    assert results.count() == total
    delivered = results.filter(ok=True).count()
    refused = results.filter(ok=False)
    assert 0 < delivered < total, "the withdrawal did not land mid-job: make the job longer"
    assert all(e["code"] == "withdrawn" for r in refused for e in r.errors
               if e.get("module") == isi.module.code)
    late = DeliveredVersion.objects.filter(version_id=isi.pk, delivery__job_id=job_id,
                                           delivery__served_at__gte=withdrawn_at)
    assert late.count() == 0
    per_recipient = (AssemblyJobResult.objects.filter(job_id=job_id).values("index")
                     .annotate(n=Count("id")).filter(n__gt=1))
    assert list(per_recipient) == []
