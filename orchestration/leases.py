"""What a channel receives for a leased touchpoint, as plain JSON-ready dicts.

One builder for both ways the due queue hands work out — `GET /api/v1/due/` and the
webhook push (`push.py`) — so a polled item and a pushed one are the same. It lives here,
not in the API's serializers, because the push is business logic run by the beat: it must
not reach up into an entry point. `api/serializers.py` declares the same shapes for the
OpenAPI schema and renders through these functions (tests/orchestration/test_leases.py
holds the declared fields and these dicts together).
"""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone

from delivery.output import assembly_output

from .models import DueTouchpoint


def iso(value) -> str | None:
    """A datetime as DRF renders it (ISO 8601 in the current time zone, UTC as "Z"), so the
    payload matches the schema's `date-time` and what the API always returned."""
    if not value:
        return None
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def touchpoint(tp: DueTouchpoint) -> dict:
    """A due touchpoint; the person only by the pseudonym returned at enrollment."""
    return {
        "id": tp.pk,
        "journey": str(tp.step.journey.slug),
        "step": str(tp.step.key),
        "channel": str(tp.channel),
        "market": str(tp.market),
        "locale": str(tp.locale),
        "recipient": str(tp.recipient_hash),
        "due_at": iso(tp.due_at),
        "status": str(tp.status),
        "reason": str(tp.reason),
        "lease_expires_at": iso(tp.lease_expires_at),
        "errors": tp.errors,
        "result": tp.result,
    }


def assembled(result) -> dict | None:
    """An assembly served at lease (`?assemble=true`): what the channel sends, as the
    assemble endpoint renders it."""
    return assembly_output(result) if result else None


def rep_task(tp: DueTouchpoint) -> dict | None:
    """The rep task of a `rep` touchpoint: the approved module and the aggregate summary."""
    task = getattr(tp, "rep_task", None) if tp.channel == "rep" else None
    if task is None:
        return None
    return {"module_code": task.module_code, "module_version": task.module_version,
            "summary": task.summary}


def leased_item(item) -> dict:
    """One leased touchpoint (a `due_queue.Leased`) as GET /api/v1/due/ and pushes carry it."""
    tp = item.touchpoint
    return {
        "touchpoint": touchpoint(tp),
        "ack_url": reverse("api-due-ack", args=[tp.pk]),
        "assemble_url": reverse("api-assemble", args=[tp.step.journey.slug, tp.step.key]),
        "rep_task": rep_task(tp),
        "assembled": assembled(item.assembled),
        "errors": item.errors,
    }
