"""Orchestration: scheduler throughput on PostgreSQL, beside a floor measured in the same run.

    .venv/bin/python bench/orchestration.py [--enrollments 50000] [--batch N]

Creates its own database `tessera_orch_<pid>` (dropped afterwards), a live journey, an
always-open US send window and --enrollments enrolled recipients, then times one scheduler
worker (`orchestration.scheduler.run`, the beat task's code) over every profile twice:

- `wait`: the first step is 3 days away — every profile is read, decided (delay, window,
  reason) and written back, no touchpoint created;
- `due`: the step is due now — every profile is decided and a due touchpoint inserted.

The floor is the same rows read and updated by one bulk statement (`UPDATE … SET
next_check_at, reason … WHERE status = 'active' AND next_check_at <= now RETURNING …`): what
the database alone costs. Prints `name: value unit` lines (and the load average: judge a
loaded machine by the ratios to the floor); the target is ≥ 20,000 evaluations/s per worker.
`--profile` prints a cProfile of one `wait` run to stderr. Skipped (exit 0, reason printed) when PostgreSQL does not answer.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from _postgres import answers

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enrollments", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=None, help="default: the scheduler's BATCH_SIZE")
    parser.add_argument("--profile", action="store_true", help="cProfile one scheduler run")
    args = parser.parse_args()
    if not answers("127.0.0.1", 5432):
        print("orchestration: skipped (needs PostgreSQL at 127.0.0.1:5432)")
        return 0
    from soak import create_database, drop_database

    name = f"tessera_orch_{os.getpid()}"
    url = create_database(name)
    try:
        with tempfile.TemporaryDirectory() as media:
            os.environ.update({
                "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "cms.settings",
                "DJANGO_DEBUG": "0", "TESSERA_LOG_LEVEL": "WARNING",
                "TESSERA_MEDIA_ROOT": media, "CELERY_TASK_ALWAYS_EAGER": "true",
                "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "bench-" + "x" * 50),
            })
            os.environ.pop("CELERY_BROKER_URL", None)
            import django

            django.setup()
            run(args)
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(name)
    return 0


def run(args) -> None:
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from journeys.models import Step
    from orchestration import enrollment, lifecycle, scheduler
    from orchestration.models import DueTouchpoint, EnrollmentProfile, SendWindow
    from tests.api.builders import build_world

    args.batch = args.batch or scheduler.BATCH_SIZE
    world = build_world(slug="bench", step_key="welcome")
    now = timezone.now()
    lifecycle.go_live(world["journey"], now=now)
    SendWindow.objects.create(market="US", time_zone="UTC", start_hour=0, end_hour=24,
                              weekdays=list(range(7)))
    total = args.enrollments
    for start in range(0, total, 10_000):
        items, _ = enrollment.clean(
            [{"id": f"b{i}", "market": "US", "consent": {"email": True}}
             for i in range(start, min(total, start + 10_000))],
            markets={"US"}, channels={"email", "portal"})
        enrollment.enroll(world["journey"], items, now=now)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    table = EnrollmentProfile._meta.db_table

    def reset():
        EnrollmentProfile.objects.update(next_check_at=now, status="active")

    def floor() -> float:
        reset()
        began = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET next_check_at = %s, reason = 'floor' "
                "WHERE status = 'active' AND next_check_at <= %s "
                "RETURNING id, enrollment_id, planned_step_id, step_entered_at, market, consent",
                [now + timedelta(days=1), now])
            rows = len(cursor.fetchall())
        elapsed = time.perf_counter() - began
        assert rows == total, rows
        return total / elapsed

    def scheduler_run() -> tuple[float, int]:
        began = time.perf_counter()
        report = scheduler.run(now=now, batch_size=args.batch)
        elapsed = time.perf_counter() - began
        assert report.evaluated == total, report
        return total / elapsed, report.created

    Step.objects.filter(pk=world["step"].pk).update(delay_days=3)
    if args.profile:
        import cProfile
        import pstats

        reset()
        profiler = cProfile.Profile()
        profiler.runcall(scheduler_run)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    floors, waits = [], []
    for _ in range(3):
        floors.append(floor())
        reset()
        waits.append(scheduler_run()[0])
    Step.objects.filter(pk=world["step"].pk).update(delay_days=0)
    dues = []
    for _ in range(2):
        DueTouchpoint.objects.all().delete()
        reset()
        rate, created = scheduler_run()
        assert created == total, created
        dues.append(rate)
    from orchestration.simulation import Cohort, simulate

    began = time.perf_counter()
    simulated = simulate(world["journey"], cohort=Cohort(size=10_000), days=90, seed=1)
    simulation_seconds = time.perf_counter() - began
    median = sorted(floors)[len(floors) // 2]
    wait = sorted(waits)[len(waits) // 2]
    due = max(dues)
    print(f"orchestration_enrollments: {total} rows")
    print(f"orchestration_floor_bulk_update: {median:,.0f} rows/s")
    print(f"orchestration_scheduler_wait: {wait:,.0f} evaluations/s per worker")
    print(f"orchestration_scheduler_due: {due:,.0f} evaluations/s per worker "
          f"(each creates a due touchpoint)")
    print(f"orchestration_scheduler_vs_floor: {wait / median:.2f} ratio")
    print(f"orchestration_scheduler_due_vs_floor: {due / median:.2f} ratio")
    print(f"orchestration_batch_size: {args.batch} profiles")
    print(f"orchestration_load_average: {os.getloadavg()[0]:.2f} (1 min; 2 cores)")
    print(f"orchestration_simulation_10000x90: {simulation_seconds:.2f} s "
          f"({simulated.total_sends} sends; target <= 30 s on one core)")
    print(f"orchestration_target_20000_per_s: {'met' if min(wait, due) >= 20_000 else 'missed'}")


if __name__ == "__main__":
    sys.exit(main())
