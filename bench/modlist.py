"""Module list in process: a channel token's first (uncached) page, prepared SQL against the
ORM path, beside the cached page and the 304 measured in the same run.

    .venv/bin/python bench/modlist.py [--requests 300] [--postgres SERVER_URL]

Builds the same database as bench/api.py (SQLite in a temporary folder, or with --postgres
a fresh database on that server, dropped afterwards: the compliant email step and 60
approved modules), then calls `GET /api/v1/modules/` through the Django test client (the
whole middleware stack, token authentication, throttle, JSON rendering; no HTTP, one
thread) as a channel token, alternating the two ways of building a page not yet cached
(`content.api.views.PAGES` emptied before each request): prepared SQL
(`content.api.prepared`, what channel tokens get) and the ORM path (what people get, and
what tokens got before). The token's scope and the validity boundaries stay cached, as in
a running server between catalog changes.

Prints `name: value unit` lines: p50 wall time and this process's CPU time per request
for each, their ratio, the statements run and ORM queries compiled per request, and the
cached page and 304 as the floor. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import api  # noqa: E402  (bench/api.py: the same data set, the same database helpers)

URL = "/api/v1/modules/"
REDIS_URL = "redis://127.0.0.1:6379/2"


def timed(fn, n: int) -> dict:
    walls, cpus = [], []
    for _ in range(n):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"wall": statistics.median(walls), "cpu": statistics.mean(cpus)}


def counted(fn) -> tuple[int, int]:
    """(statements run, ORM queries compiled) by one call of `fn`."""
    from django.db import connection
    from django.db.models.sql.compiler import SQLCompiler
    from django.test.utils import CaptureQueriesContext

    compiled = [0]
    original = SQLCompiler.as_sql

    def as_sql(self, *args, **kwargs):
        compiled[0] += 1
        return original(self, *args, **kwargs)

    SQLCompiler.as_sql = as_sql
    try:
        with CaptureQueriesContext(connection) as queries:
            fn()
    finally:
        SQLCompiler.as_sql = original
    return len(queries.captured_queries), compiled[0]


def bench(key: str, n: int) -> None:
    from django.test import Client

    from content.api import views

    client = Client(HTTP_AUTHORIZATION=f"Token {key}")

    def first_page(prepared: bool):
        def call():
            views.ModuleListView.use_prepared_sql = prepared
            views.PAGES.clear()
            response = client.get(URL)
            assert response.status_code == 200, response.content[:300]
            assert len(response.json()["results"]) == 50
        return call

    prepared, orm = first_page(True), first_page(False)
    for _ in range(20):  # warm both
        prepared()
        orm()
    runs = {"prepared": [], "orm": []}
    for _ in range(n // 20):  # alternate in blocks: both see the same machine
        runs["prepared"].append(timed(prepared, 20))
        runs["orm"].append(timed(orm, 20))
    figures = {way: {"wall": statistics.median(r["wall"] for r in rs),
                     "cpu": statistics.mean(r["cpu"] for r in rs)} for way, rs in runs.items()}
    counts = {"prepared": counted(prepared), "orm": counted(orm)}
    views.ModuleListView.use_prepared_sql = True
    etag = client.get(URL)["ETag"]
    cached = timed(lambda: client.get(URL), n)
    not_modified = timed(lambda: client.get(URL, HTTP_IF_NONE_MATCH=etag), n)
    for way in ("prepared", "orm"):
        print(f"modules_first_page_{way}_p50: {figures[way]['wall'] * 1000:.2f} ms")
        print(f"modules_first_page_{way}_cpu: {figures[way]['cpu'] * 1000:.2f} ms per request")
        print(f"modules_first_page_{way}_statements: {counts[way][0]} per request")
        print(f"modules_first_page_{way}_orm_compilations: {counts[way][1]} per request")
    print("modules_first_page_prepared_to_orm_wall: "
          f"{figures['prepared']['wall'] / figures['orm']['wall']:.2f}")
    print("modules_first_page_prepared_to_orm_cpu: "
          f"{figures['prepared']['cpu'] / figures['orm']['cpu']:.2f}")
    print(f"modules_cached_page_p50: {cached['wall'] * 1000:.2f} ms (floor)")
    print(f"modules_304_p50: {not_modified['wall'] * 1000:.2f} ms")
    print("modules_first_page_prepared_to_cached_wall: "
          f"{figures['prepared']['wall'] / cached['wall']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--postgres", default="", metavar="SERVER_URL",
                        help="run on PostgreSQL: a fresh database on this server, dropped")
    args = parser.parse_args()
    print(f"load_average_before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="tessera-bench-modlist-") as folder:
        tmp = Path(folder)
        database_url = (api.create_postgres_database(args.postgres) if args.postgres
                        else f"sqlite:///{tmp / 'bench.sqlite3'}")
        # The token throttle counts in the shared cache: Redis when it answers (as served
        # in the services profile), else a file cache in the temporary folder.
        cache = api.redis_url(os.environ.get("MODLIST_REDIS_URL", REDIS_URL), True)
        if cache:
            os.environ["REDIS_URL"] = cache
        else:
            os.environ["TESSERA_CACHE_DIR"] = str(tmp / "cache")
        try:
            key = api.setup(database_url, tmp)
            print(f"shared_cache: {'redis' if cache else 'files'}")
            print(f"database: {database_url.split(':', 1)[0]}")
            bench(key, args.requests)
        finally:
            if args.postgres:
                from django.db import connections

                connections.close_all()
                api.drop_postgres_database(args.postgres, database_url)
    print(f"load_average_after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
