"""A rollup run SIGKILLed inside its transaction, on a real Celery worker (services profile):
nothing of it stays, a new worker's run catches up, and the tables then equal a rebuild from
scratch. Two runs never overlap: one that finds another under way returns `skipped`.

How the kill lands inside the transaction, deterministically: the test holds a row lock on
one of journey `duo`'s rollup rows (another connection). A run recomputes journeys in id
order, so the worker rolls up journey `mini`'s days (uncommitted writes), then waits on
that lock in its DELETE of `duo`'s days; the test sees it waiting there in
`pg_stat_activity` (with a transaction id: it has written) and kills it.
"""

from __future__ import annotations

import datetime as dt
import random
import time

import psycopg
import pytest
from django.db import connection
from django.db.models import Max

from analytics import rollups
from analytics.models import DailyRollup, Watermark
from analytics.tasks import roll_up
from delivery.models import Delivery
from journeys.models import EngagementEvent, Enrollment
from tests.services import WORKER_APPLICATION_NAME

from .conftest import T0
from .histories import add_duo, pseudonym, snapshot

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow,
              pytest.mark.django_db(transaction=True)]

TYPES = ["opened", "clicked", "ignored", "declined", "downloaded"]
TIMEOUT = 120


def wait_for(predicate, *, what: str, worker, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; worker log:\n{worker.log_text()[-3000:]}")


def write_history(journeys: list[dict], rng: random.Random, *, events: int, days: range,
                  recipients: int = 150) -> None:
    """`events` random events over `days` (any order) in each journey, and a first delivery
    for a third of `duo`'s recipients (their market: US or DE)."""
    for journey in journeys:
        steps = list(journey["steps"].values())
        wanted = [pseudonym(f"{journey['journey'].slug}-{n}") for n in range(recipients)]
        have = set(Enrollment.objects.filter(journey=journey["journey"])
                   .values_list("recipient_hash", flat=True))
        Enrollment.objects.bulk_create([Enrollment(journey=journey["journey"], recipient_hash=h)
                                        for h in wanted if h not in have])
        enrollments = list(Enrollment.objects.filter(journey=journey["journey"])
                           .values_list("pk", flat=True))
        EngagementEvent.objects.bulk_create([
            EngagementEvent(enrollment_id=rng.choice(enrollments), step=rng.choice(steps),
                            event_type=rng.choice(TYPES),
                            occurred_at=T0 + dt.timedelta(days=rng.choice(days),
                                                          minutes=rng.randrange(1440)))
            for _ in range(events)], batch_size=2000)
        if journey["journey"].slug == "duo":
            Delivery.objects.bulk_create([
                Delivery(served_at=T0 + dt.timedelta(days=rng.choice(days)), channel="email",
                         jurisdiction=rng.choice(["US", "DE"]), locale="en", journey_slug="duo",
                         step_key=rng.choice(steps).key,
                         recipient_pseudonym=pseudonym(f"duo-{n}"), output_sha256="0" * 64,
                         manifest={})
                for n in rng.sample(range(recipients), recipients // 3)])


def marks() -> dict[str, int]:
    return dict(Watermark.objects.values_list("name", "last_id"))


def tops() -> dict[str, int]:
    return {"events": EngagementEvent.objects.aggregate(m=Max("pk"))["m"],
            "deliveries": Delivery.objects.aggregate(m=Max("pk"))["m"]}


def worker_backends() -> list[tuple]:
    """The worker's database sessions: (pid, wait_event_type, has a transaction id, query)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, wait_event_type, backend_xid IS NOT NULL, query FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s",
            [WORKER_APPLICATION_NAME])
        return cursor.fetchall()


def lock_a_rollup_row(journey_id: int, day: dt.date) -> psycopg.Connection:
    """Another session holding a row lock on one of the journey's rollup rows that day."""
    db = connection.settings_dict
    holder = psycopg.connect(dbname=db["NAME"], user=db.get("USER") or None,
                             password=db.get("PASSWORD") or None, host=db.get("HOST") or None,
                             port=db.get("PORT") or None)
    row = holder.execute("SELECT id FROM analytics_dailyrollup WHERE journey_id = %s AND day = %s "
                         "LIMIT 1 FOR UPDATE", [journey_id, day]).fetchone()
    assert row is not None
    return holder


def test_a_rollup_killed_mid_transaction_leaves_nothing_and_the_next_run_catches_up(
        mini, celery_worker):
    duo = add_duo(mini)
    assert mini["journey"].pk < duo["journey"].pk  # a run rolls up mini's days first
    rng = random.Random(15)
    write_history([mini, duo], rng, events=3000, days=range(0, 40))
    first = rollups.run()
    assert not first["skipped"] and first["journeys"] == [mini["journey"].pk, duo["journey"].pk]

    # New events in both journeys, also late ones for days already rolled up.
    write_history([mini, duo], rng, events=3000, days=range(20, 60))
    locked_day = (T0 + dt.timedelta(days=25)).date()
    assert DailyRollup.objects.filter(journey=duo["journey"], day=locked_day).exists()
    before_tables, before_marks = snapshot(), marks()

    holder = lock_a_rollup_row(duo["journey"].pk, locked_day)
    try:
        roll_up.delay()

        def waiting_in_its_transaction():
            return [b for b in worker_backends() if b[1] == "Lock" and b[2]
                    and 'DELETE FROM "analytics_dailyrollup"' in b[3]]

        wait_for(waiting_in_its_transaction, worker=celery_worker,
                 what="the worker's run to wait on the locked rollup row, mid-transaction")
        # Meanwhile another process's run (this one) does not overlap it.
        assert rollups.run()["skipped"] is True
        celery_worker.kill()
    finally:
        holder.rollback()
        holder.close()
    # The orphaned session ends (its client is gone) and its transaction rolls back.
    wait_for(lambda: not worker_backends(), worker=celery_worker, timeout=60,
             what="the killed worker's database session to end")
    assert marks() == before_marks
    assert snapshot() == before_tables

    celery_worker.start()
    roll_up.delay()  # the next beat run (the killed run's message also comes back: acks_late)
    wait_for(lambda: marks() == tops(), worker=celery_worker,
             what="a new worker's run to move the watermarks to the newest rows")
    incremental = snapshot()
    assert incremental != before_tables
    rebuilt = rollups.rebuild()
    assert not rebuilt["skipped"]
    assert snapshot() == incremental
    assert marks() == tops()
