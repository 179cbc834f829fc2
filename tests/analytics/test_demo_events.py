"""demo/events.py: the same seed gives the same history; events follow the journey's
designed transitions (mostly) and feed the rollups."""

import datetime as dt
import io
import random

import pytest

from analytics.metrics import journey_analytics
from demo import events as demo_events
from journeys.models import EngagementEvent, Enrollment

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def history():
    return sorted(EngagementEvent.objects.values_list(
        "enrollment__recipient_hash", "step__key", "event_type", "days", "occurred_at"))


HASHES = [demo_events.pseudonym("mini", n) for n in range(60)]


def test_the_same_seed_gives_the_same_history(mini):
    made = demo_events.generate(mini["journey"], HASHES, random.Random("15:mini"), NOW)
    first = history()
    assert made == len(first) > 60
    assert all(NOW - dt.timedelta(days=demo_events.WINDOW_DAYS) <= at <= NOW
               for *_, at in first)
    EngagementEvent.objects.all().delete()
    Enrollment.objects.all().delete()
    demo_events.generate(mini["journey"], HASHES, random.Random("15:mini"), NOW)
    assert history() == first


def test_load_skips_journeys_it_does_not_know_and_is_idempotent(mini, monkeypatch):
    monkeypatch.setattr(demo_events, "RECIPIENTS", {"mini": 40, "missing": 5})
    out = io.StringIO()
    demo_events.load(out)
    count = EngagementEvent.objects.count()
    demo_events.load(out)
    assert EngagementEvent.objects.count() == count > 0
    assert "missing skipped" in out.getvalue() and "already has its history" in out.getvalue()
    data = journey_analytics(mini["journey"])
    # Everyone with an event entered at the entry step a (recipients without one are absent).
    assert data["funnel"][0]["reached"] == Enrollment.objects.filter(journey=mini["journey"]).count()
