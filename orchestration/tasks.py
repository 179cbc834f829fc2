"""Celery beat tasks of orchestration: triggers, silence, the scheduler, expired leases,
webhook pushes of the due queue."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from . import due_queue, push, scheduler, triggers


@shared_task(name="orchestration.tick")
def tick() -> dict:
    """One scheduler tick (every minute): fire trigger rules, pause the silent (hourly), return
    expired leases to the queue, plan every due touchpoint, then push what is due to
    channels that subscribed to `touchpoint.due` / `rep_task.created`. Safe to run on two beats
    at once: profiles and touchpoints are taken FOR UPDATE SKIP LOCKED, and a touchpoint
    exists once per recipient × step."""
    now = timezone.now()
    moved = triggers.evaluate(now=now)
    # Silence is counted in days: once an hour is plenty (it scans every active profile).
    paused = triggers.silence(now=now) if now.minute == 0 else 0
    released = due_queue.release_expired(now=now)
    report = scheduler.run(now=now)
    pushed = push.push_due(now=now)
    return {"moved": moved, "paused": paused, "released": released,
            "evaluated": report.evaluated, "created": report.created,
            "postponed": report.postponed, "skipped": report.skipped,
            "pushed": pushed.items}


@shared_task(name="orchestration.schedule_now")
def schedule_now() -> int:
    """Plan right away after an enrollment (what the next beat tick would do anyway), and
    push what became due to subscribed channels."""
    now = timezone.now()
    created = scheduler.run(now=now).created
    push.push_due(now=now)
    return created
