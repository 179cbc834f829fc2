"""Sign-in throttling (django-axes) for the admin and review logins, audited.

cms/settings.py configures axes (AXES_HANDLER points here): after AXES_FAILURE_LIMIT wrong
passwords a username is locked out for AXES_COOLOFF_TIME, even with the right password.
Every failed sign-in is a `tessera.signin` log line; a lockout is also appended to the
audit trail (`signin_locked_out`, once per lockout, naming the account when it exists).
Failures alone are not audited: anyone can send them for any name, and the audit chain
should not grow at an attacker's pace.
"""

from __future__ import annotations

import logging

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_failure_limit
from django.contrib.auth import get_user_model

from .audit import record

logger = logging.getLogger("tessera.signin")

SIGNIN_LOCKED_OUT = "signin_locked_out"


def login_page(request) -> str:
    """Which login a request came through ("admin" or "review"), for the log and the audit."""
    return "admin" if request.path.startswith("/admin/") else "review"


class AuditedAxesHandler(AxesDatabaseHandler):
    """axes' database handler that also logs every failure and audits the lockout itself."""

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is None:
            return
        username = str((credentials or {}).get("username", ""))[:150]
        failures = getattr(request, "axes_failures_since_start", 0) or 0
        limit = get_failure_limit(request, credentials)
        details = {"username": username, "login": login_page(request),
                   "ip_address": getattr(request, "axes_ip_address", None),
                   "failures": failures}
        if failures > limit:  # tried again while locked out (and the lockout starts again)
            logger.warning("sign-in refused: username locked out", extra=details)
            return
        logger.warning("sign-in failed", extra=details)
        if failures == limit and getattr(request, "axes_locked_out", False):
            account = get_user_model().objects.filter(username=username).first()
            record(SIGNIN_LOCKED_OUT, target=account, data=details)
            logger.warning("username locked out after repeated sign-in failures", extra=details)
