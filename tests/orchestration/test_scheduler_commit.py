"""The scheduler's batches commit without waiting for the WAL flush — only its own
outermost transactions, never a caller's, and the setting never outlives the batch (the
delivery log and every other commit on the connection stay durable)."""

import pytest
from django.db import connection, transaction

from orchestration import scheduler

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's")


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@pytest.fixture
def seen(monkeypatch):
    values = []

    def evaluate(ids, *, plan, report):
        values.append(synchronous_commit())
        return 0

    monkeypatch.setattr(scheduler, "_evaluate", evaluate)
    return values


def test_a_batch_of_its_own_commits_without_the_flush_and_the_setting_ends_with_it(seen):
    assert synchronous_commit() == "on"
    scheduler.run_batch([1], plan=None, report=scheduler.Report())
    assert seen == ["off"]
    assert synchronous_commit() == "on"  # SET LOCAL: gone with the batch's transaction


def test_inside_a_callers_transaction_the_callers_durability_stands(seen):
    with transaction.atomic():
        scheduler.run_batch([1], plan=None, report=scheduler.Report())
        assert synchronous_commit() == "on"
    assert seen == ["on"]
