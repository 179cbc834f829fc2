"""Celery tasks of the analytics app (scheduled in cms/settings.py's beat schedule)."""

from celery import shared_task

from . import queries, rollups


@shared_task(name="analytics.roll_up")
def roll_up() -> dict:
    """Fold new engagement events and deliveries into the rollups (every minute), then
    recompute the default analytics view of the journeys that moved (after the commit).
    Two runs never overlap: one that finds another under way returns `skipped`."""
    result = rollups.run()
    # Skipped (another run holds the watermarks): that run refreshes when it is done.
    result["refreshed"] = 0 if result["skipped"] else queries.refresh(result["journeys"])
    return result


@shared_task(name="analytics.purge_raw_events")
def purge_raw_events() -> int:
    """Delete raw events older than TESSERA_EVENT_RETENTION_DAYS (rolled up already)."""
    return rollups.purge_raw_events()
