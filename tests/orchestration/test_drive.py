"""The due queue drives a journey to completion on PostgreSQL, and a withdrawal during the
run stops the affected touchpoints at the next lease (services profile)."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from delivery.tokens import create_token
from journeys.models import Slot, Step
from orchestration import due_queue, enrollment, lifecycle, scheduler
from orchestration.models import DueTouchpoint, EnrollmentProfile, SendWindow
from tests.api.builders import build_world

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
RECIPIENTS = int(os.environ.get("TESSERA_DRIVE_RECIPIENTS", "1000"))


def test_the_queue_drives_everyone_to_the_end_and_a_withdrawal_stops_touchpoints():
    w = build_world()
    Step.objects.filter(pk=w["portal"].pk).delete()
    reminder = Step.objects.create(journey=w["journey"], stage=w["step"].stage, key="reminder",
                                   name="Reminder", channel=w["step"].channel, order=5,
                                   delay_days=1)
    for slot in Slot.objects.filter(step=w["step"]):
        Slot.objects.create(step=reminder, order=slot.order, module=slot.module)
    now = timezone.now()
    lifecycle.go_live(w["journey"], now=now)
    SendWindow.objects.create(market="US", time_zone="UTC", start_hour=0, end_hour=24,
                              weekdays=list(range(7)))
    for start in range(0, RECIPIENTS, 10_000):
        items, _ = enrollment.clean(
            [{"id": f"r{i}", "market": "US", "consent": {"email": True}}
             for i in range(start, min(RECIPIENTS, start + 10_000))],
            markets={"US"}, channels={"email", "portal"})
        enrollment.enroll(w["journey"], items, now=now)
    token, _key = create_token(name="Email", channels=["email"], jurisdictions=["US"])
    delivered_before_withdrawal = 0
    withdrawn = False
    for _round in range(200):
        scheduler.run(now=now)
        leased = due_queue.lease(token_id=token.pk, channel="email", markets={"US"}, limit=500,
                                 now=now)
        for item in leased:
            due_queue.ack(item.touchpoint.pk, token_id=token.pk, result="delivered", now=now)
        if not withdrawn:
            delivered_before_withdrawal = DueTouchpoint.objects.filter(
                status="delivered").count()
            claim = w["versions"]["claim"]
            claim.state, claim.withdrawn_at = "withdrawn", now
            claim.save(update_fields=["state", "withdrawn_at"])
            withdrawn = True
        if not EnrollmentProfile.objects.filter(status="active").exists():
            break
        now += timedelta(days=1)
    assert EnrollmentProfile.objects.filter(status="completed").count() == RECIPIENTS
    assert delivered_before_withdrawal == 500
    assert DueTouchpoint.objects.filter(status="delivered").count() == 500
    refused = DueTouchpoint.objects.filter(status="refused")
    assert refused.count() == 2 * RECIPIENTS - 500
    assert {e["code"] for errors in refused.values_list("errors", flat=True) for e in errors} \
        == {"withdrawn"}
    assert DueTouchpoint.objects.count() == 2 * RECIPIENTS  # once per recipient × step
