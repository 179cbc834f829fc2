"""The catalog epoch: reading it per request against having it pushed (LISTEN/NOTIFY, Redis).

    .venv/bin/python bench/epoch_push.py [--reads 5000] [--bumps 200]

Needs the local PostgreSQL (and Redis for the pub/sub figures; skipped without it).
Creates a scratch database `tessera_epoch_<pid>` holding only the epoch table (the same
DDL as content migration 0009), dropped afterwards, and measures in one process:

- the per-request read as served today: `content.catalog_epoch.current()` through Django's
  connection (wall and this process's CPU time), beside a `SELECT 1` round trip on the
  same connection (the floor of any read);
- a push prototype (not production code): a listener thread with its own connection
  (`LISTEN tessera_epoch`; a bump adds `pg_notify` in its transaction, delivered at
  commit) keeping the epoch in a process variable — the per-request cost becomes a
  variable read; what is measured is how long after the bump's COMMIT returns the
  listener holds the new value (the window in which a request of that process still sees
  the old epoch), and what a listener that reconnects misses;
- the same with Redis pub/sub (PUBLISH after the commit).

Prints `name: value unit` lines. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from soak import PG_ADMIN, create_database, drop_database  # noqa: E402

CHANNEL = f"tessera_epoch_{os.getpid()}"
REDIS_URL = os.environ.get("EPOCH_REDIS_URL", "redis://127.0.0.1:6379/2")


def setup(database_url: str) -> None:
    os.environ.update({"DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "cms.settings",
                       "DJANGO_DEBUG": "0", "TESSERA_LOG_LEVEL": "WARNING"})
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    import django

    django.setup()
    from django.db import connection

    from content import catalog_epoch

    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {catalog_epoch.TABLE} "
                       "(id integer PRIMARY KEY, value bigint NOT NULL)")
    catalog_epoch.bump()


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def time_reads(fn, n: int) -> tuple[list[float], float]:
    for _ in range(50):
        fn()
    walls = []
    cpu = time.process_time()
    for _ in range(n):
        start = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - start)
    return walls, (time.process_time() - cpu) / n


class PgListener(threading.Thread):
    """The push prototype: LISTEN on its own connection, keep the last value seen. On a
    lost connection it reconnects and must READ the epoch again (what was notified while
    it was away is gone)."""

    def __init__(self, dsn: str):
        super().__init__(daemon=True)
        self.dsn = dsn
        self.value: int | None = None
        self.seen = threading.Condition()
        self.backend_pid: int | None = None
        self.stopping = False
        self.reconnects = 0

    def run(self):
        import psycopg

        while not self.stopping:
            try:
                with psycopg.connect(self.dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.backend_pid = conn.info.backend_pid
                    for note in conn.notifies():
                        with self.seen:
                            self.value = int(note.payload)
                            self.seen.notify_all()
                        if self.stopping:
                            return
            except psycopg.OperationalError:
                self.reconnects += 1
                time.sleep(0.05)

    def wait_for(self, value: int, timeout: float = 5.0) -> bool:
        with self.seen:
            return self.seen.wait_for(lambda: self.value == value, timeout)


def bump_and_notify() -> int:
    """A catalog change's bump with the notification in the same transaction."""
    from django.db import connection, transaction

    from content import catalog_epoch

    value = secrets.randbits(62) + 1
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(catalog_epoch._BUMP, [value])
        cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, str(value)])
    return value


def pg_push(dsn: str, bumps: int) -> dict:
    listener = PgListener(dsn)
    listener.start()
    deadline = time.monotonic() + 10
    while listener.backend_pid is None and time.monotonic() < deadline:
        time.sleep(0.01)
    latencies, lost = [], 0
    for _ in range(bumps):
        value = bump_and_notify()
        committed = time.perf_counter()
        if listener.wait_for(value):
            latencies.append(time.perf_counter() - committed)
        else:
            lost += 1
    # A listener whose connection is cut: a bump made before it is back is never seen.
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [listener.backend_pid])
    value = bump_and_notify()
    missed = not listener.wait_for(value, timeout=2.0)
    listener.stopping = True
    bump_and_notify()  # wakes the listener so that it returns
    return {"latencies": latencies, "lost": lost, "missed_across_reconnect": missed,
            "reconnects": listener.reconnects}


def redis_push(bumps: int) -> dict | None:
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
        client.ping()
    except Exception:  # noqa: BLE001 - no Redis: no figures
        return None
    seen = {"value": None}
    cond = threading.Condition()
    pubsub = client.pubsub()
    pubsub.subscribe(CHANNEL)

    def listen():
        for message in pubsub.listen():
            if message["type"] == "message":
                with cond:
                    seen["value"] = int(message["data"])
                    cond.notify_all()
                if seen["value"] == 0:
                    return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    time.sleep(0.2)
    from django.db import connection, transaction

    from content import catalog_epoch

    latencies = []
    for _ in range(bumps):
        value = secrets.randbits(62) + 1
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(catalog_epoch._BUMP, [value])
        committed = time.perf_counter()
        client.publish(CHANNEL, str(value))  # after the commit (on_commit)
        with cond:
            if cond.wait_for(lambda v=value: seen["value"] == v, 5.0):
                latencies.append(time.perf_counter() - committed)
    client.publish(CHANNEL, "0")
    thread.join(timeout=5)
    pubsub.close()
    return {"latencies": latencies}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=5000)
    parser.add_argument("--bumps", type=int, default=200)
    args = parser.parse_args()
    name = f"tessera_epoch_{os.getpid()}"
    database_url = create_database(name)
    dsn = (f"host={PG_ADMIN['host']} port={PG_ADMIN['port']} user={PG_ADMIN['user']} "
           f"dbname={name}")
    print(f"load_average_before: {os.getloadavg()[0]:.2f}")
    try:
        setup(database_url)
        from django.db import connection

        from content import catalog_epoch

        def select_one():
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()

        reads, read_cpu = time_reads(catalog_epoch.current, args.reads)
        floor, floor_cpu = time_reads(select_one, args.reads)
        pushed = {"value": catalog_epoch.current()}
        variable, variable_cpu = time_reads(lambda: pushed["value"], args.reads)
        print(f"epoch_read_p50: {statistics.median(reads) * 1e6:.1f} us (wall)")
        print(f"epoch_read_p99: {percentile(reads, 0.99) * 1e6:.1f} us (wall)")
        print(f"epoch_read_cpu: {read_cpu * 1e6:.1f} us (this process, per read)")
        print(f"select_1_floor_p50: {statistics.median(floor) * 1e6:.1f} us (wall)")
        print(f"select_1_floor_cpu: {floor_cpu * 1e6:.1f} us (this process, per read)")
        print(f"epoch_read_to_floor: {statistics.median(reads) / statistics.median(floor):.2f}")
        print(f"pushed_value_read_p50: {statistics.median(variable) * 1e6:.2f} us (wall)")

        pg = pg_push(dsn, args.bumps)
        lat = pg["latencies"]
        print(f"listen_notify_latency_p50: {statistics.median(lat) * 1e6:.0f} us "
              "(commit returned -> listener holds the new epoch)")
        print(f"listen_notify_latency_p99: {percentile(lat, 0.99) * 1e6:.0f} us")
        print(f"listen_notify_latency_max: {max(lat) * 1e6:.0f} us")
        print(f"listen_notify_not_seen_in_5s: {pg['lost']} of {args.bumps} bumps")
        print(f"listen_notify_bump_missed_across_reconnect: "
              f"{'yes' if pg['missed_across_reconnect'] else 'no'}")
        redis_figures = redis_push(args.bumps)
        if redis_figures is None:
            print("redis_pubsub: skipped (no Redis at " + REDIS_URL + ")")
        else:
            lat = redis_figures["latencies"]
            print(f"redis_pubsub_latency_p50: {statistics.median(lat) * 1e6:.0f} us "
                  "(commit returned -> subscriber holds the new epoch)")
            print(f"redis_pubsub_latency_p99: {percentile(lat, 0.99) * 1e6:.0f} us")
        print(f"load_average_after: {os.getloadavg()[0]:.2f}")
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
