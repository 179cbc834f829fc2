"""The approvals demo: drive each demo module's latest version to its target state
(`state` in demo/data/modules.toml) through the real workflow.

Each version is submitted by its author and signed by the demo reviewers with their
passwords, exactly as through the screens. Versions meant to be expired get a past
`expires_at` (recorded in the audit trail as demo back-dating) and are expired by
`expire_due_versions`; withdrawn ones are withdrawn with a signed reason. Idempotent: a
version already in its target state is left alone. Notification emails are not sent while
loading (the demo addresses are not real).
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from approvals import audit, services
from approvals.roles import REQUIRED_ROLES, ROLE_GROUPS
from approvals.signing import Credentials
from content.models import ContentModule, VersionState

from .specs import demo_users, target_states

WITHDRAWAL_REASON = "Demo: label update changed the dosing section; content withdrawn."


def reviewer_usernames() -> dict[str, str]:
    """MLR role -> the demo user whose groups (people.toml) grant that role."""
    by_group = {group: user.username for user in demo_users() for group in user.groups}
    return {role: by_group[ROLE_GROUPS[role]] for role in REQUIRED_ROLES}


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


def load(out) -> None:
    targets = target_states()
    User = get_user_model()
    reviewers = {role: User.objects.get(username=name)
                 for role, name in reviewer_usernames().items()}
    passwords = {user.username: user.password for user in demo_users()}
    for reviewer in reviewers.values():
        _verify_once(reviewer, passwords[reviewer.username])
    changed = 0
    modules = ContentModule.objects.filter(code__in=list(targets)).order_by("code")
    # One transaction: a fraction of the commits (SQLite fsyncs each), and all or nothing.
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"), \
            transaction.atomic():
        for module in modules:
            version = module.latest_version()
            if version is None:
                continue
            if _drive(version, targets[module.code], reviewers=reviewers,
                      passwords=passwords, out=out):
                changed += 1
    out.write(f"approvals: {changed} demo version(s) moved through review; "
              f"{len(targets) - changed} already in place\n")
