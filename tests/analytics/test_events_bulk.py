"""The batch path of POST /api/v1/events/ (journeys.engagement.record_events) decides
exactly what recording the events one by one does: same outcomes, same enrollments,
same event rows — on a random sequence over thresholds, pauses and silence."""

import random

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


EVENT = st.tuples(st.sampled_from("abcde"), st.integers(0, 2),
                  st.sampled_from(["opened", "ignored", "declined", "clicked",
                                   "no_engagement_for"]),
                  st.sampled_from([2, 3, 5, 10, 12]))


def as_input(mini, step, who, event, days):
    return EventInput(journey=mini["journey"], step=mini["steps"][step],
                      pseudonymous_id=f"{who + 1:064x}", event_type=event,
                      days=days if event == "no_engagement_for" else None, occurred_at=T0)


def full_state():
    """Enrollments, events, and what their history says (one "+" per row, the last
    enrollment row equal to the enrollment)."""
    enrollments, events = state()
    created = sorted(Enrollment.history.filter(history_type="+").values_list(
        "recipient_hash", flat=True))
    last = {}
    for row in Enrollment.history.order_by("history_date", "history_id"):
        last[row.recipient_hash] = (row.recipient_hash, row.current_step_id, row.paused)
    assert sorted(last.values()) == enrollments
    event_history = sorted(EngagementEvent.history.filter(history_type="+").values_list(
        "enrollment_id", "step_id", "event_type", "days"))
    assert event_history == sorted(EngagementEvent.objects.values_list(
        "enrollment_id", "step_id", "event_type", "days"))
    return enrollments, events, created, sorted(last.values())


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(before=st.lists(EVENT, max_size=12), history=st.lists(EVENT, min_size=1, max_size=40),
       cuts=st.lists(st.integers(1, 39), max_size=4))
def test_batches_end_where_one_by_one_ends_on_random_histories(adaptive, before, history, cuts):
    """Random events over three recipients (thresholds, pauses, silence, a way back to a step
    with earlier events), some recorded before, the rest one by one or in batches cut
    anywhere: the same outcomes, enrollments, events and history."""
    s = adaptive["steps"]
    example = transaction.savepoint()
    try:
        Transition.objects.create(from_step=s["d"], event_type="opened", to_step=s["b"])
        Transition.objects.create(from_step=s["e"], event_type="declined", threshold=2,
                                  to_step=s["a"])
        earlier = [as_input(adaptive, *item) for item in before]
        events = [as_input(adaptive, *item) for item in history]
        runs = []
        for batched in (False, True):
            savepoint = transaction.savepoint()
            try:
                for e in earlier:
                    record_event(e.journey, e.step, e.pseudonymous_id, e.event_type,
                                 days=e.days, occurred_at=e.occurred_at)
                if batched:
                    bounds = sorted({0, len(events), *(c for c in cuts if c < len(events))})
                    outcomes = [o for start, end in zip(bounds, bounds[1:], strict=False)
                                for o in record_events(events[start:end])]
                else:
                    outcomes = [record_event(e.journey, e.step, e.pseudonymous_id,
                                             e.event_type, days=e.days,
                                             occurred_at=e.occurred_at) for e in events]
                runs.append(([(o.moved, o.paused, o.next_step and o.next_step.pk,
                               o.transition and o.transition.pk) for o in outcomes],
                             full_state()))
            finally:
                transaction.savepoint_rollback(savepoint)
    finally:
        transaction.savepoint_rollback(example)
    one_by_one, batched = runs
    assert batched == one_by_one


def test_events_at_a_step_before_reaching_it_count_toward_its_threshold(adaptive):
    """An ignore at b recorded while the recipient is still at a counts when it reaches b:
    the second ignore at b then moves it to c, within one batch as one by one."""
    s = adaptive["steps"]
    events = [as_input(adaptive, step, 0, event, None)
              for step, event in [("a", "downloaded"), ("b", "ignored"), ("a", "opened"),
                                  ("b", "ignored")]]
    outcomes = record_events(events)
    assert [(o.moved, o.next_step.key) for o in outcomes] == [
        (False, "a"), (False, "a"), (True, "b"), (True, "c")]
    assert Enrollment.objects.get().current_step == s["c"]
