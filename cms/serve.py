"""Run a whole Tessera deployment on one machine: web × N, Celery worker × N, beat × 1.

    python -m cms.serve            (what `make serve` runs)

A small Procfile runner: every process is configured from environment variables only, its
output goes to this process's stdout/stderr (JSON lines), and when one process dies the
others are stopped and the runner exits non-zero, so a supervisor (systemd, a container
runtime) restarts the set. SIGTERM / SIGINT stop everything gracefully (30 s, then SIGKILL).

WEB_CONCURRENCY           gunicorn worker processes (default 2)
GUNICORN_THREADS          threads per gunicorn worker (default 1: sync; >1 = gthread)
CELERY_WORKERS            Celery worker processes (default 1; 0 = none on this machine)
CELERY_WORKER_CONCURRENCY pool processes per Celery worker (default 1)
CELERY_BEAT               1 to run the beat scheduler here (default 1; exactly one per deployment)
HOST, PORT                where gunicorn listens (default 127.0.0.1:8000)
TESSERA_MIGRATE_ON_START  1 to run `migrate` and `collectstatic` before starting (default 1)

Without CELERY_BROKER_URL (the embedded profile) tasks run inside the web processes, so
only gunicorn is started.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE_SECONDS = 30


@dataclass
class ProcessSpec:
    name: str
    command: list[str]


def _env_int(environ: dict[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "")
    try:
        return int(raw) if raw.strip() else default
    except ValueError:
        raise SystemExit(f"cms.serve: {name} must be a whole number, got {raw!r}")


def process_specs(environ: dict[str, str] | None = None) -> list[ProcessSpec]:
    """The processes to run, from the environment (pure: used by tests and the soak bench)."""
    environ = dict(os.environ if environ is None else environ)
    python = sys.executable
    specs = [ProcessSpec("web", [python, "-m", "gunicorn", "-c",
                                 str(REPO_ROOT / "cms" / "gunicorn.conf.py"), "cms.wsgi"])]
    if not environ.get("CELERY_BROKER_URL"):
        return specs  # embedded profile: tasks run eagerly in the web processes
    workers = _env_int(environ, "CELERY_WORKERS", 1)
    concurrency = _env_int(environ, "CELERY_WORKER_CONCURRENCY", 1)
    beat = _env_int(environ, "CELERY_BEAT", 1)
    queue = environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
    for index in range(1, workers + 1):
        specs.append(ProcessSpec(f"worker{index}", [
            python, "-m", "celery", "-A", "cms", "worker", "--pool", "prefork",
            "--concurrency", str(concurrency), "--queues", queue,
            "--hostname", f"worker{index}@%h", "--without-gossip", "--without-mingle",
            "--loglevel", environ.get("TESSERA_LOG_LEVEL", "INFO"),
        ]))
    if beat:
        specs.append(ProcessSpec("beat", [
            python, "-m", "celery", "-A", "cms", "beat",
            "--loglevel", environ.get("TESSERA_LOG_LEVEL", "INFO"),
            "--pidfile=", "--schedule", "/dev/null",
        ]))
    return specs


def check_configuration(env: dict[str, str]) -> str | None:
    """Django's own checks on the settings, before anything starts; the refusal or None.

    Settings that cannot load (no DJANGO_SECRET_KEY outside DEBUG) or an error-level check
    stop the set here, with Django's message, instead of as N crashing children.
    """
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level",
                             "ERROR"], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    if result.returncode == 0:
        return None
    output = result.stderr.strip() or result.stdout.strip()
    exceptions = list(re.finditer(r"^[A-Za-z_][\w.]*: ", output, flags=re.MULTILINE))
    if "Traceback" in output and exceptions:  # the settings refused to load: keep the reason
        return output[exceptions[-1].end():]
    return output


def prepare(env: dict[str, str]) -> None:
    """Apply migrations and collect static files (whitenoise serves them)."""
    for args in (["migrate", "--noinput"], ["collectstatic", "--noinput", "--verbosity", "0"]):
        subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, check=True)


def run(specs: list[ProcessSpec], env: dict[str, str]) -> int:
    """Start every process; return when one exits or a stop signal arrives."""
    children: dict[str, subprocess.Popen] = {}
    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    for spec in specs:
        # Same process group as the runner (a signal to the group reaches everyone), and
        # each child is told to stop if the runner dies without cleaning up (SIGKILL).
        children[spec.name] = subprocess.Popen(spec.command, cwd=REPO_ROOT, env=env,
                                               preexec_fn=_stop_with_parent)
        print(f"cms.serve: started {spec.name} (pid {children[spec.name].pid})", file=sys.stderr,
              flush=True)
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"cms.serve: {name} exited with {child.returncode}; stopping the rest",
                      file=sys.stderr, flush=True)
                exit_code = child.returncode or 1
                stopping = True
                break
        time.sleep(0.5)
    _stop_all(children)
    return exit_code


def _stop_with_parent() -> None:
    """In the child before exec: SIGTERM when the runner dies (Linux prctl PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop_all(children: dict[str, subprocess.Popen]) -> None:
    # SIGTERM to each main process: gunicorn stops its workers, Celery finishes its current
    # task (warm shutdown); both take their own children with them.
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main() -> int:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "cms.settings")
    env.setdefault("TESSERA_LOG_FORMAT", "json")
    env.setdefault("PYTHONUNBUFFERED", "1")
    specs = process_specs(env)
    refusal = check_configuration(env)
    if refusal:
        print(f"cms.serve: refusing to start:\n{refusal}", file=sys.stderr, flush=True)
        return 2
    if _env_int(env, "TESSERA_MIGRATE_ON_START", 1):
        prepare(env)
    return run(specs, env)


if __name__ == "__main__":
    sys.exit(main())
