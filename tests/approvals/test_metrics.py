from datetime import timedelta

import pytest

from approvals import services
from approvals.metrics import bar_chart, cycle_times, humanize
from approvals.models import ReviewRound
from tests.factories import BrandFactory, ModuleFactory, VersionFactory

from .helpers import approve_all

pytestmark = pytest.mark.django_db


def test_cycle_time_runs_from_first_submission_to_approval_per_brand_and_role(reviewers):
    brand = BrandFactory(name="Zeta")
    version = VersionFactory(module=ModuleFactory(brand=brand))
    services.submit_for_review(version=version, actor=version.created_by)
    round_ = ReviewRound.objects.get(version=version)
    round_.submitted_at -= timedelta(hours=2)  # as if submitted two hours ago
    round_.save()
    approve_all(version, reviewers)
    VersionFactory(module=ModuleFactory(brand=BrandFactory(name="Alpha")))  # never submitted

    [zeta] = cycle_times()
    assert zeta.brand == "Zeta" and zeta.total.count == 1
    assert 7200 <= zeta.total.mean_seconds < 7260
    assert zeta.total.mean_display == "2.0 h"
    for stats in zeta.roles.values():
        assert 7200 <= stats.mean_seconds < 7260
    chart = bar_chart([zeta])
    assert [b["series"] for b in chart["groups"][0]["bars"]] == ["total", "medical", "legal",
                                                                 "regulatory"]
    assert all(b["width"] > 0 for b in chart["groups"][0]["bars"])


def test_cycle_times_read_in_a_fixed_number_of_queries(reviewers, django_assert_max_num_queries):
    for _ in range(3):
        version = VersionFactory()
        services.submit_for_review(version=version, actor=version.created_by)
        approve_all(version, reviewers)
    with django_assert_max_num_queries(2):
        assert sum(m.total.count for m in cycle_times()) == 3


@pytest.mark.parametrize("seconds,text", [(None, "—"), (0.25, "0.2 s"), (30, "30 s"), (600, "10 min"),
                                          (5400, "1.5 h"), (3 * 86400, "3.0 d")])
def test_durations_read_naturally(seconds, text):
    assert humanize(seconds) == text
