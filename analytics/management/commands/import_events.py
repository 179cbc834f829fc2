"""`manage.py import_events FILE.ndjson`: historical engagement events, one JSON object a
line in the shape of `POST /api/v1/events/` (journey, step, recipient_id, event, days,
occurred_at), with a progress bar.

Two passes: every line is checked first (JSON under the API's guard, fields, journey,
step, event type); any bad line stops the import before anything is written, and the
command names the lines and exits non-zero. Then the events are recorded in order, 1,000
per transaction, by `journeys.engagement.record_events` (the API's bulk path: the same
transitions fire). Recipient ids are turned into pseudonyms on the way in and never kept.
Run `manage.py rebuild_analytics --incremental` (or wait for the beat) to roll them up.
"""

from __future__ import annotations

import itertools

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from cms.api.parsers import JSONRefused, loads
from delivery.api.serializers import EventSerializer
from journeys.engagement import BatchEventError, EventInput, record_events
from journeys.models import EventType, Journey, Step, pseudonymous_id

CHUNK = 1000
MAX_REPORTED = 20


class Command(BaseCommand):
    help = "Import engagement events from an NDJSON file (all checked before any is written)."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts):
        path = opts["file"]
        steps = {(s.journey.slug, s.key): s for s in Step.objects.select_related("journey")}
        journeys = {j.slug: j for j in Journey.objects.all()}
        total, problems = 0, []
        for number, _event, problem in _read(path, steps):
            if problem:
                problems.append(f"line {number}: {problem}")
                if len(problems) >= MAX_REPORTED:
                    problems.append(f"(stopped checking after {MAX_REPORTED} problems)")
                    break
            total += 1
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"Nothing imported: {len(problems)} problem(s) in {path}.")
        progress = tqdm(total=total, unit="event", file=self.stderr,
                        disable=opts["no_progress"], desc="events")
        valid = (event for _, event, _ in _read(path, steps))
        start = 0
        while chunk := list(itertools.islice(valid, CHUNK)):
            inputs = [EventInput(journey=journeys[e["journey"]], step=steps[(e["journey"], e["step"])],
                                 pseudonymous_id=pseudonymous_id(e["recipient_id"]),
                                 event_type=e["event"], days=e.get("days"),
                                 occurred_at=e.get("occurred_at")) for e in chunk]
            try:
                record_events(inputs)
            except BatchEventError as exc:
                raise CommandError(f"event {start + exc.row + 1}: {' '.join(exc.messages)} "
                                   f"({start} events were imported before it)") from None
            progress.update(len(chunk))
            start += len(chunk)
        progress.close()
        self.stdout.write(f"imported {start} events")


def _read(path, steps):
    """(line number, event, problem) for every non-blank line (streamed, not kept)."""
    try:
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield (number, *_check(line, steps))
    except OSError as exc:
        raise CommandError(f"Cannot read {path}: {exc.strerror or exc}") from None


def _check(line: bytes, steps) -> tuple[dict | None, str | None]:
    try:
        data = loads(line)
    except JSONRefused as exc:
        return None, str(exc)
    if not isinstance(data, dict):
        return None, "each line must be one JSON object"
    parsed = EventSerializer(data=data)
    if not parsed.is_valid():
        return None, "; ".join(f"{field}: {' '.join(str(m) for m in msgs)}"
                               for field, msgs in parsed.errors.items())
    event = parsed.validated_data
    if (event["journey"], event["step"]) not in steps:
        return None, f"no step {event['step']!r} in a journey {event['journey']!r}"
    if event["event"] not in EventType.values:
        return None, f"unknown event type {event['event'][:40]!r}"
    if event["event"] == EventType.NO_ENGAGEMENT_FOR and not event.get("days"):
        return None, "no_engagement_for needs days"
    return event, None
