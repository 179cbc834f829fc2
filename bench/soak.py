"""Soak: the scale-out deployment under mixed load while reviewers approve and withdraw.

    .venv/bin/python bench/soak.py [--seconds 60] [--clients 6] [--batch-size 100]

Loopback only, bounded in time. Needs the local PostgreSQL and Redis (the services profile):
creates its own database `tessera_soak_<pid>` (dropped afterwards), builds a compliant
email journey, and starts the deployment with `python -m cms.serve`: gunicorn with 2
workers and 2 Celery workers (its own queue). Then, for --seconds:

- load clients (threads, one HTTP request at a time each) mix single assemblies, batch
  jobs (POST /api/v1/assemblies/), engagement events and module listings;
- a reviewer thread, through the real services (signatures with passwords), keeps starting
  new versions of the step's headline module, gets them approved by Medical, Legal and
  Regulatory, withdraws the previous approved version, and every third round withdraws
  the new one too (the step is refused until the next approval).

Afterwards it checks every delivered manifest in the delivery log: no module version in it
was withdrawn or expired, or not yet approved, at the moment it was served; every batch
recipient was assembled exactly once; and no response was a 5xx. Prints `name: value unit`
lines (requests/s, p50/p99 per kind) and `violations: N` — which must be 0; the exit code
is 1 otherwise.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_ADMIN = dict(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
REDIS_URL = os.environ.get("SOAK_REDIS_URL", "redis://127.0.0.1:6379/0")
PASSWORD = "soak-reviewer-password"
JOURNEY, STEP = "soak", "welcome"


# --- database and world ----------------------------------------------------------------------

def create_database(name: str) -> str:
    import psycopg

    with psycopg.connect(**PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgres://{PG_ADMIN['user']}@{PG_ADMIN['host']}:{PG_ADMIN['port']}/{name}"


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(**PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def setup_django(database_url: str, media: Path) -> None:
    os.environ.update({
        "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "cms.settings",
        "DJANGO_DEBUG": "0", "TESSERA_LOG_LEVEL": "WARNING", "TESSERA_MEDIA_ROOT": str(media),
        # The reviewer thread's on-commit notifications run in-process, not on the soak queue.
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    })
    os.environ.pop("CELERY_BROKER_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def build(settings_out: dict) -> dict:
    from django.contrib.auth.hashers import make_password

    from approvals.roles import REQUIRED_ROLES, role_group
    from tests.api.builders import build_world, token
    from tests.factories import UserFactory

    world = build_world(slug=JOURNEY, step_key=STEP)
    _token, key = token(name="Soak email sender")
    author = UserFactory(username="soak-author")
    reviewers = {}
    for role in REQUIRED_ROLES:
        user = UserFactory(username=f"soak-{role}", first_name=role.title(), last_name="Reviewer")
        user.password = make_password(PASSWORD)
        user.save(update_fields=["password"])
        user.groups.add(role_group(role))
        reviewers[role] = user
    settings_out.update(key=key)
    return {"world": world, "author": author, "reviewers": reviewers}


# --- the deployment ------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_deployment(database_url: str, port: int, log_path: Path, queue: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url, "CELERY_BROKER_URL": REDIS_URL,
           "CELERY_TASK_ALWAYS_EAGER": "false", "CELERY_TASK_DEFAULT_QUEUE": queue,
           "WEB_CONCURRENCY": "2", "CELERY_WORKERS": "2", "CELERY_WORKER_CONCURRENCY": "1",
           "CELERY_BEAT": "0", "PORT": str(port), "TESSERA_MIGRATE_ON_START": "0",
           "TESSERA_TOKEN_RATE": "1000000/min", "DATABASE_CONN_MAX_AGE": "60",
           "TESSERA_LOG_FORMAT": "json", "TESSERA_LOG_LEVEL": "INFO",
           "CELERY_VISIBILITY_TIMEOUT": "300"}
    log = open(log_path, "wb")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen([sys.executable, "-m", "cms.serve"], cwd=ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            status, _ = request("GET", port, "/readyz", None, None)
            if status == 200 and log_path.read_text().count(" ready.") >= 2:
                return process
        except OSError:
            pass
        time.sleep(0.5)
    stop_deployment(process)
    raise SystemExit(f"soak: the deployment did not become ready:\n{log_path.read_text()[-3000:]}")


def stop_deployment(process: subprocess.Popen) -> None:
    """SIGTERM the runner (it stops gunicorn and the workers gracefully); SIGKILL the whole
    group if that hangs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def request(method: str, port: int, path: str, body, key: str | None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Token {key}"
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# --- load ----------------------------------------------------------------------------------

class Load:
    def __init__(self, port: int, key: str, batch_size: int):
        self.port, self.key, self.batch_size = port, key, batch_size
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.jobs: list[tuple[str, int]] = []
        self.lock = threading.Lock()
        self.counter = 0

    def next_id(self) -> int:
        with self.lock:
            self.counter += 1
            return self.counter

    def one(self, rng: random.Random) -> None:
        n = self.next_id()
        recipient = {"id": f"soak-{n}", "title": "Dr.", "first_name": "Alex",
                     "last_name": f"Morgan{n}", "specialty": "Cardiology",
                     "consent": {"email": True}}
        roll = rng.random()
        if roll < 0.45:
            kind, method, path = "assemble", "POST", f"/api/v1/journeys/{JOURNEY}/steps/{STEP}/assemble/"
            body = {"channel": "email", "jurisdiction": "US", "locale": "en", "recipient": recipient}
        elif roll < 0.75:
            kind, method, path, body = "modules", "GET", "/api/v1/modules/?jurisdiction=US", None
        elif roll < 0.95:
            kind, method, path = "events", "POST", "/api/v1/events/"
            body = {"journey": JOURNEY, "step": STEP, "recipient_id": f"soak-ev-{n % 500}",
                    "event": rng.choice(["opened", "clicked", "ignored"])}
        else:
            kind, method, path = "batch", "POST", "/api/v1/assemblies/"
            body = {"journey": JOURNEY, "step": STEP, "channel": "email", "jurisdiction": "US",
                    "locale": "en", "recipients": [
                        dict(recipient, id=f"soak-b{n}-{i}") for i in range(self.batch_size)]}
        started = time.perf_counter()
        try:
            status, payload = request(method, self.port, path, body, self.key)
        except OSError:
            status, payload = 599, b""  # connection failure: counted with the 5xx
        elapsed = time.perf_counter() - started
        with self.lock:
            self.latencies[kind].append(elapsed)
            self.statuses[kind][status] += 1
            if kind == "batch" and status == 202:
                self.jobs.append((json.loads(payload)["id"], self.batch_size))

    def run(self, clients: int, seconds: float) -> float:
        stop = time.monotonic() + seconds

        def client(seed: int) -> None:
            rng = random.Random(seed)
            while time.monotonic() < stop:
                self.one(rng)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - started


# --- the reviewer --------------------------------------------------------------------------

def reviewer_loop(people: dict, stop: threading.Event, log: list) -> None:
    from django.db import connections

    from approvals import services
    from approvals.signing import Credentials
    from content.models import ModuleVersion, VersionState
    from content.versioning import new_version

    module = people["world"]["versions"]["headline"].module
    author, reviewers = people["author"], people["reviewers"]
    regulatory = reviewers["regulatory"]

    def credentials(user):
        return Credentials(password=PASSWORD, username=user.username)

    round_number = 0
    try:
        while not stop.is_set():
            round_number += 1
            draft = new_version(module, author=author)
            services.submit_for_review(version=draft, actor=author)
            for role, user in reviewers.items():
                services.decide(version=ModuleVersion.objects.get(pk=draft.pk), actor=user,
                                role=role, decision="approve", expected_sha256=draft.sha256,
                                credentials=credentials(user))
            log.append(("approved", draft.pk))
            older = ModuleVersion.objects.filter(module=module, state=VersionState.APPROVED
                                                 ).exclude(pk=draft.pk)
            targets = list(older)
            if round_number % 3 == 0:
                targets.append(ModuleVersion.objects.get(pk=draft.pk))
            for version in targets:
                services.withdraw(version=version, actor=regulatory, reason="Soak: label change",
                                  role="regulatory", credentials=credentials(regulatory))
                log.append(("withdrawn", version.pk))
            stop.wait(0.2)
    except Exception as exc:  # reported, and it makes the soak fail
        log.append(("error", repr(exc)))
    finally:
        connections.close_all()


# --- checks --------------------------------------------------------------------------------

def wait_for_jobs(jobs: list[tuple[str, int]], timeout: float) -> list[str]:
    from delivery.models import AssemblyJob, JobStatus

    ids = [job_id for job_id, _ in jobs]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = list(AssemblyJob.objects.filter(pk__in=ids).exclude(status=JobStatus.DONE)
                       .values_list("pk", flat=True))
        if not pending:
            return []
        time.sleep(0.5)
    return [str(pk) for pk in pending]


def check(jobs: list[tuple[str, int]]) -> dict[str, int]:
    from django.db.models import Count, F, Q

    from delivery.models import AssemblyJobResult, DeliveredVersion, Delivery

    served = F("delivery__served_at")
    delivered = DeliveredVersion.objects
    problems = {
        "delivered_withdrawn": delivered.filter(version__withdrawn_at__lte=served).count(),
        "delivered_expired": delivered.filter(version__expires_at__lte=served).count(),
        "delivered_unapproved": delivered.filter(
            Q(version__approved_at__isnull=True) | Q(version__approved_at__gt=served)).count(),
    }
    missing = duplicated = 0
    for job_id, total in jobs:
        indexes = AssemblyJobResult.objects.filter(job_id=job_id).values("index")
        missing += total - indexes.distinct().count()
        duplicated += indexes.annotate(n=Count("id")).filter(n__gt=1).count()
        ok = AssemblyJobResult.objects.filter(job_id=job_id, ok=True).count()
        per_recipient = (Delivery.objects.filter(job_id=job_id).values("recipient_pseudonym")
                         .annotate(n=Count("id")))
        duplicated += sum(1 for row in per_recipient if row["n"] > 1)
        missing += abs(ok - len(per_recipient))
    problems["batch_recipients_missing"] = missing
    problems["batch_recipients_duplicated"] = duplicated
    return problems


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()

    db_name = f"tessera_soak_{os.getpid()}"
    queue = f"tessera-soak-{os.getpid()}"
    tmp = Path(tempfile.mkdtemp(prefix="tessera-soak-"))
    database_url = create_database(db_name)
    deployment = None
    try:
        setup_django(database_url, tmp / "media")
        shared: dict = {}
        people = build(shared)
        port = free_port()
        log_path = tmp / "deployment.log"
        deployment = start_deployment(database_url, port, log_path, queue)

        load = Load(port, shared["key"], args.batch_size)
        stop = threading.Event()
        review_log: list = []
        reviewer = threading.Thread(target=reviewer_loop, args=(people, stop, review_log))
        reviewer.start()
        elapsed = load.run(args.clients, args.seconds)
        stop.set()
        reviewer.join()
        unfinished = wait_for_jobs(load.jobs, timeout=180)
        problems = check(load.jobs)
        server_errors = sum(count for statuses in load.statuses.values()
                            for status, count in statuses.items() if status >= 500)
        reviewer_errors = [entry for entry in review_log if entry[0] == "error"]
        error_lines = sum(1 for line in log_path.read_text(errors="replace").splitlines()
                          if '"level": "ERROR"' in line)
    finally:
        if deployment is not None:
            stop_deployment(deployment)
        from django.db import connections

        connections.close_all()
        drop_database(db_name)

    total = sum(len(v) for v in load.latencies.values())
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}")
    print(f"deployment: gunicorn 2 workers + 2 Celery workers, PostgreSQL + Redis on loopback; "
          f"{args.clients} load clients for {elapsed:.0f} s")
    print(f"requests: {total} count")
    print(f"throughput: {total / elapsed:.1f} requests/s")
    for kind in ("assemble", "modules", "events", "batch"):
        values = load.latencies.get(kind, [])
        statuses = dict(sorted(load.statuses.get(kind, {}).items()))
        print(f"{kind}_rate: {len(values) / elapsed:.1f} requests/s")
        print(f"{kind}_p50: {percentile(values, 0.5) * 1000:.1f} ms")
        print(f"{kind}_p99: {percentile(values, 0.99) * 1000:.1f} ms")
        print(f"{kind}_statuses: {json.dumps(statuses)}")
    approvals = sum(1 for entry in review_log if entry[0] == "approved")
    withdrawals = sum(1 for entry in review_log if entry[0] == "withdrawn")
    print(f"reviewer_approvals: {approvals} count")
    print(f"reviewer_withdrawals: {withdrawals} count")
    print(f"batch_jobs: {len(load.jobs)} count")
    print(f"batch_recipients: {sum(n for _, n in load.jobs)} count")
    print(f"batch_jobs_unfinished: {len(unfinished)} count")
    for name, count in problems.items():
        print(f"{name}: {count} count")
    print(f"server_5xx: {server_errors} count")
    print(f"server_error_log_lines: {error_lines} count")
    violations = (sum(problems.values()) + server_errors + len(unfinished)
                  + len(reviewer_errors))
    if reviewer_errors:
        print(f"reviewer_errors: {reviewer_errors[:3]}")
    print(f"violations: {violations} count")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
