"""Per-request cost of the API stack, load-independently: N warm requests through the real
WSGI application (cms.wsgi, the bench server's settings), no HTTP server, one thread.

    .venv/bin/python bench/_profile_api.py --database postgres://postgres@127.0.0.1:5432/h1 \
        [--endpoint trivial|assemble|modules] [--n 300] [--profile] [--cpu]

--profile prints cProfile's top functions (--dump FILE also saves them for pstats or
snakeviz); --cpu prints CPU time per request (process
time, not wall: other processes on the machine do not inflate it much), and on a local
PostgreSQL the CPU its backend spent per request (read from /proc). For instruction
counts run it under valgrind twice and subtract:

    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p python bench/_profile_api.py \
        --endpoint assemble --n 0     # and --n 200: (Ir(200) - Ir(0)) / 200 per request

The database (created when missing) keeps the bench world between runs; not a benchmark
(run_all skips names starting with `_`).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RECIPIENT = {"id": "bench-1", "title": "Dr.", "first_name": "Alex", "last_name": "Morgan",
             "specialty": "Cardiology", "consent": {"email": True},
             "unsubscribe_url": "https://prefs.example.test/unsubscribe/bench-1"}
BODY = json.dumps({"channel": "email", "jurisdiction": "US", "locale": "en",
                   "recipient": RECIPIENT}).encode()
PATHS = {"trivial": "/bench/trivial/",
         "assemble": "/api/v1/journeys/bench-journey/steps/welcome/assemble/",
         "modules": "/api/v1/modules/"}


def environment(database: str, redis: str) -> None:
    os.environ.update(DATABASE_URL=database, DJANGO_DEBUG="0", TESSERA_LOG_LEVEL="WARNING",
                      TESSERA_LOG_FORMAT="json", DATABASE_CONN_MAX_AGE="600",
                      DJANGO_SETTINGS_MODULE="bench.trivial_settings",
                      TESSERA_HTTPS="false", TESSERA_MEDIA_ROOT="/tmp/tessera-profile-media")
    os.environ.setdefault("DJANGO_SECRET_KEY", "profile-" + "x" * 50)
    os.environ.pop("CELERY_BROKER_URL", None)
    if redis:
        os.environ["REDIS_URL"] = redis
    else:
        os.environ.pop("REDIS_URL", None)


def ensure_database(url: str) -> None:
    import psycopg

    server, name = url.rsplit("/", 1)
    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def world() -> str:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from journeys.models import Journey
    from tests.api.builders import build_world, make_version, token

    if not Journey.objects.filter(slug="bench-journey").exists():
        data = build_world(slug="bench-journey", step_key="welcome")
        for n in range(60):
            make_version(data["brand"], f"BEN-BODY-{n:03d}", tags={"stages": ["awareness"]})
    _, key = token(name=f"profile-{secrets.token_hex(4)}", rate_limit="1000000/s")
    return key


def make_request(app, endpoint: str, key: str):
    body = BODY if endpoint == "assemble" else b""
    environ = {
        "REQUEST_METHOD": "POST" if body else "GET", "PATH_INFO": PATHS[endpoint],
        "SCRIPT_NAME": "", "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000", "HTTP_AUTHORIZATION": f"Token {key}",
        "HTTP_USER_AGENT": "wrk", "HTTP_ACCEPT": "*/*",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if body:
        environ["CONTENT_TYPE"] = "application/json"
        environ["CONTENT_LENGTH"] = str(len(body))
    status = []

    def start_response(line, headers, exc_info=None):
        status.append((line, headers))

    result = app(environ, start_response)
    try:
        data = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return status[0][0], dict(status[0][1]), data


def backend_cpu(connection) -> float | None:
    """CPU seconds this connection's PostgreSQL backend has used (from /proc: the server
    must be on this machine), None elsewhere. Counts the server's share of each request
    whatever else the machine runs."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class gc_pauses:
    """Times every collection of the garbage collector from now on, by generation."""

    def __init__(self, mode: str):
        import gc

        if mode == "freeze":
            gc.freeze()
        self.times: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self.started = 0.0
        gc.callbacks.append(self.callback)

    def callback(self, phase, info):
        if phase == "start":
            self.started = time.perf_counter()
        else:
            self.times[info["generation"]].append(time.perf_counter() - self.started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/h1")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--endpoint", choices=sorted(PATHS), default="assemble")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--warm", type=int, default=30)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--dump", metavar="FILE", help="with --profile: save the cProfile stats")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--cpu", action="store_true")
    parser.add_argument("--show", action="store_true", help="print one response's headers")
    parser.add_argument("--gc", choices=["default", "freeze"], default="",
                        help="report the garbage collector's pauses during the N requests "
                             "(freeze: gc.freeze() after warming, as cms/gunicorn.conf.py)")
    args = parser.parse_args()
    environment(args.database, args.redis)
    ensure_database(args.database)
    import django

    django.setup()
    key = world()
    from django.db import connections

    connections.close_all()
    from cms.wsgi import application

    for _ in range(args.warm):
        line, headers, data = make_request(application, args.endpoint, key)
        assert line.startswith(("200", "304")), (line, data[:500])
    if args.show:
        print(line)
        for name, value in headers.items():
            print(f"  {name}: {value}")
    pauses = gc_pauses(args.gc) if args.gc else None
    profiler = cProfile.Profile() if args.profile else None
    from django.db import connection

    server0 = backend_cpu(connection)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    for _ in range(args.n):
        make_request(application, args.endpoint, key)
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    server = backend_cpu(connection) - server0 if server0 is not None else None
    if args.cpu and args.n:
        print(f"{args.endpoint}_cpu_per_request: {cpu / args.n * 1000:.3f} ms "
              f"(wall {wall / args.n * 1000:.3f} ms, load {os.getloadavg()[0]:.2f})")
        if server is not None:
            print(f"{args.endpoint}_database_cpu_per_request: {server / args.n * 1000:.3f} ms "
                  "(this connection's PostgreSQL backend, utime + stime)")
    if pauses is not None:
        import gc

        gc.callbacks.remove(pauses.callback)
        for generation in (0, 1, 2):
            times = pauses.times[generation]
            print(f"gc_{args.gc}_gen{generation}: {len(times)} collections, "
                  f"{sum(times) * 1000:.1f} ms in all, longest {max(times, default=0) * 1000:.2f} ms")
    if profiler:
        stats = pstats.Stats(profiler)
        if args.dump:
            stats.dump_stats(args.dump)
        stats.sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
