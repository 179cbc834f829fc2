"""The due queue drives a journey to completion through the API, as a channel does, and a
withdrawal during the run stops the affected touchpoints at the next lease.

Services profile (PostgreSQL): 10,000 recipients by default; the embedded profile (SQLite)
drives 500. `TESSERA_DRIVE_RECIPIENTS` overrides both.

The channel enrolls everyone in one bulk request, then loops: lease 500 (the maximum),
assemble each with its real recipient through the assemble endpoint (the delivery log),
acknowledge. Part-way through the first step, with a lease in hand, a regulatory reviewer
withdraws the claim both steps use: what the channel still assembles is refused by the
locked re-check (it acknowledges `failed`), every later lease refuses the affected
touchpoints (`withdrawn`), and the delivery log holds no delivery of the withdrawn version
after the withdrawal committed.
"""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.utils import timezone

from approvals.services import withdraw
from approvals.signing import Credentials
from delivery.models import DeliveredVersion
from journeys.models import Slot, Step
from orchestration import lifecycle, tasks
from orchestration.models import DueTouchpoint, EnrollmentProfile, SendWindow
from tests.api.builders import RECIPIENT, build_world, token, token_client
from tests.factories import UserFactory

POSTGRES = "postgresql" in settings.DATABASES["default"]["ENGINE"]
RECIPIENTS = int(os.environ.get("TESSERA_DRIVE_RECIPIENTS") or (10_000 if POSTGRES else 500))
LIMIT = 500 if POSTGRES else 100  # 500 is the due queue's maximum lease
# The withdrawal comes with the first lease in hand, half of it assembled and sent.
assert 2 * LIMIT <= RECIPIENTS, "too few recipients for a withdrawal mid-step"

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def withdraw_claim(version):
    reviewer = UserFactory(username="reg-reviewer")
    Group.objects.get_or_create(name="mlr-regulatory")[0].user_set.add(reviewer)
    withdraw(version=version, actor=reviewer, reason="Label change",
             credentials=Credentials(password="correct-horse-battery", username="reg-reviewer"),
             role="regulatory")


def test_the_queue_drives_everyone_to_the_end_and_a_withdrawal_stops_touchpoints():
    w = build_world()
    Step.objects.filter(pk=w["portal"].pk).delete()
    # The real clock drives the API: the reminder follows the welcome at once.
    reminder = Step.objects.create(journey=w["journey"], stage=w["step"].stage, key="reminder",
                                   name="Reminder", channel=w["step"].channel, order=5,
                                   delay_days=0)
    for slot in Slot.objects.filter(step=w["step"]):
        Slot.objects.create(step=reminder, order=slot.order, module=slot.module)
    lifecycle.go_live(w["journey"], now=timezone.now())
    SendWindow.objects.create(market="US", time_zone="UTC", start_hour=0, end_hour=24,
                              weekdays=list(range(7)))
    claim = w["versions"]["claim"]
    _token, key = token(channels=("email",), jurisdictions=("US",), rate_limit="1000000/min")
    channel = token_client(key)

    ids = [f"crm-{i:05d}" for i in range(RECIPIENTS)]
    by_pseudonym = {}  # the channel's own map back to its recipients
    for start in range(0, RECIPIENTS, 10_000):  # the API takes up to 10,000 at once
        batch = ids[start:start + 10_000]
        enrolled = channel.post("/api/v1/enrollments/", {
            "journey": w["journey"].slug,
            "recipients": [{"id": rid, "market": "US", "consent": {"email": True}}
                           for rid in batch]}, format="json")
        assert enrolled.status_code == 200, enrolled.content
        by_pseudonym.update((row["pseudonym"], batch[row["row"]])
                            for row in enrolled.json()["recipients"])

    delivered = failed = 0
    withdrawn_at = None
    for _round in range(4 * RECIPIENTS // LIMIT + 10):
        tasks.tick()  # the beat task: plans what is due (and returns expired leases)
        leased = channel.get("/api/v1/due/", {"channel": "email", "limit": LIMIT})
        assert leased.status_code == 200, leased.content
        items = leased.json()["items"]
        if withdrawn_at is not None:
            assert items == []  # everything the withdrawal affects is refused at lease
        for n, item in enumerate(items):
            if withdrawn_at is None and n == len(items) // 2:
                withdraw_claim(claim)  # mid-run, with this lease in hand (committed)
                claim.refresh_from_db()
                withdrawn_at = claim.withdrawn_at
            touchpoint = item["touchpoint"]
            message = channel.post(item["assemble_url"], {
                "channel": "email", "jurisdiction": touchpoint["market"],
                "locale": touchpoint["locale"],
                "recipient": {**RECIPIENT, "id": by_pseudonym[touchpoint["recipient"]]}},
                format="json")
            if message.status_code == 200:
                delivered += 1
            else:
                assert [e["code"] for e in message.json()["errors"]] == ["withdrawn"]
                failed += 1
            ack = channel.post(item["ack_url"], {
                "result": "delivered" if message.status_code == 200 else "failed"},
                format="json")
            assert ack.status_code == 200, ack.content
        if not items and not EnrollmentProfile.objects.filter(status="active").exists():
            break

    assert withdrawn_at is not None
    assert EnrollmentProfile.objects.filter(status="completed").count() == RECIPIENTS
    assert DueTouchpoint.objects.count() == 2 * RECIPIENTS  # once per recipient × step
    assert delivered == LIMIT // 2
    assert failed == LIMIT - LIMIT // 2  # the rest of the lease in hand, refused on assembly
    assert DueTouchpoint.objects.filter(status="delivered").count() == delivered
    assert DueTouchpoint.objects.filter(status="failed").count() == failed
    refused = DueTouchpoint.objects.filter(status="refused")
    assert refused.count() == 2 * RECIPIENTS - delivered - failed
    assert {e["code"] for errors in refused.values_list("errors", flat=True) for e in errors} \
        == {"withdrawn"}
    assert not DueTouchpoint.objects.filter(status__in=("due", "leased")).exists()
    # The delivery log: the withdrawn claim went out only before the withdrawal committed.
    logged = DeliveredVersion.objects.filter(version=claim)
    assert logged.count() == delivered
    assert not logged.filter(delivery__served_at__gte=withdrawn_at).exists()
