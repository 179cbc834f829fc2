"""Rep follow-ups: a step on channel `rep` becomes a task for the CRM.

The task rides the due queue like any touchpoint (a CRM token leases `?channel=rep`); it
carries the approved rep-facing module of the step (its first fixed slot with a version
deliverable now: a call note or insight brief) and an aggregate engagement summary of the
HCP in this journey — topics engaged (stages and step keys with opens, clicks, downloads),
counts, last touch. No more personal data than the CRM sent: the pseudonym and counts.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from django.db.models import Max

from content.deliverability import deliverable_q
from content.models import ModuleVersion
from journeys.models import EngagementEvent, Slot

from .models import DueTouchpoint, RepTask, TouchpointStatus

CHANNEL = "rep"
ENGAGED = ("opened", "clicked", "downloaded", "attended")


def rep_module(step_id: int, now) -> tuple[str, int | None]:
    for slot in Slot.objects.filter(step_id=step_id, module__isnull=False).select_related(
            "module").order_by("order", "id"):
        version = (ModuleVersion.objects.filter(deliverable_q(now), module=slot.module)
                   .order_by("-number").values_list("number", flat=True).first())
        if version is not None:
            return slot.module.code, version
    return "", None


def summary(enrollment_id: int) -> dict:
    """Aggregate engagement of one enrollment: what it engaged with, how often, last touch."""
    events = list(EngagementEvent.objects.filter(enrollment_id=enrollment_id)
                  .values_list("event_type", "step__key", "step__stage__audience_stage__name",
                               "step__channel__code", "occurred_at"))
    by_type = Counter(e[0] for e in events)
    topics: dict[str, Counter] = defaultdict(Counter)
    for event_type, step_key, stage, _channel, _at in events:
        if event_type in ENGAGED:
            topics[stage or step_key][event_type] += 1
    last_event = max((e[4] for e in events), default=None)
    touches = DueTouchpoint.objects.filter(enrollment_id=enrollment_id,
                                           status=TouchpointStatus.DELIVERED)
    last_touch = touches.aggregate(at=Max("finished_at"))["at"]
    return {
        "topics_engaged": {topic: dict(counts) for topic, counts in sorted(topics.items())},
        "events": dict(sorted(by_type.items())),
        "channels_engaged": sorted({e[3] for e in events if e[0] in ENGAGED}),
        "touchpoints_delivered": touches.count(),
        "last_touch": last_touch.isoformat() if last_touch else None,
        "last_engagement": last_event.isoformat() if last_event else None,
    }


def create_for(pairs: list[tuple[int, int]], *, now) -> int:
    """Rep tasks for new due rep touchpoints (enrollment id, step id); once each."""
    if not pairs:
        return 0
    wanted = set(pairs)
    found = DueTouchpoint.objects.filter(enrollment_id__in={p[0] for p in pairs},
                                         channel=CHANNEL, rep_task__isnull=True)
    modules: dict[int, tuple[str, int | None]] = {}
    tasks = []
    for touchpoint in found:
        if (touchpoint.enrollment_id, touchpoint.step_id) not in wanted:
            continue
        if touchpoint.step_id not in modules:
            modules[touchpoint.step_id] = rep_module(touchpoint.step_id, now)
        code, number = modules[touchpoint.step_id]
        tasks.append(RepTask(touchpoint=touchpoint, module_code=code, module_version=number,
                             summary=summary(touchpoint.enrollment_id), created_at=now))
    RepTask.objects.bulk_create(tasks, ignore_conflicts=True)
    return len(tasks)
