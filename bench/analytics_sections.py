"""What the journey analytics sections cost on PostgreSQL: the existing measures and the
ones of issue 15's second half (content performance per module version, flows over the
map, re-engagement after pauses), each timed in-process with its query count, beside a
floor measured in the same run (a plain grouped query of the rollup table), and the page
as people get it (the cached default view, analytics/queries.py).

    .venv/bin/python bench/analytics_sections.py [--server postgres://postgres@127.0.0.1:5432/postgres]
                                                 [--recipients 20000] [--repeat 5]

A scratch database is created (tessera_bench_sections_<pid>) and dropped at the end: a
journey of five steps with a pausing silence, the demo generator's history for
`--recipients` recipients (~5 events each), one delivery per recipient and step reached at
three steps (each with two module versions: a fixed slot's v1 or v2, and one of two
selector candidates), rollups rebuilt. Prints `name: value unit` lines; the timings are
medians of `--repeat` runs (wall clock: read them beside the load average and the floor).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _analytics_data import bench_journey, boot, term
from _postgres import answers, create_database, drop_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB = f"tessera_bench_sections_{os.getpid()}"


def build(recipients: int):
    from django.contrib.auth import get_user_model

    from analytics import rollups
    from analytics.models import RecipientStep
    from content.models import ContentModule, Locale, ModuleVersion
    from delivery.models import DeliveredVersion, Delivery
    from demo import events as demo_events
    from journeys.models import Enrollment, Slot, Transition

    owner = get_user_model().objects.create_superuser("bench-analyst", "", secrets.token_urlsafe(16))
    spec = [("a", "awareness", "email"), ("b", "interest", "portal"), ("c", "interest", "email"),
            ("d", "trial", "rep"), ("e", "trial", "email")]
    brand, journey, steps = bench_journey("bench-sections", "Bench", spec)
    en = term(Locale, "en")
    for a, event, b in [("a", "opened", "b"), ("a", "ignored", "c"), ("b", "clicked", "d"),
                        ("c", "clicked", "d")]:
        Transition.objects.create(from_step=steps[a], event_type=event, to_step=steps[b])
    Transition.objects.create(from_step=steps["b"], event_type="no_engagement_for", days=30,
                              pause=True)

    def version(code, kind, number):
        module = ContentModule.objects.get_or_create(
            code=code, defaults={"brand": brand, "kind": kind, "purpose": "promotional",
                                 "title": code, "owner": owner})[0]
        return ModuleVersion.objects.create(module=module, number=number, locale=en,
                                            body_html="<p>x</p>", created_by=owner)

    fixed = [version("HEAD", "headline", 1), version("HEAD", "headline", 2)]
    candidates = [version("CTA-X", "cta", 1), version("CTA-Y", "cta", 1)]
    for key in ("a", "b", "c"):
        Slot.objects.create(step=steps[key], module=fixed[0].module, order=1)
        Slot.objects.create(step=steps[key], selector_kind="cta", order=2)
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    events = demo_events.generate(
        journey, [demo_events.pseudonym(journey.slug, n) for n in range(recipients)],
        random.Random("bench-sections"), now)
    rollups.rebuild()
    hashes = dict(Enrollment.objects.filter(journey=journey).values_list("pk", "recipient_hash"))
    keys = {steps[k].pk: k for k in ("a", "b", "c")}
    rows = list(RecipientStep.objects.filter(journey=journey, step_id__in=keys).values_list(
        "enrollment_id", "step_id", "first_at").order_by("pk"))
    made = Delivery.objects.bulk_create([
        Delivery(served_at=at - dt.timedelta(hours=1), channel="email", jurisdiction="US",
                 locale="en", journey_slug=journey.slug, step_key=keys[step_id],
                 recipient_pseudonym=hashes[enrollment_id], output_sha256="0" * 64, manifest={})
        for enrollment_id, step_id, at in rows], batch_size=2000)
    DeliveredVersion.objects.bulk_create([
        DeliveredVersion(delivery=d, version=v, channel="email", jurisdiction="US")
        for n, d in enumerate(made) for v in (fixed[n % 2], candidates[(n // 2) % 2])],
        batch_size=4000)
    rollups.run(batch=10**9)
    return journey, owner, events, len(made)


def timed(fn, repeat: int):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, queries = [], 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        queries = len(captured)
    return statistics.median(times), queries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=os.environ.get(
        "BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", default="", metavar="PART",
                        help="also print the cProfile of one part (e.g. content_performance)")
    args = parser.parse_args()
    if not answers("127.0.0.1", 5432):
        print("analytics_sections: skipped (PostgreSQL does not answer on 127.0.0.1:5432)")
        return 0
    database_url = create_database(args.server, DB)
    try:
        with tempfile.TemporaryDirectory(prefix="tessera-bench-sections-") as folder:
            boot(database_url, Path(folder))
            journey, owner, events, deliveries = build(args.recipients)
            run(journey, owner, events, deliveries, args.repeat, args.profile)
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(args.server, DB)
    return 0


def run(journey, owner, events: int, deliveries: int, repeat: int, profile: str = "") -> None:
    from django.db import connection
    from django.test import Client

    from analytics import content_performance, flows, metrics, queries
    from analytics.metrics import Filters

    f = Filters()
    design = metrics.design_of(journey)
    paths = metrics.paths_of(journey, f, design)
    print(f"analytics_sections_history: {events} events, {deliveries} deliveries "
          f"(load {os.getloadavg()[0]:.2f})")

    def floor():
        with connection.cursor() as cursor:
            cursor.execute("SELECT step_id, SUM(events), SUM(opened), SUM(clicked), "
                           "SUM(ignored), MAX(recipients) FROM analytics_dailyrollup "
                           "WHERE journey_id = %s AND module_version_id = 0 GROUP BY step_id",
                           [journey.pk])
            cursor.fetchall()

    parts = {
        "floor_rollup_query": floor,
        "all_sections": lambda: metrics.journey_analytics(journey, f),
        "paths_read": lambda: metrics.paths_of(journey, f, design),
        "content_performance": lambda: content_performance.content_performance(journey, f, design),
        "reengagement": lambda: metrics.reengagement_of(
            *metrics._silences_and_returns(journey, f, design), design),
        "flows": lambda: flows.flow_picture(flows.flow_rows(flows.flows_of(paths, design),
                                                            design), design, {}),
    }
    for name, fn in parts.items():
        seconds, count = timed(fn, repeat)
        print(f"analytics_sections_{name}: {seconds * 1000:.1f} ms ({count} queries; "
              f"load {os.getloadavg()[0]:.2f})")
    if profile in parts:
        import cProfile
        import io
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(parts[profile])
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("cumulative").print_stats(18)
        print(out.getvalue())
    queries.refresh([journey.pk])
    client = Client()
    client.force_login(owner)
    url = f"/journeys/{journey.slug}/analytics/"
    assert client.get(url).status_code == 200
    seconds = []
    for _ in range(30):
        started = time.perf_counter()
        assert client.get(url).status_code == 200
        seconds.append(time.perf_counter() - started)
    ordered = sorted(seconds)
    print(f"analytics_sections_page_p95: {ordered[int(round(0.95 * 30)) - 1] * 1000:.1f} ms "
          f"(cached default view; load {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    sys.exit(main())
