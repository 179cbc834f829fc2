"""Email notifications of the workflow (Django's mail framework; sent by a Celery task).

Messages name the module and version and link to the review page; they carry no content
of the module beyond its code and title, and never recipient data.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse


def site_url(path: str) -> str:
    base = getattr(settings, "TESSERA_SITE_URL", "http://127.0.0.1:8000").rstrip("/")
    return f"{base}{path}"


def review_url(version_id: int) -> str:
    return site_url(reverse("approvals:review", args=[version_id]))


def send(*, to: list[str], subject: str, body: str) -> int:
    recipients = sorted({address for address in to if address})
    if not recipients:
        return 0
    return send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)


def notify_integrity_mismatch(version, *, detail: str) -> None:
    """Tell the regulatory reviewers that `version`'s content as read is not what they
    signed (sent after the caller's transaction commits; content itself is not quoted)."""
    from django.db import transaction

    from .roles import Role, reviewers_for
    from .tasks import send_notification

    to = [u.email for u in reviewers_for([Role.REGULATORY]) if u.email]
    if not to:
        return
    module = version.module
    subject = f"[Tessera] Integrity alert: {module.code} v{version.number} is refused"
    body = (f"{module.brand}: {module.code} v{version.number} ({module.title}) no longer "
            f"matches what MLR signed, so assembly refuses it.\n\n{detail}\n\n"
            "Someone changed it outside the application. Review the audit trail, restore "
            f"the approved content or withdraw the version:\n{review_url(version.pk)}\n")
    transaction.on_commit(lambda: send_notification.delay(to, subject, body))
