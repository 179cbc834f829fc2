"""`POST /api/v1/events/`: engagement events, one object or a list of up to 1,000, each
answered with the recipient's next step. All or nothing: one bad event records none.

A list is recorded by `journeys.engagement.record_events` in a constant number of queries
(bulk inserts in one transaction, transitions applied in bulk); the outcome is the same as
recording the events one by one in order (tests/api/test_events.py,
tests/analytics/test_events_bulk.py).

A batch is 1,000 objects, so the per-object work is kept plain: `lean_events` accepts what
`EventSerializer` accepts, with the same values, in plain Python; anything else (an error,
or a value it does not take the short way, like a number as a string) goes through the
serializer, which answers the errors (tests/api/test_events_lean.py holds the two equal).
The results are rendered as plain dicts in `EventResultSerializer`'s shape, which stays the
documented schema."""

from __future__ import annotations

import functools
import re

from django.db import OperationalError, transaction
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import APIView

from cms.api.auth import ensure_in_scope, history_as_system
from cms.api.errors import Unprocessable, error
from cms.api.schema import unprocessable
from journeys.engagement import EVENT_TYPES, BatchEventError, EventInput, record_events
from journeys.models import EventType, Journey, Step, pseudonymous_id

from .serializers import EventResultSerializer, EventSerializer

MAX_EVENTS = 1000
DEADLOCK_ATTEMPTS = 3


# What DRF's SlugField and CharField validators refuse: the slug pattern, NUL, surrogates.
SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")
NUL_OR_SURROGATE = re.compile("[\x00\ud800-\udfff]")


@functools.cache
def _event_fields():
    """The limits `lean_events` checks, read from EventSerializer (stated once, there)."""
    fields = EventSerializer().fields
    text = {name: fields[name].max_length for name in ("journey", "step", "recipient_id", "event")}
    assert all(not f.allow_blank and f.trim_whitespace for n, f in fields.items() if n in text)
    days = fields["days"]
    return {"text": text, "known": frozenset(fields),
            "required": frozenset(n for n, f in fields.items() if f.required),
            "days": (days.min_value, days.max_value), "occurred_at": fields["occurred_at"]}


def _text(value, limit: int) -> str | None:
    """CharField's value for `value`, or None when CharField would refuse it (or it is a
    float, whose text form is left to CharField)."""
    if type(value) is str:
        text = value.strip()
    elif type(value) is int:
        text = str(value) if -10**18 < value < 10**18 else ""
    else:
        return None
    if not text or len(text) > limit or NUL_OR_SURROGATE.search(text):
        return None
    return text


def lean_events(items: list) -> list[dict] | None:
    """`EventSerializer(data=items, many=True).validated_data` without the serializer, or
    None when an item is not a plain valid one (the serializer then says what is wrong)."""
    spec = _event_fields()
    text, known, required = spec["text"], spec["known"], spec["required"]
    low, high = spec["days"]
    out = []
    for item in items:
        if type(item) is not dict or not (required <= item.keys() <= known):
            return None
        event = {}
        for name, limit in text.items():
            value = _text(item[name], limit)
            if value is None:
                return None
            event[name] = value
        if not SLUG.match(event["journey"]):
            return None
        if "days" in item:
            days = item["days"]
            if type(days) is not int or not low <= days <= high:
                return None
            event["days"] = days
        if "occurred_at" in item:
            try:
                event["occurred_at"] = spec["occurred_at"].run_validation(item["occurred_at"])
            except exceptions.ValidationError:
                return None
        out.append(event)
    return out


def render_results(events: list[dict], outcomes: list) -> list[dict]:
    """Each event with its outcome as EventResultSerializer renders it (that serializer
    stays the schema), in plain dicts: one next-step dict per step, shared."""
    next_steps: dict[int | None, dict | None] = {None: None}
    rendered = []
    for event, outcome in zip(events, outcomes, strict=True):
        step = outcome.next_step
        key = None if step is None else step.pk
        if key not in next_steps:
            next_steps[key] = {"key": str(step.key), "name": str(step.name),
                               "channel": str(step.channel.code)}
        rendered.append({"journey": str(event["journey"]), "step": str(event["step"]),
                         "event": str(event["event"]), "moved": bool(outcome.moved),
                         "paused": bool(outcome.paused), "next_step": next_steps[key]})
    return rendered


def _is_deadlock(exc: OperationalError) -> bool:
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) == "40P01" or "deadlock" in str(exc).lower()


def _history_user(request):
    user = getattr(request, "user", None)
    return user if getattr(user, "_meta", None) is not None and user.is_authenticated else None


@extend_schema(
    tags=["events"],
    request=EventSerializer,
    responses={
        200: EventResultSerializer(many=True),
        422: unprocessable(["unknown_journey", "unknown_step", "unknown_event_type",
                            "too_many_events", "invalid_event"],
                           "Nothing was recorded; `row` is the index in a list."),
    },
)
class EventView(APIView):
    """Record engagement events (one object or a list of up to 1,000) and get each
    recipient's next step. All or nothing: one bad event records none."""

    def post(self, request):
        data = request.data
        many = isinstance(data, list)
        items = data if many else [data]
        if not items:
            raise exceptions.ValidationError({"non_field_errors": [exceptions.ErrorDetail(
                "Send an event or a non-empty list of events.", code="empty")]})
        if len(items) > MAX_EVENTS:
            raise Unprocessable([error("too_many_events",
                                       f"{len(items)} events; send at most {MAX_EVENTS} per request.")])
        events = lean_events(items)
        if events is None:
            parsed = EventSerializer(data=items, many=True)
            if not parsed.is_valid():
                raise exceptions.ValidationError(parsed.errors if many else parsed.errors[0])
            events = parsed.validated_data
        journeys = {j.slug: j for j in Journey.objects.restrict(request.user, "view").filter(
            slug__in={e["journey"] for e in events})}
        steps = {(s.journey.slug, s.key): s for s in Step.objects.select_related(
            "journey", "channel").filter(journey__in=journeys.values())}
        problems = []
        for row, event in enumerate(events):
            extra = {"row": row} if many else {}
            if event["journey"] not in journeys:
                problems.append(error("unknown_journey",
                                      f"No journey {event['journey']!r} you may use.", **extra))
            elif (event["journey"], event["step"]) not in steps:
                problems.append(error("unknown_step", f"Journey {event['journey']!r} has no "
                                      f"step {event['step']!r}.", **extra))
            if event["event"] not in EVENT_TYPES:
                problems.append(error("unknown_event_type", f"Unknown event type "
                                      f"{event['event'][:40]!r}; use one of "
                                      f"{', '.join(EventType.values)}.", **extra))
        if problems:
            raise Unprocessable(problems)
        for channel in {steps[(e["journey"], e["step"])].channel.code for e in events}:
            ensure_in_scope(request.user, channel=channel)
        pseudonyms: dict[str, str] = {}
        inputs = []
        for e in events:
            who = e["recipient_id"]
            if who not in pseudonyms:
                pseudonyms[who] = pseudonymous_id(who)
            inputs.append(EventInput(journey=journeys[e["journey"]],
                                     step=steps[(e["journey"], e["step"])],
                                     pseudonymous_id=pseudonyms[who], event_type=e["event"],
                                     days=e.get("days"), occurred_at=e.get("occurred_at")))
        for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
            try:
                with transaction.atomic(), history_as_system(request):  # all or nothing
                    outcomes = record_events(inputs, history_user=_history_user(request))
                break
            except BatchEventError as exc:
                raise Unprocessable([error("invalid_event", " ".join(exc.messages),
                                           **({"row": exc.row} if many else {}))]) from None
            except OperationalError as exc:
                # Two batches locking the same recipients in different orders: PostgreSQL
                # aborts one; it rolled back whole, so it is simply run again.
                if attempt == DEADLOCK_ATTEMPTS or not _is_deadlock(exc):
                    raise
        rendered = render_results(events, outcomes)
        return Response(rendered if many else rendered[0])
