"""The beat task runs the whole tick and reports what it did."""

from django.utils import timezone

from orchestration import enrollment, tasks
from orchestration.models import DueTouchpoint, SendWindow


def test_tick_plans_due_touchpoints(world):
    SendWindow.objects.create(market="US", time_zone="UTC", start_hour=0, end_hour=24,
                              weekdays=list(range(7)))
    items, _ = enrollment.clean([{"id": "a", "market": "US", "consent": {"email": True}}],
                                markets={"US", "DE"}, channels={"email"})
    enrollment.enroll(world["journey"], items, now=timezone.now())
    report = tasks.tick()
    assert report["created"] == 1 and report["evaluated"] == 1
    assert DueTouchpoint.objects.get().status == "due"
    assert tasks.schedule_now() == 0  # nothing left to plan
