"""The worked example of docs/analytics.md, number by number: velocity, coherence, funnel
and time in stage on five hand-made paths (raw figures, before suppression)."""

import datetime as dt

import pytest

from analytics.metrics import (
    Design,
    Visit,
    coherence_of,
    funnel_of,
    percentile,
    time_in_stage_of,
    velocity_of,
)

D0 = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)


def day(n):
    return D0 + dt.timedelta(days=n)


# Stages S1 < S2 < S3; steps a (S1), b, c (S2), d, e (S3); designed moves a→b, a→c, b→d, c→d.
DESIGN = Design(
    stages=[(1, "S1"), (2, "S2"), (3, "S3")],
    steps=[(10, "a", 1, "email"), (20, "b", 2, "portal"), (30, "c", 2, "email"),
           (40, "d", 3, "rep"), (50, "e", 3, "email")],
    moves=frozenset({(10, 20), (10, 30), (20, 40), (30, 40)}),
)


def v(step, first, last=None):
    return Visit(step, day(first), day(first if last is None else last))


PATHS = {
    1: [v(10, 0), v(20, 2), v(40, 5)],          # R1 a → b → d
    2: [v(10, 0), v(30, 4), v(40, 10)],         # R2 a → c → d
    3: [v(10, 0), v(40, 3)],                    # R3 a → d (skips S2's steps)
    4: [v(20, 1)],                              # R4 starts at b
    5: [v(10, 0), v(20, 1), v(30, 3, 6)],       # R5 a → b → c; last event at c on day 6
}


def test_coherence_of_the_worked_example():
    c = coherence_of(PATHS, DESIGN)
    assert c["recipients"] == 5 and c["coherent"] == 2  # 40 %
    assert sorted(c["off_path"]) == [(("a", "d"), 1), (("b", "c"), 1), (("start", "b"), 1)]
    assert c["unreached"] == ["e"]


def test_velocity_of_the_worked_example():
    rows = {(r["from"], r["to"]): r for r in velocity_of(PATHS, DESIGN)}
    assert rows[("S1", "S2")] == {"from": "S1", "to": "S2", "recipients": 3,
                                  "median_days": 2, "p90_days": 4}
    assert rows[("S2", "S3")]["median_days"] == 4.5 and rows[("S2", "S3")]["p90_days"] == 6
    assert rows[("S1", "S3")]["recipients"] == 3
    assert rows[("S1", "S3")]["median_days"] == 5 and rows[("S1", "S3")]["p90_days"] == 10


def test_funnel_of_the_worked_example():
    stages = funnel_of(PATHS, DESIGN)["stages"]
    assert [(s["stage"], s["reached"], s["to_next"]) for s in stages] == [
        ("S1", 4, 3), ("S2", 4, 2), ("S3", 3, None)]
    assert [st["reached"] for st in stages[1]["steps"]] == [3, 2]  # b, c


def test_time_in_stage_of_the_worked_example():
    rows = {r["stage"]: r for r in time_in_stage_of(PATHS, DESIGN)}
    # S2: R1 0, R2 0, R4 0, R5 from day 1 (b) to day 6 (last event at c) = 5
    assert rows["S2"]["recipients"] == 4
    assert rows["S2"]["median_days"] == 0 and rows["S2"]["p90_days"] == 5


@pytest.mark.parametrize("values,p,expected", [
    ([1, 2, 4], 90, 4), ([3, 6], 90, 6), ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90, 9), ([], 90, None),
])
def test_percentile_is_nearest_rank(values, p, expected):
    assert percentile(values, p) == expected
