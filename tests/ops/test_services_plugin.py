"""The services profile's own machinery: per-session test database, the real worker fixture."""

import os
import subprocess
import sys
from pathlib import Path

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


def test_ci_guard_fails_the_run_when_required_services_do_not_answer():
    """.ci/run sets TESSERA_REQUIRE_SERVICES=1: an unreachable service must fail the run
    (exit 3, naming it), never turn the services profile into a run of skipped tests."""
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "TESSERA_REQUIRE_SERVICES": "1",
           "CELERY_BROKER_URL": "redis://127.0.0.1:1/0"}  # nothing listens on port 1
    env.pop("DATABASE_URL", None)  # SQLite: not the PostgreSQL the profile needs
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
         "tests/ops/test_health.py"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=120)

    assert result.returncode == 3, result.stdout[-2000:] + result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert "DATABASE_URL does not point at PostgreSQL" in output
    assert "Redis unreachable" in output
