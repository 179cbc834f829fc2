"""Event histories for the rollup tests: a second journey running in two markets (so an
enrollment's market comes from its first delivery), events and deliveries written with
chosen ids (so an id below ones already rolled up models a batch that committed late), and
a snapshot of the three derived tables keyed by pseudonym (enrollment ids differ between
two replays of one history)."""

from __future__ import annotations

import datetime as dt

from analytics.models import DailyRollup, EnrollmentMarket, RecipientStep
from content.models import Channel, Jurisdiction
from delivery.models import Delivery
from journeys.models import EngagementEvent, Enrollment, Journey, Step
from tests.factories import term


def pseudonym(who: str) -> str:
    return f"{who:0>64}"[-64:]


def add_duo(mini) -> dict:
    """Journey `duo` (markets US and DE; steps x → y) beside the `mini` fixture's journey."""
    mini_journey = mini["journey"]
    de, _ = Jurisdiction.objects.get_or_create(code="DE", defaults={"name": "Germany"})
    us = Jurisdiction.objects.get(code="US")
    journey = Journey.objects.create(slug="duo", name="Duo journey", brand=mini_journey.brand,
                                     audience=mini_journey.audience, locale=mini_journey.locale)
    journey.jurisdictions.set([us, de])
    stages = {}
    for order, code in enumerate(["awareness", "interest"], start=1):
        stages[code] = journey.stages.create(
            audience_stage=mini["stages"][code].audience_stage, order=order)
    steps = {
        "x": Step.objects.create(journey=journey, stage=stages["awareness"], key="x", name="X",
                                 channel=term(Channel, "email"), order=1),
        "y": Step.objects.create(journey=journey, stage=stages["interest"], key="y", name="Y",
                                 channel=term(Channel, "portal"), order=2),
    }
    return {"journey": journey, "steps": steps}


def add_event(step: Step, who: str, event_type: str, at: dt.datetime, *, pk: int | None = None):
    enrollment, _ = Enrollment.objects.get_or_create(
        journey_id=step.journey_id, recipient_hash=pseudonym(who), defaults={"current_step": step})
    return EngagementEvent.objects.create(pk=pk, enrollment=enrollment, step=step,
                                          event_type=event_type, occurred_at=at)


def add_delivery(step: Step, who: str, market: str, at: dt.datetime, *, pk: int | None = None):
    return Delivery.objects.create(
        pk=pk, served_at=at, channel="email", jurisdiction=market, locale="en",
        journey_slug=step.journey.slug, step_key=step.key, recipient_pseudonym=pseudonym(who),
        output_sha256="0" * 64, manifest={})


def snapshot() -> dict:
    """The three derived tables, in a form two replays of a history can be compared in."""
    return {
        "daily": sorted(DailyRollup.objects.values_list(
            "day", "journey_id", "stage_id", "step_id", "channel", "market", "module_version_id",
            "deliveries", "events", "opened", "clicked", "downloaded", "declined", "ignored",
            "attended", "silent", "recipients")),
        "paths": sorted(RecipientStep.objects.values_list(
            "enrollment__recipient_hash", "journey_id", "step_id", "stage_id", "market",
            "first_at", "last_at", "opened", "clicked", "declined", "ignored")),
        "markets": sorted(EnrollmentMarket.objects.values_list(
            "enrollment__journey_id", "enrollment__recipient_hash", "market")),
    }
