"""Two schedulers (and two channels) racing on PostgreSQL — threads, and two separate worker
processes — each due touchpoint is created once, and each is leased to one caller only (FOR
UPDATE SKIP LOCKED + a unique constraint); a channel process SIGKILLed holding its lease
gets it back in the queue after expiry, served once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from orchestration import due_queue, enrollment, scheduler
from orchestration.models import DueTouchpoint, SendWindow, TouchpointStatus
from tests.services import REPO_ROOT, _database_url

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


# --- two worker processes ------------------------------------------------------------------

def child(*args: str) -> subprocess.Popen:
    """A separate Python process (own interpreter, own connection) on this test database."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="cms.settings",
               DATABASE_URL=_database_url(connection.settings_dict), DATABASE_CONN_MAX_AGE="0",
               CELERY_TASK_ALWAYS_EAGER="true")
    return subprocess.Popen([sys.executable, "-m", "tests.orchestration.race_child", *args],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def enroll_open_us(world, count: int, now):
    SendWindow.objects.get_or_create(market="US", defaults=dict(
        time_zone="UTC", start_hour=0, end_hour=24, weekdays=list(range(7))))
    items, _ = enrollment.clean([{"id": f"r{i}", "market": "US", "consent": {"email": True}}
                                 for i in range(count)], markets={"US", "DE"},
                                channels={"email"})
    enrollment.enroll(world["journey"], items, now=now)


def test_two_scheduler_processes_create_each_touchpoint_once(world, tmp_path):
    now = timezone.now()
    enroll_open_us(world, 600, now)
    go = tmp_path / "go"
    children = [child("schedule", now.isoformat(), "10", str(go)) for _ in range(2)]
    go.touch()  # both start at once
    reports = []
    for process in children:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))
    assert len({r["pid"] for r in reports}) == 2
    # Every profile evaluated by exactly one of them, every touchpoint created once.
    assert sum(r["evaluated"] for r in reports) == 600
    assert sum(r["created"] for r in reports) == 600
    assert DueTouchpoint.objects.count() == 600
    assert DueTouchpoint.objects.values("enrollment_id", "step_id").distinct().count() == 600


def test_a_sigkilled_channel_process_lease_returns_after_expiry_and_is_served_once(world):
    now = timezone.now()
    enroll_open_us(world, 3, now)
    assert scheduler.run(now=now).created == 3
    process = child("lease", now.isoformat(), "7", "2")
    line = process.stdout.readline()
    assert line, process.stderr.read()[-3000:]
    held = json.loads(line)
    assert len(held) == 2
    os.killpg(process.pid, signal.SIGKILL)  # dies holding its lease, never acknowledges
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert set(DueTouchpoint.objects.filter(status=TouchpointStatus.LEASED)
               .values_list("pk", flat=True)) == set(held)
    # Before the lease expires nobody else gets them; the third one is still free.
    before = due_queue.lease(token_id=8, channel="email", markets={"US"}, limit=10,
                             now=now + timedelta(seconds=due_queue.LEASE_SECONDS - 1))
    assert [i.touchpoint.pk for i in before] and not {i.touchpoint.pk for i in before} & set(held)
    for item in before:
        due_queue.ack(item.touchpoint.pk, token_id=8, result="delivered", now=now)
    # After expiry (a frozen clock moved past it, no sleeping): back in the queue, once.
    later = now + timedelta(seconds=due_queue.LEASE_SECONDS + 1)
    again = in_threads(*[lambda n=n: [i.touchpoint.pk for i in due_queue.lease(
        token_id=n, channel="email", markets={"US"}, limit=10, now=later)] for n in (8, 9)])
    served = [pk for batch in again for pk in batch]
    assert sorted(served) == sorted(held)
    for batch, token in zip(again, (8, 9), strict=True):
        for pk in batch:
            due_queue.ack(pk, token_id=token, result="delivered", now=later)
    assert not due_queue.lease(token_id=8, channel="email", markets={"US"}, limit=10,
                               now=later + timedelta(days=1, seconds=due_queue.LEASE_SECONDS))
    for pk in held:
        touchpoint = DueTouchpoint.objects.get(pk=pk)
        assert touchpoint.status == TouchpointStatus.DELIVERED and touchpoint.leases == 2
