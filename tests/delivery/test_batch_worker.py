"""Batch jobs through a real Celery worker (services profile): a worker killed mid-job
loses nothing and assembles nobody twice."""

import time

import pytest
from django.db.models import Count

from delivery import batch
from delivery.models import AssemblyJob, AssemblyJobResult, Delivery
from tests.api.builders import RECIPIENT, build_world, token, token_client

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_until(predicate, *, timeout, worker, what, every_5s=None):
    deadline = time.monotonic() + timeout
    next_tick = time.monotonic() + 5
    while time.monotonic() < deadline:
        if predicate():
            return
        if every_5s is not None and time.monotonic() >= next_tick:
            every_5s()
            next_tick = time.monotonic() + 5
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; worker log:\n{worker.log_text()[-3000:]}")


def test_killed_worker_finishes_job_with_each_recipient_exactly_once(celery_worker, settings):
    settings.TESSERA_BATCH_CHUNK_SIZE = 20
    build_world()
    _, key = token()
    total = 600
    body = {"journey": "hcp-new", "step": "welcome", "channel": "email", "jurisdiction": "US",
            "locale": "en",
            "recipients": [dict(RECIPIENT, id=f"r{i}", last_name=f"N{i}") for i in range(total)]}
    response = token_client(key).post("/api/v1/assemblies/", body, format="json")
    assert response.status_code == 202
    job_id = response.json()["id"]
    done = lambda: AssemblyJobResult.objects.filter(job_id=job_id).count()  # noqa: E731
    wait_until(lambda: done() > 0, timeout=90, worker=celery_worker, what="first results")
    assert done() < total, "the job finished before the kill; make it bigger"
    celery_worker.kill()
    celery_worker.restart()
    # A chunk the dead worker had taken comes back from Redis after the visibility timeout.
    # Without beat's stall requeue (production runs it every minute; here every 5 s) this
    # test once waited 240 s for a chunk that never came back: most likely one the worker
    # had popped but not yet recorded as unacknowledged, a window in kombu's Redis
    # transport (not proven).
    settings.TESSERA_BATCH_STALL_SECONDS = 15
    wait_until(lambda: AssemblyJob.objects.get(pk=job_id).status == "done", timeout=240,
               worker=celery_worker, what="the job to finish after the restart",
               every_5s=batch.requeue_stalled_chunks)
    indexes = list(AssemblyJobResult.objects.filter(job_id=job_id)
                   .values_list("index", flat=True).order_by("index"))
    assert indexes == list(range(total))
    # Exactly once: one delivery-log row per assembled recipient, none doubled by a re-run.
    per_recipient = (Delivery.objects.filter(job_id=job_id).values("recipient_pseudonym")
                     .annotate(n=Count("id")))
    assert len(per_recipient) == total
    assert {row["n"] for row in per_recipient} == {1}
