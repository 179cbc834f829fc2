"""Celery tasks of the analytics app (scheduled in cms/settings.py's beat schedule)."""

from celery import shared_task

from . import queries, rollups


@shared_task(name="analytics.roll_up")
def roll_up() -> dict:
    """Fold new engagement events and deliveries into the rollups (every minute), then
    recompute the default analytics view of the journeys that moved (after the commit)."""
    result = rollups.run()
    result["refreshed"] = queries.refresh(result["journeys"])
    return result


@shared_task(name="analytics.purge_raw_events")
def purge_raw_events() -> int:
    """Delete raw events older than TESSERA_EVENT_RETENTION_DAYS (rolled up already)."""
    return rollups.purge_raw_events()
