"""Signer re-authentication (21 CFR 11.200(a)(1)): a session cookie alone never signs.

The first signing of a session needs the user id (username) and the password; later ones
the password only; after `TESSERA_SIGNING_IDLE_SECONDS` without signing, both again. The
session remembers who last signed and when (`SESSION_USER_KEY`, `SESSION_AT_KEY`); callers
without a session (shell, tasks, tests) always give both.

Wrong credentials are refused and audited; `TESSERA_SIGNING_MAX_FAILURES` in a row lock
signing for that user (a security event) until an administrator unlocks it.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import audit, errors
from .errors import ApprovalError
from .models import SigningState

SESSION_USER_KEY = "tessera_signing_user_id"
SESSION_AT_KEY = "tessera_signing_at"


@dataclass(frozen=True)
class Credentials:
    """What the signer typed at signing time."""

    password: str
    username: str | None = None


def needs_username(session: MutableMapping | None, user, *, now: datetime | None = None) -> bool:
    """True when this signing must also re-enter the user id (first in session, or idle)."""
    if session is None:
        return True
    if session.get(SESSION_USER_KEY) != user.pk:
        return True
    last = session.get(SESSION_AT_KEY)
    if not isinstance(last, int | float):
        return True
    now = now or timezone.now()
    return now.timestamp() - float(last) > settings.TESSERA_SIGNING_IDLE_SECONDS


def _state_for_update(user) -> SigningState:
    SigningState.objects.get_or_create(user=user)
    return SigningState.objects.select_for_update().get(user=user)


def verify_signer(*, user, credentials: Credentials | None, session: MutableMapping | None,
                  target=None) -> None:
    """Check the signer's credentials; raise (and audit) when they do not sign.

    Runs its own transaction for failures, so the failure count and the audit entry persist
    even though the caller's action is refused.
    """
    if user is None or not user.is_authenticated:
        raise ApprovalError(errors.NOT_PERMITTED, "Log in to sign.")
    if not user.is_active:
        raise ApprovalError(errors.INACTIVE_USER, "This account is deactivated: it cannot sign.")
    state = SigningState.objects.filter(user=user).first()
    if state is not None and state.is_locked:
        audit.record("signature_refused_locked", actor=user, target=target,
                     data={"reason": "signing locked"})
        raise ApprovalError(errors.SIGNING_LOCKED,
                            "Signing is locked for your account after repeated wrong passwords. "
                            "Ask an administrator to unlock it.")
    username_required = needs_username(session, user)
    password = (credentials.password if credentials else "") or ""
    username = ((credentials.username if credentials else None) or "").strip()
    if not password or (username_required and not username):
        what = "your user id and password" if username_required else "your password"
        audit.record("signature_refused", actor=user, target=target,
                     data={"code": errors.CREDENTIALS_REQUIRED})
        raise ApprovalError(errors.CREDENTIALS_REQUIRED, f"Signing needs {what}.")
    username_ok = (not username_required and not username) or username == user.get_username()
    if username_ok and user.check_password(password):
        if state is not None and state.consecutive_failures:
            with transaction.atomic():
                state = _state_for_update(user)
                state.consecutive_failures = 0
                state.save(update_fields=["consecutive_failures"])
        if session is not None:
            session[SESSION_USER_KEY] = user.pk
            session[SESSION_AT_KEY] = timezone.now().timestamp()
        return
    _record_failure(user=user, target=target, username_required=username_required)


def _record_failure(*, user, target, username_required: bool) -> None:
    with transaction.atomic():
        state = _state_for_update(user)
        state.consecutive_failures += 1
        state.last_failure_at = timezone.now()
        locks_now = state.consecutive_failures >= settings.TESSERA_SIGNING_MAX_FAILURES
        if locks_now:
            state.locked_at = state.last_failure_at
        state.save()
        audit.record("signature_failed", actor=user, target=target,
                     data={"consecutive_failures": state.consecutive_failures})
        if locks_now:
            audit.record("signing_locked", actor=user, target=user,
                         data={"consecutive_failures": state.consecutive_failures})
    if locks_now:
        raise ApprovalError(errors.SIGNING_LOCKED,
                            f"Wrong credentials {state.consecutive_failures} times in a row: signing "
                            "is now locked for your account. Ask an administrator to unlock it.")
    what = "user id or password" if username_required else "password"
    left = settings.TESSERA_SIGNING_MAX_FAILURES - state.consecutive_failures
    raise ApprovalError(errors.WRONG_PASSWORD,
                        f"Wrong {what}: nothing was signed. {left} more wrong attempt(s) will "
                        "lock signing.")


@transaction.atomic
def unlock_signing(*, user, actor) -> None:
    """An administrator re-opens signing for `user` (audited as a permission change)."""
    state = _state_for_update(user)
    state.consecutive_failures = 0
    state.locked_at = None
    state.save()
    audit.record("signing_unlocked", actor=actor, target=user, data={})
