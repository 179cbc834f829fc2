"""A Celery worker keeps its database connection exactly as DATABASE_CONN_MAX_AGE says, as a
web process does (cms/celery.py): Celery's Django fixup alone closed it around every task,
so each batch chunk paid for a new PostgreSQL backend."""

import secrets
import time
import uuid

import pytest
from django.db import connection

from cms.celery import app
from tests.services import SESSION_QUEUE, CeleryWorkerProcess, _database_url

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow,
              pytest.mark.django_db(transaction=True)]


def backends(application_name: str) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s "
                       "AND datname = current_database() ORDER BY pid", [application_name])
        return [pid for (pid,) in cursor.fetchall()]


def settled(application_name: str, *, want_none: bool) -> list[int]:
    """The worker's backends once the task's end has run (the success line is logged
    around the same moment): wait for them to go when they should, else half a second."""
    deadline = time.monotonic() + (10 if want_none else 0.5)
    while True:
        pids = backends(application_name)
        if (want_none and not pids) or time.monotonic() > deadline:
            return pids
        time.sleep(0.05)


@pytest.fixture
def worker_with(tmp_path, monkeypatch):
    monkeypatch.setattr(app.conf, "task_always_eager", False)
    started = []

    def start(conn_max_age: int) -> tuple[CeleryWorkerProcess, str]:
        name = f"tessera-test-conn-{secrets.token_hex(4)}"
        worker = CeleryWorkerProcess(
            database_url=f"{_database_url(connection.settings_dict)}?application_name={name}",
            log_path=tmp_path / f"worker-{name}.log", media_root=tmp_path / "media",
            queue=f"{SESSION_QUEUE}-{name}", conn_max_age=conn_max_age)
        started.append(worker)
        worker.start()
        return worker, name

    yield start
    for worker in started:
        worker.stop()
        worker.kill()


def run_task(worker: CeleryWorkerProcess) -> None:
    # A chunk of a job that does not exist: one query, then nothing to do.
    sent = app.send_task("delivery.tasks.assemble_chunk", args=(str(uuid.uuid4()), 0, 1),
                         queue=worker.queue)
    worker.wait_for_log(sent.id, then="succeeded", timeout=60)


def test_with_a_max_age_the_worker_serves_every_task_from_one_connection(worker_with):
    worker, name = worker_with(conn_max_age=60)
    seen = []
    for _ in range(3):
        run_task(worker)
        seen.append(settled(name, want_none=False))
    assert len(seen[0]) == 1, f"the worker kept no connection after its task: {seen}"
    assert seen == [seen[0]] * 3, f"a new backend per task: {seen}"


def test_with_max_age_0_the_worker_closes_its_connection_after_each_task(worker_with):
    worker, name = worker_with(conn_max_age=0)
    for _ in range(2):
        run_task(worker)
        assert settled(name, want_none=True) == [], "the connection outlived its task"
