"""API benchmark: single assembly and module list over HTTP under gunicorn.

    .venv/bin/python bench/api.py [--seconds 10] [--concurrency 16] [--postgres SERVER_URL]
                                  [--servers 2x8,2x1] [--assemble-only]

Builds its own database (SQLite in a temporary folder, or with --postgres a fresh
database `tessera_bench_api_<pid>` on that server, dropped afterwards) with a compliant four-module email step and 60 approved
modules, starts `gunicorn -c cms/gunicorn.conf.py cms.wsgi` (2 sync workers, or
each --servers configuration) on 127.0.0.1,
and drives for a bounded time, with `wrk` (Debian package) or, without it, a threaded Python
load generator:

- `POST /api/v1/journeys/{slug}/steps/{key}/assemble/` (each one re-checked under lock and
  written to the delivery log), and
- `GET /api/v1/modules/` (a page of 50 with tags).

- `GET /bench/trivial/`: a DRF view returning a constant with the same token auth and
  throttle (bench/trivial_urls.py, served only by this benchmark's server).

Prints `name: value unit` lines: requests/s, p50 and p99 latency, errors, each endpoint's
rate as a ratio of the trivial endpoint's in the same run, a module-list poll answered
304 (If-None-Match), and the in-process floor (the same assembly and the same module page
called directly, no HTTP, one thread). Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _gunicorn import start as start_server
from _postgres import create_database, drop_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RECIPIENT = {"id": "bench-1", "title": "Dr.", "first_name": "Alex", "last_name": "Morgan",
             "specialty": "Cardiology", "consent": {"email": True},
             "unsubscribe_url": "https://prefs.example.test/unsubscribe/bench-1"}
BODY = {"channel": "email", "jurisdiction": "US", "locale": "en", "recipient": RECIPIENT}


def setup(database_url: str, tmp: Path) -> str:
    os.environ["DATABASE_URL"] = database_url
    # Run by hand as well as by `make bench`: a throwaway key, plain HTTP to its own server.
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("TESSERA_HTTPS", "false")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cms.settings")
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ["TESSERA_LOG_LEVEL"] = "WARNING"
    os.environ["TESSERA_MEDIA_ROOT"] = str(tmp / "media")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from tests.api.builders import build_world, make_version, token

    world = build_world(slug="bench-journey", step_key="welcome")
    for n in range(60):
        make_version(world["brand"], f"BEN-BODY-{n:03d}", tags={"stages": ["awareness"]})
    _, key = token(name="bench", rate_limit="1000000/s")
    return key


def floors(key: str, n: int = 300) -> dict[str, float]:
    """In-process, one thread: the same work without HTTP, gunicorn or the load tool."""
    from django.db import transaction

    from content.api import selectors
    from delivery.serving import Caller, serve_one
    from delivery.tokens import client_for_key
    from journeys.models import Step

    client, _ = client_for_key(key)
    step = Step.objects.get(journey__slug="bench-journey", key="welcome")
    caller = Caller.of(client)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        with transaction.atomic():
            result = serve_one(step, RECIPIENT, channel="email", jurisdiction="US",
                               locale="en", caller=caller)
        times.append(time.perf_counter() - start)
        assert result.ok, result.errors
    out = {"assemble_p50_ms": statistics.median(times) * 1000,
           "assemble_rate": 1 / statistics.mean(times)}
    from django.db.models import Exists, OuterRef

    from content.models import ContentModule, ModuleVersion

    times = []
    for _ in range(n):
        start = time.perf_counter()
        versions = ModuleVersion.objects.restrict(client, "view")
        modules = list(ContentModule.objects.filter(
            Exists(versions.filter(module_id=OuterRef("pk")))).order_by("code")
            .values(*selectors.MODULE_FIELDS)[:50])
        selectors.module_dicts(modules, versions)
        times.append(time.perf_counter() - start)
    out["modules_p50_ms"] = statistics.median(times) * 1000
    out["modules_rate"] = 1 / statistics.mean(times)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(database_url: str, port: int, tmp: Path, *, workers: int | None = None,
                   threads: int | None = None, redis_url: str = "") -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=database_url, DJANGO_DEBUG="0",
               PORT=str(port), HOST="127.0.0.1", TESSERA_LOG_LEVEL="WARNING",
               DATABASE_CONN_MAX_AGE="600", TESSERA_MEDIA_ROOT=str(tmp / "media"),
               GUNICORN_MAX_REQUESTS="0", DJANGO_SETTINGS_MODULE="bench.trivial_settings")
    env.pop("CELERY_BROKER_URL", None)  # single assembly never queues work
    env.pop("REDIS_URL", None)
    if redis_url:  # the services profile: the throttle counts in Redis
        env["REDIS_URL"] = redis_url
    if workers:
        env["WEB_CONCURRENCY"] = str(workers)
    if threads:
        env["GUNICORN_THREADS"] = str(threads)
    return start_server(env, port, tmp)


WRK_THREADS = 2  # --wrk-threads


def run_wrk(url: str, key: str, *, body: dict | None, seconds: int, concurrency: int,
            tmp: Path, headers: dict | None = None) -> dict:
    script = tmp / "request.lua"
    method = "POST" if body is not None else "GET"
    script.write_text(
        f'wrk.method = "{method}"\n'
        f'wrk.headers["Authorization"] = "Token {key}"\n'
        + "".join(f'wrk.headers["{name}"] = [[{value}]]\n'
                  for name, value in (headers or {}).items())
        + ('wrk.headers["Content-Type"] = "application/json"\n'
           f"wrk.body = [[{json.dumps(body)}]]\n" if body is not None else "")
    )
    out = subprocess.run(
        ["wrk", f"-t{WRK_THREADS}", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, timeout=seconds + 60).stdout
    figures = {"rate": 0.0, "p50": float("nan"), "p99": float("nan"), "errors": 0,
               "requests": 0}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            figures["rate"] = float(parts[1])
        elif "requests in" in line:
            figures["requests"] = int(parts[0])
        elif parts[:1] in (["50%"], ["99%"]):
            figures["p" + parts[0][:-1]] = _ms(parts[1])
        elif line.strip().startswith("Non-2xx") and not (headers or {}).get("If-None-Match"):
            figures["errors"] += int(parts[-1])  # (a 304 counts as non-2xx in wrk)
        elif line.strip().startswith("Socket errors"):
            figures["errors"] += sum(int(p.strip(",")) for p in parts[3::2])
    return figures


def _ms(text: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


def run_python(url: str, key: str, *, body: dict | None, seconds: int, concurrency: int,
               tmp: Path, headers: dict | None = None) -> dict:
    """Fallback load generator: `concurrency` threads with keep-alive connections."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    payload = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Token {key}", **(headers or {})}
    if payload is not None:
        headers["Content-Type"] = "application/json"
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker():
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        mine = []
        while time.monotonic() < stop:
            start = time.perf_counter()
            try:
                conn.request("POST" if payload else "GET", parts.path, body=payload,
                             headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status < 300 or response.status == 304
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
                ok = False
            mine.append(time.perf_counter() - start)
            if not ok:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    latencies.sort()
    return {"rate": len(latencies) / elapsed, "requests": len(latencies),
            "p50": latencies[len(latencies) // 2] * 1000,
            "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000, "errors": errors[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--postgres", default="", metavar="SERVER_URL",
                        help="run on PostgreSQL: a fresh database is created on this server "
                             "(e.g. postgres://postgres@127.0.0.1:5432/postgres) and dropped")
    parser.add_argument("--servers", default=parser_default_servers(), metavar="WxT,...",
                        help="gunicorn configurations to measure, workers x threads "
                             "(1 thread = sync worker), e.g. 2x1,2x4,3x2")
    parser.add_argument("--redis", default="auto", metavar="URL|auto|none",
                        help="shared cache of the served processes (auto: Redis database 12 "
                             "with --postgres when Redis answers, else the file cache)")
    parser.add_argument("--assemble-only", action="store_true",
                        help="measure only the trivial endpoint and single assembly")
    parser.add_argument("--wrk-threads", type=int, default=2,
                        help="wrk's threads (-t); on 2 cores -t1 leaves more CPU to the server")
    parser.add_argument("--python-load", action="store_true",
                        help="use the Python load generator even if wrk is installed")
    args = parser.parse_args()
    global WRK_THREADS
    WRK_THREADS = args.wrk_threads
    with tempfile.TemporaryDirectory(prefix="tessera-bench-api-") as folder:
        tmp = Path(folder)
        database_url = (create_database(args.postgres, BENCH_DB) if args.postgres
                        else f"sqlite:///{tmp / 'bench.sqlite3'}")
        try:
            bench(args, tmp, database_url)
        finally:
            if args.postgres:
                from django.db import connections

                connections.close_all()
                drop_database(args.postgres, BENCH_DB)


BENCH_DB = f"tessera_bench_api_{os.getpid()}"


def delivered() -> int:
    """Deliveries logged so far: every 200 from the assemble endpoint is one (a cross-check
    of the load tool's count; a refusal logs nothing)."""
    from django.db import connections

    from delivery.models import Delivery

    count = Delivery.objects.count()
    connections.close_all()
    return count


def redis_url(choice: str, postgres: bool) -> str:
    """Where the served processes' shared cache (the token throttle) lives: Redis in the
    services profile (--postgres), database 12 so that no test run's keys are touched."""
    if choice == "none" or (choice == "auto" and not postgres):
        return ""
    url = "redis://127.0.0.1:6379/12" if choice == "auto" else choice
    try:
        import redis

        redis.Redis.from_url(url, socket_timeout=1).ping()
    except Exception:  # noqa: BLE001 - no Redis here: the file cache stands in
        return ""
    return url


def configurations(text: str) -> list[tuple[int, int]]:
    """"2x1,2x4" -> [(2, 1), (2, 4)]: gunicorn workers x threads (1 thread = sync)."""
    return [tuple(int(n) for n in part.split("x")) for part in text.split(",") if part]


def bench(args, tmp: Path, database_url: str) -> None:
    key = setup(database_url, tmp)
    floor = floors(key)
    from django.db import connections

    connections.close_all()
    tool = "wrk" if shutil.which("wrk") and not args.python_load else "python-threads"
    load = run_wrk if tool == "wrk" else run_python
    cache = redis_url(args.redis, bool(args.postgres))
    print(f"machine: {platform.machine()} cpus {os.cpu_count()} python "
          f"{platform.python_version()}")
    print(f"database: {database_url.split(':', 1)[0]}")
    print(f"shared_cache: {'redis' if cache else 'files'}")
    print(f"load_tool: {tool} (concurrency {args.concurrency}, {args.seconds} s each"
          + (f", {WRK_THREADS} threads)" if tool == "wrk" else ")"))
    print(f"assemble_inprocess_floor_rate: {floor['assemble_rate']:.0f} assemblies/s (1 thread)")
    print(f"assemble_inprocess_floor_p50: {floor['assemble_p50_ms']:.2f} ms")
    print(f"modules_inprocess_floor_rate: {floor['modules_rate']:.0f} pages/s (1 thread)")
    print(f"modules_inprocess_floor_p50: {floor['modules_p50_ms']:.2f} ms")
    for workers, threads in configurations(args.servers):
        kind = "sync" if threads == 1 else "gthread"
        prefix = "" if args.servers == parser_default_servers() else f"{workers}x{threads}_"
        port = free_port()
        server = start_gunicorn(database_url, port, tmp, workers=workers, threads=threads,
                                redis_url=cache)
        try:
            base = f"http://127.0.0.1:{port}"
            print(f"{prefix}web: gunicorn {workers} {kind} workers x {threads} threads "
                  "on 127.0.0.1")
            print(f"{prefix}load_average_before: {loadavg()}")
            trivial = load(f"{base}/bench/trivial/", key, body=None, seconds=args.seconds,
                           concurrency=args.concurrency, tmp=tmp)
            before = delivered()
            assemble = load(f"{base}/api/v1/journeys/bench-journey/steps/welcome/assemble/",
                            key, body=BODY, seconds=args.seconds,
                            concurrency=args.concurrency, tmp=tmp)
            assemble["logged"] = delivered() - before
            runs = [("trivial", trivial), ("assemble", assemble)]
            if not args.assemble_only:
                modules = load(f"{base}/api/v1/modules/", key, body=None,
                               seconds=args.seconds, concurrency=args.concurrency, tmp=tmp)
                etag = module_list_etag(base, key)
                polls = load(f"{base}/api/v1/modules/", key, body=None, seconds=args.seconds,
                             concurrency=args.concurrency, tmp=tmp,
                             headers={"If-None-Match": etag})
                runs += [("modules", modules), ("modules_304", polls)]
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        for name, figures in runs:
            print(f"{prefix}{name}_http_rate: {figures['rate']:.0f} requests/s")
            print(f"{prefix}{name}_http_p50: {figures['p50']:.2f} ms")
            print(f"{prefix}{name}_http_p99: {figures['p99']:.2f} ms")
            print(f"{prefix}{name}_http_errors: {figures['errors']} responses")
            if name != "trivial":
                ratio = figures["rate"] / trivial["rate"] if trivial["rate"] else float("nan")
                print(f"{prefix}{name}_to_trivial_ratio: {ratio:.2f}")
        print(f"{prefix}assemble_http_requests: {assemble['requests']} requests")
        print(f"{prefix}assemble_deliveries_logged: {assemble['logged']} deliveries")
        print(f"{prefix}load_average: {loadavg()}")


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def parser_default_servers() -> str:
    return "2x1"  # cms/gunicorn.conf.py's defaults: 2 sync workers


def module_list_etag(base: str, key: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", "/api/v1/modules/", headers={"Authorization": f"Token {key}"})
    response = conn.getresponse()
    response.read()
    return response.getheader("ETag") or ""


if __name__ == "__main__":
    main()
