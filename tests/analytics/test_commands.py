"""grant_analytics gives and takes the analytics scope; rebuild_analytics reports."""

import io

import pytest
from django.core.management import CommandError, call_command

from analytics.models import AnalyticsGrant
from delivery.tokens import create_token

from .conftest import T0, add_event

pytestmark = pytest.mark.django_db


def test_grant_and_revoke_the_analytics_scope(mini):
    token, _ = create_token(name="BI", channels=["email"], jurisdictions=["US"])
    call_command("grant_analytics", "--token", "BI", stdout=io.StringIO())
    assert AnalyticsGrant.objects.filter(token=token).exists()
    call_command("grant_analytics", "--token", "BI", "--revoke", stdout=io.StringIO())
    assert not AnalyticsGrant.objects.exists()
    with pytest.raises(CommandError, match="0 active tokens"):
        call_command("grant_analytics", "--token", "nobody")


def test_rebuild_analytics_reports_what_it_did(mini):
    add_event(mini["journey"], mini["steps"]["a"], "r1", "opened", T0)
    out = io.StringIO()
    call_command("rebuild_analytics", stdout=out)
    assert "rolled up 1 journey-days, 1 recipient-steps" in out.getvalue()
    out = io.StringIO()
    call_command("rebuild_analytics", "--incremental", stdout=out)
    assert "rolled up 0 journey-days" in out.getvalue()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_run_while_another_holds_the_watermarks_is_skipped(mini):
    """Two rollup runs never overlap: with the watermarks held by another session (a run
    under way), the beat task and `--incremental` return at once, doing nothing."""
    import psycopg
    from django.db import connection

    from analytics.tasks import roll_up

    add_event(mini["journey"], mini["steps"]["a"], "r1", "opened", T0)
    call_command("rebuild_analytics", stdout=io.StringIO())
    add_event(mini["journey"], mini["steps"]["a"], "r2", "opened", T0)
    db = connection.settings_dict
    with psycopg.connect(dbname=db["NAME"], user=db.get("USER") or None,
                         password=db.get("PASSWORD") or None, host=db.get("HOST") or None,
                         port=db.get("PORT") or None) as other:
        assert len(other.execute("SELECT name FROM analytics_watermark FOR UPDATE").fetchall()) == 2
        out = io.StringIO()
        call_command("rebuild_analytics", "--incremental", stdout=out)
        assert "skipped: another rollup run holds the watermarks" in out.getvalue()
        assert roll_up() == {"skipped": True, "days": 0, "pairs": 0, "journeys": [],
                             "refreshed": 0}
        other.rollback()
    out = io.StringIO()
    call_command("rebuild_analytics", "--incremental", stdout=out)
    assert "rolled up 1 journey-days, 2 recipient-steps" in out.getvalue()  # r1 re-read too
