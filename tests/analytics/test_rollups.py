"""Rollups: incremental runs equal a from-scratch rebuild, on hand-made and random event
histories (hypothesis), in any interleaving of inserts and runs; re-running changes nothing."""

import datetime as dt

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics import rollups
from analytics.models import DailyRollup, RecipientStep, Watermark
from journeys.models import EngagementEvent

from .conftest import T0, add_event

pytestmark = pytest.mark.django_db

TYPES = ["opened", "clicked", "ignored", "declined", "downloaded"]


def snapshot():
    daily = sorted(DailyRollup.objects.values_list(
        "day", "step_id", "channel", "market", "module_version_id", "deliveries", "events",
        "opened", "clicked", "downloaded", "declined", "ignored", "attended", "silent",
        "recipients"))
    paths = sorted(RecipientStep.objects.values_list(
        "enrollment_id", "step_id", "stage_id", "market", "first_at", "last_at", "opened",
        "clicked", "declined", "ignored"))
    return daily, paths


def test_a_run_counts_events_per_day_step_and_type(mini):
    j, s = mini["journey"], mini["steps"]
    add_event(j, s["a"], "r1", "opened", T0)
    add_event(j, s["a"], "r1", "opened", T0 + dt.timedelta(hours=1))
    add_event(j, s["a"], "r2", "ignored", T0)
    add_event(j, s["b"], "r1", "clicked", T0 + dt.timedelta(days=1))
    rollups.run()
    a = DailyRollup.objects.get(step=s["a"], day=T0.date())
    assert (a.events, a.opened, a.ignored, a.recipients, a.market, a.channel) == (
        3, 2, 1, 2, "US", "email")
    assert DailyRollup.objects.get(step=s["b"]).clicked == 1
    r1_a = RecipientStep.objects.get(step=s["a"], enrollment__recipient_hash__endswith="r1")
    assert r1_a.opened and not r1_a.ignored and r1_a.last_at == T0 + dt.timedelta(hours=1)
    assert Watermark.objects.get(name="events").last_id == EngagementEvent.objects.latest("id").id


def test_rerunning_and_late_events_converge_to_the_rebuild(mini):
    j, s = mini["journey"], mini["steps"]
    add_event(j, s["a"], "r1", "opened", T0)
    rollups.run()
    rollups.run()  # nothing new: no change
    add_event(j, s["a"], "r2", "opened", T0 - dt.timedelta(days=3))  # arrives late
    add_event(j, s["c"], "r1", "clicked", T0 + dt.timedelta(days=2))
    rollups.run()
    incremental = snapshot()
    call_command("rebuild_analytics", stdout=open("/dev/null", "w"))
    assert snapshot() == incremental


def test_days_beyond_retention_are_kept_when_raw_events_are_purged(mini, settings):
    settings.TESSERA_EVENT_RETENTION_DAYS = 30
    j, s = mini["journey"], mini["steps"]
    now = T0 + dt.timedelta(days=100)
    add_event(j, s["a"], "old", "opened", T0)
    add_event(j, s["a"], "new", "opened", now - dt.timedelta(days=1))
    rollups.run(now=T0 + dt.timedelta(days=1))  # the old day was rolled up in its time
    before = DailyRollup.objects.filter(day=T0.date()).count()
    rollups.REREAD_IDS, saved = 0, rollups.REREAD_IDS
    try:
        assert rollups.purge_raw_events(now=now) == 1
    finally:
        rollups.REREAD_IDS = saved
    assert EngagementEvent.objects.count() == 1
    assert DailyRollup.objects.filter(day=T0.date()).count() == before == 1
    assert RecipientStep.objects.count() == 2


event = st.tuples(st.sampled_from("abcd"), st.integers(0, 7), st.sampled_from(TYPES),
                  st.integers(0, 6), st.booleans())


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(history=st.lists(event, min_size=1, max_size=25))
def test_incremental_rollups_equal_a_recomputation(mini, history):
    """Random events (step, recipient, type, day), with a rollup run after any of them."""
    DailyRollup.objects.all().delete()
    RecipientStep.objects.all().delete()
    Watermark.objects.all().delete()
    EngagementEvent.objects.all().delete()
    j, s = mini["journey"], mini["steps"]
    for step, who, kind, days, run_now in history:
        add_event(j, s[step], f"r{who}", kind, T0 + dt.timedelta(days=days, minutes=who))
        if run_now:
            rollups.run()
    rollups.run()
    incremental = snapshot()
    rollups.rebuild()
    assert snapshot() == incremental
    assert sum(r[6] for r in incremental[0]) == len(history)
