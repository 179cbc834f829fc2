"""Celery tasks of the journeys app."""

from celery import shared_task

from .engagement import apply_silence


@shared_task(name="journeys.apply_silence")
def apply_silence_task() -> int:
    """Daily: pause or reroute recipients silent for a step's `no_engagement_for` days."""
    return apply_silence()
