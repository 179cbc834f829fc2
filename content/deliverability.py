"""The one rule for whether a module version may reach a reader right now.

A version is deliverable when it is approved, its validity window has started
(`valid_from`) and its approval has not expired (`expires_at`). Withdrawn, expired and
unapproved versions are not. Everything that decides deliverability — the module list a
channel sees, assembly, the locked re-check before a delivery is logged, the journey map —
asks this module, in one of three shapes:

- `refusals(...)`: the reasons (code + sentence) one version is not deliverable, for
  refusals that must name every failing rule;
- `deliverable_q(now)`: the same rule as a queryset filter on `ModuleVersion`;
- `health(...)`: ready / expiring / blocked / pending, for screens that warn ahead of time
  (the notice period is the brand's, as in the expiry mails).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q

from .models import LOCKED_STATES, VersionState

# Refusal codes of the public contract (docs/api.md) this rule can produce.
NOT_APPROVED = "not_approved"
EXPIRED = "expired"
WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class Refusal:
    code: str
    detail: str


def refusals(*, label: str, state: str, valid_from: datetime | None,
             expires_at: datetime | None, withdrawn_at: datetime | None,
             now: datetime) -> list[Refusal]:
    """Why `label` (e.g. "CZN-EFF-001 v2") may not be delivered at `now`; [] when it may."""
    if state == VersionState.WITHDRAWN:
        when = f" on {withdrawn_at:%Y-%m-%d}" if withdrawn_at else ""
        return [Refusal(WITHDRAWN, f"{label} was withdrawn{when}.")]
    if state == VersionState.EXPIRED or (
        state == VersionState.APPROVED and expires_at is not None and expires_at <= now
    ):
        when = f" on {expires_at:%Y-%m-%d}" if expires_at else ""
        return [Refusal(EXPIRED, f"The approval of {label} expired{when}.")]
    if state != VersionState.APPROVED:
        return [Refusal(NOT_APPROVED, f"{label} is {state.replace('_', ' ')}, not approved.")]
    if valid_from is not None and valid_from > now:
        return [Refusal(NOT_APPROVED,
                        f"{label} is approved but valid only from {valid_from:%Y-%m-%d}.")]
    return []


def is_deliverable(*, state: str, valid_from: datetime | None, expires_at: datetime | None,
                   now: datetime) -> bool:
    return not refusals(label="", state=state, valid_from=valid_from, expires_at=expires_at,
                        withdrawn_at=None, now=now)


def deliverable_q(now: datetime, prefix: str = "") -> Q:
    """`ModuleVersion` filter for the same rule (`prefix` e.g. "versions__" from a module)."""
    return (
        Q(**{f"{prefix}state": VersionState.APPROVED})
        & (Q(**{f"{prefix}valid_from__isnull": True}) | Q(**{f"{prefix}valid_from__lte": now}))
        & (Q(**{f"{prefix}expires_at__isnull": True}) | Q(**{f"{prefix}expires_at__gt": now}))
    )


# Health of a version as screens show it, ahead of the hard rule above.
READY, EXPIRING, BLOCKED, PENDING = "ok", "expiring", "blocked", "pending"


def health(*, state: str, valid_from: datetime | None, expires_at: datetime | None,
           now: datetime, notice_days: int) -> str:
    """`ok` (deliverable, not near expiry), `expiring` (deliverable, expires within the
    brand's notice period), `blocked` (expired or withdrawn) or `pending` (not yet approved
    or not yet valid)."""
    if state in LOCKED_STATES and state != VersionState.APPROVED:
        return BLOCKED
    if state != VersionState.APPROVED:
        return PENDING
    if expires_at is not None and expires_at <= now:
        return BLOCKED
    if valid_from is not None and valid_from > now:
        return PENDING
    if expires_at is not None and expires_at <= now + timedelta(days=notice_days):
        return EXPIRING
    return READY
