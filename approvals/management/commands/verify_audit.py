"""Walk the audit hash chain and check it against every signed checkpoint; exit 1 naming the
first broken entry or checkpoint. `--checkpoint` anchors the current head first."""

import sys

from django.core.management.base import BaseCommand

from approvals.anchoring import verify_checkpoints, write_checkpoint
from approvals.audit import verify_chain


class Command(BaseCommand):
    help = ("Verify the hash chain of the audit trail and the signed checkpoints of its head; "
            "exits non-zero naming the first broken entry or checkpoint.")

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoint", action="store_true",
            help="After a successful check, write a signed checkpoint of the current head.",
        )

    def handle(self, *args, **options):
        checked, broken = verify_chain()
        if broken is not None:
            self.stderr.write(f"AUDIT CHAIN BROKEN at {broken.message()} "
                              f"({checked} entries before it are intact)")
            sys.exit(1)
        anchors, anchor_break = verify_checkpoints()
        if anchor_break is not None:
            self.stderr.write(f"AUDIT CHAIN BROKEN at {anchor_break.message()} "
                              f"({anchors} checkpoints before it hold)")
            sys.exit(1)
        self.stdout.write(self.style.SUCCESS(
            f"Audit chain intact: {checked} entries verified against {anchors} checkpoints."))
        if options["checkpoint"]:
            checkpoint = write_checkpoint()
            self.stdout.write(f"Checkpoint {checkpoint.pk} written: head #{checkpoint.head_seq} "
                              f"({checkpoint.entry_count} entries).")
