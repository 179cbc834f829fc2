"""Fault injection on the services profile: the batch job survives what production throws at it.

(A worker SIGKILLed mid-batch: tests/delivery/test_batch_worker.py. A webhook receiver failing
three times: tests/delivery/test_webhooks.py.)

Each test runs a real batch job (POST /api/v1/assemblies/ → Celery chunks → a real worker
process on Redis and PostgreSQL) and breaks something while it runs. Every recipient must
end up assembled exactly once: one result row and one delivery-log row each.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from django.db import connection
from django.db.models import Count

from delivery.batch import requeue_stalled_chunks
from delivery.models import AssemblyJob, AssemblyJobResult, Delivery, JobStatus
from tests.api.builders import RECIPIENT, build_world, token, token_client
from tests.services import WORKER_APPLICATION_NAME

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow,
              pytest.mark.django_db(transaction=True)]

JOB_TIMEOUT = 180


def wait_for(predicate, *, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def start_job(total: int, *, chunk_size: int, settings) -> str:
    settings.TESSERA_BATCH_CHUNK_SIZE = chunk_size
    build_world()
    _token, key = token()
    recipients = [dict(RECIPIENT, id=f"crm-{i:05d}", last_name=f"Name{i}") for i in range(total)]
    response = token_client(key).post("/api/v1/assemblies/", {
        "journey": "hcp-new", "step": "welcome", "channel": "email", "jurisdiction": "US",
        "locale": "en", "recipients": recipients}, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def results_so_far(job_id: str) -> int:
    return AssemblyJobResult.objects.filter(job_id=job_id).count()


def assert_each_recipient_exactly_once(job_id: str, total: int, worker) -> None:
    try:
        job = wait_for(lambda: AssemblyJob.objects.filter(pk=job_id, status=JobStatus.DONE).first(),
                       timeout=JOB_TIMEOUT, interval=0.5, what=f"job {job_id} to finish")
    except AssertionError as exc:
        errors = [line[:300] for line in worker.log_text().splitlines()
                  if '"ERROR"' in line or "Traceback" in line]
        raise AssertionError(f"{exc}: {results_so_far(job_id)}/{total} results; worker log "
                             f"errors ({worker.log_path}):\n" + "\n".join(errors[-15:]))
    assert job.total == total
    indexes = list(AssemblyJobResult.objects.filter(job_id=job_id)
                   .values_list("index", flat=True))
    assert sorted(indexes) == list(range(total))
    assert AssemblyJobResult.objects.filter(job_id=job_id, ok=False).count() == 0
    deliveries = Delivery.objects.filter(job_id=job_id)
    assert deliveries.count() == total
    duplicates = (deliveries.values("recipient_pseudonym").annotate(n=Count("id"))
                  .filter(n__gt=1))
    assert list(duplicates) == []


def terminate_worker_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s",
            [WORKER_APPLICATION_NAME])
        return cursor.fetchone()[0]


def test_worker_database_connections_terminated_mid_batch_job_retries_and_completes(
        celery_worker, settings):
    total = 3000
    job_id = start_job(total, chunk_size=50, settings=settings)
    wait_for(lambda: results_so_far(job_id) >= 100, timeout=JOB_TIMEOUT,
             what="the batch to be under way")

    terminated = 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and results_so_far(job_id) < total:
        terminated += terminate_worker_connections()
        time.sleep(0.05)
    assert terminated > 0, "no worker connection was terminated: the job ended too early"

    assert_each_recipient_exactly_once(job_id, total, celery_worker)


REDIS_START = ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1",
               "--port", "6379", "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
               "--logfile", "/var/log/redis/ci.log"]


def redis_answers() -> bool:
    result = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "ping"],
                            capture_output=True, text=True, timeout=10)
    return result.stdout.strip() == "PONG"


@pytest.mark.skipif(shutil.which("redis-server") is None or shutil.which("redis-cli") is None,
                    reason="needs redis-server and redis-cli on this machine to restart Redis")
def test_redis_restarted_mid_batch_job_completes_after_it_returns(celery_worker, settings):
    total = 3000
    job_id = start_job(total, chunk_size=50, settings=settings)
    wait_for(lambda: results_so_far(job_id) >= 100, timeout=JOB_TIMEOUT,
             what="the batch to be under way")

    # Redis keeps nothing on disk here: every queued chunk message is gone with it.
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"],
                   capture_output=True, timeout=10)
    try:
        assert results_so_far(job_id) < total, "the job finished before Redis went: make it longer"
        time.sleep(1)
    finally:
        if not redis_answers():
            subprocess.run(REDIS_START, check=True, timeout=30)
        wait_for(redis_answers, timeout=30, interval=0.2, what="Redis to answer again")

    # What beat does every minute in production (no beat runs in tests): re-enqueue the
    # unfinished chunks of a job that stopped making progress.
    settings.TESSERA_BATCH_STALL_SECONDS = 2

    def requeue_until_done():
        requeue_stalled_chunks()
        return AssemblyJob.objects.filter(pk=job_id, status=JobStatus.DONE).exists()

    wait_for(requeue_until_done, timeout=JOB_TIMEOUT, interval=1,
             what="the job to finish after its stalled chunks were re-enqueued")
    assert_each_recipient_exactly_once(job_id, total, celery_worker)
