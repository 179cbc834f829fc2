"""Scale: batch throughput with 1 and 2 Celery workers, and the embedded profile, same run.

    .venv/bin/python bench/scale.py [--recipients 20000] [--workers 1,2]

Needs the local PostgreSQL and Redis. Creates its own database `tessera_scale_<pid>`
(dropped afterwards) with a compliant four-module email step, then for each worker count:
starts that many `celery worker` processes (prefork, one pool process each, their own
queue), submits --recipients recipients as batch jobs of at most 10,000 (the API's limit,
through `delivery.batch.create_job`, the code behind POST /api/v1/assemblies/), and times
from submission until every job is done. The embedded profile runs the same jobs in a
child process on SQLite with eager tasks (no broker, one process).

Prints `name: value unit` lines: emails/s per configuration and the scaling ratio of 2
workers to 1 (the target on 2 cores is >= 1.7). Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from soak import create_database, drop_database  # noqa: E402

REDIS_URL = os.environ.get("SCALE_REDIS_URL", "redis://127.0.0.1:6379/0")
JOB_LIMIT = 10_000


def setup_django(database_url: str, media: Path, *, broker: str | None, queue: str) -> None:
    os.environ.update({
        "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "cms.settings",
        "DJANGO_DEBUG": "0", "TESSERA_LOG_LEVEL": "WARNING", "TESSERA_MEDIA_ROOT": str(media),
        "CELERY_TASK_DEFAULT_QUEUE": queue, "DATABASE_CONN_MAX_AGE": "60",
    })
    # Run by hand as well as by `make bench`: a throwaway key (its workers inherit it).
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    if broker:
        os.environ.update({"CELERY_BROKER_URL": broker, "CELERY_TASK_ALWAYS_EAGER": "false"})
    else:
        os.environ.pop("CELERY_BROKER_URL", None)
        os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from tests.api.builders import build_world

    build_world(slug="scale", step_key="welcome")


def submit(total: int, tag: str) -> list[str]:
    """Batch jobs covering `total` recipients; returns their ids (chunks queued on commit)."""
    from delivery.batch import JobRequest, create_job
    from journeys.models import Step

    step = Step.objects.select_related("journey").get(journey__slug="scale", key="welcome")
    ids = []
    for start in range(0, total, JOB_LIMIT):
        recipients = [{"id": f"{tag}-{i}", "title": "Dr.", "first_name": "Alex",
                       "last_name": f"Morgan{i}", "specialty": "Cardiology",
                       "consent": {"email": True},
                       "unsubscribe_url": f"https://prefs.example.test/unsubscribe/{tag}-{i}"}
                      for i in range(start, min(total, start + JOB_LIMIT))]
        job, _created = create_job(
            JobRequest(step=step, channel="email", jurisdiction="US", locale="en",
                       recipients=recipients, input_errors={}),
            user=None, owner_key=f"bench-{tag}", idempotency_key=None)
        ids.append(str(job.pk))
    return ids


def wait_done(ids: list[str], timeout: float) -> None:
    from delivery.models import AssemblyJob, JobStatus

    deadline = time.monotonic() + timeout
    while AssemblyJob.objects.filter(pk__in=ids).exclude(status=JobStatus.DONE).exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"scale: jobs not done after {timeout:.0f} s")
        time.sleep(0.1)


def assembled(ids: list[str]) -> int:
    from delivery.models import AssemblyJobResult

    return AssemblyJobResult.objects.filter(job_id__in=ids, ok=True).count()


def start_workers(n: int, database_url: str, queue: str, log_dir: Path) -> list[subprocess.Popen]:
    env = {**os.environ, "DATABASE_URL": database_url, "CELERY_BROKER_URL": REDIS_URL,
           "CELERY_TASK_ALWAYS_EAGER": "false", "CELERY_TASK_DEFAULT_QUEUE": queue,
           "TESSERA_LOG_LEVEL": "INFO", "TESSERA_LOG_FORMAT": "json",
           "DATABASE_CONN_MAX_AGE": "60"}
    workers = []
    for index in range(1, n + 1):
        log_path = log_dir / f"worker-{n}-{index}.log"
        with open(log_path, "wb") as log:
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "cms", "worker", "--pool", "prefork",
                 "--concurrency", "1", "--queues", queue, "--hostname", f"scale{n}-{index}@%h",
                 "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True))
    deadline = time.monotonic() + 120
    for index in range(1, n + 1):
        log_path = log_dir / f"worker-{n}-{index}.log"
        while " ready." not in log_path.read_text(errors="replace"):
            if time.monotonic() > deadline or workers[index - 1].poll() is not None:
                stop_workers(workers)
                raise SystemExit(f"scale: worker did not start:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.2)
    return workers


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, 9)
            worker.wait()


def measure_workers(n: int, total: int, database_url: str, queue: str, tmp: Path) -> float:
    workers = start_workers(n, database_url, queue, tmp)
    try:
        started = time.perf_counter()
        ids = submit(total, tag=f"w{n}")
        wait_done(ids, timeout=1800)
        elapsed = time.perf_counter() - started
    finally:
        stop_workers(workers)
    count = assembled(ids)
    if count != total:
        raise SystemExit(f"scale: {count} of {total} assembled with {n} workers")
    return total / elapsed


def embedded_child(total: int) -> None:
    """Run in a child process: the embedded profile (SQLite file, eager tasks)."""
    tmp = Path(tempfile.mkdtemp(prefix="tessera-scale-embedded-"))
    setup_django(f"sqlite:///{tmp / 'scale.sqlite3'}", tmp / "media", broker=None,
                 queue="unused")
    started = time.perf_counter()
    ids = submit(total, tag="embedded")
    wait_done(ids, timeout=1800)
    elapsed = time.perf_counter() - started
    print(json.dumps({"emails_per_s": total / elapsed, "assembled": assembled(ids)}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--embedded-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.embedded_child:
        embedded_child(args.recipients)
        return 0

    counts = [int(n) for n in args.workers.split(",")]
    db_name = f"tessera_scale_{os.getpid()}"
    queue = f"tessera-scale-{os.getpid()}"
    tmp = Path(tempfile.mkdtemp(prefix="tessera-scale-"))
    database_url = create_database(db_name)
    rates: dict[int, float] = {}
    load_before = os.getloadavg()
    try:
        setup_django(database_url, tmp / "media", broker=REDIS_URL, queue=queue)
        for n in counts:
            rates[n] = measure_workers(n, args.recipients, database_url, queue, tmp)
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(db_name)
    child = subprocess.run([sys.executable, __file__, "--embedded-child",
                            "--recipients", str(args.recipients)],
                           cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if child.returncode != 0:
        raise SystemExit(f"scale: embedded run failed:\n{child.stderr[-3000:]}")
    embedded = json.loads(child.stdout.strip().splitlines()[-1])
    load_after = os.getloadavg()

    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, {platform.system()} {platform.release()}")
    print(f"load_average_before: {load_before[0]:.2f}")
    print(f"load_average_after: {load_after[0]:.2f}")
    print(f"recipients: {args.recipients} count (jobs of at most {JOB_LIMIT})")
    for n, rate in rates.items():
        print(f"batch_throughput_{n}_worker{'s' if n > 1 else ''}: {rate:.0f} emails/s")
    if 1 in rates and 2 in rates:
        print(f"scaling_ratio_2_to_1: {rates[2] / rates[1]:.2f} x (target >= 1.7)")
    print(f"batch_throughput_embedded: {embedded['emails_per_s']:.0f} emails/s "
          "(SQLite, eager tasks, one process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
