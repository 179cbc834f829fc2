"""Orchestration test world: a live three-plus-one-step US/DE journey, clocks passed in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from content.models import Channel, Jurisdiction
from journeys.models import Slot, Step
from orchestration import lifecycle
from tests.api.builders import build_world, make_version, token, token_client
from tests.factories import term

# Monday 1 March 2027, 06:00 UTC: 07:00 in Berlin, 01:00 in New York (both before 09:00).
MONDAY = datetime(2027, 3, 1, 6, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(db):
    """hcp-new: welcome (email) → portal-followup (portal, +3 days) → rep-visit (rep,
    +2 days, an approved call note) → reminder (email, +7 days). Markets US and DE; live."""
    w = build_world()
    journey = w["journey"]
    journey.jurisdictions.add(Jurisdiction.objects.get(code="DE"))
    Step.objects.filter(pk=w["portal"].pk).update(delay_days=3)
    column = w["step"].stage
    rep = Step.objects.create(journey=journey, stage=column, key="rep-visit", name="Rep visit",
                              channel=term(Channel, "rep"), order=2, delay_days=2,
                              purpose="medical")
    call_note = make_version(w["brand"], "CAR-CALL-001", kind="body",
                             body="<p>Call note: efficacy data.</p>",
                             tags={"channels": ["rep"]})
    Slot.objects.create(step=rep, order=0, module=call_note.module)
    reminder = Step.objects.create(journey=journey, stage=column, key="reminder",
                                   name="Reminder", channel=term(Channel, "email"), order=3,
                                   delay_days=7)
    lifecycle.go_live(journey, now=MONDAY)
    w.update(rep=rep, reminder=reminder, call_note=call_note)
    return w


@pytest.fixture
def email_client(world):
    _token, key = token(channels=("email",), jurisdictions=("US", "DE"), name="Email sender")
    return token_client(key)
