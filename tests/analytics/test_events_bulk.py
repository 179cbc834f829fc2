"""The batch path of POST /api/v1/events/ (journeys.engagement.record_events) decides
exactly what recording the events one by one does: same outcomes, same enrollments,
same event rows — on a random sequence over thresholds, pauses and silence."""

import random

import pytest

from journeys.engagement import EventInput, record_event, record_events
from journeys.models import EngagementEvent, Enrollment, Transition
from tests.factories import UserFactory

from .conftest import T0

pytestmark = pytest.mark.django_db


@pytest.fixture
def adaptive(mini):
    s = mini["steps"]
    Transition.objects.create(from_step=s["a"], event_type="declined", threshold=2, pause=True)
    Transition.objects.create(from_step=s["b"], event_type="ignored", threshold=2, to_step=s["c"])
    Transition.objects.create(from_step=s["b"], event_type="ignored", threshold=3, to_step=s["e"])
    Transition.objects.create(from_step=s["c"], event_type="no_engagement_for", days=10, pause=True)
    Transition.objects.create(from_step=s["c"], event_type="no_engagement_for", days=3,
                              to_step=s["d"])
    return mini


def sequence(mini, seed, n=80):
    rnd = random.Random(seed)
    s = mini["steps"]
    out = []
    for _ in range(n):
        event = rnd.choice(["opened", "ignored", "declined", "clicked", "no_engagement_for"])
        out.append(EventInput(journey=mini["journey"], step=s[rnd.choice("abcd")],
                              pseudonymous_id=f"{rnd.randrange(6):064x}", event_type=event,
                              days=rnd.choice([2, 5, 12]) if event == "no_engagement_for" else None,
                              occurred_at=T0))
    return out


def state():
    return (sorted(Enrollment.objects.values_list("recipient_hash", "current_step_id", "paused")),
            sorted(EngagementEvent.objects.values_list("enrollment__recipient_hash", "step_id",
                                                       "event_type", "days")))


@pytest.mark.parametrize("seed", [1, 2])
def test_a_batch_ends_where_one_by_one_ends(adaptive, seed):
    events = sequence(adaptive, seed)
    one_by_one = [record_event(e.journey, e.step, e.pseudonymous_id, e.event_type, days=e.days,
                               occurred_at=e.occurred_at) for e in events]
    expected = state()
    EngagementEvent.objects.all().delete()
    Enrollment.objects.all().delete()
    # Split in two batches: the second counts the first's events toward thresholds.
    batch = record_events(events[:50], history_user=UserFactory()) + record_events(events[50:])
    assert state() == expected
    assert [(o.moved, o.paused, o.next_step and o.next_step.pk) for o in batch] == [
        (o.moved, o.paused, o.next_step and o.next_step.pk) for o in one_by_one]
    assert EngagementEvent.history.count() >= len(events)  # history rows written in bulk


def test_history_rows_record_creation_and_moves(adaptive):
    s = adaptive["steps"]
    who = f"{7:064x}"
    record_events([EventInput(journey=adaptive["journey"], step=s["a"], pseudonymous_id=who,
                              event_type="opened", occurred_at=T0)])
    enrollment = Enrollment.objects.get(recipient_hash=who)
    kinds = list(enrollment.history.order_by("history_id").values_list(
        "history_type", "current_step_id"))
    assert kinds == [("+", s["a"].pk), ("~", s["b"].pk)]
    event = EngagementEvent.objects.get(enrollment=enrollment)
    assert list(event.history.values_list("history_type", "event_type")) == [("+", "opened")]
