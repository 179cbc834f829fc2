"""What pages and the API read: `metrics.journey_analytics`, cached.

- Per filters and rollup watermark: a result is never older than the rollups it was
  computed from (the key holds the watermarks).
- The journey's default view (no filters) is also kept as its *latest* result, which the
  beat task refreshes right after each rollup run that touched the journey
  (`refresh`): a page view between runs never computes, even while the watermark moves
  every minute; it may show figures one run (a minute) old.
"""

from __future__ import annotations

from django.core.cache import cache

from journeys.models import Journey

from . import metrics, privacy
from .models import Watermark

TTL = 300
LATEST_TTL = 7 * 86400


def _version() -> str:
    marks = dict(Watermark.objects.values_list("name", "last_id"))
    return f"{marks.get('events', 0)}-{marks.get('deliveries', 0)}"


def _key(journey_id: int, version: str, filters: metrics.Filters) -> str:
    return f"analytics:v2:{journey_id}:{version}:{privacy.min_cohort()}:{filters.key()}"


def _latest_key(journey_id: int) -> str:
    return f"analytics:v2:latest:{journey_id}:{privacy.min_cohort()}"


def journey_analytics(journey: Journey, filters: metrics.Filters | None = None) -> dict:
    filters = filters or metrics.Filters()
    default = filters == metrics.Filters()
    key = _key(journey.pk, _version(), filters)
    data = cache.get(key)
    if data is None and default:
        _, data = cache.get(_latest_key(journey.pk), (None, None))
    if data is None:
        data = metrics.journey_analytics(journey, filters)
        cache.set(key, data, TTL)
        if default:
            cache.set(_latest_key(journey.pk), (_version(), data), LATEST_TTL)
    return data


def refresh(journey_ids=None) -> int:
    """Recompute the default view of these journeys and of every journey whose latest
    view predates the current rollups (after a rollup run; a run that found nothing new
    still catches up a refresh that a killed worker missed)."""
    version = _version()
    wanted = set(journey_ids or [])
    done = 0
    for journey in Journey.objects.all():
        seen, _ = cache.get(_latest_key(journey.pk), (None, None))
        if journey.pk not in wanted and (seen is None or seen == version):
            continue  # never viewed (computed on first view), or up to date
        data = metrics.journey_analytics(journey, metrics.Filters())
        cache.set(_key(journey.pk, version, metrics.Filters()), data, TTL)
        cache.set(_latest_key(journey.pk), (version, data), LATEST_TTL)
        done += 1
    return done
