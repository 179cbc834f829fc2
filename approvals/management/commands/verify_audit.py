"""Walk the audit hash chain; exit 1 naming the first broken entry."""

import sys

from django.core.management.base import BaseCommand

from approvals.audit import verify_chain


class Command(BaseCommand):
    help = "Verify the hash chain of the audit trail; exits non-zero naming the first broken entry."

    def handle(self, *args, **options):
        checked, broken = verify_chain()
        if broken is not None:
            self.stderr.write(f"AUDIT CHAIN BROKEN at {broken.message()} "
                              f"({checked} entries before it are intact)")
            sys.exit(1)
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {checked} entries verified."))
