"""Load the demo data of every app, in dependency order; safe to run again."""

from importlib import import_module
from importlib.util import find_spec

from django.core.management.base import BaseCommand

# Each app's engineer owns its demo module; one that does not exist yet is skipped.
DEMO_MODULES = ("content.demo", "approvals.demo", "journeys.demo", "delivery.demo")


class Command(BaseCommand):
    help = "Load the Tessera demo data (brands, modules, approvals, journeys); idempotent."

    def handle(self, *args, **options):
        for name in DEMO_MODULES:
            if find_spec(name) is None:
                self.stdout.write(f"{name}: not present yet, skipped")
                continue
            import_module(name).load(self.stdout)
        from content.demo import print_logins

        print_logins(self.stdout)
