"""COPY against multi-row INSERT on PostgreSQL, by batch size: where `COPY_MIN_ROWS` lies.

    .venv/bin/python bench/copy_threshold.py [--repeats 25] [--sizes 1,2,3,5,8,12,20,30,50,100,200]

Needs the local PostgreSQL. Creates its own database `tessera_copy_<pid>` (dropped
afterwards), builds the compliant email step of the API tests, assembles one recipient
for a realistic row (manifest, ~HTML), then for each batch size n inserts n rows of each
model the batch path writes with `delivery.serving.insert_rows` — deliveries (ids wanted:
the sequence query + COPY, against INSERT … RETURNING), their delivered versions, job
results with HTML — once by COPY and once by `bulk_create`, alternating, each in its own
transaction, `--repeats` times. Only the insert is timed: the commit, one per chunk
either way, is not (under load its fsync wait would drown the difference).

Prints `name: value unit` lines: per model and size the median wall time of both ways
(µs), COPY ÷ INSERT, the same for this process's CPU time (less sensitive to other load
on the machine; the server's share is in the wall time only), and per model the
crossover — the smallest size from which COPY's median wall time stays below INSERT's.
Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from soak import create_database, drop_database  # noqa: E402

SIZES = "1,2,3,5,8,12,20,30,50,100,200"


def setup(database_url: str, media: Path) -> dict:
    os.environ.update({
        "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "cms.settings",
        "DJANGO_DEBUG": "0", "TESSERA_LOG_LEVEL": "WARNING", "TESSERA_MEDIA_ROOT": str(media),
        "CELERY_TASK_ALWAYS_EAGER": "true",
    })
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.pop("CELERY_BROKER_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from delivery.models import AssemblyJob
    from delivery.serving import Caller, serve_one
    from tests.api.builders import RECIPIENT, build_world

    world = build_world(slug="copy", step_key="welcome")
    from django.db import transaction

    with transaction.atomic():
        result = serve_one(world["step"], RECIPIENT, channel="email", jurisdiction="US",
                           locale="en", caller=Caller(None, None))
    assert result.ok, result.errors
    job = AssemblyJob.objects.create(journey_slug="copy", step_key="welcome", channel="email",
                                     jurisdiction="US", locale="en", total=1, chunk_size=1)
    from delivery.models import Delivery

    return {"result": result, "job": job, "delivery": Delivery.objects.latest("pk"),
            "version_ids": [m["version_id"] for m in result.manifest["modules"]]}


def makers(world: dict) -> dict:
    """Per model: (with_ids, n -> n fresh unsaved rows)."""
    from delivery.models import AssemblyJobResult, DeliveredVersion, Delivery

    result, counter = world["result"], [0]

    def deliveries(n):
        return [Delivery(channel="email", jurisdiction="US", locale="en", journey_slug="copy",
                         step_key="welcome", recipient_pseudonym=secrets.token_hex(16),
                         layout="email", output_sha256=secrets.token_hex(32),
                         manifest=result.manifest) for _ in range(n)]

    def delivered(n):
        ids = world["version_ids"]
        return [DeliveredVersion(delivery=world["delivery"], version_id=ids[i % len(ids)],
                                 channel="email", jurisdiction="US") for i in range(n)]

    def results(n):
        rows = []
        for _ in range(n):
            counter[0] += 1
            rows.append(AssemblyJobResult(job=world["job"], index=counter[0], ok=True,
                                          subject=result.subject, html=result.html,
                                          text=result.text, manifest=result.manifest))
        return rows

    return {"delivery": (Delivery, True, deliveries),
            "delivered_version": (DeliveredVersion, False, delivered),
            "job_result": (AssemblyJobResult, False, results)}


def measure(model, with_ids: bool, make, n: int, repeats: int) -> dict[str, list[float]]:
    from django.db import transaction

    from delivery import serving

    times: dict[str, list[float]] = {"copy": [], "insert": [], "copy_cpu": [], "insert_cpu": []}
    for rep in range(repeats + 2):
        for way in (("copy", "insert") if rep % 2 else ("insert", "copy")):
            objs = make(n)
            serving.COPY_MIN_ROWS = 1 if way == "copy" else 10**9
            with transaction.atomic():  # the commit (the same either way) is not timed
                wall, cpu = time.perf_counter(), time.process_time()
                serving.insert_rows(model, objs, with_ids=with_ids)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if rep >= 2:  # two warm-up rounds
                times[way].append(wall)
                times[way + "_cpu"].append(cpu)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--sizes", default=SIZES)
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    name = f"tessera_copy_{os.getpid()}"
    database_url = create_database(name)
    load_before = os.getloadavg()[0]
    try:
        world = setup(database_url, Path(tempfile.mkdtemp(prefix="tessera-copy-")))
        from delivery import serving

        configured = serving.COPY_MIN_ROWS
        print(f"copy_min_rows_configured: {configured} rows")
        print(f"load_average_before: {load_before:.2f}")
        for label, (model, with_ids, make) in makers(world).items():
            crossover = None
            for n in sizes:
                t = measure(model, with_ids, make, n, args.repeats)
                copy, insert = statistics.median(t["copy"]), statistics.median(t["insert"])
                copy_cpu = statistics.median(t["copy_cpu"])
                insert_cpu = statistics.median(t["insert_cpu"])
                print(f"{label}_{n}_copy_wall: {copy * 1e6:.0f} us")
                print(f"{label}_{n}_insert_wall: {insert * 1e6:.0f} us")
                print(f"{label}_{n}_copy_to_insert_wall: {copy / insert:.2f}")
                print(f"{label}_{n}_copy_to_insert_cpu: {copy_cpu / insert_cpu:.2f} "
                      f"({copy_cpu * 1e6:.0f} / {insert_cpu * 1e6:.0f} us)")
                if copy < insert:
                    crossover = n if crossover is None else crossover
                else:
                    crossover = None
            print(f"{label}_copy_crossover: {crossover if crossover else 'none'} rows")
        serving.COPY_MIN_ROWS = configured
        print(f"load_average_after: {os.getloadavg()[0]:.2f}")
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
