"""Engagement events move pseudonymous recipients along the adaptive paths."""

import pytest
from django.core.exceptions import ValidationError

from content.models import Channel
from journeys.engagement import mark_seen, record_event
from journeys.models import EngagementEvent, Enrollment, Step, Transition, pseudonymous_id
from tests.factories import term

pytestmark = pytest.mark.django_db


@pytest.fixture
def paths(world):
    journey, stage = world["journey"], world["stage"]
    portal = Step.objects.create(journey=journey, stage=stage, key="portal-micro",
                                 name="Portal micro-content", channel=term(Channel, "portal"))
    efficacy = Step.objects.create(journey=journey, stage=stage, key="efficacy", name="Efficacy",
                                   channel=term(Channel, "email"))
    welcome = world["step"]
    Transition.objects.create(from_step=welcome, event_type="ignored", threshold=2, to_step=portal)
    Transition.objects.create(from_step=welcome, event_type="clicked", to_step=efficacy)
    Transition.objects.create(from_step=welcome, event_type="no_engagement_for", days=30, pause=True)
    return {"welcome": welcome, "portal": portal, "efficacy": efficacy, "journey": journey}


def test_two_ignored_emails_reroute_to_portal_micro_content(paths):
    who = pseudonymous_id("crm-42")
    first = record_event(paths["journey"], paths["welcome"], who, "ignored")
    assert first.next_step == paths["welcome"] and not first.moved
    second = record_event(paths["journey"], paths["welcome"], who, "ignored")
    assert second.next_step == paths["portal"] and second.moved


def test_deep_reading_moves_to_efficacy(paths):
    outcome = record_event(paths["journey"], paths["welcome"], pseudonymous_id("a"), "clicked")
    assert outcome.next_step == paths["efficacy"]


def test_thirty_silent_days_pause_outreach(paths):
    who = pseudonymous_id("b")
    assert not record_event(paths["journey"], paths["welcome"], who, "no_engagement_for", days=10).paused
    outcome = record_event(paths["journey"], paths["welcome"], who, "no_engagement_for", days=31)
    assert outcome.paused and outcome.next_step is None


def test_enrollment_stores_only_a_pseudonym(paths):
    record_event(paths["journey"], paths["welcome"], pseudonymous_id("crm-0001"), "opened")
    enrollment = Enrollment.objects.get()
    assert enrollment.recipient_hash == pseudonymous_id("crm-0001") != "crm-0001"
    assert EngagementEvent.objects.count() == 1
    assert enrollment.history.count() >= 1


@pytest.mark.parametrize("kwargs, field", [
    ({"pseudonymous_id": "crm-0001"}, "recipient"),
    ({"event_type": "exploded"}, "event_type"),
    ({"event_type": "no_engagement_for"}, "days"),
])
def test_bad_events_are_refused_and_store_nothing(paths, kwargs, field):
    args = {"pseudonymous_id": pseudonymous_id("c"), "event_type": "opened", **kwargs}
    with pytest.raises(ValidationError) as raised:
        record_event(paths["journey"], paths["welcome"], args["pseudonymous_id"], args["event_type"])
    assert field in raised.value.message_dict
    assert not Enrollment.objects.exists() and not EngagementEvent.objects.exists()


def test_seen_modules_are_remembered_once(paths):
    outcome = record_event(paths["journey"], paths["welcome"], pseudonymous_id("d"), "opened")
    mark_seen(outcome.enrollment, [3, 4])
    mark_seen(outcome.enrollment, [4, 5])
    outcome.enrollment.refresh_from_db()
    assert outcome.enrollment.seen_module_ids == [3, 4, 5]


def test_silence_sweep_pauses_recipients_quiet_for_thirty_days(paths):
    from datetime import timedelta

    from django.utils import timezone

    from journeys.engagement import apply_silence

    quiet, active = pseudonymous_id("quiet"), pseudonymous_id("active")
    long_ago = timezone.now() - timedelta(days=40)
    record_event(paths["journey"], paths["welcome"], quiet, "opened", occurred_at=long_ago)
    record_event(paths["journey"], paths["welcome"], active, "opened")
    assert apply_silence() == 1
    assert Enrollment.objects.get(recipient_hash=quiet).paused
    assert not Enrollment.objects.get(recipient_hash=active).paused
    assert apply_silence() == 0  # idempotent
