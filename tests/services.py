"""Real services for the test suite: PostgreSQL test databases, a real Celery worker process.

Registered from tests/conftest.py (`pytest_plugins = ["tests.services"]`).

Fixtures
--------
`celery_worker` (function scope) — use it, or simply mark the test `@pytest.mark.worker`
    (the mark requests it for you). It gives the test a real Celery worker process and makes
    the test process non-eager for the duration of the test: `.delay()` / `apply_async()`
    go through the broker (Redis) to the worker, which runs against the same PostgreSQL test
    database pytest-django created. It implies `transactional_db` (the worker can only see
    committed rows), so write such tests with `@pytest.mark.django_db(transaction=True)`.
    Returns a `CeleryWorkerProcess`:
      - `.log_path` / `.log_text()`: the worker's stdout+stderr (the whole session);
      - `.kill()`: SIGKILL the worker and its pool children (an OOM kill, a lost machine);
      - `.restart()`: kill if running, start again, wait until it consumes;
      - `.wait_for_log(text, timeout=...)`: wait for a line in the log (e.g. a task id);
      - `.queue`: the queue this session's tasks go to.
    Its PostgreSQL sessions carry application_name `WORKER_APPLICATION_NAME`
    ("tessera-test-worker"); a task it took and never acknowledged (SIGKILL) is delivered
    again after `WORKER_VISIBILITY_TIMEOUT` seconds.
`celery_worker_process` (session scope) — the same process without the per-test settings.

Ordinary tests stay eager in the services profile (`make test-services` sets
CELERY_TASK_ALWAYS_EAGER=true); only `worker` tests talk to the broker.

Isolation on a shared machine
-----------------------------
- PostgreSQL: each pytest session gets its own test database, `test_<NAME>_p<pid>`, so two
  sessions (two engineers, CI) never drop each other's database. Databases left by sessions
  that died are dropped at the next session start.
- Redis: each session's tasks go to their own queue (`tessera-test-<pid>-<random>`), so one
  session's worker never consumes another session's tasks.
- TESSERA_REQUIRE_SERVICES=1 (set by .ci/run) turns an unreachable PostgreSQL or Redis into
  an error at session start instead of skipped tests.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

REPO_ROOT = Path(__file__).resolve().parent.parent
SESSION_QUEUE = f"tessera-test-{os.getpid()}-{secrets.token_hex(3)}"
# A message a dead worker took (acks_late) goes back to the queue after this many seconds.
WORKER_VISIBILITY_TIMEOUT = 8
READY_TIMEOUT = 90


def _engine() -> str:
    return settings.DATABASES["default"]["ENGINE"]


def _broker() -> str:
    return os.environ.get("CELERY_BROKER_URL", "")


def _is_postgres() -> bool:
    return "postgresql" in _engine()


# --- session setup -------------------------------------------------------------------------

def pytest_configure(config):
    # Keep any task a test sends off the shared default queue (other sessions' workers).
    from cms.celery import app

    app.conf.task_default_queue = SESSION_QUEUE
    settings.CELERY_TASK_DEFAULT_QUEUE = SESSION_QUEUE


def pytest_sessionstart(session):
    if os.environ.get("TESSERA_REQUIRE_SERVICES", "").lower() not in {"1", "true", "yes"}:
        return
    problems = []
    if not _is_postgres():
        problems.append(f"DATABASE_URL does not point at PostgreSQL (engine {_engine()})")
    else:
        try:
            _admin_connection().close()
        except Exception as exc:
            problems.append(f"PostgreSQL unreachable: {exc}")
    if not _broker().startswith("redis"):
        problems.append("CELERY_BROKER_URL does not point at Redis")
    else:
        try:
            import redis

            redis.Redis.from_url(_broker(), socket_connect_timeout=3).ping()
        except Exception as exc:
            problems.append(f"Redis unreachable: {exc}")
    if problems:
        pytest.exit("TESSERA_REQUIRE_SERVICES=1 but: " + "; ".join(problems), returncode=3)


def _admin_connection():
    """A psycopg connection to the server's maintenance database, autocommit."""
    import psycopg

    db = settings.DATABASES["default"]
    return psycopg.connect(
        dbname="postgres", user=db.get("USER") or None, password=db.get("PASSWORD") or None,
        host=db.get("HOST") or None, port=db.get("PORT") or None, autocommit=True,
        connect_timeout=5,
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _drop_orphan_test_databases(prefix: str) -> None:
    pattern = re.compile(rf"^{re.escape(prefix)}_p(\d+)$")
    with _admin_connection() as conn:
        names = [row[0] for row in conn.execute("SELECT datname FROM pg_database")]
        for name in names:
            match = pattern.match(name)
            if match and not _pid_alive(int(match.group(1))):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """Give this session its own PostgreSQL test database (see the module docstring)."""
    if not _is_postgres():
        return
    db = settings.DATABASES["default"]
    base = db.get("TEST", {}).get("NAME") or f"test_{db['NAME']}"
    try:
        _drop_orphan_test_databases(base)
    except Exception:  # housekeeping only; creating our own database will say what is wrong
        pass
    db.setdefault("TEST", {})["NAME"] = f"{base}_p{os.getpid()}"


# --- the Celery worker ---------------------------------------------------------------------

class CeleryWorkerProcess:
    """A `celery worker` subprocess on this session's queue and test database."""

    def __init__(self, *, database_url: str, log_path: Path, media_root: Path,
                 queue: str = SESSION_QUEUE, concurrency: int = 1, conn_max_age: int = 0):
        self.database_url = database_url
        self.conn_max_age = conn_max_age
        self.log_path = log_path
        self.media_root = media_root
        self.queue = queue
        self.concurrency = concurrency
        self.process: subprocess.Popen | None = None
        self.starts = 0

    # The worker's own view of the world: environment variables only, as in production.
    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "DJANGO_SETTINGS_MODULE": "cms.settings",
            "DATABASE_URL": self.database_url,
            "DATABASE_CONN_MAX_AGE": str(self.conn_max_age),
            "CELERY_BROKER_URL": _broker(),
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
            "CELERY_VISIBILITY_TIMEOUT": str(WORKER_VISIBILITY_TIMEOUT),
            "TESSERA_MEDIA_ROOT": str(self.media_root),
            "TESSERA_LOG_FORMAT": env.get("TESSERA_LOG_FORMAT", "json"),
            "PYTHONUNBUFFERED": "1",
        })
        return env

    def start(self) -> None:
        self.starts += 1
        command = [
            sys.executable, "-m", "celery", "-A", "cms", "worker",
            "--pool", "prefork", "--concurrency", str(self.concurrency),
            "--queues", self.queue, "--hostname", f"{self.queue}-{self.starts}@%h",
            "--without-gossip", "--without-mingle", "--loglevel", "INFO",
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it; closed below
        try:
            log.write(f"\n==== start {self.starts}: {' '.join(command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                command, cwd=REPO_ROOT, env=self.environment(), stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        finally:
            log.close()
        self.wait_for_log(f"{self.queue}-{self.starts}@", then="ready.", timeout=READY_TIMEOUT)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, *, then: str | None = None, timeout: float = 60) -> str:
        """Wait until `text` (and, on the same line, `then`) appears in the log; return the line."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_text().splitlines():
                if text in line and (then is None or then in line):
                    return line
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited ({self.process.returncode}); log "
                                   f"{self.log_path}:\n{self.log_text()[-4000:]}")
            time.sleep(0.2)
        raise TimeoutError(f"{text!r} not in worker log {self.log_path} after {timeout}s:\n"
                           f"{self.log_text()[-4000:]}")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once: nothing gets to clean up."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        """Warm shutdown (SIGTERM: finish the current task), SIGKILL if it hangs."""
        if not self.running:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()


def _database_url(db: dict) -> str:
    user = quote(db.get("USER") or "")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{host}{port}/{quote(db['NAME'])}"


# The worker's database sessions carry this name, so fault tests can find (and terminate) them.
WORKER_APPLICATION_NAME = "tessera-test-worker"


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory):
    """One worker for the session, started on first use; stopped before the test DB drops."""
    if not _broker().startswith(("redis", "amqp")):
        pytest.skip("needs a broker for a real Celery worker: set CELERY_BROKER_URL "
                    "(make test-services)")
    if not _is_postgres():
        pytest.skip("a worker process needs a shared database: set DATABASE_URL=postgres://... "
                    "(make test-services)")
    from django.db import connection

    folder = tmp_path_factory.mktemp("celery-worker")
    worker = CeleryWorkerProcess(
        database_url=(f"{_database_url(connection.settings_dict)}"
                      f"?application_name={WORKER_APPLICATION_NAME}"),
        log_path=folder / "worker.log", media_root=folder / "media",
    )
    worker.start()
    yield worker
    worker.stop()
    worker.kill()


@pytest.fixture
def celery_worker(celery_worker_process, transactional_db, settings):
    """The session's worker, with this test process non-eager (tasks go through the broker)."""
    from cms.celery import app

    if not celery_worker_process.running:
        celery_worker_process.start()
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    settings.CELERY_TASK_ALWAYS_EAGER = False
    try:
        yield celery_worker_process
    finally:
        app.conf.task_always_eager = previous
        if not celery_worker_process.running:  # a fault test left it dead: next test gets one
            celery_worker_process.start()


@pytest.fixture(autouse=True)
def _worker_mark_gets_a_worker(request):
    if request.node.get_closest_marker("worker") is not None:
        request.getfixturevalue("celery_worker")
