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
