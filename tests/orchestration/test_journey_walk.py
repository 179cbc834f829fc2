"""A recipient walks a live journey with a frozen clock: every service gets `now`.

Delays, send windows in Europe/Berlin vs America/New_York, a cap that postpones across
journeys of the brand, a pattern trigger across channels, a rep task, a pause after 30
days of silence — each decision with its reason."""

from __future__ import annotations

from datetime import timedelta

from content.models import Channel
from delivery.tokens import create_token
from journeys.engagement import record_event
from journeys.models import Enrollment, Journey, Step, Transition, pseudonymous_id
from orchestration import due_queue, enrollment, lifecycle, scheduler, triggers
from orchestration.models import (
    DueTouchpoint,
    EnrollmentProfile,
    FrequencyCap,
    Move,
    RepTask,
    TriggerRule,
)
from tests.factories import term

from .conftest import MONDAY


def enroll(journey, *rows, now=MONDAY):
    items, problems = enrollment.clean(list(rows), markets={"US", "DE"},
                                       channels={"email", "portal", "rep", "sms", "webinar"})
    assert not problems
    return enrollment.enroll(journey, items, now=now)


def profile(recipient_id, journey):
    return EnrollmentProfile.objects.get(enrollment__journey=journey,
                                         recipient_hash=pseudonymous_id(recipient_id))


def touchpoints(recipient_id):
    return list(DueTouchpoint.objects.filter(recipient_hash=pseudonymous_id(recipient_id))
                .order_by("id").values_list("step__key", "status"))


def test_send_windows_follow_each_markets_time_zone(world):
    journey = world["journey"]
    enroll(journey, {"id": "hcp-de", "market": "DE", "consent": {"email": True}},
           {"id": "hcp-us", "market": "US", "consent": {"email": True}})
    report = scheduler.run(now=MONDAY)
    assert report.created == 0 and report.waiting == 2
    de, us = profile("hcp-de", journey), profile("hcp-us", journey)
    # 09:00 in Berlin (CET, UTC+1) is 08:00 UTC; 09:00 in New York (EST, UTC-5) 14:00 UTC.
    assert de.next_check_at == MONDAY.replace(hour=8)
    assert us.next_check_at == MONDAY.replace(hour=14)
    assert de.reason.startswith("window: outside 09-17 Mon-Fri Europe/Berlin")
    scheduler.run(now=MONDAY.replace(hour=8))
    assert touchpoints("hcp-de") == [("welcome", "due")]
    assert touchpoints("hcp-us") == []
    scheduler.run(now=MONDAY.replace(hour=14))
    assert touchpoints("hcp-us") == [("welcome", "due")]
    # Running again plans nothing twice.
    assert scheduler.run(now=MONDAY.replace(hour=15)).created == 0


def test_weekend_and_consent(world):
    journey = world["journey"]
    saturday = MONDAY + timedelta(days=5, hours=6)  # Saturday 12:00 UTC
    enroll(journey, {"id": "no-consent", "market": "US"},
           {"id": "weekend", "market": "DE", "consent": {"email": True}}, now=saturday)
    scheduler.run(now=saturday)
    weekend = profile("weekend", journey)
    assert weekend.next_check_at == MONDAY + timedelta(days=7, hours=2)  # Monday 08:00 UTC
    # No email consent: the welcome email is skipped (recorded), the person moves on.
    scheduler.run(now=MONDAY + timedelta(days=7, hours=10))
    assert touchpoints("no-consent")[0] == ("welcome", "skipped")
    skipped = DueTouchpoint.objects.get(recipient_hash=pseudonymous_id("no-consent"))
    assert skipped.reason == "no_consent: no email consent"
    assert Enrollment.objects.get(recipient_hash=pseudonymous_id("no-consent")).current_step \
        == world["portal"]


def test_a_recipient_walks_the_journey(world):
    journey, brand = world["journey"], world["brand"]
    enroll(journey, {"id": "crm-0001", "market": "US", "specialty": "cardiology",
                     "consent": {"email": True}})
    monday_14 = MONDAY.replace(hour=14)
    scheduler.run(now=monday_14)
    email_token, _ = create_token(name="Email US", channels=["email"], jurisdictions=["US"])
    leased = due_queue.lease(token_id=email_token.pk, channel="email", markets={"US"},
                             limit=10, now=monday_14)
    assert [item.touchpoint.step.key for item in leased] == ["welcome"]
    due_queue.ack(leased[0].touchpoint.pk, token_id=email_token.pk, result="delivered",
                  now=monday_14 + timedelta(minutes=5))
    me = profile("crm-0001", journey)
    assert me.planned_step == world["portal"]
    # Delay: the portal step is due 3 days after the welcome email.
    scheduler.run(now=monday_14 + timedelta(hours=1))
    me.refresh_from_db()
    assert me.next_check_at == monday_14 + timedelta(days=3, minutes=5)
    assert me.reason == "delay: portal-followup is due 3 days after the previous touchpoint"

    # A cap across journeys of the brand: ≤ 2 promotional emails per 7 days.
    FrequencyCap.objects.create(brand=brand, channel="email", purpose="promotional",
                                max_count=2, period_days=7)
    news = Journey.objects.create(slug="hcp-news", name="News", brand=brand,
                                  audience=journey.audience, locale=journey.locale)
    news.jurisdictions.set(journey.jurisdictions.all())
    for order, key in enumerate(["news-1", "news-2"]):
        Step.objects.create(journey=news, stage=journey.stages.first().__class__.objects.create(
            journey=news, audience_stage=journey.stages.first().audience_stage, order=order)
            if order == 0 else news.stages.first(), key=key, name=key,
            channel=term(Channel, "email"), order=order)
    lifecycle.go_live(news, now=MONDAY)
    tuesday = monday_14 + timedelta(days=1)
    enroll(news, {"id": "crm-0001", "market": "US", "consent": {"email": True}}, now=tuesday)
    scheduler.run(now=tuesday)
    first = due_queue.lease(token_id=email_token.pk, channel="email", markets={"US"},
                            limit=10, now=tuesday)
    assert [i.touchpoint.step.key for i in first] == ["news-1"]
    due_queue.ack(first[0].touchpoint.pk, token_id=email_token.pk, result="delivered",
                  now=tuesday)
    scheduler.run(now=tuesday + timedelta(minutes=1))
    news_profile = profile("crm-0001", news)
    assert news_profile.reason.startswith("cap: ≤ 2 promotional email per 7 days reached; "
                                          "postponed to 2027-03-08 14:00")
    assert news_profile.next_check_at == monday_14 + timedelta(days=7)
    assert ("news-2", "due") not in touchpoints("crm-0001")

    # Pattern trigger: two ignored emails and no portal visit in 14 days → rep visit.
    pattern = Transition.objects.create(from_step=world["portal"], event_type="ignored",
                                        threshold=2, to_step=world["rep"],
                                        label="two ignored emails, no portal visit")
    rule = TriggerRule.objects.create(
        journey=journey, name="silent on email, absent on portal", kind="pattern",
        transition=pattern, conditions={"within_days": 14, "events": [
            {"event": "ignored", "channel": "email", "min": 2}], "absent": [{"channel": "portal"}]})
    pseudonym = pseudonymous_id("crm-0001")
    record_event(journey, world["step"], pseudonym, "ignored", occurred_at=tuesday)
    assert triggers.evaluate(now=tuesday) == 0  # one ignored email is not the pattern
    wednesday = tuesday + timedelta(days=1)
    record_event(journey, world["step"], pseudonym, "ignored", occurred_at=wednesday)
    assert triggers.evaluate(now=wednesday) == 1
    move = Move.objects.get(enrollment__journey=journey)
    assert move.rule == rule and move.to_step == world["rep"]
    assert "silent on email, absent on portal" in move.reason

    # The rep step: 2 days after the move, a task for the CRM with the approved call note
    # and an aggregate summary, nothing personal.
    scheduler.run(now=wednesday)
    assert not RepTask.objects.exists()
    friday = wednesday + timedelta(days=2)
    scheduler.run(now=friday)
    task = RepTask.objects.get()
    assert (task.module_code, task.module_version) == ("CAR-CALL-001", 1)
    assert task.summary["events"] == {"ignored": 2}
    assert task.summary["touchpoints_delivered"] == 1
    assert task.summary["last_touch"].startswith("2027-03-01T14:05")
    crm, _ = create_token(name="CRM", channels=["rep"], jurisdictions=["US"])
    rep_lease = due_queue.lease(token_id=crm.pk, channel="rep", markets={"US"}, limit=5,
                                now=friday)
    assert [i.touchpoint.rep_task.module_code for i in rep_lease] == ["CAR-CALL-001"]
    due_queue.ack(rep_lease[0].touchpoint.pk, token_id=crm.pk, result="delivered", now=friday)

    # Silence: nothing engaged for 30 days since the first touchpoint → outreach paused.
    assert triggers.silence(now=monday_14 + timedelta(days=29)) == 0
    scheduler.run(now=friday + timedelta(days=7))  # the reminder is due
    assert ("reminder", "due") in touchpoints("crm-0001")
    assert triggers.silence(now=monday_14 + timedelta(days=31)) == 2  # both journeys
    me.refresh_from_db()
    assert me.status == "paused"
    assert me.reason == "silence: no engagement across channels for 30 days"
    assert ("reminder", "stopped") in touchpoints("crm-0001")
