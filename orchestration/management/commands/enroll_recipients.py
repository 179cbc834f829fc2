"""`enroll_recipients --journey SLUG FILE.csv`: enroll a CSV of recipients (idempotent).

Columns: `id` (required) and optionally `audience`, `specialty`, `market`, `locale`,
`channels` (`email;portal`) and `consent_<channel>` (true/false words) or `consent`
(`email;portal`). Names and contact details are refused as unknown columns. All or nothing:
a bad row (named by its line, never its value) enrolls nobody; exit status 1.
"""

from __future__ import annotations

import csv
import io

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from journeys.models import Journey
from journeys.recipients import FALSE, TRUE, channel_codes
from orchestration import enrollment, lifecycle


def rows_of(text: str, channels: set[str]) -> list[dict]:
    reader = csv.DictReader(io.StringIO(text))
    out = []
    for raw in reader:
        row: dict = {}
        consent: dict = {}
        for column, value in raw.items():
            value = (value or "").strip()
            if column is None:
                row["?"] = value  # more cells than columns: reported as unknown
            elif column.startswith("consent_") and column[8:] in channels:
                if value.lower() in TRUE | FALSE:
                    consent[column[8:]] = value.lower() in TRUE
            elif column == "consent":
                consent.update({c.strip(): True for c in value.split(";") if c.strip()})
            elif value:
                row[column] = value
        if consent:
            row["consent"] = consent
        out.append(row)
    return out


class Command(BaseCommand):
    help = "Enroll recipients from a CSV file in a live journey (idempotent by recipient id)."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--journey", required=True)

    def handle(self, *args, file, journey, **options):
        target = Journey.objects.filter(slug=journey).first()
        if target is None:
            raise CommandError(f"No journey {journey!r}.")
        if lifecycle.state_of(target) not in ("live", "paused"):
            raise CommandError(f"Journey {journey!r} is not live (journey_not_live).")
        try:
            with open(file, encoding="utf-8-sig") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {file}: {exc.__class__.__name__}.")
        channels = set(channel_codes())
        markets = set(target.jurisdictions.values_list("code", flat=True))
        try:
            items, problems = enrollment.clean(rows_of(text, channels), markets=markets,
                                               channels=channels)
        except enrollment.EnrollmentError as exc:
            raise CommandError(f"{exc.code}: {exc.message}")
        if problems:
            for p in problems[:50]:
                self.stderr.write(f"line {p.row + 2}: {p.detail}")
            raise CommandError(f"{len(problems)} bad row(s); nobody was enrolled.")
        done = enrollment.enroll(target, items, now=timezone.now())
        created = sum(e.created for e in done)
        self.stdout.write(f"enrolled {created} new, {len(done) - created} already enrolled "
                          f"in {journey}")
