"""Celery tasks of the workflow. Tasks that change records take the acting user's id
(`acting_user_id`); beat runs them as the system (None)."""

from __future__ import annotations

from celery import shared_task
from django.contrib.auth import get_user_model

from . import anchoring, notifications, services


def _user(user_id):
    if user_id is None:
        return None
    return get_user_model().objects.get(pk=user_id)


@shared_task(name="approvals.expire_due_versions")
def expire_due_versions(acting_user_id: int | None = None) -> list[int]:
    """Expire every approved version past its expiry date; returns their ids."""
    return [v.pk for v in services.expire_due_versions(actor=_user(acting_user_id))]


@shared_task(name="approvals.notify_expiring")
def notify_expiring(acting_user_id: int | None = None) -> list[int]:
    """Email owners of versions entering their brand's expiry-notice window; returns ids."""
    return [v.pk for v in services.notify_expiring(actor=_user(acting_user_id))]


@shared_task(name="approvals.close_overdue_rounds")
def close_overdue_rounds(acting_user_id: int | None = None) -> list[int]:
    """Return the change requests of rounds past their due date; returns the round ids."""
    return [r.pk for r in services.close_overdue_rounds(actor=_user(acting_user_id))]


@shared_task(name="approvals.send_review_reminders")
def send_review_reminders() -> list[int]:
    """Remind the roles that have not decided as a round's due date nears; returns ids."""
    return [r.pk for r in services.send_review_reminders()]


@shared_task(name="approvals.escalate_overdue_rounds")
def escalate_overdue_rounds() -> list[int]:
    """Escalate rounds overdue by their brand's escalation days; returns the round ids."""
    return [r.pk for r in services.escalate_overdue_rounds()]


@shared_task(name="approvals.anchor_audit_chain")
def anchor_audit_chain() -> int:
    """Write a signed checkpoint of the audit chain's head (and log it); returns its id."""
    return anchoring.write_checkpoint().pk


@shared_task(name="approvals.send_notification", autoretry_for=(OSError,), retry_backoff=True,
             max_retries=5)
def send_notification(to: list[str], subject: str, body: str) -> int:
    return notifications.send(to=to, subject=subject, body=body)
