"""Concurrent event batches on PostgreSQL (the services profile): batches that share
recipients, new and already enrolled, wait for each other instead of deadlocking
(`record_events` inserts new enrollments in one order, then locks the existing ones in id
order), and what they leave is what recording every event one by one, in the order the
batches were serialized in, leaves."""

import random
import threading

import pytest
from django.db import connection

from journeys.engagement import EventInput, record_event, record_events
from journeys.models import EngagementEvent, Enrollment, Transition

from .conftest import T0

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
TYPES = ["opened", "ignored", "declined", "clicked", "no_engagement_for"]


def batch(mini, rnd: random.Random, size: int, recipients: int) -> list[EventInput]:
    s = mini["steps"]
    out = []
    for _ in range(size):
        event = rnd.choice(TYPES)
        out.append(EventInput(journey=mini["journey"], step=s[rnd.choice("abcd")],
                              pseudonymous_id=f"{rnd.randrange(recipients) + 1:064x}",
                              event_type=event,
                              days=rnd.choice([2, 5, 12]) if event == "no_engagement_for" else None,
                              occurred_at=T0))
    return out


def snapshot():
    return (sorted(Enrollment.objects.values_list("recipient_hash", "current_step_id", "paused")),
            sorted(EngagementEvent.objects.values_list("enrollment__recipient_hash", "step_id",
                                                       "event_type", "days")))


def test_concurrent_batches_sharing_recipients_serialize_without_deadlock(mini):
    s = mini["steps"]
    Transition.objects.create(from_step=s["a"], event_type="declined", threshold=2, pause=True)
    Transition.objects.create(from_step=s["b"], event_type="ignored", threshold=2, to_step=s["c"])
    Transition.objects.create(from_step=s["c"], event_type="no_engagement_for", days=3,
                              to_step=s["d"])
    Transition.objects.create(from_step=s["d"], event_type="opened", to_step=s["b"])
    rnd = random.Random(15)
    record_events(batch(mini, rnd, 100, 40))  # half of the recipients enrolled already
    rounds = [[batch(mini, rnd, 150, 80) for _ in range(3)] for _ in range(4)]
    failures = []

    def run(batches, barrier):
        try:
            barrier.wait()
            for events in batches:
                record_events(events)  # no retry here: a deadlock fails the test
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            connection.close()

    for started_together in rounds:  # three threads at once, four times
        barrier = threading.Barrier(len(started_together))
        threads = [threading.Thread(target=run, args=([b], barrier)) for b in started_together]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failures == []
    total = 100 + sum(len(b) for r in rounds for b in r)
    assert EngagementEvent.objects.count() == total
    concurrent = snapshot()

    # A recipient's events were inserted in the order its batches held its lock: replayed
    # one by one in id order, they end in the same place.
    replay = list(EngagementEvent.objects.order_by("pk").values_list(
        "enrollment__recipient_hash", "step_id", "event_type", "days"))
    Enrollment.objects.all().delete()
    steps = {step.pk: step for step in s.values()}
    for who, step_id, event_type, days in replay:
        record_event(mini["journey"], steps[step_id], who, event_type, days=days, occurred_at=T0)
    assert snapshot() == concurrent
