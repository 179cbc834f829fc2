"""`POST /api/v1/events/`: engagement events, one object or a list of up to 1,000, each
answered with the recipient's next step. All or nothing: one bad event records none.

A list is recorded by `journeys.engagement.record_events` in a constant number of queries
(bulk inserts in one transaction, transitions applied in bulk); the outcome is the same as
recording the events one by one in order (tests/api/test_events.py,
tests/analytics/test_events_bulk.py)."""

from __future__ import annotations

from django.db import OperationalError, transaction
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import APIView

from cms.api.auth import ensure_in_scope, history_as_system
from cms.api.errors import Unprocessable, error
from cms.api.schema import unprocessable
from journeys.engagement import BatchEventError, EventInput, record_events
from journeys.models import EventType, Journey, Step, pseudonymous_id

from .serializers import EventResultSerializer, EventSerializer

MAX_EVENTS = 1000
DEADLOCK_ATTEMPTS = 3


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
            if event["event"] not in EventType.values:
                problems.append(error("unknown_event_type", f"Unknown event type "
                                      f"{event['event'][:40]!r}; use one of "
                                      f"{', '.join(EventType.values)}.", **extra))
        if problems:
            raise Unprocessable(problems)
        for channel in {steps[(e["journey"], e["step"])].channel.code for e in events}:
            ensure_in_scope(request.user, channel=channel)
        inputs = [EventInput(journey=journeys[e["journey"]], step=steps[(e["journey"], e["step"])],
                             pseudonymous_id=pseudonymous_id(e["recipient_id"]),
                             event_type=e["event"], days=e.get("days"),
                             occurred_at=e.get("occurred_at")) for e in events]
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
        rendered = EventResultSerializer([
            {**event, "moved": outcome.moved, "paused": outcome.paused,
             "next_step": outcome.next_step}
            for event, outcome in zip(events, outcomes, strict=True)], many=True).data
        return Response(rendered if many else rendered[0])
