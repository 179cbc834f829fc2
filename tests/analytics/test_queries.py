"""The beat task refreshes each moved journey's default view after its rollup run, so
page views never compute it; between a rollup and its refresh the view is one run old."""

import datetime as dt

import pytest
from django.core.cache import cache

from analytics import queries, rollups
from analytics.metrics import Filters
from analytics.tasks import roll_up

from .conftest import T0, add_event

pytestmark = pytest.mark.django_db


def reached(mini, filters=None):
    return queries.journey_analytics(mini["journey"], filters)["funnel"][0]["reached"]


def test_the_task_refreshes_the_default_view(mini):
    cache.clear()
    j, a = mini["journey"], mini["steps"]["a"]
    for n in range(6):
        add_event(j, a, f"q{n}", "opened", T0)
    result = roll_up()
    assert result["journeys"] == [j.pk] and result["refreshed"] == 1
    assert reached(mini) == 6
    add_event(j, a, "q6", "opened", T0)
    rollups.run()  # rolled up, not yet refreshed: the default view is one run old
    assert reached(mini) == 6
    assert reached(mini, Filters(start=T0.date() - dt.timedelta(days=1))) == 7  # filtered: fresh
    roll_up()
    assert reached(mini) == 7
