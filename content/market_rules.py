"""Market rules: what a market's law requires of any content, whatever its author set.

A `MarketRule` (content/models.py) is data per jurisdiction, kept by administrators; this
module states once what each kind of rule means. The review workflow checks a version
against the rules of every market it is tagged for before it may go to review
(`submission_violations`), and assembly checks every combination it would deliver against
the rules of the market it is for (`assembly_violations`). Both report every violation.

Kinds (parameters in brackets, with their defaults in `DEFAULT_PARAMETERS`):

- `fair_balance` — a promotional claim travels with the safety information of its own
  brand (US: 21 CFR 202.1(e)). [claim_kinds, purposes, companion_kind]
  - at submission: the version must name an ISI module of its brand among its companions
    (`requires`, signed with the version), so the fair balance is part of what MLR signs;
  - at assembly: an assembly holding such a claim must hold an ISI module of the claim's
    brand (every version in a delivered assembly is approved for the market, so that ISI
    is the brand's approved ISI for it).
  Refusal code `fair_balance_missing_isi`.
- `audience_limit` — content of the restricted purposes may reach only the permitted
  audiences (DE/EU: prescription-only medicines are promoted to health professionals only,
  HWG § 10 / Directive 2001/83/EC art. 88; patients may receive patient-support and
  medical, non-promotional, content). [purposes, audiences, exempt_kinds]
  - at submission: a version of a restricted purpose tagged for a market with such a rule
    may not be tagged for another audience;
  - at assembly: a version of a restricted purpose is refused in an assembly for another
    audience.
  Refusal code `audience_not_permitted`. Footers are exempt by default: the footer is the
  sender's legal text, the same for every reader.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import TextChoices

# The refusal codes (the assembly API and the review workflow both use them).
FAIR_BALANCE_MISSING_ISI = "fair_balance_missing_isi"
AUDIENCE_NOT_PERMITTED = "audience_not_permitted"


class RuleKind(TextChoices):
    FAIR_BALANCE = "fair_balance", "Fair balance: promotional claims travel with the brand's ISI"
    AUDIENCE_LIMIT = "audience_limit", "Audience limit: restricted purposes only for some audiences"


DEFAULT_PARAMETERS: dict[str, dict[str, object]] = {
    RuleKind.FAIR_BALANCE: {
        "claim_kinds": ["claim"], "purposes": ["promotional"], "companion_kind": "isi"},
    RuleKind.AUDIENCE_LIMIT: {
        "purposes": ["promotional"], "audiences": ["hcp"], "exempt_kinds": ["footer"]},
}
LIST_PARAMETERS = frozenset({"claim_kinds", "purposes", "audiences", "exempt_kinds"})


def parameter_errors(kind: str, parameters) -> list[str]:
    """What is wrong with a rule's parameters, in words for the administrator."""
    if kind not in DEFAULT_PARAMETERS:
        return [f"Unknown rule kind {kind!r}."]
    if not isinstance(parameters, dict):
        return ['Parameters must be an object, e.g. {"audiences": ["hcp"]}.']
    allowed = DEFAULT_PARAMETERS[kind]
    errors = [f"Unknown parameter {name!r} for {kind}; known: {', '.join(sorted(allowed))}."
              for name in sorted(set(parameters) - set(allowed))]
    for name, value in parameters.items():
        if name not in allowed:
            continue
        if name in LIST_PARAMETERS:
            if not (isinstance(value, list) and value
                    and all(isinstance(v, str) and v for v in value)):
                errors.append(f"{name} must be a non-empty list of codes.")
        elif not (isinstance(value, str) and value):
            errors.append(f"{name} must be a code.")
    return errors


@dataclass(frozen=True)
class Rule:
    """A rule in force, as the checks read it (parameters merged over the defaults)."""

    jurisdiction: str
    kind: str
    claim_kinds: frozenset = frozenset()
    purposes: frozenset = frozenset()
    companion_kind: str = ""
    audiences: frozenset = frozenset()
    exempt_kinds: frozenset = frozenset()

    @classmethod
    def of(cls, jurisdiction: str, kind: str, parameters: dict) -> Rule:
        merged = {**DEFAULT_PARAMETERS[kind], **(parameters or {})}
        return cls(jurisdiction=jurisdiction, kind=kind, **{
            name: frozenset(value) if name in LIST_PARAMETERS else value
            for name, value in merged.items()})


@dataclass(frozen=True)
class Item:
    """A module version as the rules see it."""

    code: str  # module code
    kind: str
    purpose: str
    brand_id: int
    audiences: frozenset = frozenset()


@dataclass(frozen=True)
class Violation:
    code: str
    detail: str
    module: str


def rules_in_force(jurisdictions: Iterable[str]) -> list[Rule]:
    """The active rules of these markets (one query)."""
    from .models import MarketRule

    codes = sorted({c.upper() for c in jurisdictions if c})
    if not codes:
        return []
    rows = (MarketRule.objects.filter(active=True, jurisdiction__code__in=codes)
            .values_list("jurisdiction__code", "kind", "parameters").order_by("id"))
    return [Rule.of(code, kind, parameters) for code, kind, parameters in rows
            if kind in DEFAULT_PARAMETERS and not parameter_errors(kind, parameters)]


def _is_claim(rule: Rule, item: Item) -> bool:
    return item.kind in rule.claim_kinds and item.purpose in rule.purposes


def _is_restricted(rule: Rule, item: Item) -> bool:
    return item.purpose in rule.purposes and item.kind not in rule.exempt_kinds


def _words(codes: Iterable[str]) -> str:
    return ", ".join(sorted(codes)) or "none"


def assembly_violations(items: Iterable[Item], *, jurisdiction: str, audience: str,
                        rules: Iterable[Rule]) -> list[Violation]:
    """Every rule of `jurisdiction` the assembly of `items` for `audience` breaks."""
    items = list(items)
    violations = []
    for rule in rules:
        if rule.jurisdiction != jurisdiction:
            continue
        if rule.kind == RuleKind.FAIR_BALANCE:
            safety_brands = {i.brand_id for i in items if i.kind == rule.companion_kind}
            violations += [Violation(
                FAIR_BALANCE_MISSING_ISI,
                f"{i.code} is a {i.purpose} {i.kind}: in {jurisdiction} it must travel with "
                f"its brand's approved {rule.companion_kind} module (fair balance), and this "
                f"assembly has none.", i.code)
                for i in items if _is_claim(rule, i) and i.brand_id not in safety_brands]
        elif rule.kind == RuleKind.AUDIENCE_LIMIT and audience not in rule.audiences:
            violations += [Violation(
                AUDIENCE_NOT_PERMITTED,
                f"{i.code} is {i.purpose.replace('_', ' ')} content: in {jurisdiction} it may "
                f"reach only {_words(rule.audiences)}, not {audience or '(no audience)'}.",
                i.code)
                for i in items if _is_restricted(rule, i)]
    return violations


def submission_violations(item: Item, *, jurisdictions: Iterable[str],
                          companions: Iterable[tuple[str, str, int]],
                          rules: Iterable[Rule]) -> list[Violation]:
    """Every rule of the markets a version is tagged for that it breaks as submitted.

    `companions` are the (code, kind, brand id) of the modules the version requires."""
    markets = set(jurisdictions)
    companions = list(companions)
    violations = []
    for rule in rules:
        if rule.jurisdiction not in markets:
            continue
        if rule.kind == RuleKind.FAIR_BALANCE and _is_claim(rule, item):
            if not any(kind == rule.companion_kind and brand_id == item.brand_id
                       for _, kind, brand_id in companions):
                violations.append(Violation(
                    FAIR_BALANCE_MISSING_ISI,
                    f"{item.code} is a {item.purpose} {item.kind} for {rule.jurisdiction}: "
                    f"name its brand's {rule.companion_kind} module among its companions "
                    f"(requires) so it always travels with its safety information "
                    f"(fair balance).", item.code))
        elif rule.kind == RuleKind.AUDIENCE_LIMIT and _is_restricted(rule, item):
            outside = item.audiences - rule.audiences
            if outside:
                violations.append(Violation(
                    AUDIENCE_NOT_PERMITTED,
                    f"{item.code} is {item.purpose.replace('_', ' ')} content for "
                    f"{rule.jurisdiction}, where it may reach only {_words(rule.audiences)}: "
                    f"remove the audience(s) {_words(outside)} or make it a separate "
                    f"patient-support or medical module.", item.code))
    return violations


def version_violations(version) -> list[Violation]:
    """`submission_violations` for a saved `ModuleVersion` (its tags and companions as
    stored now), against the rules of every market it is tagged for."""
    module = version.module
    jurisdictions = list(version.jurisdictions.values_list("code", flat=True))
    rules = rules_in_force(jurisdictions)
    if not rules:
        return []
    item = Item(code=module.code, kind=module.kind, purpose=module.purpose,
                brand_id=module.brand_id,
                audiences=frozenset(version.audiences.values_list("code", flat=True)))
    companions = version.requires.values_list("code", "kind", "brand_id")
    return submission_violations(item, jurisdictions=jurisdictions, companions=companions,
                                 rules=rules)


def module_brands(module_ids: Iterable[int]) -> dict[int, int]:
    """The brand of each module (one query)."""
    from .models import ContentModule

    ids = sorted(set(module_ids))
    if not ids:
        return {}
    return dict(ContentModule.objects.filter(pk__in=ids).values_list("id", "brand_id"))
