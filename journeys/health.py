"""Health of a journey's touchpoints: ready, expiring in N days, or blocked — and why.

One rule: a touchpoint is **blocked** when assembling it for the journey's markets and
locale would be refused today, for any reason assembly gives that does not depend on the
recipient (the refusal codes of `journeys.assembly`: `not_approved`, `expired`,
`withdrawn`, `*_not_covered`, `locale_mismatch`, `missing_companion`,
`excluded_combination`, `purpose_mismatch`, `unknown_token`, `integrity_mismatch`,
`missing_footer`, the market-rule codes, `form_2253_missing`), or when it has no content
yet (`empty`). It is **expiring** when it would assemble but one of its versions expires
within the brand's notice period (`content.deliverability.health`), else **ready**.

The checks are assembly's own (`assembly.rules`, `assembly.selection`) run on versions read
once for every step of every journey asked about (`assembly.snapshot`): nothing is rendered,
and the number of queries does not grow with journeys, steps or slots (per brand, the
version read). Recipient-dependent rules (consent, recipient fields, the unsubscribe link)
are left out: they are the recipient's, not the touchpoint's.

The paths: people enter at the first touchpoint in map order and move only along drawn
transitions; a touchpoint no path reaches from the entry is **unreachable**, a reachable
touchpoint outside the last stage with no way on (no transition to another step, no pause)
is a **dead end**.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.urls import reverse
from django.utils import timezone

from approvals import form_2253
from content import deliverability, market_rules
from content.models import ModuleKind

from .assembly import rules
from .assembly.results import AssemblyError
from .assembly.selection import Selection
from .assembly.snapshot import SlotSpec, VersionSnapshot, read_step_versions
from .models import Journey, Slot, Step, Transition

READY, EXPIRING, BLOCKED = "ready", "expiring", "blocked"
EMPTY = "empty"  # a touchpoint with no slot: nothing to send
_RANK = {READY: 0, EXPIRING: 1, BLOCKED: 2}


@dataclass
class Reason:
    """One refusal, with the markets (and the locale) it holds for."""

    code: str
    detail: str
    module: str | None
    markets: list[str]
    locale: str
    links: ModuleLinks | None = None

    @property
    def where(self) -> str:
        return f"{', '.join(self.markets)} / {self.locale}"


@dataclass(frozen=True)
class ModuleLinks:
    code: str
    title: str
    admin_url: str
    review_url: str
    history_url: str
    owner_name: str
    owner_email: str


@dataclass
class ModuleHealth:
    """A slot of a touchpoint as the map shows it."""

    order: int
    code: str
    label: str
    state: str
    status: str  # deliverability.health: ok | expiring | blocked | pending | selector
    expires_at: datetime | None = None
    note: str = ""
    links: ModuleLinks | None = None


@dataclass
class StepHealth:
    step: Step
    status: str = READY
    days: int | None = None  # expiring: days left of the first expiry
    reasons: list[Reason] = field(default_factory=list)
    modules: list[ModuleHealth] = field(default_factory=list)
    empty: bool = False
    unreachable: bool = False
    dead_end: bool = False

    @property
    def label(self) -> str:
        if self.status == EXPIRING:
            return f"expiring in {self.days} day{'' if self.days == 1 else 's'}"
        return self.status

    @property
    def flags(self) -> list[str]:
        return [name for name, on in (("unreachable", self.unreachable),
                                      ("dead end", self.dead_end)) if on]


@dataclass
class JourneyHealth:
    journey: Journey
    steps: dict[int, StepHealth] = field(default_factory=dict)  # by step id, in map order

    @property
    def status(self) -> str:
        worst = max((s.status for s in self.steps.values()), key=_RANK.get, default=BLOCKED)
        return worst

    def count(self, status: str) -> int:
        return sum(1 for s in self.steps.values() if s.status == status)

    @property
    def ready(self) -> int:
        return self.count(READY)

    @property
    def expiring(self) -> int:
        return self.count(EXPIRING)

    @property
    def blocked(self) -> int:
        return self.count(BLOCKED)

    @property
    def unreachable(self) -> list[StepHealth]:
        return [s for s in self.steps.values() if s.unreachable]

    @property
    def dead_ends(self) -> list[StepHealth]:
        return [s for s in self.steps.values() if s.dead_end]

    def for_step(self, step_id: int) -> StepHealth | None:
        return self.steps.get(step_id)


def journey_health(journey: Journey, *, now: datetime | None = None) -> JourneyHealth:
    """Health of every touchpoint of one journey."""
    return journeys_health([journey], now=now)[journey.pk]


def journeys_health(journeys: Iterable[Journey], *, now: datetime | None = None
                    ) -> dict[int, JourneyHealth]:
    """Health of every touchpoint of these journeys (read with `brand` and `locale`
    selected), in a number of queries that does not depend on how many there are."""
    now = now or timezone.now()
    ids = [j.pk for j in journeys]
    if not ids:
        return {}
    journeys = {j.pk: j for j in Journey.objects.filter(pk__in=ids).select_related(
        "brand", "audience", "locale")}
    markets: dict[int, list[str]] = defaultdict(list)
    for journey_id, code in Journey.jurisdictions.through.objects.filter(
            journey_id__in=ids).values_list("journey_id", "jurisdiction__code").order_by(
            "jurisdiction__code"):
        markets[journey_id].append(code)
    steps = list(Step.objects.filter(journey_id__in=ids)
                 .select_related("channel", "stage__audience_stage")
                 .order_by("journey_id", "stage__order", "stage_id", "order", "id"))
    slots = list(Slot.objects.filter(step__journey_id__in=ids)
                 .select_related("module__owner").order_by("step_id", "order", "id"))
    specs = _slot_specs(slots)
    transitions = list(Transition.objects.filter(from_step__journey_id__in=ids)
                       .values_list("from_step_id", "to_step_id", "pause"))
    versions = _versions(journeys, steps, slots)
    all_versions = [v for vs in versions.values() for v in vs]
    in_force = market_rules.rules_in_force({c for codes in markets.values() for c in codes})
    brands = (market_rules.module_brands({v.module_id for v in all_versions})
              if any(r.kind == market_rules.RuleKind.FAIR_BALANCE for r in in_force) else {})
    no_2253 = (form_2253.missing_submissions(
        [v.id for v in all_versions if form_2253.needs_form_2253(v.purpose, v.kind)])
        if any(form_2253.JURISDICTION in codes for codes in markets.values()) else set())
    checks = _Checks(in_force, brands, no_2253)

    slots_of: dict[int, list[Slot]] = defaultdict(list)
    for slot in slots:
        slots_of[slot.step_id].append(slot)
    result = {pk: JourneyHealth(journey=j) for pk, j in journeys.items()}
    for step in steps:
        journey = journeys[step.journey_id]
        health = _step_health(
            step, journey, slots_of[step.pk], [specs[s.pk] for s in slots_of[step.pk]],
            versions.get(journey.brand_id, []), markets[journey.pk], checks, now)
        result[journey.pk].steps[step.pk] = health
    for journey_health_ in result.values():
        _flag_paths(journey_health_, transitions)
    return result


# --- Reads ------------------------------------------------------------------------------


def _slot_specs(slots: list[Slot]) -> dict[int, SlotSpec]:
    """Slots as assembly sees them (`snapshot.SlotSpec`), selector tags in two reads."""
    selector_ids = [s.pk for s in slots if s.module_id is None]
    stage_tags: dict[int, set] = defaultdict(set)
    specialty_tags: dict[int, set] = defaultdict(set)
    if selector_ids:
        for slot_id, stage_id in Slot.selector_stages.through.objects.filter(
                slot_id__in=selector_ids).values_list("slot_id", "stage_id"):
            stage_tags[slot_id].add(stage_id)
        for slot_id, code, name in Slot.selector_specialties.through.objects.filter(
                slot_id__in=selector_ids).values_list(
                "slot_id", "specialty__code", "specialty__name"):
            specialty_tags[slot_id].update((code.lower(), name.lower()))
    return {s.pk: SlotSpec(order=s.order, module_id=s.module_id,
                           module_code=s.module.code if s.module_id else None,
                           kind=s.selector_kind or "", stage_ids=frozenset(stage_tags[s.pk]),
                           specialties=frozenset(specialty_tags[s.pk]), priority=s.priority,
                           required=s.required) for s in slots}


def _versions(journeys: dict[int, Journey], steps: list[Step], slots: list[Slot]
              ) -> dict[int, list[VersionSnapshot]]:
    """Per brand: every version of the bound modules, the approved candidates of the
    selector kinds and the approved footers (assembly's read, verified on read)."""
    brand_of_step = {s.pk: journeys[s.journey_id].brand_id for s in steps}
    bound: dict[int, set] = defaultdict(set)
    kinds: dict[int, set] = defaultdict(lambda: {ModuleKind.FOOTER})
    for slot in slots:
        brand = brand_of_step[slot.step_id]
        if slot.module_id:
            bound[brand].add(slot.module_id)
        elif slot.selector_kind:
            kinds[brand].add(slot.selector_kind)
    return {brand: read_step_versions(sorted(bound[brand]), brand_id=brand,
                                      selector_kinds=sorted(kinds[brand]))
            for brand in sorted({j.brand_id for j in journeys.values()})}


# --- Checks -----------------------------------------------------------------------------


@dataclass
class _Checks:
    """The market rules, module brands and missing Form 2253 submissions, read once for
    every step (assembly reads them per combination)."""

    in_force: list
    brands: dict[int, int]
    no_2253: set[int]

    def market_rules(self, versions: list[VersionSnapshot], target: rules.Target
                     ) -> list[AssemblyError]:
        """`assembly.rules.market_rule_errors` on rules read once."""
        items = [market_rules.Item(code=v.code, kind=v.kind, purpose=v.purpose,
                                   brand_id=self.brands.get(v.module_id, 0),
                                   audiences=v.audiences) for v in versions]
        return [AssemblyError(x.code, x.detail, x.module) for x in market_rules.assembly_violations(
            items, jurisdiction=target.jurisdiction, audience=target.audience,
            rules=self.in_force)]

    def form_2253(self, versions: list[VersionSnapshot], target: rules.Target
                  ) -> list[AssemblyError]:
        """`assembly.rules.form_2253_errors` on submissions read once."""
        if target.jurisdiction != form_2253.JURISDICTION:
            return []
        return [AssemblyError(
            form_2253.FORM_2253_MISSING,
            f"{v.label} is US promotional content of a brand that requires its FDA Form 2253 "
            f"submission to be recorded before first use; none is recorded.", v.code)
            for v in versions if v.id in self.no_2253
            and form_2253.needs_form_2253(v.purpose, v.kind)]


def _errors(step: Step, journey: Journey, specs: list[SlotSpec], versions: list[VersionSnapshot],
            market: str, checks: _Checks, now: datetime
            ) -> tuple[list[AssemblyError], list[VersionSnapshot | None]]:
    """What assembly would refuse for this step in `market`, whoever the recipient."""
    locale = journey.locale.code
    target = rules.Target(jurisdiction=market, audience=journey.audience.code,
                          channel=step.channel.code, locale=locale, step_purpose=step.purpose,
                          now=now)
    cache: dict[int, list[AssemblyError]] = {}

    def version_errors(v: VersionSnapshot) -> list[AssemblyError]:
        if v.id not in cache:
            cache[v.id] = rules.integrity_errors(v) or rules.version_errors(v, target)
        return cache[v.id]

    selection = Selection(specs, versions, locale=locale, version_errors=version_errors,
                          where=f"{market}/{step.channel.code}/{locale}")
    picks, errors = selection.select({})
    picked = [v for _, v in picks if v is not None]
    for v in picked:
        errors += version_errors(v)
    errors += rules.combination_errors(picked)
    errors += checks.market_rules(picked, target)
    errors += checks.form_2253(picked, target)
    _, footer_errors = rules.footer_choice(versions, brand=journey.brand.name,
                                           jurisdiction=market, locale=locale, now=now)
    errors += footer_errors
    return errors, [v for _, v in picks]


def _links(slot: Slot, version: VersionSnapshot | None) -> ModuleLinks:
    module = slot.module
    owner = module.owner
    return ModuleLinks(
        code=module.code, title=module.title,
        admin_url=reverse("admin:content_contentmodule_change", args=[module.pk]),
        review_url=reverse("approvals:review", args=[version.id]) if version else "",
        history_url=reverse("approvals:history", args=[module.code]),
        owner_name=owner.get_full_name() or owner.get_username(), owner_email=owner.email)


def _step_health(step: Step, journey: Journey, slots: list[Slot], specs: list[SlotSpec],
                 versions: list[VersionSnapshot], markets: list[str], checks: _Checks,
                 now: datetime) -> StepHealth:
    health = StepHealth(step=step)
    locale = journey.locale.code
    grouped: dict[tuple, Reason] = {}
    picks_first: list[VersionSnapshot | None] = [None] * len(slots)
    deliverable: set[int] = set()
    for index, market in enumerate(markets or [""]):
        errors, picks = _errors(step, journey, specs, versions, market, checks, now)
        if index == 0:
            picks_first = picks
        for error in errors:
            key = (error.code, error.module, error.detail)
            reason = grouped.get(key)
            if reason is None:
                reason = grouped[key] = Reason(error.code, error.detail, error.module, [], locale)
            reason.markets.append(market or "(no market)")
        deliverable.update(v.id for v in picks if v is not None)
    links_by_code: dict[str, ModuleLinks] = {}
    notice = journey.brand.effective_notice_days
    for slot, picked in zip(slots, picks_first, strict=True):
        if slot.module_id:
            links = links_by_code[slot.module.code] = _links(slot, picked)
            state = picked.state if picked else "no version"
            health.modules.append(ModuleHealth(
                order=slot.order, code=slot.module.code,
                label=picked.label if picked else slot.module.code,
                state=state.replace("_", " "),
                status=deliverability.health(
                    state=picked.state, valid_from=picked.valid_from,
                    expires_at=picked.expires_at, now=now, notice_days=notice)
                if picked else deliverability.PENDING,
                expires_at=picked.expires_at if picked else None, links=links))
        else:
            kind = slot.get_selector_kind_display()
            health.modules.append(ModuleHealth(
                order=slot.order, code="", label=f"selector: {kind}",
                state=f"picks {picked.label}" if picked else "picked per recipient",
                status="selector",
                note=f"priority {slot.priority}" + ("" if slot.required else ", optional")))
    for reason in grouped.values():
        reason.links = links_by_code.get(reason.module or "")
    health.reasons = list(grouped.values())
    health.empty = not slots
    if health.reasons or health.empty:
        health.status = BLOCKED
        return health
    expiries = [v.expires_at for v in picks_first if v is not None and v.expires_at
                and deliverability.health(state=v.state, valid_from=v.valid_from,
                                          expires_at=v.expires_at, now=now,
                                          notice_days=notice) == deliverability.EXPIRING]
    if expiries:
        health.status = EXPIRING
        health.days = max(1, math.ceil((min(expiries) - now).total_seconds() / 86400))
    return health


# --- Paths ------------------------------------------------------------------------------


def _flag_paths(health: JourneyHealth, transitions: list[tuple[int, int | None, bool]]) -> None:
    """Unreachable touchpoints (from the first one, along transitions) and dead ends."""
    order = list(health.steps)
    if not order:
        return
    ids = set(order)
    out: dict[int, set] = defaultdict(set)
    way_on: set[int] = set()
    for from_id, to_id, pause in transitions:
        if from_id not in ids:
            continue
        if pause or (to_id and to_id != from_id):
            way_on.add(from_id)
        if to_id in ids and not pause:
            out[from_id].add(to_id)
    reached, todo = {order[0]}, [order[0]]
    while todo:
        for nxt in out[todo.pop()]:
            if nxt not in reached:
                reached.add(nxt)
                todo.append(nxt)
    last_stage = health.steps[order[-1]].step.stage_id
    for step_id, step_health in health.steps.items():
        step_health.unreachable = step_id not in reached
        step_health.dead_end = (step_id in reached and step_id not in way_on
                                and step_health.step.stage_id != last_stage)
