"""Triggers: rules that move recipients, each move recorded with the rule that fired.

A `TriggerRule` moves people at a step (its transition's from-step) or in a stage to a
step (or pauses them), when:

- `pattern`: engagement across channels within `within_days` — every entry of `events`
  reached (`{"event": "ignored", "channel": "email", "min": 2}`) and none of `absent` seen
  (`{"channel": "portal"}`, optionally with an `event`): "two ignored emails and no portal
  visit in 14 days";
- `attribute`: the profile's attributes match (`{"specialty": "cardiology"}`);
- `time`: `after_days` at the step without a move;
- `signal`: an outside signal of that name arrives (`POST /api/v1/signals/`), e.g.
  `guideline-published` moves every enrolled cardiologist in a stage to a step.

Any rule may add `attributes`. Silence pauses: no engagement across channels for
`SILENCE_DAYS` (30) after a delivered touchpoint pauses outreach (`silence`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.db import transaction
from django.db.models import Max, Min, Q

from journeys.models import EngagementEvent, Enrollment

from .models import (
    OPEN_STATUSES,
    DueTouchpoint,
    EnrollmentProfile,
    Move,
    ProfileStatus,
    Signal,
    TouchpointStatus,
    TriggerKind,
    TriggerRule,
)

SILENCE_DAYS = 30
ATTRIBUTE_FIELDS = ("audience", "specialty", "market", "locale")
ENGAGED = ("opened", "clicked", "downloaded", "attended")


def _source_and_target(rule: TriggerRule):
    if rule.transition_id:
        t = rule.transition
        return {"current_step_id": t.from_step_id}, t.to_step_id, t.pause
    if rule.stage_id:
        return {"current_step__stage_id": rule.stage_id}, rule.to_step_id, False
    return {}, rule.to_step_id, False


def _attributes_match(profile: dict, wanted: dict) -> bool:
    return all(str(profile.get(k, "")).lower() == str(v).lower() for k, v in wanted.items()
               if k in ATTRIBUTE_FIELDS)


def candidates(rule: TriggerRule, extra_attributes: dict | None = None) -> list[dict]:
    where, _target, _pause = _source_and_target(rule)
    rows = (EnrollmentProfile.objects.filter(journey_id=rule.journey_id, status=ProfileStatus.ACTIVE,
                                             enrollment__paused=False)
            .filter(**{f"enrollment__{k}": v for k, v in where.items()})
            .values("enrollment_id", "step_entered_at", *ATTRIBUTE_FIELDS))
    wanted = {**(rule.conditions.get("attributes") or {}), **(extra_attributes or {})}
    return [r for r in rows if _attributes_match(r, wanted)]


def _pattern_matches(rule: TriggerRule, rows: list[dict], now) -> list[dict]:
    cond = rule.conditions
    since = now - timedelta(days=int(cond.get("within_days") or 14))
    counts: dict[int, dict[tuple, int]] = defaultdict(lambda: defaultdict(int))
    events = (EngagementEvent.objects.filter(enrollment_id__in=[r["enrollment_id"] for r in rows],
                                             occurred_at__gte=since, occurred_at__lte=now)
              .values_list("enrollment_id", "event_type", "step__channel__code"))
    for enrollment_id, event_type, channel in events:
        counts[enrollment_id][(event_type, channel)] += 1

    def seen(c, event, channel):
        return sum(n for (e, ch), n in c.items()
                   if (not event or e == event) and (not channel or ch == channel))

    matched = []
    for row in rows:
        c = counts.get(row["enrollment_id"], {})
        if all(seen(c, e.get("event"), e.get("channel")) >= int(e.get("min", 1))
               for e in cond.get("events", [])) and \
           not any(seen(c, a.get("event"), a.get("channel")) for a in cond.get("absent", [])):
            matched.append(row)
    return matched


def describe(rule: TriggerRule) -> str:
    return f"rule {rule.pk} '{rule.name}' ({rule.kind})"


def evaluate(*, now, journey_ids=None) -> int:
    """Fire every active pattern, attribute and time rule; returns how many moved."""
    rules = TriggerRule.objects.filter(active=True).exclude(kind=TriggerKind.SIGNAL) \
        .select_related("transition")
    if journey_ids is not None:
        rules = rules.filter(journey_id__in=journey_ids)
    moved = 0
    for rule in rules:
        rows = candidates(rule)
        if rule.kind == TriggerKind.PATTERN:
            rows = _pattern_matches(rule, rows, now)
        elif rule.kind == TriggerKind.TIME:
            after = timedelta(days=int(rule.conditions.get("after_days") or 0))
            rows = [r for r in rows if r["step_entered_at"] + after <= now]
        moved += apply(rule, [r["enrollment_id"] for r in rows], now=now)
    return moved


@transaction.atomic
def apply(rule: TriggerRule | None, enrollment_ids: list[int], *, now, target_id=None,
          pause=False, reason="") -> int:
    """Move (or pause) the enrollments; record which rule fired; stop their open touchpoints."""
    if rule is not None:
        _where, target_id, pause = _source_and_target(rule)
        reason = reason or f"{describe(rule)} fired"
    moved = 0
    for enrollment in Enrollment.objects.select_for_update().filter(pk__in=enrollment_ids):
        if enrollment.paused or (not pause and enrollment.current_step_id == target_id):
            continue
        Move.objects.create(enrollment=enrollment, from_step_id=enrollment.current_step_id,
                            to_step_id=None if pause else target_id, paused=pause, rule=rule,
                            reason=reason[:300], at=now)
        if pause:
            enrollment.paused = True
        else:
            enrollment.current_step_id = target_id
        enrollment.save(update_fields=["paused", "current_step", "updated_at"])
        DueTouchpoint.objects.filter(enrollment=enrollment, status__in=OPEN_STATUSES).update(
            status=TouchpointStatus.STOPPED, reason=f"moved: {reason}"[:300], finished_at=now)
        fields = {"reason": reason[:300]}
        if pause:
            fields.update(status=ProfileStatus.PAUSED, next_check_at=None)
        else:
            fields.update(planned_step_id=target_id, step_entered_at=now, next_check_at=now)
        EnrollmentProfile.objects.filter(enrollment_id=enrollment.pk).update(**fields)
        moved += 1
    return moved


def receive_signal(name: str, attributes: dict, *, now, token_id=None,
                   journey_ids=None) -> Signal:
    """An outside signal: every active signal rule of that name moves its matching people."""
    moved = 0
    rules = TriggerRule.objects.filter(active=True, kind=TriggerKind.SIGNAL, signal=name) \
        .select_related("transition")
    if journey_ids is not None:
        rules = rules.filter(journey_id__in=journey_ids)
    for rule in rules:
        rows = candidates(rule, {k: v for k, v in attributes.items() if k in ATTRIBUTE_FIELDS})
        moved += apply(rule, [r["enrollment_id"] for r in rows], now=now,
                       reason=f"{describe(rule)} fired on signal '{name}'")
    return Signal.objects.create(name=name, attributes=attributes, received_at=now,
                                 token_id=token_id, moved=moved)


def silence(*, now, days: int = SILENCE_DAYS) -> int:
    """Pause outreach for people silent on every channel for `days`: no engagement event
    (opened, clicked, downloaded, attended) in this journey since their first touchpoint
    or their last engagement, whichever is later, while touchpoints went out."""
    cutoff = now - timedelta(days=days)
    rows = (EnrollmentProfile.objects.filter(status=ProfileStatus.ACTIVE, enrollment__paused=False,
                                             last_touch_at__isnull=False)
            .annotate(last_event=Max("enrollment__events__occurred_at",
                                     filter=Q(enrollment__events__event_type__in=ENGAGED)),
                      first_touch=Min("enrollment__touchpoints__created_at",
                                      filter=Q(enrollment__touchpoints__status=
                                               TouchpointStatus.DELIVERED)))
            .values_list("enrollment_id", "last_event", "first_touch"))
    silent = [enrollment_id for enrollment_id, last_event, first_touch in rows
              if first_touch is not None and max(filter(None, (last_event, first_touch))) <= cutoff]
    if not silent:
        return 0
    return apply(None, silent, now=now, pause=True,
                 reason=f"silence: no engagement across channels for {days} days")
