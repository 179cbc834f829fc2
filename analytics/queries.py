"""What pages and the API read: `metrics.journey_analytics`, cached until the rollups move.

The cache key holds the rollup watermarks, so a result is never stale after a rollup run,
and a page view between runs costs one small query (the watermarks) plus the cache read.
"""

from __future__ import annotations

from django.core.cache import cache

from journeys.models import Journey

from . import metrics, privacy
from .models import Watermark

TTL = 300


def _version() -> str:
    marks = dict(Watermark.objects.values_list("name", "last_id"))
    return f"{marks.get('events', 0)}-{marks.get('deliveries', 0)}"


def journey_analytics(journey: Journey, filters: metrics.Filters | None = None) -> dict:
    filters = filters or metrics.Filters()
    key = (f"analytics:v1:{journey.pk}:{_version()}:{privacy.min_cohort()}:"
           f"{filters.key()}")
    data = cache.get(key)
    if data is None:
        data = metrics.journey_analytics(journey, filters)
        cache.set(key, data, TTL)
    return data
