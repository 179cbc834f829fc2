"""Domain errors of the review workflow: a machine-readable code and a human message.

Views turn them into form errors / HTTP 4xx, the API into `{"code", "detail"}`, commands into
a non-zero exit; nothing catches them as a 500.
"""

from __future__ import annotations

from content import market_rules

# The codes, named so callers need not spell strings.
OWN_VERSION = "own_version"
ROLE_NOT_HELD = "role_not_held"
ALREADY_DECIDED = "already_decided"
SECOND_ROLE = "second_role"
STALE_VERSION = "stale_version"
WRONG_PASSWORD = "wrong_password"
SIGNING_LOCKED = "signing_locked"
CREDENTIALS_REQUIRED = "credentials_required"
REASON_REQUIRED = "reason_required"
COMMENT_REQUIRED = "comment_required"
INVALID_STATE = "invalid_state"
NOT_READY = "not_ready"
NOT_PERMITTED = "not_permitted"
UNKNOWN_ROLE = "unknown_role"
UNKNOWN_DECISION = "unknown_decision"
INACTIVE_USER = "inactive_user"
TOO_LONG = "too_long"
BUSY = "busy"
UNKNOWN_ANCHOR = "unknown_anchor"
INVALID_FORM = "invalid_form"  # a screen's form did not validate (never raised by a service)
SECOND_FACTOR_REQUIRED = "second_factor_required"  # approvals/second_factor.py
RECALL_AFTER_DECISION = "recall_after_decision"  # a reviewer decided: no recall any more
OPEN_ANNOTATIONS = "open_annotations"  # approving with the role's own annotations open
INVALID_ANCHOR = "invalid_anchor"  # an annotation's anchor is missing or malformed
NOT_FOUND = "not_found"  # an annotation (or version) the caller may not see or that is absent
# Market rules (content.market_rules states them; submission and assembly share the codes).
FAIR_BALANCE_MISSING_ISI = market_rules.FAIR_BALANCE_MISSING_ISI
AUDIENCE_NOT_PERMITTED = market_rules.AUDIENCE_NOT_PERMITTED

# Refusals that are security events: they are written to the audit trail even though the
# action itself is rolled back.
SECURITY_CODES = frozenset({
    WRONG_PASSWORD, SIGNING_LOCKED, ROLE_NOT_HELD, OWN_VERSION, SECOND_ROLE, NOT_PERMITTED,
    CREDENTIALS_REQUIRED, SECOND_FACTOR_REQUIRED,
})

# HTTP status of a refused action, by code: who you are (403), the record moved on (409),
# what you typed (400). Every code has one; a test keeps it so.
HTTP_STATUS = {
    OWN_VERSION: 403, ROLE_NOT_HELD: 403, SECOND_ROLE: 403, NOT_PERMITTED: 403,
    WRONG_PASSWORD: 403, SIGNING_LOCKED: 403, INACTIVE_USER: 403, SECOND_FACTOR_REQUIRED: 403,
    CREDENTIALS_REQUIRED: 400, ALREADY_DECIDED: 409, STALE_VERSION: 409, INVALID_STATE: 409,
    REASON_REQUIRED: 400, COMMENT_REQUIRED: 400, NOT_READY: 400, UNKNOWN_ROLE: 400,
    UNKNOWN_DECISION: 400, TOO_LONG: 400, UNKNOWN_ANCHOR: 400, INVALID_FORM: 400, BUSY: 409,
    FAIR_BALANCE_MISSING_ISI: 400, AUDIENCE_NOT_PERMITTED: 400,
    RECALL_AFTER_DECISION: 409, OPEN_ANNOTATIONS: 409, INVALID_ANCHOR: 400, NOT_FOUND: 404,
}



class ApprovalError(Exception):
    """A refused workflow action. `code` is stable (clients branch on it); `message` says why."""

    def __init__(self, code: str, message: str, *, details: list[str] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = list(details or [])

    @property
    def is_security_event(self) -> bool:
        return self.code in SECURITY_CODES

    def as_dict(self) -> dict:
        data = {"code": self.code, "detail": self.message}
        if self.details:
            data["details"] = self.details
        return data

    def __repr__(self) -> str:
        return f"ApprovalError({self.code!r}, {self.message!r})"
