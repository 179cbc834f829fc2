"""The services profile's own machinery: per-session test database, the real worker fixture."""

import os

import pytest
from django.db import connection

from cms.celery import app


@pytest.mark.postgres
@pytest.mark.django_db
def test_session_uses_its_own_postgres_test_database():
    assert connection.settings_dict["NAME"].endswith(f"_p{os.getpid()}")


@pytest.mark.worker
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_worker_consumes_this_sessions_queue_and_comes_back_after_sigkill(celery_worker):
    first = app.send_task("celery.accumulate", args=("first",))
    celery_worker.wait_for_log(first.id, then="succeeded", timeout=60)

    celery_worker.kill()
    assert not celery_worker.running
    celery_worker.restart()

    second = app.send_task("celery.accumulate", args=("second",))
    celery_worker.wait_for_log(second.id, then="succeeded", timeout=60)
    assert celery_worker.queue in app.conf.task_default_queue
