"""Reading recipients from CSV for batch assembly: good rows go on, bad rows are reported.

Columns: `id` (required), the token fields (`title`, `first_name`, `last_name`,
`specialty`, `practice_name`, `city`), and consent either as `consent_<channel>` columns
(true/false, yes/no, 1/0) or one `consent` column listing channels (`email;portal`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field

from content.tokens import RECIPIENT_FIELDS

TRUE = {"1", "true", "yes", "y", "on"}
FALSE = {"0", "false", "no", "n", "off", ""}
MAX_FIELD = 500


@dataclass
class RecipientRows:
    recipients: list[dict] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)  # CSV line of each recipient
    bad_rows: list[tuple[int, str]] = field(default_factory=list)


def _parse_row(row: dict, line: int) -> dict:
    if None in row:
        raise ValueError(f"more values than the {len(row) - 1} columns of the header")
    if any(value is None for value in row.values()):
        raise ValueError("fewer values than the header has columns")
    recipient_id = (row.get("id") or "").strip()
    if not recipient_id:
        raise ValueError("the id column is empty")
    recipient: dict = {"id": recipient_id, "consent": {}}
    for name in RECIPIENT_FIELDS:
        value = (row.get(name) or "").strip()
        if len(value) > MAX_FIELD:
            raise ValueError(f"{name} is longer than {MAX_FIELD} characters")
        if value:
            recipient[name] = value
    for column, raw in row.items():
        if column.startswith("consent_"):
            value = raw.strip().lower()
            if value not in TRUE | FALSE:
                raise ValueError(f"{column} must be true or false, not {raw[:20]!r}")
            recipient["consent"][column.removeprefix("consent_")] = value in TRUE
    if "consent" in row:
        for channel in filter(None, (c.strip().lower() for c in row["consent"].replace(",", ";").split(";"))):
            recipient["consent"][channel] = True
    return recipient


def read_recipients(lines: Iterable[str]) -> RecipientRows:
    """Parse CSV lines; every bad row is reported with its line number and skipped."""
    result = RecipientRows()
    reader = csv.DictReader(lines)
    if not reader.fieldnames or "id" not in [f.strip() for f in reader.fieldnames]:
        raise ValueError("The CSV needs a header row with at least an 'id' column.")
    reader.fieldnames = [f.strip() for f in reader.fieldnames]
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            result.bad_rows.append((reader.line_num, f"unreadable CSV: {exc}"))
            continue
        try:
            recipient = _parse_row(row, reader.line_num)
        except ValueError as exc:
            result.bad_rows.append((reader.line_num, str(exc)))
            continue
        result.recipients.append(recipient)
        result.rows.append(reader.line_num)
    return result
