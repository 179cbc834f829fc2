"""The compliance rules of assembly: each returns every `AssemblyError` it finds.

Whether a version's state and window allow delivery is `content.deliverability`'s rule;
everything else (market, audience, channel, locale, purpose, tokens, companions,
exclusions, consent, the footer, the unsubscribe link, Form 2253) is stated here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from approvals import form_2253
from content import deliverability, market_rules
from content.models import ModuleKind, Purpose, VersionState
from content.tokens import token_errors

from .. import unsubscribe
from .results import AssemblyError
from .snapshot import VersionSnapshot

# Which module purposes a step of each purpose may carry. Medical (non-promotional)
# content and promotional content never mix; patient-support content may travel in a
# promotional touchpoint, but promotion never rides in a patient-support or medical one.
ALLOWED_PURPOSES = {
    Purpose.PROMOTIONAL: frozenset({Purpose.PROMOTIONAL, Purpose.PATIENT_SUPPORT}),
    Purpose.MEDICAL: frozenset({Purpose.MEDICAL}),
    Purpose.PATIENT_SUPPORT: frozenset({Purpose.PATIENT_SUPPORT}),
}


@dataclass(frozen=True)
class Target:
    """Where and when content is to go: what every version is checked against."""

    jurisdiction: str
    audience: str
    channel: str
    locale: str
    step_purpose: str
    now: datetime


def locale_matches(version_locale: str, wanted: str) -> bool:
    """Exact BCP 47 match, or a language-only version ('en') for a regional request ('en-US')."""
    v, w = version_locale.lower(), wanted.lower()
    return v == w or w.split("-", 1)[0] == v


def version_errors(v: VersionSnapshot, target: Target) -> list[AssemblyError]:
    """Every rule one version breaks for `target`."""
    errors = [AssemblyError(r.code, r.detail, v.code) for r in deliverability.refusals(
        label=v.label, state=v.state, valid_from=v.valid_from, expires_at=v.expires_at,
        withdrawn_at=v.withdrawn_at, now=target.now)]
    add = errors.append
    if target.jurisdiction not in v.jurisdictions:
        add(AssemblyError(
            "jurisdiction_not_covered",
            f"{v.label} is approved for {', '.join(sorted(v.jurisdictions)) or 'no market'}, "
            f"not {target.jurisdiction}.", v.code))
    if target.audience not in v.audiences:
        add(AssemblyError(
            "audience_not_covered",
            f"{v.label} is for {', '.join(sorted(v.audiences)) or 'no audience'}, "
            f"not {target.audience}.", v.code))
    if target.channel not in v.channels:
        add(AssemblyError(
            "channel_not_covered",
            f"{v.label} is for {', '.join(sorted(v.channels)) or 'no channel'}, "
            f"not {target.channel}.", v.code))
    if not locale_matches(v.locale, target.locale):
        add(AssemblyError("locale_mismatch",
                          f"{v.label} is in {v.locale}; {target.locale or '(none)'} was asked for.",
                          v.code))
    if v.purpose not in ALLOWED_PURPOSES.get(target.step_purpose, ()):
        add(AssemblyError(
            "purpose_mismatch",
            f"{v.label} is {v.purpose.replace('_', ' ')} content; this step is "
            f"{target.step_purpose.replace('_', ' ')}.", v.code))
    bad_tokens = token_errors(v.subject) + token_errors(v.body_html) + token_errors(v.body_text)
    if bad_tokens:
        add(AssemblyError("unknown_token", " ".join(dict.fromkeys(bad_tokens)), v.code))
    return errors


def integrity_errors(v: VersionSnapshot) -> list[AssemblyError]:
    """A version whose content as read is not what MLR signed (`snapshot` verifies it
    against the signatures) is refused whatever else holds: every other rule would judge
    content nobody approved."""
    if not v.integrity_problem:
        return []
    return [AssemblyError("integrity_mismatch", v.integrity_problem, v.code)]


def combination_errors(versions: list[VersionSnapshot]) -> list[AssemblyError]:
    """Companions missing from, and excluded pairs present in, one set of versions."""
    errors = []
    present = {v.module_id for v in versions}
    for v in versions:
        for module_id, code in v.requires:
            if module_id not in present:
                errors.append(AssemblyError(
                    "missing_companion",
                    f"{v.code} must travel with {code}, which is not in this step.", v.code))
    reported = set()
    for v in versions:
        for module_id, code in v.excludes:
            pair = frozenset((v.module_id, module_id))
            if module_id in present and pair not in reported:
                reported.add(pair)
                errors.append(AssemblyError(
                    "excluded_combination", f"{v.code} and {code} must never appear together.",
                    v.code))
    return errors


def consent_errors(recipient: Mapping, channel: str) -> list[AssemblyError]:
    """The recipient must have consented to this channel (`consent: {channel: true}`)."""
    consent = recipient.get("consent") if isinstance(recipient, Mapping) else None
    if isinstance(consent, Mapping) and consent.get(channel) is True:
        return []
    return [AssemblyError(
        "no_consent", f"The recipient has not consented to the {channel} channel.")]


def step_errors(*, channel: str, step_key: str, step_channel: str, journey_slug: str,
                jurisdiction: str, journey_jurisdictions: set[str]) -> list[AssemblyError]:
    """Whether the step runs in this channel and market (the same for every recipient)."""
    errors = []
    if channel != step_channel:
        errors.append(AssemblyError(
            "channel_not_covered",
            f"Step {step_key!r} is a {step_channel} touchpoint, not {channel}."))
    if jurisdiction not in journey_jurisdictions:
        errors.append(AssemblyError(
            "jurisdiction_not_covered",
            f"Journey {journey_slug!r} does not run in {jurisdiction or '(none)'}; "
            f"it runs in {', '.join(sorted(journey_jurisdictions)) or 'no market'}."))
    return errors


# --- Footer and unsubscribe ------------------------------------------------------------

EMAIL_CHANNEL = "email"


def footer_choice(versions: list[VersionSnapshot], *, brand: str, jurisdiction: str,
                  locale: str, now: datetime) -> tuple[VersionSnapshot | None, list[AssemblyError]]:
    """The footer every email and portal page carries: the brand's approved `footer` module
    version tagged for the market, in the locale (an exact locale before a language-only
    one, then the newest approval), among those deliverable now. Audience, channel and
    purpose do not apply: the footer is the sender's legal text, the same for all.

    None and `missing_footer` when there is none; a footer whose content is not what MLR
    signed is refused (`integrity_mismatch`), never silently replaced by another."""
    footers = [v for v in versions if v.kind == ModuleKind.FOOTER
               and v.state == VersionState.APPROVED and jurisdiction in v.jurisdictions
               and locale_matches(v.locale, locale)]
    not_current = {v.id: deliverability.refusals(
        label=v.label, state=v.state, valid_from=v.valid_from, expires_at=v.expires_at,
        withdrawn_at=v.withdrawn_at, now=now) for v in footers}
    current = sorted(
        (v for v in footers if not not_current[v.id]),
        key=lambda v: (v.locale.lower() != locale.lower(),
                       -(v.approved_at.timestamp() if v.approved_at else 0), v.code))
    if current and not current[0].integrity_problem:
        return current[0], []
    errors = integrity_errors(current[0]) if current else []
    why = " ".join(r.detail for refusals in not_current.values() for r in refusals)
    errors.append(AssemblyError(
        "missing_footer",
        f"No approved, current footer of {brand} for {jurisdiction or '(none)'} / "
        f"{locale or '(none)'}: every email and portal page must carry the brand's approved "
        f"footer module (kind footer) for its market and locale.{' ' + why if why else ''}"))
    return None, errors


def unsubscribe_errors(recipient: Mapping, channel: str) -> list[AssemblyError]:
    """An email needs the reader's own unsubscribe link (`recipient.unsubscribe_url`)."""
    if channel != EMAIL_CHANNEL:
        return []
    problem = unsubscribe.url_problem(recipient.get(unsubscribe.FIELD))
    if not problem:
        return []
    return [AssemblyError(
        "missing_unsubscribe",
        f"Every email needs the recipient's own https unsubscribe link "
        f"(recipient.{unsubscribe.FIELD}, for the footer and List-Unsubscribe): {problem}.")]


# --- Market rules ------------------------------------------------------------------------


def market_rule_errors(versions: list[VersionSnapshot], target: Target) -> list[AssemblyError]:
    """Every rule of the target's market (`content.market_rules`: data no author can switch
    off) the combination breaks: a promotional claim without its brand's ISI
    (`fair_balance_missing_isi`), promotion for an audience the market forbids it to
    (`audience_not_permitted`). Reads the market's rules, and the modules' brands when a
    rule needs them (once per combination, not per recipient)."""
    in_force = market_rules.rules_in_force([target.jurisdiction])
    if not in_force or not versions:
        return []
    needs_brands = any(r.kind == market_rules.RuleKind.FAIR_BALANCE for r in in_force)
    brands = market_rules.module_brands(v.module_id for v in versions) if needs_brands else {}
    items = [market_rules.Item(code=v.code, kind=v.kind, purpose=v.purpose,
                               brand_id=brands.get(v.module_id, 0), audiences=v.audiences)
             for v in versions]
    return [AssemblyError(x.code, x.detail, x.module) for x in market_rules.assembly_violations(
        items, jurisdiction=target.jurisdiction, audience=target.audience, rules=in_force)]


# --- FDA Form 2253 ------------------------------------------------------------------------


def form_2253_errors(versions: list[VersionSnapshot], target: Target) -> list[AssemblyError]:
    """In the US, a promotional version of a brand that requires it is delivered only once
    its Form 2253 submission is recorded (`approvals.form_2253`). One query per
    combination, and none outside the US or without promotional content."""
    if target.jurisdiction != form_2253.JURISDICTION:
        return []
    candidates = {v.id: v for v in versions if form_2253.needs_form_2253(v.purpose, v.kind)}
    missing = form_2253.missing_submissions(candidates)
    return [AssemblyError(
        form_2253.FORM_2253_MISSING,
        f"{candidates[pk].label} is US promotional content of a brand that requires its FDA "
        f"Form 2253 submission to be recorded before first use; none is recorded.",
        candidates[pk].code) for pk in sorted(missing)]
