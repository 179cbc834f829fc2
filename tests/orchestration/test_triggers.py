"""Attribute and time rules move the matching people and say which rule fired; a paused
person is not moved."""

from datetime import timedelta

from journeys.models import Enrollment, Transition, pseudonymous_id
from orchestration import enrollment, triggers
from orchestration.models import Move, TriggerRule

from .conftest import MONDAY


def enroll(journey, *rows):
    items, problems = enrollment.clean(list(rows), markets={"US", "DE"},
                                       channels={"email", "portal", "rep"})
    assert not problems
    enrollment.enroll(journey, items, now=MONDAY)


def step_of(recipient_id):
    return Enrollment.objects.get(recipient_hash=pseudonymous_id(recipient_id)).current_step


def test_attribute_and_time_rules(world):
    journey = world["journey"]
    enroll(journey, {"id": "cardio", "market": "US", "specialty": "cardiology"},
           {"id": "neuro", "market": "DE", "specialty": "neurology"})
    to_rep = Transition.objects.create(from_step=world["step"], event_type="clicked",
                                       to_step=world["rep"])
    TriggerRule.objects.create(journey=journey, name="cardiologists see a rep", kind="attribute",
                               transition=to_rep,
                               conditions={"attributes": {"specialty": "Cardiology"}})
    assert triggers.evaluate(now=MONDAY) == 1
    assert step_of("cardio") == world["rep"] and step_of("neuro") == world["step"]
    to_portal = Transition.objects.create(from_step=world["step"], event_type="ignored",
                                          threshold=3, to_step=world["portal"])
    TriggerRule.objects.create(journey=journey, name="ten days at welcome", kind="time",
                               transition=to_portal, conditions={"after_days": 10})
    assert triggers.evaluate(now=MONDAY + timedelta(days=9)) == 0
    assert triggers.evaluate(now=MONDAY + timedelta(days=10)) == 1
    assert step_of("neuro") == world["portal"]
    assert sorted(Move.objects.values_list("rule__name", flat=True)) == [
        "cardiologists see a rep", "ten days at welcome"]
    assert all("fired" in reason for reason in Move.objects.values_list("reason", flat=True))
