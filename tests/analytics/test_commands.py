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
