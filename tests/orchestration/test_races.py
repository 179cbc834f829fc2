"""Two schedulers (and two channels) racing on PostgreSQL: each due touchpoint is created
once, and each is leased to one caller only (FOR UPDATE SKIP LOCKED + a unique constraint)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.utils import timezone

from orchestration import due_queue, enrollment, scheduler
from orchestration.models import DueTouchpoint, SendWindow

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def in_threads(*calls):
    """Run the calls at the same time, each in its own thread (own connection)."""
    barrier = threading.Barrier(len(calls))
    out: list = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait()
            out[i] = call()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_two_schedulers_create_each_touchpoint_once_and_two_channels_lease_apart(world):
    SendWindow.objects.create(market="US", time_zone="UTC", start_hour=0, end_hour=24,
                              weekdays=list(range(7)))
    items, _ = enrollment.clean([{"id": f"r{i}", "market": "US", "consent": {"email": True}}
                                 for i in range(400)], markets={"US", "DE"}, channels={"email"})
    now = timezone.now()
    enrollment.enroll(world["journey"], items, now=now)
    reports = in_threads(lambda: scheduler.run(now=now, batch_size=25),
                         lambda: scheduler.run(now=now, batch_size=25))
    assert sum(r.created for r in reports) == 400
    assert all(r.evaluated > 0 for r in reports), "both schedulers took work (skip locked)"
    assert DueTouchpoint.objects.count() == 400
    leases = in_threads(*[lambda n=n: [i.touchpoint.pk for i in due_queue.lease(
        token_id=n, channel="email", markets={"US"}, limit=150, now=now)] for n in (1, 2, 3)])
    leased = [pk for batch in leases for pk in batch]
    assert len(leased) == len(set(leased)) == 400
