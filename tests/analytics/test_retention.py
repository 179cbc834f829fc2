"""Raw-event retention (TESSERA_EVENT_RETENTION_DAYS): the daily purge deletes rolled-up
events older than the window AND their history copies (journeys_historicalengagementevent,
append-only otherwise); rollups and recipient paths stay; the purge is in the audit trail.
On PostgreSQL the history table still refuses every other change (analytics 0003)."""

import datetime as dt

import pytest
from django.db import DatabaseError, connection, transaction

from analytics import rollups
from analytics.models import DailyRollup, RecipientStep
from analytics.tasks import purge_raw_events
from approvals.models import AuditEntry
from journeys.models import EngagementEvent

from .conftest import T0, add_event

History = EngagementEvent.history.model


@pytest.mark.django_db
def test_the_purge_deletes_old_events_and_their_history_copies_and_keeps_the_rollups(
        mini, settings):
    settings.TESSERA_EVENT_RETENTION_DAYS = 30
    j, s = mini["journey"], mini["steps"]
    old = add_event(j, s["a"], "old", "opened", T0)  # ~270 days before the suite's "now"
    recent = add_event(j, s["a"], "new", "clicked", dt.datetime.now(dt.UTC)
                       - dt.timedelta(days=2))
    assert History.objects.filter(id__in=[old.pk, recent.pk]).count() == 2
    rollups.run(now=T0 + dt.timedelta(days=1))  # the old day was rolled up in its time
    rollups.REREAD_IDS, saved = 0, rollups.REREAD_IDS
    try:
        assert purge_raw_events() == {"events": 1, "history": 1}  # the beat task
        assert purge_raw_events() == {"events": 0, "history": 0}
    finally:
        rollups.REREAD_IDS = saved
    assert list(EngagementEvent.objects.values_list("pk", flat=True)) == [recent.pk]
    assert list(History.objects.values_list("id", flat=True)) == [recent.pk]
    assert DailyRollup.objects.filter(day=T0.date(), opened=1).exists()
    assert RecipientStep.objects.count() == 2
    entry = AuditEntry.objects.get(event="analytics_raw_events_purged")
    assert entry.data["events"] == entry.data["history"] == 1
    assert entry.data["retention_days"] == 30


@pytest.mark.django_db
def test_events_not_yet_rolled_up_are_kept_with_their_history(mini, settings):
    settings.TESSERA_EVENT_RETENTION_DAYS = 30
    add_event(mini["journey"], mini["steps"]["a"], "old", "opened", T0)
    rollups.REREAD_IDS, saved = 0, rollups.REREAD_IDS
    try:
        assert purge_raw_events() == {"events": 0, "history": 0}  # no rollup run has read it
    finally:
        rollups.REREAD_IDS = saved
    assert EngagementEvent.objects.count() == History.objects.count() == 1
    assert not AuditEntry.objects.filter(event="analytics_raw_events_purged").exists()


def _refused(sql, params=()):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SELECT set_config(%s, %s, true)",
                       [rollups.HISTORY_PURGE_SETTING, dt.datetime.now(dt.UTC).isoformat()])
        cursor.execute(sql, params)


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_history_table_still_refuses_every_other_change(mini):
    old = add_event(mini["journey"], mini["steps"]["a"], "old", "opened", T0)
    recent = add_event(mini["journey"], mini["steps"]["a"], "new", "opened",
                       dt.datetime.now(dt.UTC) - dt.timedelta(days=29))
    table = History._meta.db_table
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), \
            connection.cursor() as cursor:  # without the purge's switch
        cursor.execute(f'DELETE FROM "{table}" WHERE id = %s', [old.pk])
    # With the switch (cutoff: now): history younger than 30 days stays; no UPDATE; no TRUNCATE.
    _refused(f'DELETE FROM "{table}" WHERE id = %s', [recent.pk])
    _refused(f'UPDATE "{table}" SET event_type = %s WHERE id = %s', ["clicked", old.pk])
    _refused(f'TRUNCATE "{table}"')
    assert History.objects.count() == 2
