"""A brand's review clock: when a round is due, when the undecided roles are reminded, when
and to whom it is escalated. Pure rules over plain values plus one read (`policy_for`);
`approvals.services` applies them (submission sets the due date, beat reminds, escalates
and closes overdue rounds).

A brand without a `ReviewPolicy` row uses the defaults: due `TESSERA_REVIEW_DUE_DAYS`
(5) days after submission, a reminder 1 day before, escalation to the module's owner 2 days
after the due date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

DEFAULT_REMINDER_DAYS = 1
DEFAULT_ESCALATION_DAYS = 2
DEFAULT_ESCALATE_TO = "owner"


@dataclass(frozen=True)
class Policy:
    due_days: int
    reminder_days: int
    escalation_days: int
    escalate_to: str  # "owner", an MLR role, or "administrators"

    def due_at(self, submitted_at: datetime) -> datetime:
        return submitted_at + timedelta(days=self.due_days)

    def remind_at(self, due_at: datetime) -> datetime:
        return due_at - timedelta(days=self.reminder_days)

    def escalate_at(self, due_at: datetime) -> datetime:
        return due_at + timedelta(days=self.escalation_days)


def default_policy() -> Policy:
    return Policy(due_days=getattr(settings, "TESSERA_REVIEW_DUE_DAYS", 5),
                  reminder_days=DEFAULT_REMINDER_DAYS,
                  escalation_days=DEFAULT_ESCALATION_DAYS,
                  escalate_to=DEFAULT_ESCALATE_TO)


def policy_for(brand) -> Policy:
    """The brand's policy (its `ReviewPolicy` row), or the defaults."""
    from .models import ReviewPolicy

    row = None
    if brand is not None:
        row = ReviewPolicy.objects.filter(brand_id=getattr(brand, "pk", brand)).first()
    if row is None:
        return default_policy()
    return Policy(due_days=row.due_days, reminder_days=row.reminder_days,
                  escalation_days=row.escalation_days, escalate_to=row.escalate_to)


def needs_reminder(*, now: datetime, due_at: datetime, reminded_at: datetime | None,
                   policy: Policy) -> bool:
    """Once per round, from `reminder_days` before the due date."""
    return reminded_at is None and now >= policy.remind_at(due_at)


def needs_escalation(*, now: datetime, due_at: datetime, escalated_at: datetime | None,
                     policy: Policy) -> bool:
    """Once per round, `escalation_days` after the due date."""
    return escalated_at is None and now >= policy.escalate_at(due_at)
