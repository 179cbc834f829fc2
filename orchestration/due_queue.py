"""The due queue: channels lease due touchpoints, deliver them, and acknowledge.

`lease` hands a channel token up to `limit` due touchpoints of one channel in its markets
(oldest first), locked FOR UPDATE SKIP LOCKED so two callers never get the same one, with
a lease that expires (`LEASE_SECONDS`): an un-acknowledged lease — a channel that crashed —
returns to the queue and is served again. At lease time each touchpoint's content is
checked for its market, locale and the time now with the assembly's own rules and the
locked re-check of `delivery.serving`: a withdrawal or an expiry stops the affected
touchpoints at the next lease (`refused`, with the assembly refusal codes) and the person
goes on to the next step. `ack` records the channel's result and moves the person on.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from content.tokens import RECIPIENT_FIELDS
from delivery.serving import (
    Caller,
    lock_versions,
    recheck,
    serve_one,
    used_version_ids,
    warm_context,
)
from journeys.models import Enrollment

from . import lifecycle, rep_tasks
from .models import DueTouchpoint, EnrollmentProfile, ProfileStatus, TouchpointStatus

LEASE_SECONDS = 300
MAX_LIMIT = 500
RESULTS = ("delivered", "failed", "retry")
# Refusals about the person (their fields, consent, link), not the content: the channel
# assembles with the real recipient, so a probe's missing values say nothing.
RECIPIENT_CODES = frozenset({"missing_recipient_field", "no_consent", "missing_unsubscribe"})


class QueueError(ValueError):
    def __init__(self, code: str, message: str, status: int = 409):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class Leased:
    touchpoint: DueTouchpoint
    assembled: object = None  # AssemblyResult with ?assemble=true
    errors: list[dict] = field(default_factory=list)


def probe_recipient(channel: str) -> dict:
    return {"id": "probe", **{name: "x" for name in RECIPIENT_FIELDS},
            "consent": {channel: True}, "unsubscribe_url": "https://probe.example.com/u"}


def content_errors(step, *, channel: str, market: str, locale: str, now) -> list[dict]:
    """What refuses this step's content now, for the market and locale (inside a
    transaction: the versions are re-read under a shared lock like every delivery)."""
    ctx = warm_context(step, channel=channel, jurisdiction=market, locale=locale, now=now)
    result = ctx.assemble(probe_recipient(channel))
    errors = [e for e in result.errors if e.code not in RECIPIENT_CODES]
    if not errors and used_version_ids(result):
        errors = recheck(result, lock_versions(used_version_ids(result)), now)
    return [e.as_dict() for e in errors]


def rep_errors(step, *, now) -> list[dict]:
    """A rep task needs an approved rep-facing module deliverable now."""
    code, _number = rep_tasks.rep_module(step.pk, now)
    if code:
        return []
    return [{"code": "not_approved", "detail": f"Step {step.key!r} has no approved rep-facing "
             "module deliverable now."}]


def lease(*, token_id: int, channel: str, markets, limit: int, now,
          lease_seconds: int = LEASE_SECONDS) -> list[Leased]:
    """Lease due (or lease-expired) touchpoints of `channel` in `markets`; refuse the ones
    whose content is no longer compliant and stop the ones of paused people."""
    limit = max(1, min(limit, MAX_LIMIT))
    with transaction.atomic():
        rows = list(
            DueTouchpoint.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(Q(status=TouchpointStatus.DUE, due_at__lte=now)
                    | Q(status=TouchpointStatus.LEASED, lease_expires_at__lte=now),
                    channel=channel, market__in=list(markets),
                    step__journey_id__in=lifecycle.live_journeys())
            .select_related("step__journey", "enrollment").order_by("due_at", "id")[:limit])
        checks: dict[tuple, list[dict]] = {}
        leased, finished = [], []
        # One UPDATE per outcome (leased; refused for one reason; stopped), not a CASE per
        # row and column: a lease of 500 after a withdrawal writes 500 rows in two statements.
        outcomes: dict[tuple, list[int]] = defaultdict(list)
        expires = now + timedelta(seconds=lease_seconds)
        for tp in rows:
            if tp.enrollment.paused:
                tp.status, tp.reason, tp.finished_at = (TouchpointStatus.STOPPED,
                                                        "recipient paused", now)
                outcomes[("stopped",)].append(tp.pk)
                continue
            key = (tp.step_id, tp.market, tp.locale)
            if key not in checks:
                checks[key] = (rep_errors(tp.step, now=now) if channel == rep_tasks.CHANNEL
                               else content_errors(tp.step, channel=channel, market=tp.market,
                                                   locale=tp.locale, now=now))
            if checks[key]:
                tp.status, tp.errors, tp.finished_at = TouchpointStatus.REFUSED, checks[key], now
                tp.reason = "refused at lease: " + ", ".join(sorted({e["code"] for e in checks[key]}))
                outcomes[("refused", key)].append(tp.pk)
                finished.append(tp)
                continue
            tp.status, tp.lease_token_id = TouchpointStatus.LEASED, token_id
            tp.lease_expires_at = expires
            tp.leases += 1
            outcomes[("leased",)].append(tp.pk)
            leased.append(tp)
        for outcome, ids in outcomes.items():
            rows_of = DueTouchpoint.objects.filter(pk__in=ids)
            if outcome[0] == "leased":
                rows_of.update(status=TouchpointStatus.LEASED, lease_token_id=token_id,
                               lease_expires_at=expires, leases=F("leases") + 1)
            elif outcome[0] == "stopped":
                rows_of.update(status=TouchpointStatus.STOPPED, reason="recipient paused",
                               finished_at=now)
            else:
                errors = checks[outcome[1]]
                rows_of.update(status=TouchpointStatus.REFUSED, errors=errors, finished_at=now,
                               reason="refused at lease: "
                                      + ", ".join(sorted({e["code"] for e in errors})))
        advance_many(finished, now=now, delivered=False)
    return [Leased(tp) for tp in leased]


def assemble(items: list[Leased], *, token_id: int, now) -> None:
    """`?assemble=true`: serve each leased touchpoint through `delivery.serving` (assemble,
    re-check under lock, delivery log) for the non-personal recipient (pseudonym, specialty,
    consent). Content refusals refuse the touchpoint; refusals about the person (their
    fields, the unsubscribe link) leave the lease for the channel to assemble itself."""
    from django.conf import settings

    template = getattr(settings, "TESSERA_UNSUBSCRIBE_URL_TEMPLATE", "")
    profiles = dict(EnrollmentProfile.objects.filter(
        enrollment_id__in=[i.touchpoint.enrollment_id for i in items])
        .values_list("enrollment_id", "specialty"))
    for item in items:
        tp = item.touchpoint
        recipient = {"id": tp.recipient_hash, "consent": {tp.channel: True}}
        if profiles.get(tp.enrollment_id):
            recipient["specialty"] = profiles[tp.enrollment_id]
        if template:
            recipient["unsubscribe_url"] = template.format(pseudonym=tp.recipient_hash)
        result = serve_one(tp.step, recipient, channel=tp.channel, jurisdiction=tp.market,
                           locale=tp.locale, caller=Caller(token_id=token_id, user_id=None))
        if result.ok:
            item.assembled = result
            continue
        item.errors = [e.as_dict() for e in result.errors]
        content = [e for e in item.errors if e["code"] not in RECIPIENT_CODES]
        if content:
            with transaction.atomic():
                DueTouchpoint.objects.filter(pk=tp.pk).update(
                    status=TouchpointStatus.REFUSED, errors=content, finished_at=now,
                    reason="refused at assembly: " + ", ".join(sorted({e["code"] for e in content})))
                advance(tp, now=now, delivered=False)
            tp.status = TouchpointStatus.REFUSED


@transaction.atomic
def ack(touchpoint_id: int, *, token_id: int, result: str, detail: str = "", now) -> DueTouchpoint:
    """Record a channel's result for its lease: delivered or failed moves the person on,
    retry puts the touchpoint back in the queue."""
    tp = DueTouchpoint.objects.select_for_update().filter(pk=touchpoint_id).first()
    if tp is None or tp.lease_token_id != token_id:
        raise QueueError("unknown_touchpoint", "No touchpoint leased to this token has that id.",
                         404)
    if tp.status != TouchpointStatus.LEASED:
        raise QueueError("not_leased", f"Touchpoint {tp.pk} is {tp.status}, not leased.")
    if result not in RESULTS:
        raise QueueError("invalid_result", f"result must be one of {', '.join(RESULTS)}.", 400)
    if result == "retry":
        tp.status, tp.lease_token_id, tp.lease_expires_at = TouchpointStatus.DUE, None, None
        tp.reason = "retry requested by the channel"
        tp.save(update_fields=["status", "lease_token_id", "lease_expires_at", "reason"])
        return tp
    tp.status = TouchpointStatus.DELIVERED if result == "delivered" else TouchpointStatus.FAILED
    tp.result = {"result": result, "detail": detail[:300]}
    tp.finished_at = now
    tp.save(update_fields=["status", "result", "finished_at"])
    advance(tp, now=now, delivered=result == "delivered")
    return tp


def advance(tp: DueTouchpoint, *, now, delivered: bool, steps=None) -> None:
    """After a touchpoint is finished: the person goes on to the journey's next step (unless
    an event already moved them elsewhere), and the next delay counts from now."""
    advance_many([tp], now=now, delivered=delivered, steps=steps)


def advance_many(touchpoints: list[DueTouchpoint], *, now, delivered: bool,
                 steps=None) -> None:
    """`advance` for finished touchpoints at once (a lease that refuses 500 after a
    withdrawal): enrollments locked and written in bulk (with their history), profiles
    updated with one statement per (step, outcome)."""
    from .scheduler import load_steps

    if not touchpoints:
        return
    enrollments = {e.pk: e for e in Enrollment.objects.select_for_update().filter(
        pk__in={tp.enrollment_id for tp in touchpoints}).order_by("pk")}
    if steps is None:
        steps = load_steps({e.journey_id for e in enrollments.values()})
    base = {"next_check_at": now}
    if delivered:
        base["last_touch_at"] = now
    outcome: dict[int, tuple] = {}  # enrollment id → (step key, status, following step id)
    moved: dict[int, Enrollment] = {}
    for tp in touchpoints:
        enrollment = enrollments[tp.enrollment_id]
        if enrollment.current_step_id != tp.step_id:
            outcome.setdefault(enrollment.pk, None)  # an event moved them: only the clock
            continue
        following = steps[tp.step_id].next_id
        enrollment.current_step_id, enrollment.updated_at = following, timezone.now()
        moved[enrollment.pk] = enrollment
        outcome[enrollment.pk] = (tp.step.key, tp.status, following)
    if moved:  # one UPDATE per next step, and the history rows in bulk
        by_next: dict[int | None, list[int]] = defaultdict(list)
        for enrollment in moved.values():
            by_next[enrollment.current_step_id].append(enrollment.pk)
        for following, ids in by_next.items():
            Enrollment.objects.filter(pk__in=ids).update(current_step_id=following,
                                                         updated_at=timezone.now())
        Enrollment.history.bulk_history_create(list(moved.values()), update=True,
                                               batch_size=500)
    groups: dict[tuple | None, list[int]] = defaultdict(list)
    for enrollment_id, key in outcome.items():
        groups[key].append(enrollment_id)
    for key, ids in groups.items():
        fields = dict(base)
        if key is not None:
            step_key, status, following = key
            fields.update(planned_step_id=following, step_entered_at=now,
                          reason=f"{status}: step {step_key}; next "
                                 f"{'step' if following else 'nothing (journey completed)'}")
            if following is None:
                fields.update(status=ProfileStatus.COMPLETED, next_check_at=None)
        EnrollmentProfile.objects.filter(enrollment_id__in=ids).update(**fields)


def release_expired(*, now) -> int:
    """Expired leases go back to `due` (a lease also counts as free once expired, so this
    only tidies what the admin shows)."""
    return DueTouchpoint.objects.filter(status=TouchpointStatus.LEASED,
                                        lease_expires_at__lte=now).update(
        status=TouchpointStatus.DUE, lease_token_id=None, lease_expires_at=None,
        reason="lease expired: back in the queue", leases=F("leases"))
