"""Assemble one journey step for every recipient of a CSV file, into a folder.

    python manage.py assemble_batch --journey SLUG --step KEY --recipients FILE.csv --out DIR
        [--channel email] [--jurisdiction US] [--locale en]

The recipients file is read by the one recipients parser (`journeys.recipients`): CSV, or
a .json list / .ndjson file of recipient objects, by its extension.

Writes one file per assembled recipient (an .eml for email layouts, an .html page for
portal layouts), `index.json` (one entry per row: file, pseudonymous id, manifest or the
refusal reasons; never the recipient data itself) and prints a summary of refusals by
error code. Bad CSV rows are reported with their line number; the others are assembled.

It serves through `delivery.serving` like the API: every output is logged in the delivery
log (as served by the operator: no token, no user) and re-checked under lock before it is
written, so a version withdrawn mid-run stops going out at once.
"""

from __future__ import annotations

import json
from collections import Counter
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from delivery.batch import upload_format
from delivery.serving import OPERATOR, serve_many
from journeys.models import Journey, Layout, Step, pseudonymous_id
from journeys.recipients import RecipientsError, RowError, parse_recipients


class Command(BaseCommand):
    help = "Assemble a journey step for every recipient in a CSV file (one file each + index.json)."

    def add_arguments(self, parser):
        parser.add_argument("--journey", required=True, help="Journey slug")
        parser.add_argument("--step", required=True, help="Step key")
        parser.add_argument("--recipients", required=True, help="CSV (header with an id column), .json or .ndjson file")
        parser.add_argument("--out", required=True, help="Output folder (created if missing)")
        parser.add_argument("--channel", help="Channel code (default: the step's channel)")
        parser.add_argument("--jurisdiction", help="Market code (default: the journey's first)")
        parser.add_argument("--locale", help="Locale (default: the journey's locale)")
        parser.add_argument("--layout", choices=Layout.values, help="Override the step's layout")
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar")

    def handle(self, *args, **opts):
        source = Path(opts["recipients"])
        if not source.is_file():
            raise CommandError(f"Recipients file {source} does not exist.")
        journey = Journey.objects.filter(slug=opts["journey"]).select_related("locale").first()
        if journey is None:
            raise CommandError(f"Unknown journey {opts['journey']!r}.")
        step = Step.objects.filter(journey=journey, key=opts["step"]).select_related("channel").first()
        if step is None:
            keys = ", ".join(journey.steps.values_list("key", flat=True)) or "none"
            raise CommandError(f"Journey {journey.slug!r} has no step {opts['step']!r} (steps: {keys}).")
        try:
            parsed = parse_recipients(source.read_bytes(), format=upload_format(source.name))
        except RecipientsError as exc:
            raise CommandError(f"{source}: {exc.message}")
        except OSError as exc:
            raise CommandError(f"Cannot read {source}: {exc}")
        out = Path(opts["out"])
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"Cannot create {out}: {exc}")

        markets = list(journey.jurisdictions.values_list("code", flat=True))
        channel = opts["channel"] or step.channel.code
        jurisdiction = (opts["jurisdiction"] or (markets[0] if markets else "")).upper()
        locale = opts["locale"] or journey.locale.code
        layout = opts["layout"] or step.layout

        for error in parsed.errors:
            self.stderr.write(f"row {error.row}: skipped, {_reason(error)}")

        refusals: Counter = Counter()
        index = []
        assembled = 0
        results = serve_many(step, parsed.recipients, channel=channel, jurisdiction=jurisdiction,
                             locale=locale, layout=layout, caller=OPERATOR)
        progress = tqdm(zip(parsed.rows, parsed.recipients, results, strict=True),
                        total=len(parsed.recipients), unit="recipient", file=self.stderr,
                        disable=opts["no_progress"], desc=f"{journey.slug}/{step.key}")
        for line, recipient, result in progress:
            entry = {"row": line, "recipient": pseudonymous_id(recipient["id"]), "ok": result.ok}
            if result.ok:
                name = f"row-{line:06d}." + ("eml" if layout == Layout.EMAIL else "html")
                (out / name).write_bytes(_file_bytes(result, layout))
                entry.update(file=name, manifest=result.manifest)
                assembled += 1
            else:
                entry["errors"] = [e.as_dict() for e in result.errors]
                refusals.update({e.code for e in result.errors})
            index.append(entry)
        for error in parsed.errors:
            index.append({"row": error.row, "ok": False, "errors": [error.as_dict()]})
        index.sort(key=lambda e: e["row"])
        (out / "index.json").write_text(json.dumps({
            "journey": journey.slug, "step": step.key, "channel": channel,
            "jurisdiction": jurisdiction, "locale": locale, "layout": layout,
            "assembled": assembled, "refused": len(parsed.recipients) - assembled,
            "invalid_rows": len(parsed.errors), "entries": index,
        }, indent=1, ensure_ascii=False), encoding="utf-8")

        self.stdout.write(f"Assembled {assembled} of {len(parsed.recipients) + len(parsed.errors)} "
                          f"rows into {out} ({len(parsed.recipients) - assembled} refused, "
                          f"{len(parsed.errors)} invalid rows).")
        if refusals:
            self.stdout.write("Refusals by error code (a recipient may have several):")
            for code, count in sorted(refusals.items(), key=lambda item: (-item[1], item[0])):
                self.stdout.write(f"  {code}: {count}")
        for error in parsed.errors:
            self.stdout.write(f"  bad row {error.row}: {_reason(error)}")


def _reason(error: RowError) -> str:
    return "; ".join(problem.message for problem in error.problems)


def _file_bytes(result, layout) -> bytes:
    if layout != Layout.EMAIL:
        return result.html.encode("utf-8")
    message = EmailMessage(policy=SMTP)
    message["Subject"] = result.subject
    message["X-Tessera-Output-SHA256"] = result.manifest["output_sha256"]
    for name, value in result.headers.items():  # List-Unsubscribe and its one-click POST
        message[name] = value
    message.set_content(result.text)
    message.add_alternative(result.html, subtype="html")
    return message.as_bytes()
