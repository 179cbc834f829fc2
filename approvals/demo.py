"""Drive the demo versions to `content.demo.TARGET_STATES` through the real workflow.

Each module's latest version is submitted by its author and signed by the demo reviewers
(`medical`, `legal`, `regulatory`) with their passwords, exactly as through the screens.
Versions meant to be expired get a past `expires_at` (recorded in the audit trail as demo
back-dating) and are expired by `expire_due_versions`; withdrawn ones are withdrawn with a
signed reason. Idempotent: a version already in its target state is left alone.
Notification emails are not sent while loading (the demo addresses are not real).
"""

from __future__ import annotations

import sys
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from content.models import ContentModule, VersionState

from . import audit, services
from .roles import REQUIRED_ROLES
from .signing import Credentials

REVIEWER_USERNAMES = {"medical": "medical", "legal": "legal", "regulatory": "regulatory"}
WITHDRAWAL_REASON = "Demo: label update changed the dosing section; content withdrawn."
ORDER = [VersionState.DRAFT, VersionState.IN_REVIEW, VersionState.APPROVED]


def _passwords() -> dict[str, str]:
    from content.demo import DEMO_USERS

    return {spec.username: spec.password for spec in DEMO_USERS}


def _verify_once(user, password: str) -> None:
    """Check the demo reviewer's password with the real hasher once, then let this in-memory
    user object compare later signings against that verified value: ~170 demo signatures
    would otherwise spend over a minute in PBKDF2. Only this loader's objects are touched."""
    if not user.check_password(password):
        raise RuntimeError(f"demo user {user.username} does not have the demo password")
    user.check_password = lambda raw: constant_time_compare(raw, password)


def _credentials(user, passwords) -> Credentials:
    return Credentials(password=passwords[user.username], username=user.username)


def _drive(version, target: str, *, reviewers, passwords, out) -> bool:
    """Move one version towards `target`; returns True when it changed."""
    if version.state == target or target in {VersionState.DRAFT, VersionState.CHANGES_REQUESTED}:
        return False
    if version.state in {VersionState.EXPIRED, VersionState.WITHDRAWN}:
        out.write(f"approvals demo: {version} is {version.state}, wanted {target}: left alone\n")
        return False
    if version.is_editable:
        services.submit_for_review(version=version, actor=version.created_by)
    if target == VersionState.IN_REVIEW:
        return True
    if version.state == VersionState.IN_REVIEW:
        for role in REQUIRED_ROLES:
            reviewer = reviewers[role]
            services.decide(version=version, actor=reviewer, role=role, decision="approve",
                            expected_sha256=version.sha256,
                            credentials=_credentials(reviewer, passwords))
    if target == VersionState.EXPIRED and version.state == VersionState.APPROVED:
        now = timezone.now()
        version.expires_at = now - timedelta(seconds=1)
        version.save(update_fields=["expires_at", "updated_at"])
        audit.record("expiry_backdated", actor=None, target=version,
                     data={"reason": "demo data", "expires_at": version.expires_at.isoformat()})
        services.expire_due_versions(now=now)
    elif target == VersionState.WITHDRAWN and version.state == VersionState.APPROVED:
        reviewer = reviewers["regulatory"]
        services.withdraw(version=version, actor=reviewer, role="regulatory",
                          reason=WITHDRAWAL_REASON, credentials=_credentials(reviewer, passwords))
    version.refresh_from_db()
    return True


def load(stdout=None) -> None:
    out = stdout or sys.stdout
    try:
        from content.demo import TARGET_STATES
    except ImportError:
        out.write("approvals demo: content.demo.TARGET_STATES missing, skipped\n")
        return
    User = get_user_model()
    reviewers = {role: User.objects.get(username=name) for role, name in REVIEWER_USERNAMES.items()}
    passwords = _passwords()
    for reviewer in reviewers.values():
        _verify_once(reviewer, passwords[reviewer.username])
    changed = 0
    modules = ContentModule.objects.filter(code__in=list(TARGET_STATES)).order_by("code")
    # One transaction: a fraction of the commits (SQLite fsyncs each), and all or nothing.
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"), \
            transaction.atomic():
        for module in modules:
            version = module.latest_version()
            if version is None:
                continue
            if _drive(version, TARGET_STATES[module.code], reviewers=reviewers,
                      passwords=passwords, out=out):
                changed += 1
    out.write(f"approvals: {changed} demo version(s) moved through review; "
              f"{len(TARGET_STATES) - changed} already in place\n")
