"""What an assembly returns: the output and manifest, or every reason it was refused."""

from __future__ import annotations

from dataclasses import dataclass, field

from approvals.form_2253 import FORM_2253_MISSING
from content import deliverability, market_rules

# Every refusal code assembly can give (docs/api.md); the state codes are deliverability's.
ERROR_CODES = (
    deliverability.NOT_APPROVED, deliverability.EXPIRED, deliverability.WITHDRAWN,
    "jurisdiction_not_covered", "audience_not_covered",
    "channel_not_covered", "locale_mismatch", "missing_companion", "excluded_combination",
    "purpose_mismatch", "unknown_token", "missing_recipient_field", "no_consent",
    "integrity_mismatch", "missing_footer", "missing_unsubscribe",
    market_rules.FAIR_BALANCE_MISSING_ISI, market_rules.AUDIENCE_NOT_PERMITTED,
    FORM_2253_MISSING,
)


@dataclass(frozen=True)
class AssemblyError:
    code: str
    detail: str
    module: str | None = None

    def as_dict(self) -> dict:
        data = {"code": self.code, "detail": self.detail}
        if self.module:
            data["module"] = self.module
        return data


@dataclass
class AssemblyResult:
    ok: bool
    subject: str = ""
    html: str = ""
    text: str = ""
    preheader: str = ""
    manifest: dict = field(default_factory=dict)
    # Mail headers the sender must set (email: List-Unsubscribe, List-Unsubscribe-Post).
    headers: dict[str, str] = field(default_factory=dict)
    errors: list[AssemblyError] = field(default_factory=list)

    @property
    def error_codes(self) -> list[str]:
        return [e.code for e in self.errors]
