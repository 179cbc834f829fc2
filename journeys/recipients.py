"""The one recipients parser: CSV, JSON (a list of objects) and NDJSON, one dialect.

Every entry point that takes recipients (the batch API, the single-assembly API through
`journeys.api.recipients.RecipientSerializer`, the `assemble_batch` command, future
importers) goes through `clean_recipient`, so the limits, the true/false words, the
unknown-column policy, the consent forms and the error code are stated once, here.

A recipient has `id` (required), the token fields of `content.tokens.RECIPIENT_FIELDS`,
consent in either form — `consent_<channel>` columns/keys (true/false words below) or one
`consent` listing channels (`email;portal`, or in JSON a list or a {channel: bool} object)
— and optionally `seen_modules` (module codes, `;`-separated in CSV). Channel names are
checked against the channel codes of the taxonomy. `unsubscribe_url` is the reader's personal
unsubscribe link, which every email needs (`journeys.unsubscribe` says what is usable; a
recipient without one is refused by assembly, `missing_unsubscribe`). Unknown columns are
refused, naming the column (an author's `frist_name` must not silently drop the first name).

A file-level problem (not UTF-8, no `id` column, unknown column, too many recipients)
raises `RecipientsError`; a bad row is reported as `RowError` (code `invalid_row`, its row
or line number and what is wrong) and the other rows go on. Messages name the row and the
column, never the value: recipient data is personal and is never logged or echoed.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from django.conf import settings

from cms.api import parsers
from content.tokens import RECIPIENT_FIELDS

from . import unsubscribe

# Longest accepted value per column (the single-assembly API has always used these).
ID_MAX_LENGTH = 200
FIELD_MAX_LENGTHS: dict[str, int] = {
    "title": 100, "first_name": 100, "last_name": 100, "specialty": 100,
    "practice_name": 200, "city": 100,
}
MODULE_CODE_MAX_LENGTH = 40
SEEN_MODULES_MAX = 500
# The only true/false words (compared case-insensitively). An empty cell or null states
# nothing, which for consent means none (so a blank `consent_email` cell does not
# contradict `email` listed in the `consent` column).
TRUE = {"true", "1", "yes", "y", "on"}
FALSE = {"false", "0", "no", "n", "off"}
ROW_ERROR_CODE = "invalid_row"
CONSENT_PREFIX = "consent_"
LIST_SEPARATORS = re.compile(r"[;,]")
# Line breaks and other control characters have no place in a name and would break an
# e-mail header; NUL cannot be stored by PostgreSQL; lone surrogates cannot be encoded.
FORBIDDEN_CHARACTER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")

assert set(FIELD_MAX_LENGTHS) == set(RECIPIENT_FIELDS)
KNOWN_COLUMNS = ("id", *RECIPIENT_FIELDS, "consent", "seen_modules", unsubscribe.FIELD)

Format = Literal["csv", "json", "ndjson"]
FORMATS: tuple[str, ...] = ("csv", "json", "ndjson")


def max_recipients() -> int:
    return settings.TESSERA_BATCH_MAX_RECIPIENTS


class RecipientsError(ValueError):
    """The input as a whole is refused (nothing is parsed): a code and a message."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Problem:
    """What is wrong with one value of a recipient (code as DRF names it)."""

    field: str
    code: str
    message: str


@dataclass(frozen=True)
class RowError:
    row: int  # CSV line (the header is line 1), NDJSON line, or JSON list position (1-based)
    problems: tuple[Problem, ...]

    @property
    def detail(self) -> str:
        return f"Row {self.row}: " + "; ".join(p.message for p in self.problems) + "."

    def as_dict(self) -> dict:
        return {"code": ROW_ERROR_CODE, "detail": self.detail, "row": self.row}


@dataclass
class ParsedRecipients:
    recipients: list[dict] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)  # the row number of each recipient
    errors: list[RowError] = field(default_factory=list)

    def in_order(self) -> list[tuple[int, dict | RowError]]:
        """Recipients and row errors together, in the order of the input."""
        return sorted([*zip(self.rows, self.recipients, strict=True),
                       *((e.row, e) for e in self.errors)], key=lambda item: item[0])


def channel_codes() -> frozenset[str]:
    """The channel codes of the taxonomy (consent may only name these)."""
    from content.models import Channel

    return frozenset(Channel.objects.values_list("code", flat=True))


def parse_recipients(data: bytes | str | Iterable, *, format: Format,
                     channels: Iterable[str] | None = None) -> ParsedRecipients:
    """Parse recipients; bad rows are reported with their number, the others go on.

    `data` is the file's bytes or text, an iterable of lines (CSV, NDJSON), or for JSON
    an already decoded list. `channels` defaults to the taxonomy's channel codes."""
    if format not in FORMATS:
        raise RecipientsError("invalid_format", f"Unknown format {format!r}; use csv, json "
                                                "or ndjson.")
    known = frozenset(channels) if channels is not None else channel_codes()
    if format == "csv":
        rows = _csv_rows(data, known)
    elif format == "ndjson":
        rows = _ndjson_rows(data)
    else:
        rows = _json_rows(data)
    result = ParsedRecipients()
    limit = max_recipients()
    for row, item in rows:
        if isinstance(item, RowError):
            error = item
        else:
            recipient, problems = clean_recipient(item, channels=known)
            if not problems:
                result.recipients.append(recipient)
                result.rows.append(row)
            error = RowError(row, tuple(problems)) if problems else None
        if error is not None:
            result.errors.append(error)
        if len(result.recipients) + len(result.errors) > limit:
            raise RecipientsError("too_many_recipients",
                                  f"More than {limit} recipients; a batch takes at most "
                                  f"{limit}. Split it into several jobs.")
    if not result.recipients and not result.errors:
        raise RecipientsError(f"invalid_{format}", "There are no recipients.")
    return result


def clean_recipient(data, *, channels: frozenset[str]) -> tuple[dict, list[Problem]]:
    """One recipient (a mapping of column or key to value) in its canonical form:
    {"id", token fields that have a value, "consent": {channel: bool}, "seen_modules"?,
    "unsubscribe_url"?},
    and every problem found (an empty list when it is good)."""
    if not isinstance(data, Mapping):
        return {}, [Problem("", "invalid", "expected an object with an id")]
    problems: list[Problem] = []
    recipient: dict = {}
    consent: dict[str, bool] = {}
    listed: list[str] = []
    for key, value in data.items():
        name = str(key).strip().lower()
        if name == "id":
            text = _text(name, value, ID_MAX_LENGTH, problems)
            if text:
                recipient["id"] = text
        elif name in FIELD_MAX_LENGTHS:
            text = _text(name, value, FIELD_MAX_LENGTHS[name], problems)
            if text:
                recipient[name] = text
        elif name.startswith(CONSENT_PREFIX):
            channel = name.removeprefix(CONSENT_PREFIX)
            if channel not in channels:
                problems.append(_unknown_channel(name, channel, channels))
                continue
            flag = _flag(name, value, problems)
            if flag is not None:
                consent[channel] = flag
        elif name == "consent":
            _consent(value, channels, consent, listed, problems)
        elif name == "seen_modules":
            codes = _seen_modules(value, problems)
            if codes:
                recipient["seen_modules"] = codes
        elif name == unsubscribe.FIELD:
            if value is None or (isinstance(value, str) and not value.strip()):
                continue  # states nothing; an email assembly then refuses the recipient
            value = value.strip() if isinstance(value, str) else value
            problem = unsubscribe.url_problem(value)
            if problem:
                problems.append(Problem(name, "invalid", problem))
            else:
                recipient[name] = value
        else:
            problems.append(unknown_column(name))
    for channel in listed:
        if consent.get(channel) is False:
            problems.append(Problem("consent", "invalid",
                                    f"consent lists {channel} but {CONSENT_PREFIX}{channel} "
                                    "says false"))
        consent[channel] = True
    if "id" not in recipient and not any(p.field == "id" for p in problems):
        problems.append(Problem("id", "required", "id is empty"))
    recipient["consent"] = consent
    return recipient, problems


def unknown_column(name: str) -> Problem:
    known = [*KNOWN_COLUMNS, f"{CONSENT_PREFIX}<channel>"]
    close = difflib.get_close_matches(name, KNOWN_COLUMNS, n=1)
    hint = f" (did you mean {close[0]}?)" if close else f"; use {', '.join(known)}"
    return Problem(name[:40], "unknown_field", f"unknown column {_safe_name(name)}{hint}")


def _safe_name(name: str) -> str:
    # A column name is not personal data, but it is the caller's text: keep it short.
    return repr(name[:40])


def _unknown_channel(column: str, channel: str, channels: frozenset[str]) -> Problem:
    return Problem(column, "unknown_channel",
                   f"unknown column {_safe_name(column)}: {_safe_name(channel)} is not a "
                   f"channel{_channel_hint(channel, channels)}")


def _channel_hint(channel: str, channels: frozenset[str]) -> str:
    close = difflib.get_close_matches(channel, sorted(channels), n=1)
    if close:
        return f" (did you mean {close[0]}?)"
    return f" (channels: {', '.join(sorted(channels)) or 'none'})"


def _text(name: str, value, limit: int, problems: list[Problem]) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        problems.append(Problem(name, "invalid", f"{name} must be text"))
        return ""
    text = str(value).strip()
    if len(text) > limit:
        problems.append(Problem(name, "max_length", f"{name} is longer than {limit} characters"))
        return ""
    if FORBIDDEN_CHARACTER.search(text):
        problems.append(Problem(name, "invalid",
                                f"{name} contains a line break or control character"))
        return ""
    return text


def _flag(name: str, value, problems: list[Problem]) -> bool | None:
    """True, False, or None when the value is empty (nothing stated) or not a word."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower() if isinstance(value, str | int) else None
    if word in TRUE:
        return True
    if word in FALSE:
        return False
    if value is None or word == "":
        return None
    problems.append(Problem(name, "invalid", f"{name} must be one of {'/'.join(sorted(TRUE))} "
                                             f"or {'/'.join(sorted(FALSE))}, or empty"))
    return None


def _consent(value, channels: frozenset[str], consent: dict[str, bool], listed: list[str],
             problems: list[Problem]) -> None:
    if isinstance(value, Mapping):  # {"email": true}
        for key, flag_value in value.items():
            channel = str(key).strip().lower()
            if channel not in channels:
                problems.append(Problem("consent", "unknown_channel",
                                        f"consent names no channel "
                                        f"{_safe_name(channel)}{_channel_hint(channel, channels)}"))
                continue
            flag = _flag(f"consent.{channel}", flag_value, problems)
            if flag is not None:
                consent[channel] = flag
        return
    items = _list(value)
    if items is None:
        problems.append(Problem("consent", "invalid",
                                "consent must list channels (email;portal) or map them to "
                                "true/false"))
        return
    for channel in items:
        if channel not in channels:
            problems.append(Problem("consent", "unknown_channel",
                                    f"consent names no channel "
                                    f"{_safe_name(channel)}{_channel_hint(channel, channels)}"))
        else:
            listed.append(channel)


def _list(value) -> list[str] | None:
    """`a;b`, `a,b` or a JSON list of strings, lower-cased, blanks dropped."""
    if value is None:
        return []
    if isinstance(value, str):
        return [p.strip().lower() for p in LIST_SEPARATORS.split(value) if p.strip()]
    if isinstance(value, list) and all(isinstance(p, str) for p in value):
        return [p.strip().lower() for p in value if p.strip()]
    return None


def _seen_modules(value, problems: list[Problem]) -> list[str]:
    if isinstance(value, str):
        codes = [p.strip() for p in LIST_SEPARATORS.split(value) if p.strip()]
    elif isinstance(value, list) and all(isinstance(p, str) for p in value):
        codes = [p.strip() for p in value if p.strip()]
    elif value is None:
        return []
    else:
        problems.append(Problem("seen_modules", "invalid", "seen_modules must list module codes"))
        return []
    if len(codes) > SEEN_MODULES_MAX:
        problems.append(Problem("seen_modules", "max_length",
                                f"seen_modules lists more than {SEEN_MODULES_MAX} modules"))
        return []
    if any(len(c) > MODULE_CODE_MAX_LENGTH or FORBIDDEN_CHARACTER.search(c) for c in codes):
        problems.append(Problem("seen_modules", "invalid",
                                f"seen_modules has a code longer than {MODULE_CODE_MAX_LENGTH} "
                                "characters or with a control character"))
        return []
    return codes


# --- Formats: each yields (row number, mapping or RowError) ---------------------------

def _as_text(data, format: str) -> str | Iterable:
    if isinstance(data, bytes | bytearray):
        try:
            return bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise RecipientsError(f"invalid_{format}", f"The {format.upper()} is not UTF-8 "
                                                       "text.") from None
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    return data


def _csv_rows(data, channels: frozenset[str]):
    text = _as_text(data, "csv")
    reader = csv.reader(io.StringIO(text, newline="") if isinstance(text, str) else text)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise RecipientsError("invalid_csv", "The CSV is empty; it needs a header row.") from None
    except csv.Error as exc:
        raise RecipientsError("invalid_csv", f"The CSV header is unreadable: {exc}.") from None
    if "id" not in header:
        raise RecipientsError("invalid_csv", "The CSV header needs an 'id' column.")
    refused = [_column_problem(h, channels) for h in header]
    refused = [p for p in refused if p is not None]
    if refused:
        raise RecipientsError("invalid_csv", "The CSV header has an "
                              + "; ".join(p.message for p in refused) + ".")
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        raise RecipientsError("invalid_csv", f"Column(s) {', '.join(duplicates)} appear twice.")
    return _csv_body(reader, header)


def _column_problem(name: str, channels: frozenset[str]) -> Problem | None:
    if name in KNOWN_COLUMNS:
        return None
    if name.startswith(CONSENT_PREFIX):
        channel = name.removeprefix(CONSENT_PREFIX)
        return None if channel in channels else _unknown_channel(name, channel, channels)
    return unknown_column(name)


def _csv_body(reader, header: list[str]):
    line = reader.line_num
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = reader.line_num
            yield line, RowError(line, (Problem("", "invalid", f"the row is unreadable CSV ({exc})"),))
            continue
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            yield line, RowError(line, (Problem("", "invalid",
                                                f"the row has {len(cells)} values; the header has "
                                                f"{len(header)} columns"),))
            continue
        yield line, dict(zip(header, cells, strict=True))


def _json_rows(data):
    if isinstance(data, bytes | bytearray | str):
        try:
            data = parsers.loads(_as_text(data, "json"))
        except ValueError:  # parsers.JSONRefused too: depth and number limits
            raise RecipientsError("invalid_json", "The JSON is malformed.") from None
    if not isinstance(data, list):
        raise RecipientsError("invalid_json", "The JSON must be a list of recipient objects.")
    return ((position, item) for position, item in enumerate(data, start=1))


def _ndjson_rows(data):
    text = _as_text(data, "ndjson")
    lines = text.splitlines() if isinstance(text, str) else text
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = parsers.loads(line)
        except ValueError:
            yield number, RowError(number, (Problem("", "invalid", "the line is not valid JSON"),))
            continue
        yield number, item

