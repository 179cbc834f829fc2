"""The new measures on hand-computed examples (docs/analytics.md states each one):
confidence intervals (published values), comparisons and their readings, the flows of the
worked example, and re-engagement after pauses by silence."""

import datetime as dt

import pytest

from analytics import privacy
from analytics.content_performance import NO_CLEAR_DIFFERENCE, TOO_FEW, compare, shown_rate
from analytics.flows import flow_picture, flow_rows, flows_of
from analytics.metrics import pauses, reengagement_of, shown_reengagement

from .test_metrics import DESIGN, PATHS, day

# --- intervals: published values ------------------------------------------------------------

def test_wilson_interval_matches_the_published_example():
    # Newcombe (1998), Statistics in Medicine 17:857, table I: 81/263 -> 0.2553 to 0.3662.
    assert privacy.wilson_interval(81, 263) == (0.255, 0.366)
    # 0/10: centre = (1.96²/20) / (1 + 1.96²/10) = 0.1388, half width the same -> 0 to 0.278.
    assert privacy.wilson_interval(0, 10) == (0.0, 0.278)
    assert privacy.wilson_interval(0, 0) is None


def test_difference_interval_matches_newcombe_method_10():
    # Newcombe (1998) table II, example (a): 56/70 - 48/80 = 0.2000, 95 % CI 0.0524 to 0.3339.
    d, low, high = privacy.difference_interval(48, 80, 56, 70)
    assert round(d, 4) == 0.2 and round(low, 4) == 0.0524 and round(high, 4) == 0.3339


# --- shown figures and readings -------------------------------------------------------------

def test_a_rate_comes_with_its_interval_and_is_suppressed_with_its_counts():
    assert shown_rate(8, 20) == {"recipients": 20, "engaged": 8, "rate": 0.4,
                                 "ci_low": 0.219, "ci_high": 0.613}
    small = shown_rate(4, 20)  # 4 engaged: the rate and the interval would single them out
    assert small["engaged"] == "< 5" and small["rate"] == small["ci_low"] == small["ci_high"] == "< 5"
    assert shown_rate(3, 4)["recipients"] == "< 5" and shown_rate(3, 4)["rate"] == "< 5"
    assert shown_rate(0, 0)["rate"] is None


def test_a_difference_whose_interval_holds_zero_reads_no_clear_difference():
    # 5/10 vs 9/10: d = 0.4; Wilson 0.23659-0.76341 and 0.59584-0.98212;
    # low  = 0.4 - sqrt((0.9 - 0.59584)² + (0.76341 - 0.5)²) = 0.4 - 0.40237 = -0.0024,
    # high = 0.4 + sqrt((0.98212 - 0.9)² + (0.5 - 0.23659)²) = 0.4 + 0.27592 = 0.6759.
    row = compare((5, 10), (9, 10), "HEAD v1", "HEAD v2")
    assert row["difference"] == 0.4 and row["ci_low"] == -0.002 and row["ci_high"] == 0.676
    assert row["reading"] == NO_CLEAR_DIFFERENCE


def test_a_difference_clear_of_zero_says_which_engages_more_or_less():
    assert compare((48, 80), (56, 70), "A", "B")["reading"] == "B engages more"
    assert compare((56, 70), (48, 80), "B", "A")["reading"] == "A engages less"


def test_a_comparison_with_a_small_side_is_suppressed_whole():
    row = compare((3, 4), (40, 50), "A", "B")
    assert row["difference"] == row["ci_low"] == row["ci_high"] == "< 5"
    assert row["reading"] == TOO_FEW


# --- flows of the worked example ------------------------------------------------------------

def test_flows_of_the_worked_example():
    # R1 a→b→d, R2 a→c→d, R3 a→d, R4 b, R5 a→b→c (steps 10 a, 20 b, 30 c, 40 d, 50 e).
    moves = flows_of(PATHS, DESIGN)
    assert moves == {(None, 10): 4, (None, 20): 1, (10, 20): 2, (10, 30): 1, (10, 40): 1,
                     (20, 40): 1, (30, 40): 1, (20, 30): 1}


def test_flow_rows_list_designed_transitions_even_untaken_and_mark_off_path(settings):
    settings.TESSERA_MIN_COHORT = 1
    rows = {(r["from"], r["to"]): (r["recipients"], r["designed"])
            for r in flow_rows(flows_of(PATHS, DESIGN), DESIGN)}
    assert rows == {("start", "a"): (4, True), ("start", "b"): (1, False),
                    ("start", "e"): (0, True),  # e is an entry step nobody started at
                    ("a", "b"): (2, True), ("a", "c"): (1, True), ("a", "d"): (1, False),
                    ("b", "c"): (1, False), ("b", "d"): (1, True), ("c", "d"): (1, True)}


def test_flows_below_k_are_suppressed_and_not_drawn():
    rows = flow_rows(flows_of(PATHS, DESIGN), DESIGN)
    assert {r["recipients"] for r in rows} == {"< 5", 0}
    picture = flow_picture(rows, DESIGN, {})
    assert picture["flows"] == []  # nothing drawn: every move is under 5 recipients
    assert len(picture["designed"]) == 4  # the design is drawn all the same
    assert [n["key"] for n in picture["nodes"]] == ["a", "b", "c", "d", "e"]


def test_flow_widths_grow_with_recipients(settings):
    settings.TESSERA_MIN_COHORT = 1
    picture = flow_picture(flow_rows(flows_of(PATHS, DESIGN), DESIGN), DESIGN, {})
    widths = {f["title"].split(":")[0]: f["width"] for f in picture["flows"]}
    assert widths["a → b"] == 24.0 and widths["b → d"] == 13.0  # 2 + 22 × n / 2
    assert {f["title"].split(":")[0] for f in picture["flows"] if f["off_path"]} == {
        "a → d", "b → c"}


# --- re-engagement after pauses -------------------------------------------------------------

SILENCES = {20: [(30, True)], 30: [(45, True), (14, False)]}  # b pauses at 30; c moves at 14, pauses at 45


def test_pauses_are_the_first_silence_whose_firing_transition_pauses():
    events = [
        (1, 20, 30, day(10)),   # e1: 30 days silent at b -> paused at b, day 10
        (2, 30, 14, day(5)),    # e2: 14 at c fires the move, not a pause
        (2, 30, 45, day(36)),   # e2: 45 at c -> paused at c, day 36
        (3, 20, 30, day(40)),   # e3: a later pause counts only...
        (3, 20, 31, day(0)),    # ...after the first (day 0, 31 ≥ 30 days)
        (4, 30, 20, day(3)),    # e4: 20 at c -> largest days ≤ 20 is 14: a move
        (5, 20, 29, day(3)),    # e5: 29 at b -> no transition fires
    ]
    assert pauses(events, SILENCES) == {1: (20, day(10)), 2: (30, day(36)), 3: (20, day(0))}


def test_reengagement_of_a_hand_made_example():
    paused = {1: (20, day(10)), 2: (30, day(36)), 3: (20, day(0))}
    returns = {1: day(13), 3: day(10) + dt.timedelta(hours=12)}  # 3 and 10.5 days later
    rows = {r["step"]: r for r in reengagement_of(paused, returns, DESIGN)}
    assert rows["b"] == {"step": "b", "paused": 2, "reengaged": 2, "median_days": 6.75,
                         "p90_days": 10.5}
    assert rows["c"]["paused"] == 1 and rows["c"]["reengaged"] == 0
    assert rows["c"]["median_days"] is None
    assert rows["all steps"]["paused"] == 3 and rows["all steps"]["median_days"] == 6.75
    assert list(rows) == ["b", "c", "all steps"]  # map order, then the total


@pytest.mark.parametrize("paused,back,expected", [
    (4, 4, {"paused": "< 5", "reengaged": "< 5", "share": "< 5", "median_days": "< 5"}),
    (9, 4, {"paused": 9, "reengaged": "< 5", "share": "< 5", "median_days": "< 5"}),
    (9, 5, {"paused": 9, "reengaged": 5, "share": 0.556, "median_days": 2.0}),
])
def test_reengagement_is_suppressed_below_k(paused, back, expected):
    row = {"step": "b", "paused": paused, "reengaged": back, "median_days": 2.0,
           "p90_days": 3.0}
    shown = shown_reengagement([row])[0]
    assert {k: shown[k] for k in expected} == expected
