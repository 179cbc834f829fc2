"""Purge in both profiles: without a beat scheduler (embedded profile: no broker, which is
what `make run` gives) fetched batch results are purged right after the last page is
read, and expired jobs on the next job; with a broker, beat's `purge_due` does it."""

import pytest
from django.utils import timezone

from delivery import batch
from delivery.models import AssemblyJob, AssemblyJobResult, Delivery, JobStatus
from tests.api.builders import RECIPIENT, build_world, token, token_client

pytestmark = pytest.mark.django_db
URL = "/api/v1/assemblies/"


@pytest.fixture
def world(db):
    return build_world()


class CommittingClient:
    """Every request runs its on-commit callbacks, as after a real commit (the tests run
    inside a transaction that never commits)."""

    def __init__(self, client, capture):
        self._client, self._capture = client, capture

    def __getattr__(self, method):
        def call(*args, **kwargs):
            with self._capture(execute=True):
                return getattr(self._client, method)(*args, **kwargs)
        return call


@pytest.fixture
def client(world, django_capture_on_commit_callbacks):
    _, key = token()
    return CommittingClient(token_client(key), django_capture_on_commit_callbacks)


@pytest.fixture
def embedded(settings):
    settings.CELERY_BROKER_URL = "memory://"
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture
def services(settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    settings.CELERY_TASK_ALWAYS_EAGER = True  # chunks still run in-process in tests


def job_body(n):
    return {"journey": "hcp-new", "step": "welcome", "channel": "email", "jurisdiction": "US",
            "locale": "en",
            "recipients": [dict(RECIPIENT, id=f"crm-{i}", last_name=f"Purgename{i}")
                           for i in range(n)]}


def start_job(client, n=3) -> str:
    response = client.post(URL, job_body(n), format="json")
    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    assert AssemblyJob.objects.get(pk=job_id).status == JobStatus.DONE
    return job_id


def test_profiles_are_told_apart_by_the_broker(settings):
    settings.CELERY_BROKER_URL = "memory://"
    assert batch.purges_on_fetch()
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    assert not batch.purges_on_fetch()


def test_embedded_purges_right_after_the_last_page_is_read(client, embedded, monkeypatch):
    from rest_framework.pagination import PageNumberPagination

    # The class reads PAGE_SIZE once, at import: a settings override would not reach it.
    monkeypatch.setattr(PageNumberPagination, "page_size", 2)
    job_id = start_job(client, 3)
    first = client.get(f"{URL}{job_id}/results/").json()
    assert first["next"] is not None and len(first["results"]) == 2
    # Not the last page yet: nothing is purged.
    assert AssemblyJobResult.objects.filter(job_id=job_id).count() == 3
    last = client.get(first["next"]).json()
    assert last["next"] is None
    # The last page was answered in full, then the results went.
    assert [r["index"] for r in last["results"]] == [2] and last["results"][0]["ok"]
    assert "Purgename2" in last["results"][0]["html"]
    job = AssemblyJob.objects.get(pk=job_id)
    assert job.status == JobStatus.PURGED and job.recipients == []
    assert AssemblyJobResult.objects.filter(job_id=job_id).count() == 0
    assert Delivery.objects.count() == 3  # the delivery log stays
    assert client.get(f"{URL}{job_id}/").json()["status"] == "purged"


def test_embedded_single_page_job_is_purged_after_it_is_read(client, embedded):
    job_id = start_job(client, 2)
    page = client.get(f"{URL}{job_id}/results/").json()
    assert page["next"] is None and [r["ok"] for r in page["results"]] == [True, True]
    assert not AssemblyJobResult.objects.filter(job_id=job_id).exists()


def test_services_profile_leaves_fetched_results_to_the_beat_purge(client, services):
    job_id = start_job(client, 2)
    assert client.get(f"{URL}{job_id}/results/").json()["next"] is None
    job = AssemblyJob.objects.get(pk=job_id)
    assert job.status == JobStatus.DONE and job.results_fetched_at is not None
    assert AssemblyJobResult.objects.filter(job_id=job_id).count() == 2
    assert batch.purge_due() == 1
    assert not AssemblyJobResult.objects.filter(job_id=job_id).exists()


def test_embedded_purges_expired_jobs_on_the_next_job(client, embedded, settings):
    old_id = start_job(client, 2)
    AssemblyJob.objects.filter(pk=old_id).update(
        created_at=timezone.now() - timezone.timedelta(
            hours=settings.TESSERA_BATCH_RETENTION_HOURS + 1))
    new_id = start_job(client, 1)
    assert AssemblyJob.objects.get(pk=old_id).status == JobStatus.PURGED
    assert not AssemblyJobResult.objects.filter(job_id=old_id).exists()
    assert AssemblyJobResult.objects.filter(job_id=new_id).count() == 1


def test_services_profile_keeps_expired_jobs_for_beat(client, services, settings):
    old_id = start_job(client, 1)
    AssemblyJob.objects.filter(pk=old_id).update(
        created_at=timezone.now() - timezone.timedelta(
            hours=settings.TESSERA_BATCH_RETENTION_HOURS + 1))
    start_job(client, 1)
    assert AssemblyJob.objects.get(pk=old_id).status == JobStatus.DONE


def test_mark_fetched_of_an_unfinished_job_purges_nothing(client, embedded,
                                                          django_capture_on_commit_callbacks):
    job_id = start_job(client, 1)
    AssemblyJob.objects.filter(pk=job_id).update(status=JobStatus.RUNNING)
    with django_capture_on_commit_callbacks(execute=True):
        batch.mark_fetched(AssemblyJob.objects.get(pk=job_id))
    job = AssemblyJob.objects.get(pk=job_id)
    assert job.status == JobStatus.RUNNING and job.results_fetched_at is None
    assert AssemblyJobResult.objects.filter(job_id=job_id).count() == 1


def test_embedded_purge_waits_for_the_reading_transaction_to_commit(
        client, embedded, django_capture_on_commit_callbacks):
    job_id = start_job(client, 1)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        batch.mark_fetched(AssemblyJob.objects.get(pk=job_id))
        assert AssemblyJobResult.objects.filter(job_id=job_id).count() == 1
    assert len(callbacks) == 1
    callbacks[0]()
    assert AssemblyJob.objects.get(pk=job_id).status == JobStatus.PURGED
