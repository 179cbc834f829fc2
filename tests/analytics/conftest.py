"""A small journey for analytics tests: three stages, steps a (entry) → b | c → d, and e
(nobody's); events are written as the API writes them (journeys.engagement)."""

import datetime as dt

import pytest

from content.models import Audience, Channel, Jurisdiction, Locale
from content.models import Stage as AudienceStage
from journeys.models import EngagementEvent, Enrollment, Journey, Stage, Step, Transition
from tests.factories import BrandFactory, term

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def mini(db):
    brand = BrandFactory(name="Cardiozen", slug="cardiozen")
    hcp = term(Audience, "hcp")
    us, _ = Jurisdiction.objects.get_or_create(code="US", defaults={"name": "United States"})
    journey = Journey.objects.create(slug="mini", name="Mini journey", brand=brand, audience=hcp,
                                     locale=term(Locale, "en"))
    journey.jurisdictions.set([us])
    stages = {}
    for order, code in enumerate(["awareness", "interest", "trial"], start=1):
        audience_stage, _ = AudienceStage.objects.get_or_create(
            audience=hcp, code=code, defaults={"name": code.title(), "order": order})
        stages[code] = Stage.objects.create(journey=journey, audience_stage=audience_stage,
                                            order=order)
    email, portal, rep = term(Channel, "email"), term(Channel, "portal"), term(Channel, "rep")
    spec = [("a", "awareness", email), ("b", "interest", portal), ("c", "interest", email),
            ("d", "trial", rep), ("e", "trial", email)]
    steps = {}
    for order, (key, stage, channel) in enumerate(spec, start=1):
        steps[key] = Step.objects.create(journey=journey, stage=stages[stage], key=key,
                                         name=key.upper(), channel=channel, order=order)
    for a, event, b in [("a", "opened", "b"), ("a", "ignored", "c"), ("b", "clicked", "d"),
                        ("c", "clicked", "d")]:
        Transition.objects.create(from_step=steps[a], event_type=event, to_step=steps[b])
    return {"journey": journey, "steps": steps, "stages": stages}


def add_event(journey, step, who: str, event_type: str, at: dt.datetime):
    """An engagement event as history: the enrollment (by pseudonym) and the event row."""
    pseudonym = f"{who:0>64}"[-64:]
    enrollment, _ = Enrollment.objects.get_or_create(
        journey=journey, recipient_hash=pseudonym, defaults={"current_step": step})
    return EngagementEvent.objects.create(enrollment=enrollment, step=step, event_type=event_type,
                                          occurred_at=at)
