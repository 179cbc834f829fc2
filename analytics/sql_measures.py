"""Engagement velocity computed by PostgreSQL (grouped SQL, `percentile_cont` /
`percentile_disc`) instead of in Python over every recipient's path.

Same definitions as `metrics.velocity_of` / `metrics.velocity_trend` (docs/analytics.md):
a stage is entered at the earliest first arrival at any of its steps; over the recipients
who entered both stages of a pair (the later no earlier than the former), days between
the two entries: the median (`percentile_cont(0.5)`: the mean of the two middle values)
and the p90 by nearest rank (`percentile_disc(0.9)`: the smallest value with at least
90 % at or below it, v⌈0.9·n⌉). The rows are the same filtered `RecipientStep` rows
(`metrics._rows`), so filters mean the same. tests/analytics/test_sql_measures.py checks
that both agree on random paths; `python -m analytics.sql_measures` is not a bench — see
the test module's note for the measured gain.

Not wired into `metrics.journey_analytics`, and as things stand it would not pay: on
PostgreSQL with 30,000 recipients (90,131 path rows; 2-core machine, load average ~10)
reading the paths in Python (`metrics.paths_of`) took 2.86 s of the 3.78 s default view,
velocity + trend over those paths 0.39 s, and these two queries 0.59 s. The gain appears
only once no measure needs the paths in Python (coherence and time in stage are the
others): then the 2.86 s go. PostgreSQL only (`available()`).
"""

from __future__ import annotations

from django.db import connection

from journeys.models import Journey

from . import metrics

_ENTRIES = """
WITH r AS ({rows}),
e AS (
    SELECT r.enrollment_id, s.stage_id, MIN(r.first_at) AS at
    FROM r JOIN journeys_step s ON s.id = r.step_id
    GROUP BY r.enrollment_id, s.stage_id
),
pairs (i, a, b) AS (VALUES {pairs}),
g AS (
    SELECT p.i, eb.at AS later,
           EXTRACT(EPOCH FROM (eb.at - ea.at))::float8 / 86400.0 AS d
    FROM pairs p
    JOIN e ea ON ea.stage_id = p.a
    JOIN e eb ON eb.stage_id = p.b AND eb.enrollment_id = ea.enrollment_id
    WHERE eb.at >= ea.at
)
"""


def available() -> bool:
    return connection.vendor == "postgresql"


def _base(journey: Journey, filters: metrics.Filters, design: metrics.Design, pairs):
    rows_sql, rows_params = metrics._rows(journey, filters, design).values(
        "enrollment_id", "step_id", "first_at").order_by().query.sql_with_params()
    values = ", ".join(["(%s::int, %s::bigint, %s::bigint)"] * len(pairs))
    params = [*rows_params, *(x for i, (a, b) in enumerate(pairs) for x in (i, a, b))]
    return _ENTRIES.format(rows=rows_sql, pairs=values), params


def velocity(journey: Journey, filters: metrics.Filters | None = None,
             design: metrics.Design | None = None) -> list[dict]:
    """What `metrics.velocity_of(metrics.paths_of(...), design)` returns."""
    filters = filters or metrics.Filters()
    design = design or metrics.design_of(journey)
    named = list(zip(design.stages, design.stages[1:], strict=False))
    if len(design.stages) > 2:
        named.append((design.stages[0], design.stages[-1]))
    if not named:
        return []
    base, params = _base(journey, filters, design, [(a, b) for (a, _), (b, _) in named])
    with connection.cursor() as cursor:
        cursor.execute(base + """
            SELECT i, count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY d),
                   percentile_disc(0.9) WITHIN GROUP (ORDER BY d)
            FROM g GROUP BY i""", params)
        stats = {i: (n, median, p90) for i, n, median, p90 in cursor.fetchall()}
    out = []
    for i, ((_, a_name), (_, b_name)) in enumerate(named):
        n, median, p90 = stats.get(i, (0, None, None))
        out.append({"from": a_name, "to": b_name, "recipients": n, "median_days": median,
                    "p90_days": p90})
    return out


def velocity_trend(journey: Journey, filters: metrics.Filters | None = None,
                   design: metrics.Design | None = None) -> list[dict]:
    """What `metrics.velocity_trend(metrics.paths_of(...), design)` returns: per calendar
    month (UTC) of entering the later stage, over every consecutive-stage move."""
    filters = filters or metrics.Filters()
    design = design or metrics.design_of(journey)
    order = [s for s, _ in design.stages]
    pairs = list(zip(order, order[1:], strict=False))
    if not pairs:
        return []
    base, params = _base(journey, filters, design, pairs)
    with connection.cursor() as cursor:
        cursor.execute(base + """
            SELECT to_char(later AT TIME ZONE 'UTC', 'YYYY-MM') AS month, count(*),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY d),
                   percentile_disc(0.9) WITHIN GROUP (ORDER BY d)
            FROM g GROUP BY month ORDER BY month""", params)
        return [{"month": m, "recipients": n, "median_days": median, "p90_days": p90}
                for m, n, median, p90 in cursor.fetchall()]
