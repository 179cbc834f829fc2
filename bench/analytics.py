"""Analytics benchmark on PostgreSQL: event ingest over the API and the journey analytics
page over 1,000,000 events, each beside a floor measured in the same run.

    .venv/bin/python bench/analytics.py [--server postgres://postgres@127.0.0.1:5432/postgres]
                                        [--batches 48] [--concurrency 4] [--events 1000000]

1. Ingest: a fresh database, a six-step journey with transitions, gunicorn (4 sync workers,
   cms.settings) on 127.0.0.1; `--concurrency` client threads POST /api/v1/events/ with
   1,000-event batches (random recipients among 50,000, random steps and types) until
   `--batches` batches are in. Floor: the same number of event rows written by one
   connection with a bare `COPY` into the events table (no API, no transitions, no
   history), rolled back.
2. Page: `--events` more events are COPY-ed in (enrollments too), the rollups rebuilt
   (timed), then GET /journeys/<slug>/analytics/ in-process (Django test client, logged
   in): the measures computed from the rollup
   tables once, timed; then the refresh the beat task does after a rollup run) and the
   first page view and the p95 of the next 30 (analytics/queries.py). Floor: the p95 of a
   plain grouped query of the rollup table.

`--profile N`: instead, N batches POSTed in-process (Django test client, the real
endpoint and middleware), the last one under cProfile: its wall time, query count and the
functions with the largest cumulative and own time (shares, not seconds, are what compare
across a loaded machine).

Prints `name: value unit` lines. Skips (exit 0, with the reason) when PostgreSQL does not
answer. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _analytics_data import bench_journey, boot
from _gunicorn import start as start_server
from _postgres import answers, create_database, drop_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB = f"tessera_bench_analytics_{os.getpid()}"
SLUG = "bench-analytics"
STEPS = [("aware", "awareness", "email"), ("efficacy", "interest", "email"),
         ("portal", "interest", "portal"), ("rep", "trial", "rep"),
         ("support", "adoption", "email"), ("advocacy", "advocacy", "email")]
MOVES = [("aware", "clicked", 1, "efficacy"), ("aware", "ignored", 2, "portal"),
         ("efficacy", "clicked", 1, "rep"), ("portal", "clicked", 1, "rep"),
         ("rep", "attended", 1, "support"), ("support", "opened", 3, "advocacy")]
TYPES = ["opened", "clicked", "ignored", "declined", "attended", "downloaded"]


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(round(0.95 * len(ordered))) - 1)]


def setup(database_url: str, tmp: Path):
    boot(database_url, tmp)
    from delivery.tokens import create_token
    from journeys.models import Transition

    _brand, journey, steps = bench_journey(SLUG, "Bench journey", STEPS)
    for a, event, threshold, b in MOVES:
        Transition.objects.create(from_step=steps[a], event_type=event, threshold=threshold,
                                  to_step=steps[b])
    _, key = create_token(name="bench analytics", channels=["email", "portal", "rep"],
                          jurisdictions=["US"], rate_limit="1000000/s")
    return key, journey, steps


def start_gunicorn(database_url: str, port: int, tmp: Path) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=database_url, DJANGO_DEBUG="0", WEB_CONCURRENCY="4",
               PORT=str(port), HOST="127.0.0.1", TESSERA_LOG_LEVEL="WARNING",
               DATABASE_CONN_MAX_AGE="600", GUNICORN_MAX_REQUESTS="0",
               DJANGO_SETTINGS_MODULE="cms.settings")
    env.pop("CELERY_BROKER_URL", None)
    return start_server(env, port, tmp, timeout=90)


def batch_body(rnd: random.Random, size: int = 1000) -> bytes:
    keys = [k for k, _, _ in STEPS if k != "advocacy"]
    return json.dumps([{"journey": SLUG, "step": rnd.choice(keys),
                        "recipient_id": f"bench-{rnd.randrange(50_000)}",
                        "event": rnd.choice(TYPES)} for _ in range(size)]).encode()


def ingest(port: int, key: str, batches: int, concurrency: int) -> tuple[float, int, list[float]]:
    rnd = random.Random(15)
    bodies = [batch_body(rnd) for _ in range(batches)]
    lock, latencies, failures = threading.Lock(), [], []

    def worker():
        while True:
            with lock:
                if not bodies:
                    return
                body = bodies.pop()
            started = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            conn.request("POST", "/api/v1/events/", body=body, headers={
                "Authorization": f"Token {key}", "Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            with lock:
                latencies.append(time.perf_counter() - started)
                if response.status != 200:
                    failures.append(response.status)
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if failures:
        print(f"analytics_ingest_failed_batches: {len(failures)} (statuses {set(failures)})")
        log = Path(os.environ.get("BENCH_TMP", "")) / "gunicorn.log"
        if log.is_file():
            print(log.read_text()[-3000:], file=sys.stderr)
    return wall, batches * 1000, latencies


def copy_rows(cursor, table: str, columns: list[str], rows) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def copy_floor(database_url: str, journey, steps, count: int) -> float:
    """One connection, a bare COPY of `count` event rows (rolled back)."""
    import psycopg

    from journeys.models import Enrollment

    enrollment_ids = list(Enrollment.objects.filter(journey=journey).values_list("pk", flat=True))
    rnd = random.Random(16)
    step_ids = [s.pk for s in steps.values()]
    now = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime())
    rows = [(rnd.choice(enrollment_ids), rnd.choice(step_ids), rnd.choice(TYPES), now, now)
            for _ in range(count)]
    with psycopg.connect(database_url) as conn:
        started = time.perf_counter()
        with conn.cursor() as cursor:
            copy_rows(cursor, "journeys_engagementevent",
                      ["enrollment_id", "step_id", "event_type", "occurred_at", "recorded_at"], rows)
        elapsed = time.perf_counter() - started
        conn.rollback()
    return count / elapsed


def load_history(database_url: str, journey, steps, count: int) -> None:
    """`count` events of 100,000 recipients over 120 days, COPY-ed (with enrollments)."""
    import psycopg

    rnd = random.Random(17)
    step_list = [s.pk for s in steps.values()]
    now = time.time()
    recipients = 100_000
    with psycopg.connect(database_url) as conn, conn.cursor() as cursor:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(now))
        copy_rows(cursor, "journeys_enrollment",
                  ["journey_id", "recipient_hash", "current_step_id", "paused",
                   "seen_module_ids", "enrolled_at", "updated_at"],
                  ((journey.pk, f"{n:064x}", step_list[0], n % 17 == 0, "[]", stamp, stamp)
                   for n in range(1, recipients + 1)))
        cursor.execute("SELECT recipient_hash, id FROM journeys_enrollment WHERE journey_id = %s",
                       [journey.pk])
        ids = dict(cursor.fetchall())
        per = count // recipients

        def rows():
            for n in range(1, recipients + 1):
                enrollment = ids[f"{n:064x}"]
                at = now - rnd.uniform(5, 120) * 86400
                position = 0
                for _ in range(per):
                    if rnd.random() < 0.35 and position < len(step_list) - 1:
                        position += 1
                        at += rnd.uniform(0.5, 6) * 86400
                    at += rnd.uniform(0, 2) * 3600
                    when = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(min(at, now)))
                    yield (enrollment, step_list[position], rnd.choice(TYPES), when, stamp)

        copy_rows(cursor, "journeys_engagementevent",
                  ["enrollment_id", "step_id", "event_type", "occurred_at", "recorded_at"], rows())
        conn.commit()
        cursor.execute("ANALYZE journeys_engagementevent")


def metrics_once(journey) -> float:
    from analytics import metrics

    started = time.perf_counter()
    metrics.journey_analytics(journey)
    return time.perf_counter() - started


def page_figures(journey) -> dict[str, float]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    user = get_user_model().objects.create_superuser("bench-analyst", "", secrets.token_urlsafe(16))
    client = Client()
    client.force_login(user)
    url = f"/journeys/{journey.slug}/analytics/"
    started = time.perf_counter()
    first = client.get(url)
    cold = time.perf_counter() - started
    assert first.status_code == 200, first.status_code
    warm = []
    for _ in range(30):
        started = time.perf_counter()
        assert client.get(url).status_code == 200
        warm.append(time.perf_counter() - started)
    floor = []
    for _ in range(30):
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SELECT step_id, SUM(events), SUM(opened), SUM(clicked), "
                           "SUM(ignored), MAX(recipients) FROM analytics_dailyrollup "
                           "WHERE journey_id = %s AND module_version_id = 0 GROUP BY step_id",
                           [journey.pk])
            cursor.fetchall()
        floor.append(time.perf_counter() - started)
    return {"cold": cold, "warm_p95": p95(warm), "warm_median": statistics.median(warm),
            "floor_p95": p95(floor)}


def profile_batches(key: str, count: int, top: int = 30, out: str = "") -> None:
    """`count` batches through the endpoint in-process; the last one profiled."""
    import cProfile
    import io
    import pstats

    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Token {key}")
    rnd = random.Random(15)
    for n in range(count):
        body = batch_body(rnd)
        last = n == count - 1
        profiler = cProfile.Profile() if last else None
        reset_queries()
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            response = client.post("/api/v1/events/", body, content_type="application/json")
            if profiler:
                profiler.disable()
            elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.content[:500]
        print(f"analytics_profile_batch_{n}: {elapsed * 1000:.0f} ms ({len(queries)} queries; "
              f"load {os.getloadavg()[0]:.2f})")
    for query in sorted(queries.captured_queries, key=lambda q: -float(q["time"]))[:8]:
        print(f"  {float(query['time']) * 1000:7.1f} ms  {query['sql'][:140]}")
    if out:
        profiler.dump_stats(out)
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(top)
        print(out.getvalue())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=os.environ.get(
        "BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--batches", type=int, default=48)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="profile the last of N in-process batches instead")
    parser.add_argument("--profile-out", default="", help="also write the pstats file here")
    args = parser.parse_args()
    if not answers("127.0.0.1", 5432):
        print("analytics: skipped (PostgreSQL does not answer on 127.0.0.1:5432)")
        return 0
    database_url = create_database(args.server, DB)
    server = None
    try:
        with tempfile.TemporaryDirectory(prefix="tessera-bench-analytics-") as folder:
            tmp = Path(folder)
            os.environ["BENCH_TMP"] = folder
            key, journey, steps = setup(database_url, tmp)
            if args.profile:
                profile_batches(key, args.profile, out=args.profile_out)
                return 0
            from django.db import connections

            connections.close_all()
            port = socket.socket()
            port.bind(("127.0.0.1", 0))
            number = port.getsockname()[1]
            port.close()
            server = start_gunicorn(database_url, number, tmp)
            print(f"analytics_load_average_before: {os.getloadavg()[0]:.2f}")
            wall, events, latencies = ingest(number, key, args.batches, args.concurrency)
            print(f"analytics_ingest_api_c{args.concurrency}: {events / wall:.0f} events/s "
                  f"({args.batches} batches of 1,000; batch p95 {p95(latencies) * 1000:.0f} ms)")
            floor = copy_floor(database_url, journey, steps, events)
            print(f"analytics_ingest_copy_floor: {floor:.0f} events/s")
            print(f"analytics_ingest_ratio_to_floor: {events / wall / floor:.3f}")
            server.terminate()
            server.wait(timeout=30)
            server = None

            load_history(database_url, journey, steps, args.events)
            from analytics import rollups
            from journeys.models import EngagementEvent

            total = EngagementEvent.objects.count()
            started = time.perf_counter()
            rollups.rebuild()
            print(f"analytics_rollup_rebuild: {time.perf_counter() - started:.1f} s "
                  f"({total} events)")
            from analytics import queries

            started = time.perf_counter()
            computed = metrics_once(journey)
            print(f"analytics_measures_compute: {computed * 1000:.0f} ms (funnel, velocity, "
                  f"coherence, ... from the rollup tables, {total} events)")
            started = time.perf_counter()
            queries.refresh([journey.pk])
            print(f"analytics_refresh_after_rollup: {(time.perf_counter() - started) * 1000:.0f} ms "
                  f"(what the beat task adds per moved journey)")
            figures = page_figures(journey)
            print(f"analytics_page_first_view: {figures['cold'] * 1000:.0f} ms (after the "
                  f"refresh, {total} events)")
            print(f"analytics_page_p95: {figures['warm_p95'] * 1000:.1f} ms "
                  f"(median {figures['warm_median'] * 1000:.1f} ms)")
            print(f"analytics_rollup_query_floor_p95: {figures['floor_p95'] * 1000:.2f} ms")
            print(f"analytics_load_average_after: {os.getloadavg()[0]:.2f}")
    finally:
        if server is not None:
            server.kill()
        from django.db import connections

        connections.close_all()
        drop_database(args.server, DB)
    return 0


if __name__ == "__main__":
    sys.exit(main())
