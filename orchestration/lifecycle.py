"""Journey lifecycle: draft → live → paused → retired, one running release per journey.

Only a live journey's enrollments are scheduled; a paused one keeps its people where they
are (and enrolls more) but plans nothing; a retired one stops its open touchpoints.
Editing a live journey publishes a new release (`publish`): its snapshot records the steps
as they now are, and enrolled recipients move by the explicit migration rule given
(old step key → new step key); a step that is no longer in the journey and still has
people needs a rule, else nothing is published.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max

from journeys.models import Enrollment, Journey, Step, Transition

from .models import (
    OPEN_STATUSES,
    DueTouchpoint,
    EnrollmentProfile,
    JourneyRelease,
    Move,
    ReleaseState,
    TouchpointStatus,
)

RUNNING = (ReleaseState.LIVE, ReleaseState.PAUSED)


class LifecycleError(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def snapshot(journey: Journey) -> dict:
    steps = list(Step.objects.filter(journey=journey).select_related("channel", "stage"))
    return {
        "steps": [{"key": s.key, "channel": s.channel.code, "purpose": s.purpose,
                   "delay_days": s.delay_days, "stage": s.stage_id, "order": s.order}
                  for s in steps],
        "transitions": [{"from": t.from_step.key, "event": t.event_type,
                         "threshold": t.threshold, "days": t.days,
                         "to": t.to_step.key if t.to_step_id else None, "pause": t.pause}
                        for t in Transition.objects.filter(from_step__journey=journey)
                        .select_related("from_step", "to_step")],
    }


def running_release(journey: Journey) -> JourneyRelease | None:
    return JourneyRelease.objects.filter(journey=journey, state__in=RUNNING).first()


def state_of(journey: Journey) -> str:
    release = running_release(journey) or JourneyRelease.objects.filter(journey=journey).first()
    return release.state if release else ReleaseState.DRAFT


def live_journeys():
    """Journey ids whose running release is live (what the scheduler plans for)."""
    return JourneyRelease.objects.filter(state=ReleaseState.LIVE).values("journey_id")


def _next_number(journey) -> int:
    return (JourneyRelease.objects.filter(journey=journey).aggregate(n=Max("number"))["n"] or 0) + 1


@transaction.atomic
def go_live(journey: Journey, *, now) -> JourneyRelease:
    """Put the journey live: resume a paused release, else release its current draft."""
    release = JourneyRelease.objects.select_for_update().filter(
        journey=journey, state__in=RUNNING).first()
    if release is None:
        release = JourneyRelease.objects.create(journey=journey, number=_next_number(journey),
                                                snapshot=snapshot(journey))
    if release.state != ReleaseState.LIVE:
        release.state, release.live_at = ReleaseState.LIVE, release.live_at or now
        release.save(update_fields=["state", "live_at"])
    return release


@transaction.atomic
def pause(journey: Journey, *, now) -> JourneyRelease:
    release = JourneyRelease.objects.select_for_update().filter(
        journey=journey, state=ReleaseState.LIVE).first()
    if release is None:
        raise LifecycleError("journey_not_live", f"Journey {journey.slug!r} is not live.")
    release.state = ReleaseState.PAUSED
    release.save(update_fields=["state"])
    return release


@transaction.atomic
def retire(journey: Journey, *, now) -> JourneyRelease:
    release = JourneyRelease.objects.select_for_update().filter(
        journey=journey, state__in=RUNNING).first()
    if release is None:
        raise LifecycleError("journey_not_live", f"Journey {journey.slug!r} is not running.")
    release.state, release.retired_at = ReleaseState.RETIRED, now
    release.save(update_fields=["state", "retired_at"])
    DueTouchpoint.objects.filter(step__journey=journey, status__in=OPEN_STATUSES).update(
        status=TouchpointStatus.STOPPED, reason="journey retired", finished_at=now)
    EnrollmentProfile.objects.filter(journey=journey).update(next_check_at=None,
                                                             reason="journey retired")
    return release


@transaction.atomic
def publish(journey: Journey, *, migration: dict[str, str], now) -> JourneyRelease:
    """A new release of an edited live (or paused) journey; recipients move by `migration`.

    `migration` maps a step key of the running release to a step key of the journey now.
    People at a step that is gone need a rule (`unmapped_step`); rules must name steps
    that exist (`unknown_step`). Each move is recorded; their open touchpoints stop."""
    current = JourneyRelease.objects.select_for_update().filter(
        journey=journey, state__in=RUNNING).first()
    if current is None:
        raise LifecycleError("journey_not_live", f"Journey {journey.slug!r} is not running; "
                             "put it live instead of publishing a new release.")
    steps = {s.key: s for s in Step.objects.filter(journey=journey)}
    old_keys = {s["key"] for s in current.snapshot.get("steps", [])}
    for old, new in migration.items():
        if old not in old_keys or new not in steps:
            raise LifecycleError("unknown_step", f"Migration rule {old!r} → {new!r} names a "
                                 "step that is not in the running release or the journey.")
    stranded = Enrollment.objects.filter(journey=journey, current_step__isnull=True,
                                         profile__status="active")
    if stranded.exists() and "*" not in migration:
        raise LifecycleError("unmapped_step", "Recipients are at a step that no longer exists: "
                             "add a rule \"*\" → a step key for them.")
    state = current.state
    current.state, current.retired_at = ReleaseState.RETIRED, now
    current.save(update_fields=["state", "retired_at"])
    release = JourneyRelease.objects.create(
        journey=journey, number=_next_number(journey), state=state, snapshot=snapshot(journey),
        migration=migration, live_at=now)
    label = f"release {current.number} → {release.number}"
    for old, new in migration.items():
        target = steps[new] if old != "*" else None
        movers = (stranded if old == "*" else
                  Enrollment.objects.filter(journey=journey, current_step=steps.get(old)))
        target = steps[new] if target is None else target
        for enrollment in movers.select_for_update():
            Move.objects.create(enrollment=enrollment, from_step=enrollment.current_step,
                                to_step=target, reason=f"migration {label}: {old} → {new}",
                                at=now)
            enrollment.current_step = target
            enrollment.save(update_fields=["current_step", "updated_at"])
            DueTouchpoint.objects.filter(enrollment=enrollment, status__in=OPEN_STATUSES).update(
                status=TouchpointStatus.STOPPED, reason=f"migrated ({label})", finished_at=now)
            EnrollmentProfile.objects.filter(enrollment=enrollment).update(
                planned_step=target, step_entered_at=now, next_check_at=now,
                reason=f"migration {label}: {old} → {new}")
    return release
