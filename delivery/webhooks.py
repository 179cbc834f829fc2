"""Webhooks: who to notify, what to say, how it is signed and sent.

Events: `version.withdrawn` and `version.expired` (a subscription's default), and the
opt-in pushes of the due queue, `touchpoint.due` and `rep_task.created`, whose payloads
`orchestration.push` builds (`push` below queues them; a push carries leases, so it is not
sent once they ran out: `expires_at`).

A notification is a JSON body signed with HMAC-SHA256 over `"<timestamp>.<body>"` with the
subscription's secret; the headers `X-Tessera-Timestamp` (Unix seconds) and
`X-Tessera-Signature` (`sha256=<hex>`) carry it. Receivers recompute the HMAC, compare in
constant time and refuse old timestamps (replays). Sending is a Celery task with
exponential backoff; every attempt is logged.

Where a notification may go is `cms.outbound`'s policy (https, public addresses only),
checked when the URL is registered and again before every attempt; what it says is cut to
the receiving token's channels and jurisdictions.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from cms import outbound

from .models import (
    ChannelToken,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEvent,
    WebhookSubscription,
    default_webhook_events,
)

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Tessera-Signature"
TIMESTAMP_HEADER = "X-Tessera-Timestamp"
EVENT_HEADER = "X-Tessera-Event"


def sign(secret: str, timestamp: str | int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *,
           tolerance_seconds: int = 300, now: float | None = None) -> bool:
    """What a receiver does: constant-time compare, and refuse stale timestamps."""
    try:
        age = abs((now or time.time()) - int(timestamp))
    except (TypeError, ValueError):
        return False
    if age > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature or "")


# --- subscriptions ---------------------------------------------------------------------------

def subscribe(*, token: ChannelToken, url: str, events: list[str] | None = None
              ) -> WebhookSubscription:
    """Register `url` for a token; the returned subscription's secret is shown once.
    Without `events`: the version events (pushes of the due queue lease what they carry,
    so a channel asks for them by name)."""
    check_url(url)
    events = list(dict.fromkeys(events or default_webhook_events()))
    unknown = [e for e in events if e not in WebhookEvent.values]
    if unknown:
        raise ValidationError({"events": f"Unknown event(s): {', '.join(unknown)}; use "
                                         f"{', '.join(WebhookEvent.values)}."})
    return WebhookSubscription.objects.create(token=token, url=url, events=events,
                                              secret=secrets.token_hex(32))


def check_url(url: str) -> None:
    """The outbound policy as a validation error on `url` (subscription, admin form)."""
    try:
        outbound.vet_url(url, require_addresses=False)
    except outbound.URLRefused as refused:
        raise ValidationError({"url": ValidationError(refused.detail, code=refused.code)})


# --- notifications ---------------------------------------------------------------------------

def notification_payload(version, event: str, *, reason: str = "") -> dict:
    """What a channel needs to act: the module version, its markets, where it is used and
    how often it went out (per channel and jurisdiction). No recipient data."""
    from .usage import delivery_counts, steps_using

    counts = delivery_counts(version)
    journeys: dict[str, dict] = {}
    for step in steps_using(version):
        entry = journeys.setdefault(step["journey"], {"journey": step["journey"],
                                                      "name": step["journey_name"], "steps": []})
        entry["steps"].append({"step": step["step"], "channel": step["channel"]})
    return {
        "event": event,
        "occurred_at": timezone.now().isoformat(),
        "module": version.module.code,
        "version": version.number,
        "sha256": version.sha256,
        "state": version.state,
        "reason": reason,
        "jurisdictions": sorted(version.jurisdictions.values_list("code", flat=True)),
        "channels": sorted(version.channels.values_list("code", flat=True)),
        "affected_journeys": list(journeys.values()),
        "deliveries": counts,
        "total_deliveries": sum(c["deliveries"] for c in counts),
    }


def payload_for(token: ChannelToken, payload: dict) -> dict:
    """`payload` cut to what `token` may see: its channels and jurisdictions only (an
    email-only token hears nothing about portal deliveries or portal steps)."""
    channels = set(token.channels.values_list("code", flat=True))
    jurisdictions = set(token.jurisdictions.values_list("code", flat=True))
    counts = [c for c in payload["deliveries"]
              if c["channel"] in channels and c["jurisdiction"] in jurisdictions]
    journeys = []
    for journey in payload["affected_journeys"]:
        steps = [s["step"] for s in journey["steps"] if s["channel"] in channels]
        if steps:
            journeys.append({**journey, "steps": steps})
    return {
        **payload,
        "jurisdictions": [j for j in payload["jurisdictions"] if j in jurisdictions],
        "channels": [c for c in payload["channels"] if c in channels],
        "affected_journeys": journeys,
        "deliveries": counts,
        "total_deliveries": sum(c["deliveries"] for c in counts),
    }


def subscriptions_for(version, event: str):
    """Active subscriptions whose token could have received the version (scope overlaps)."""
    jurisdictions = list(version.jurisdictions.values_list("pk", flat=True))
    channels = list(version.channels.values_list("pk", flat=True))
    tokens = ChannelToken.objects.active().filter(
        Q(jurisdictions__in=jurisdictions), Q(channels__in=channels)
    ).values("pk")
    return [s for s in WebhookSubscription.objects.filter(active=True, token__in=tokens)
            .select_related("token") if event in s.events]


def notify(version, event: str, *, reason: str = "") -> list[WebhookDelivery]:
    """Queue one delivery per matching subscription (sent after commit by Celery)."""
    from .tasks import deliver_webhook

    subscriptions = subscriptions_for(version, event)
    if not subscriptions:
        return []
    payload = notification_payload(version, event, reason=reason)
    deliveries = []
    with transaction.atomic():
        for subscription in subscriptions:
            delivery = WebhookDelivery.objects.create(
                subscription=subscription, event=event,
                payload=payload_for(subscription.token, payload))
            deliveries.append(delivery)
            transaction.on_commit(lambda pk=delivery.pk: deliver_webhook.delay(pk))
    return deliveries


def _notify_safely(version, event: str, reason: str = "") -> None:
    # Receivers run after the withdrawal/expiry committed: a webhook problem must never
    # turn that decision into an error for the person who made it. It is logged instead.
    try:
        notify(version, event, reason=reason)
    except Exception:
        logger.exception("webhook notification for %s v%s (%s) not queued",
                         version.module.code, version.number, event)


def on_version_withdrawn(sender, version, reason="", **kwargs):
    _notify_safely(version, WebhookEvent.VERSION_WITHDRAWN, reason=reason or "")


def on_version_expired(sender, version, **kwargs):
    _notify_safely(version, WebhookEvent.VERSION_EXPIRED)


def connect_signals() -> None:
    from approvals.signals import version_expired, version_withdrawn  # when apps are ready

    version_withdrawn.connect(on_version_withdrawn, dispatch_uid="delivery-webhooks-withdrawn")
    version_expired.connect(on_version_expired, dispatch_uid="delivery-webhooks-expired")


def push_subscriptions(event: str) -> list[WebhookSubscription]:
    """Who takes pushes of `event`: per active token, its oldest active subscription that
    names the event (one receiver per token, so one lease is never sent twice)."""
    chosen: dict[int, WebhookSubscription] = {}
    for subscription in (WebhookSubscription.objects.filter(
            active=True, token__revoked_at__isnull=True).select_related("token")
            .order_by("created_at", "id")):
        if event in subscription.events:
            chosen.setdefault(subscription.token_id, subscription)
    return list(chosen.values())


def push(subscription: WebhookSubscription, event: str, payload: dict, *,
         expires_at=None) -> WebhookDelivery:
    """Queue one push (sent after commit by Celery, retried like every webhook); not sent
    after `expires_at`."""
    from .tasks import deliver_webhook

    delivery = WebhookDelivery.objects.create(subscription=subscription, event=event,
                                              payload=payload, expires_at=expires_at)
    transaction.on_commit(lambda pk=delivery.pk: deliver_webhook.delay(pk))
    return delivery


# --- sending -----------------------------------------------------------------------------------

class DeliveryFailed(Exception):
    pass


def attempt(delivery_id: int) -> bool:
    """POST one delivery once; log the attempt. True when done: delivered (or already
    was), or expired unsent (marked failed)."""
    with transaction.atomic():
        delivery = (WebhookDelivery.objects.select_for_update()
                    .select_related("subscription").get(pk=delivery_id))
        if delivery.status == WebhookDeliveryStatus.DELIVERED:
            return True
        if delivery.expires_at is not None and delivery.expires_at <= timezone.now():
            # What it carries no longer holds (leases ran out): sending it now could make a
            # channel act on a touchpoint that is someone else's by now.
            delivery.status = WebhookDeliveryStatus.FAILED
            delivery.save(update_fields=["status"])
            logger.warning("webhook %s (%s) expired unsent after %s attempts", delivery.pk,
                           delivery.event, delivery.attempts)
            return True
        delivery.attempts += 1
        delivery.save(update_fields=["attempts"])
        number = delivery.attempts
    subscription = delivery.subscription
    body = json.dumps({"id": str(delivery.event_id), **delivery.payload},
                      cls=DjangoJSONEncoder, sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Tessera-Webhooks/1",
        EVENT_HEADER: delivery.event,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(subscription.secret, timestamp, body),
    }
    status_code, error = None, ""
    try:
        # Vetted again now: the name may point somewhere else than at registration.
        destination = outbound.vet_url(subscription.url)
        status_code = outbound.post(destination, body, headers,
                                    timeout=settings.TESSERA_WEBHOOK_TIMEOUT_SECONDS)
    except outbound.URLRefused as refused:
        error = f"refused: {refused.detail}"[:300]
    except outbound.SendFailed as exc:
        error = str(exc)[:300]
    ok = status_code is not None and 200 <= status_code < 300
    WebhookAttempt.objects.create(delivery=delivery, number=number, status_code=status_code,
                                  error="" if ok else (error or f"HTTP {status_code}"))
    fields = {"last_status_code": status_code}
    if ok:
        fields.update(status=WebhookDeliveryStatus.DELIVERED, delivered_at=timezone.now())
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
    if not ok:
        logger.warning("webhook %s attempt %s to %s failed: %s", delivery.pk, number,
                       urlsplit(subscription.url).netloc, error or status_code)
    return ok


def mark_failed(delivery_id: int) -> None:
    WebhookDelivery.objects.filter(pk=delivery_id).exclude(
        status=WebhookDeliveryStatus.DELIVERED).update(status=WebhookDeliveryStatus.FAILED)


def backoff_seconds(retries: int) -> int:
    """Exponential: base, 2×base, 4×base, ... capped at one hour."""
    return min(3600, settings.TESSERA_WEBHOOK_BACKOFF_SECONDS * (2 ** retries))
