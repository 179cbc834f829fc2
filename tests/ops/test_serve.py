"""`make serve` (cms/serve.py): the process set comes from the environment and stops cleanly."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

from cms.serve import process_specs
from tests.services import _database_url

REPO_ROOT = Path(__file__).resolve().parents[2]


def names(environ):
    return [spec.name for spec in process_specs(environ)]


def test_embedded_profile_serves_web_only_because_tasks_run_in_process():
    assert names({"WEB_CONCURRENCY": "4"}) == ["web"]


def test_services_profile_runs_web_workers_and_exactly_one_beat():
    environ = {"CELERY_BROKER_URL": "redis://127.0.0.1:6379/0", "CELERY_WORKERS": "3"}
    assert names(environ) == ["web", "worker1", "worker2", "worker3", "beat"]


def test_beat_can_be_left_to_another_machine():
    environ = {"CELERY_BROKER_URL": "redis://127.0.0.1:6379/0", "CELERY_BEAT": "0",
               "CELERY_WORKERS": "2"}
    assert names(environ) == ["web", "worker1", "worker2"]


def test_worker_pool_size_and_queue_come_from_the_environment():
    environ = {"CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
               "CELERY_WORKER_CONCURRENCY": "4", "CELERY_TASK_DEFAULT_QUEUE": "tessera-eu"}
    worker = process_specs(environ)[1].command
    assert worker[worker.index("--concurrency") + 1] == "4"
    assert worker[worker.index("--queues") + 1] == "tessera-eu"


def test_a_malformed_count_stops_with_a_message_naming_the_variable():
    with pytest.raises(SystemExit, match="CELERY_WORKERS must be a whole number"):
        process_specs({"CELERY_BROKER_URL": "redis://127.0.0.1:6379/0", "CELERY_WORKERS": "two"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_serve_starts_web_worker_and_beat_is_ready_and_stops_on_sigterm(tmp_path):
    port = free_port()
    log_path = tmp_path / "serve.log"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(connection.settings_dict),
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_TASK_DEFAULT_QUEUE": f"tessera-serve-test-{os.getpid()}",
        "WEB_CONCURRENCY": "1", "CELERY_WORKERS": "1", "CELERY_BEAT": "1",
        "PORT": str(port), "TESSERA_MIGRATE_ON_START": "0",
    }
    env.pop("TESSERA_LOG_FORMAT", None)  # the default under serve is JSON
    with open(log_path, "wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "cms.serve"], cwd=REPO_ROOT, env=env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        ready = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
                    ready = json.load(r)
                    break
            except OSError:
                time.sleep(0.5)
        assert ready == {"status": "ready",
                         "checks": {"database": "ok", "migrations": "ok", "broker": "ok"}}, \
            log_path.read_text()[-3000:]
        deadline = time.monotonic() + 60
        while "worker1@" not in log_path.read_text() or "beat: Starting" not in log_path.read_text():
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.5)

        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)

    output = log_path.read_text()
    request_lines = [json.loads(line) for line in output.splitlines()
                     if line.startswith("{") and '"tessera.request"' in line]
    assert request_lines and request_lines[-1]["path"] == "/readyz"
    assert "Shutting down: Master" in output
    leftovers = subprocess.run(["pgrep", "-f", env["CELERY_TASK_DEFAULT_QUEUE"]],
                               capture_output=True, text=True).stdout.split()
    assert leftovers == []


def production_environment(**overrides) -> dict[str, str]:
    """This machine's environment without any Django/Tessera setting: production defaults."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("DJANGO_", "TESSERA_"))}
    return {**env, "DJANGO_SETTINGS_MODULE": "cms.settings", **overrides}


def test_serve_refuses_to_start_without_a_secret_key_and_says_how_to_make_one():
    result = subprocess.run([sys.executable, "-m", "cms.serve"], cwd=REPO_ROOT,
                            env=production_environment(), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0
    assert "cms.serve: refusing to start" in result.stderr
    assert "DJANGO_SECRET_KEY is not set" in result.stderr
    assert "secrets.token_urlsafe" in result.stderr
    assert "Traceback" not in result.stderr
    assert "started web" not in result.stderr  # nothing was started
