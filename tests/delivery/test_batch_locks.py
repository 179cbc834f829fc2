"""Batch chunk locks on PostgreSQL: a chunk commit excludes a purge and a duplicate run of
the same chunk, but not the job's other chunks (so two workers on one job write in parallel)."""

import threading

import pytest
from django.db import DatabaseError, connection, transaction

from delivery import batch
from delivery.models import AssemblyJob

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def in_other_connection(check):
    """Run `check` in another thread (so another database connection) and return its result."""
    out = {}

    def run():
        try:
            out["value"] = check()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return out["value"]


def purge_lock_available(job_id) -> bool:
    try:
        with transaction.atomic():
            AssemblyJob.objects.select_for_update(nowait=True).get(pk=job_id)
        return True
    except DatabaseError:
        return False


def chunk_lock_available(job_id, start: int) -> bool:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s), %s)", [str(job_id), start])
        return cursor.fetchone()[0]


def other_chunk_can_lock_job(job_id) -> bool:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {AssemblyJob._meta.db_table} WHERE id = %s "
                       "FOR SHARE NOWAIT", [job_id])
        return cursor.fetchone() is not None


def test_chunk_commit_excludes_purge_and_same_chunk_but_not_other_chunks():
    job = AssemblyJob.objects.create(owner_key="user:1", journey_slug="hcp-new",
                                     step_key="welcome", channel="email", jurisdiction="US",
                                     locale="en", total=4, chunk_size=2)
    with transaction.atomic():
        batch._lock_chunk(job.pk, 0)
        assert not in_other_connection(lambda: purge_lock_available(job.pk))
        assert not in_other_connection(lambda: chunk_lock_available(job.pk, 0))
        assert in_other_connection(lambda: chunk_lock_available(job.pk, 2))
        assert in_other_connection(lambda: other_chunk_can_lock_job(job.pk))
    # Committed: the purge may run.
    assert in_other_connection(lambda: purge_lock_available(job.pk))
