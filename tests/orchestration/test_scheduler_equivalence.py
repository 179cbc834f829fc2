"""The optimized scheduler decides exactly as the straightforward one
(tests/orchestration/reference_scheduler.py) on random enrollments: markets in
Europe/Berlin and America/New_York (default business hours, or quiet hours and a Saturday
configured), weekends and DST changes, delays, moves, pauses, consent, preferences,
touchpoints already had, caps (one recipient in several profiles too) and small batches.
And the quarter-hour calendar answers exactly as `windows.next_open`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeys.models import Enrollment
from orchestration import enrollment, scheduler
from orchestration.models import (
    DueTouchpoint,
    EnrollmentProfile,
    FrequencyCap,
    RepTask,
    SendWindow,
)
from orchestration.windows import Calendar, Window, next_open
from tests.orchestration import reference_scheduler

# Around both DST changes of 2027 in Europe (28 March, 31 October) and the US (14 March,
# 7 November), and an ordinary week.
BASES = [datetime(2027, 3, 12, tzinfo=UTC), datetime(2027, 3, 26, tzinfo=UTC),
         datetime(2027, 10, 29, tzinfo=UTC), datetime(2027, 11, 5, tzinfo=UTC),
         datetime(2027, 6, 7, tzinfo=UTC)]
moments = st.builds(lambda base, minutes: base + timedelta(minutes=minutes),
                    st.sampled_from(BASES), st.integers(0, 4 * 24 * 60))
windows = st.builds(
    lambda zone, hours, days: Window("XX", zone, hours[0], hours[1], frozenset(days)),
    st.sampled_from(["Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC"]),
    st.tuples(st.integers(0, 23), st.integers(1, 24)).filter(lambda h: h[0] < h[1])
    | st.just((9, 9)),
    st.sets(st.integers(0, 6)))


@settings(max_examples=300, deadline=None)
@given(window=windows, at=moments, micro=st.integers(0, 59_999_999))
def test_calendar_answers_as_next_open(window, at, micro):
    at += timedelta(microseconds=micro)
    calendar = Calendar(window)
    assert calendar.next_open(at) == next_open(at, window)
    assert calendar.next_open(at) == next_open(at, window)  # remembered the same


consents = st.fixed_dictionaries({}, optional={"email": st.booleans(), "portal": st.booleans(),
                                               "rep": st.booleans()})
people = st.lists(st.fixed_dictionaries({
    "market": st.sampled_from(["US", "DE"]),
    "consent": consents,
    "channels": st.sampled_from([[], ["email"], ["portal"], ["email", "portal"], ["rep"]]),
    "step": st.integers(0, 4),          # index into the journey's steps; 4 = finished
    "moved": st.booleans(),             # an event moved them since the last evaluation
    "paused": st.integers(0, 9).map(lambda n: n == 0),
    "entered_hours": st.integers(0, 12 * 24),
    "due": st.integers(0, 5).map(lambda n: n != 0),
    "same_recipient_as_first": st.integers(0, 3).map(lambda n: n == 0),
    "had": st.lists(st.tuples(st.integers(0, 3), st.integers(1, 14 * 24),
                              st.sampled_from(["due", "leased", "delivered", "failed"])),
                    max_size=3),
}), min_size=1, max_size=14)
caps = st.lists(st.tuples(st.sampled_from(["email", "portal", "rep"]),
                          st.sampled_from(["", "promotional", "medical"]),
                          st.integers(1, 2), st.integers(1, 10), st.booleans()), max_size=3)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(now=moments, people=people, caps=caps, batch_size=st.integers(1, 6),
       us_quiet=st.booleans())
def test_optimized_scheduler_decides_as_the_reference(world, now, people, caps, batch_size,
                                                      us_quiet):
    with transaction.atomic():
        seed(world, now, people, caps, us_quiet)
        expected = outcome(lambda: reference_scheduler.run(now=now, batch_size=batch_size))
        actual = outcome(lambda: scheduler.run(now=now, batch_size=batch_size))
        transaction.set_rollback(True)
    assert actual == expected


def seed(world, now, people, caps, us_quiet):
    journey = world["journey"]
    steps = [world["step"], world["portal"], world["rep"], world["reminder"]]
    if us_quiet:  # quiet hours 20:00-08:00 and Saturdays open in New York
        SendWindow.objects.create(market="US", time_zone="America/New_York", start_hour=8,
                                  end_hour=20, weekdays=[0, 1, 2, 3, 4, 5])
    for channel, purpose, count, days, branded in caps:
        FrequencyCap.objects.create(channel=channel, purpose=purpose, max_count=count,
                                    period_days=days,
                                    brand=world["brand"] if branded else None)
    items, problems = enrollment.clean(
        [{"id": f"p{i}", "market": p["market"], "consent": p["consent"],
          "channels": p["channels"]} for i, p in enumerate(people)],
        markets={"US", "DE"}, channels={"email", "portal", "rep"})
    assert not problems
    enrollment.enroll(journey, items, now=now)
    profiles = list(EnrollmentProfile.objects.filter(journey=journey).order_by("id"))
    first = profiles[0].recipient_hash
    for person, profile in zip(people, profiles, strict=True):
        step = steps[person["step"]] if person["step"] < 4 else None
        row = Enrollment.objects.get(pk=profile.enrollment_id)
        row.current_step, row.paused = step, person["paused"]
        row.save()
        profile.planned_step = steps[(person["step"] + 1) % 4] if person["moved"] else step
        profile.step_entered_at = now - timedelta(hours=person["entered_hours"])
        profile.next_check_at = now if person["due"] else now + timedelta(hours=1)
        if person["same_recipient_as_first"]:
            profile.recipient_hash = first
        profile.save()
        for index, hours, status in person["had"]:
            had = steps[index]
            DueTouchpoint.objects.get_or_create(
                enrollment_id=profile.enrollment_id, step=had, defaults=dict(
                    recipient_hash=profile.recipient_hash, brand_id=world["brand"].pk,
                    channel=had.channel.code, purpose=had.purpose, market=profile.market,
                    due_at=now - timedelta(hours=hours), status=status,
                    created_at=now - timedelta(hours=hours)))


def outcome(run) -> tuple:
    """What a scheduler run decided, then undone (a savepoint) for the other one."""
    savepoint = transaction.savepoint()
    report = run()
    state = (
        {k: v for k, v in vars(report).items() if k != "batches"},
        list(EnrollmentProfile.objects.order_by("id").values_list(
            "id", "status", "planned_step_id", "step_entered_at", "next_check_at", "reason")),
        list(Enrollment.objects.order_by("id").values_list("id", "current_step_id")),
        list(DueTouchpoint.objects.order_by("enrollment_id", "step_id").values_list(
            "enrollment_id", "step_id", "recipient_hash", "brand_id", "channel", "purpose",
            "market", "locale", "due_at", "status", "reason", "finished_at")),
        sorted(RepTask.objects.values_list("touchpoint__enrollment_id", "module_code")),
    )
    transaction.savepoint_rollback(savepoint)
    return state
