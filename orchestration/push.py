"""Webhook push of the due queue: `touchpoint.due` and `rep_task.created`.

A channel that prefers push to polling registers a webhook with its token
(`POST /api/v1/webhooks/`, events `touchpoint.due` and/or `rep_task.created`). After each
scheduler run (`tasks.tick`, `tasks.schedule_now`) `push_due` leases what is due to that
token exactly as `GET /api/v1/due/` would — the same compliance check at lease, the same
`FOR UPDATE SKIP LOCKED`, so a touchpoint is pushed to one token or polled by one, never
both — and queues one signed POST per batch through `delivery.webhooks` (retried with
exponential backoff on a non-2xx). The channel acknowledges each item through the usual
`ack_url`. A push not delivered while its leases hold is dropped unsent (`expires_at`):
the touchpoints return to the queue and the next tick pushes them again.

`rep_task.created` carries the touchpoints of channel `rep` (the CRM's rep tasks, with the
approved rep-facing module and the aggregate engagement summary); `touchpoint.due` the
token's other channels. Nothing personal beyond the pseudonym: the items are the due
queue's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction

from delivery import webhooks
from delivery.models import WebhookEvent

from . import due_queue, leases, rep_tasks

BATCH = 100  # items per POST
MAX_PER_TICK = 10_000  # per token and channel: the rest waits for the next tick


def lease_seconds() -> int:
    """How long a pushed lease holds: long enough for the first retries of a failing
    receiver (30 s, 60 s, 120 s, 240 s with the default backoff)."""
    return getattr(settings, "TESSERA_DUE_PUSH_LEASE_SECONDS", 900)


@dataclass
class PushReport:
    pushes: int = 0
    items: int = 0


def event_for(channel: str) -> str:
    return (WebhookEvent.REP_TASK_CREATED if channel == rep_tasks.CHANNEL
            else WebhookEvent.TOUCHPOINT_DUE)


def push_due(*, now) -> PushReport:
    """Lease what is due to every token with a push subscription and queue the POSTs."""
    report = PushReport()
    for event in (WebhookEvent.TOUCHPOINT_DUE, WebhookEvent.REP_TASK_CREATED):
        for subscription in webhooks.push_subscriptions(event):
            token = subscription.token
            markets = set(token.jurisdictions.values_list("code", flat=True))
            channels = sorted(c for c in token.channels.values_list("code", flat=True)
                              if event_for(c) == event)
            for channel in channels:
                pushed = 0
                while pushed < MAX_PER_TICK:
                    with transaction.atomic():
                        items = due_queue.lease(token_id=token.pk, channel=channel,
                                                markets=markets, limit=BATCH, now=now,
                                                lease_seconds=lease_seconds())
                        if not items:
                            break
                        expires = now + timedelta(seconds=lease_seconds())
                        webhooks.push(subscription, event, {
                            "event": event.value, "occurred_at": now.isoformat(),
                            "channel": channel, "lease_expires_at": expires.isoformat(),
                            "items": [leases.leased_item(item) for item in items],
                        }, expires_at=expires)
                    report.pushes += 1
                    report.items += len(items)
                    pushed += len(items)
    return report
