"""Withdrawal and expiry webhooks: who to notify, what to say, how it is signed and sent.

A notification is a JSON body signed with HMAC-SHA256 over `"<timestamp>.<body>"` with the
subscription's secret; the headers `X-Tessera-Timestamp` (Unix seconds) and
`X-Tessera-Signature` (`sha256=<hex>`) carry it. Receivers recompute the HMAC, compare in
constant time and refuse old timestamps (replays). Sending is a Celery task with
exponential backoff; every attempt is logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import (
    ChannelToken,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEvent,
    WebhookSubscription,
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
    """Register `url` for a token; the returned subscription's secret is shown once."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in {"http", "https"}:
        raise ValidationError({"url": "Use an http(s) URL."})
    events = list(dict.fromkeys(events or [e.value for e in WebhookEvent]))
    unknown = [e for e in events if e not in WebhookEvent.values]
    if unknown:
        raise ValidationError({"events": f"Unknown event(s): {', '.join(unknown)}; use "
                                         f"{', '.join(WebhookEvent.values)}."})
    return WebhookSubscription.objects.create(token=token, url=url, events=events,
                                              secret=secrets.token_hex(32))


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
        entry["steps"].append(step["step"])
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


def subscriptions_for(version, event: str):
    """Active subscriptions whose token could have received the version (scope overlaps)."""
    jurisdictions = list(version.jurisdictions.values_list("pk", flat=True))
    channels = list(version.channels.values_list("pk", flat=True))
    tokens = ChannelToken.objects.active().filter(
        Q(jurisdictions__in=jurisdictions), Q(channels__in=channels)
    ).values("pk")
    return [s for s in WebhookSubscription.objects.filter(active=True, token__in=tokens)
            if event in s.events]


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
            delivery = WebhookDelivery.objects.create(subscription=subscription, event=event,
                                                      payload=payload)
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
    try:
        from approvals.signals import version_expired, version_withdrawn
    except ImportError:  # approvals not built yet; nothing to listen to
        return
    version_withdrawn.connect(on_version_withdrawn, dispatch_uid="delivery-webhooks-withdrawn")
    version_expired.connect(on_version_expired, dispatch_uid="delivery-webhooks-expired")


# --- sending -----------------------------------------------------------------------------------

class DeliveryFailed(Exception):
    pass


def attempt(delivery_id: int) -> bool:
    """POST one delivery once; log the attempt. True when delivered (or already was)."""
    from .serving import begin_write

    with transaction.atomic():
        begin_write()
        delivery = (WebhookDelivery.objects.select_for_update()
                    .select_related("subscription").get(pk=delivery_id))
        if delivery.status == WebhookDeliveryStatus.DELIVERED:
            return True
        delivery.attempts += 1
        delivery.save(update_fields=["attempts"])
        number = delivery.attempts
    subscription = delivery.subscription
    body = json.dumps({"id": str(delivery.event_id), **delivery.payload},
                      cls=DjangoJSONEncoder, sort_keys=True).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(subscription.url, data=body, method="POST", headers={
        "Content-Type": "application/json",
        "User-Agent": "Tessera-Webhooks/1",
        EVENT_HEADER: delivery.event,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(subscription.secret, timestamp, body),
    })
    status_code, error = None, ""
    try:
        with urllib.request.urlopen(request, timeout=settings.TESSERA_WEBHOOK_TIMEOUT_SECONDS) as resp:
            status_code = resp.status
    except urllib.error.HTTPError as exc:
        status_code, error = exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        error = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"[:300]
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
