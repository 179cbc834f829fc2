"""k-anonymity by construction: every figure that counts people passes through here.

A count of recipients below `TESSERA_MIN_COHORT` (default 5) is never shown: it becomes
the string "< 5" in pages, CSV and the API, and any rate, median or path built on fewer
recipients is suppressed with it. Zero stays 0 ("nobody reaches this step" singles no one
out). The metrics modules return `Count`/`Rate` values made here, so no caller can forget.
"""

from __future__ import annotations

import math

from django.conf import settings


def min_cohort() -> int:
    return max(1, int(getattr(settings, "TESSERA_MIN_COHORT", 5)))


def suppressed_label() -> str:
    return f"< {min_cohort()}"


def is_shown(n: int) -> bool:
    return n == 0 or n >= min_cohort()


def count(n: int) -> int | str:
    """A number of recipients as shown: itself, or "< k"."""
    return n if is_shown(n) else suppressed_label()


def rate(numerator: int, denominator: int) -> float | str | None:
    """A share of recipients (0..1, 3 decimals); suppressed when either side is a small
    cohort; None when nobody is in the denominator."""
    if denominator == 0:
        return None
    if not (is_shown(numerator) and is_shown(denominator)):
        return suppressed_label()
    return round(numerator / denominator, 3)


def statistic(value: float | None, cohort: int) -> float | str | None:
    """A median/percentile over `cohort` recipients: suppressed below k."""
    if cohort == 0 or value is None:
        return None
    if cohort < min_cohort():
        return suppressed_label()
    return round(value, 1)


def wilson_bounds(successes: int, trials: int, z: float = 1.96) -> tuple[float, float] | None:
    """The 95 % Wilson score interval of successes / trials, unrounded (None for no trials)."""
    if trials == 0:
        return None
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson_interval(successes: int, trials: int, z: float = 1.96):
    """95 % Wilson score interval of a rate (content comparisons never show a bare ratio)."""
    bounds = wilson_bounds(successes, trials, z)
    if bounds is None:
        return None
    return round(bounds[0], 3), round(bounds[1], 3)


def difference_interval(a_successes: int, a_trials: int, b_successes: int, b_trials: int,
                        z: float = 1.96) -> tuple[float, float, float] | None:
    """Rate b minus rate a with its 95 % interval: Newcombe's hybrid score interval (1998,
    method 10), built from the two Wilson intervals. None when a side has no trials."""
    wa, wb = wilson_bounds(a_successes, a_trials, z), wilson_bounds(b_successes, b_trials, z)
    if wa is None or wb is None:
        return None
    pa, pb = a_successes / a_trials, b_successes / b_trials
    d = pb - pa
    low = d - math.sqrt((pb - wb[0]) ** 2 + (wa[1] - pa) ** 2)
    high = d + math.sqrt((wb[1] - pb) ** 2 + (pa - wa[0]) ** 2)
    return d, max(-1.0, low), min(1.0, high)
