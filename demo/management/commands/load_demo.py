"""`manage.py load_demo`: the demo data of every app; idempotent."""

from django.core.management.base import BaseCommand

from demo.loader import load_all


class Command(BaseCommand):
    help = "Load the Tessera demo data (brands, modules, approvals, journeys); idempotent."

    def handle(self, *args, **options):
        load_all(self.stdout)
