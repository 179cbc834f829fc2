"""Celery tasks of the delivery app: webhook sending, batch chunks, purging."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from . import webhooks


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def deliver_webhook(self, delivery_id: int) -> bool:
    """Send one webhook; retry with exponential backoff until it is delivered or the
    attempts run out (then the delivery is marked failed; the log keeps every attempt)."""
    if webhooks.attempt(delivery_id):
        return True
    if self.request.retries + 1 >= settings.TESSERA_WEBHOOK_MAX_ATTEMPTS:
        webhooks.mark_failed(delivery_id)
        return False
    countdown = webhooks.backoff_seconds(self.request.retries)
    if self.request.is_eager:
        # Embedded profile: Celery runs the retry at once, in-process (no broker to wait
        # on); returning it (not raising) keeps eager error propagation from aborting it.
        return self.retry(countdown=countdown, throw=False)
    raise self.retry(countdown=countdown)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def assemble_chunk(job_id: str, start: int, end: int) -> int:
    """One chunk of a batch job. Idempotent: recipients with a result are skipped, so a
    chunk re-delivered after a worker died assembles each recipient exactly once."""
    from .batch import run_chunk

    return run_chunk(job_id, start, end)


@shared_task
def purge_batch_jobs() -> int:
    """Beat: drop recipients and results of fetched or expired batch jobs. The embedded
    profile has no beat: there `batch.mark_fetched` and `batch.create_job` purge instead."""
    from .batch import purge_due

    return purge_due()


@shared_task
def requeue_stalled_batch_chunks() -> int:
    """Beat: re-send the chunks of batch jobs stalled by lost broker messages."""
    from .batch import requeue_stalled_chunks

    return len(requeue_stalled_chunks())
