"""Re-render an assembly from its manifest and say whether the output is the same.

    python manage.py reproduce_assembly --manifest manifest.json --recipient recipient.json

Exits 0 when the output sha256 matches the manifest, 1 when it does not (with the reasons),
and with a message on unreadable input. The recipient data is read from the file given and
never stored or logged.
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from journeys.reproduce import reproduce


def _load(path: str, what: str):
    file = Path(path)
    if not file.is_file():
        raise CommandError(f"{what} file {file} does not exist.")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CommandError(f"{what} file {file} is not JSON: {exc}")
    if not isinstance(data, dict):
        raise CommandError(f"{what} file {file} must hold a JSON object.")
    return data


class Command(BaseCommand):
    help = "Re-render a manifest with the same recipient data and compare the output sha256."

    def add_arguments(self, parser):
        parser.add_argument("--manifest", required=True, help="JSON file with the manifest "
                            "(or an assemble_batch index entry with a 'manifest' key)")
        parser.add_argument("--recipient", required=True, help="JSON file with the recipient data")

    def handle(self, *args, **opts):
        manifest = _load(opts["manifest"], "Manifest")
        manifest = manifest.get("manifest", manifest)
        recipient = _load(opts["recipient"], "Recipient")
        result = reproduce(manifest, recipient)
        self.stdout.write(result.describe())
        if not result.matches:
            raise CommandError("The output differs from the manifest.", returncode=1)
