"""`manage.py rebuild_analytics`: recompute every rollup from the raw events and deliveries
(`--incremental`: one incremental run, what the beat task does)."""

from django.core.management.base import BaseCommand

from analytics import rollups


class Command(BaseCommand):
    help = "Recompute analytics rollups from scratch (or --incremental: one beat run)."

    def add_arguments(self, parser):
        parser.add_argument("--incremental", action="store_true")

    def handle(self, *args, **options):
        result = rollups.run() if options["incremental"] else rollups.rebuild()
        if result["skipped"]:
            self.stdout.write("skipped: another rollup run holds the watermarks (try again "
                              "when it has finished)")
            return
        self.stdout.write(f"rolled up {result['days']} journey-days, {result['pairs']} "
                          f"recipient-steps (events to id {result['events_to']}, deliveries "
                          f"to id {result['deliveries_to']})")
