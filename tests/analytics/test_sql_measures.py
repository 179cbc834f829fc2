"""Velocity in grouped SQL (analytics/sql_measures.py, PostgreSQL) equals the Python
definition (metrics.velocity_of / velocity_trend over the recipients' paths) on random
paths: ties, moves back in time, microseconds, several months, and filters."""

import datetime as dt
import random

import pytest

from analytics import metrics, sql_measures
from analytics.models import RecipientStep
from journeys.models import Enrollment

from .conftest import T0

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def random_paths(mini, rng: random.Random, recipients: int) -> None:
    journey, steps = mini["journey"], list(mini["steps"].values())
    enrollments = Enrollment.objects.bulk_create([
        Enrollment(journey=journey, recipient_hash=f"{n:064x}") for n in range(recipients)])
    rows = []
    for enrollment in enrollments:
        for step in rng.sample(steps, rng.randint(1, len(steps))):
            first = T0 + dt.timedelta(days=rng.choice([0, 0, 3, 10, 40, 75]),
                                      seconds=rng.randrange(86400),
                                      microseconds=rng.randrange(10**6))
            rows.append(RecipientStep(
                journey=journey, enrollment=enrollment, stage_id=step.stage_id, step=step,
                market=rng.choice(["US", "DE"]), first_at=first,
                last_at=first + dt.timedelta(hours=rng.randrange(100))))
    RecipientStep.objects.bulk_create(rows, batch_size=5000)


def close(sql_rows, python_rows):
    assert [{k: v for k, v in r.items() if k != "median_days"} for r in sql_rows] == [
        {k: v for k, v in r.items() if k != "median_days"} for r in python_rows]
    assert [r["median_days"] for r in sql_rows] == pytest.approx(
        [r["median_days"] for r in python_rows], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("filters", [
    metrics.Filters(), metrics.Filters(market="DE"), metrics.Filters(channel="email"),
    metrics.Filters(start=(T0 + dt.timedelta(days=2)).date(),
                    end=(T0 + dt.timedelta(days=50)).date()),
])
def test_sql_velocity_equals_the_python_definition(mini, filters):
    random_paths(mini, random.Random(15), 400)
    journey = mini["journey"]
    design = metrics.design_of(journey)
    paths = metrics.paths_of(journey, filters, design)
    python = metrics.velocity_of(paths, design)
    assert sum(r["recipients"] for r in python) > 0
    close(sql_measures.velocity(journey, filters, design), python)
    close(sql_measures.velocity_trend(journey, filters, design),
          metrics.velocity_trend(paths, design))


def test_no_recipients_gives_the_empty_figures(mini):
    design = metrics.design_of(mini["journey"])
    assert sql_measures.velocity(mini["journey"], design=design) == metrics.velocity_of({}, design)
    assert sql_measures.velocity_trend(mini["journey"], design=design) == []
