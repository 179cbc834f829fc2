"""Which version fills each slot: a fixed slot's newest locked version in the asked
locale, a selector slot's best approved candidate for the recipient — or, for a slot that
ranks by engagement, the eligible candidate whose topics the recipient engaged with most
(`ranking`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping

from content.models import LOCKED_STATES, VersionState

from .ranking import RankedPicks, Ranker, choose
from .results import AssemblyError
from .rules import locale_matches
from .snapshot import SlotSpec, VersionSnapshot

Picks = list[tuple[SlotSpec, VersionSnapshot | None]]


class Selection:
    """Slot selection over the versions one context read.

    `version_errors` is the context's (cached) rule check: a selector only picks a
    candidate that breaks no rule. `where` names the market/channel/locale in refusals.
    `ranker` reads the recipients' topic profiles for slots that rank by engagement
    (without one, those slots keep the default order).
    """

    def __init__(self, slots: list[SlotSpec], versions: list[VersionSnapshot], *, locale: str,
                 where: str, version_errors: Callable[[VersionSnapshot], list],
                 ranker: Ranker | None = None):
        self.slots = slots
        self.ranker = ranker if any(s.ranks_by_engagement for s in slots) else None
        self.locale = locale
        self.where = where
        self.version_errors = version_errors
        self.by_module: dict[int, list[VersionSnapshot]] = defaultdict(list)
        for v in versions:  # newest first within a module
            self.by_module[v.module_id].append(v)
        self.candidates = sorted(
            (v for v in versions if v.state == VersionState.APPROVED),
            key=lambda v: (-(v.approved_at.timestamp() if v.approved_at else 0), v.code, -v.number),
        )
        self.selectors = sorted((i for i, s in enumerate(slots) if s.module_id is None),
                                key=lambda i: (-slots[i].priority, i))
        # Fixed slots do not depend on the recipient: resolved once, one list reused.
        self.bound, self.bound_errors = self._resolve_bound()
        self.bound_picks: Picks = [(s, self.bound.get(i)) for i, s in enumerate(slots)]

    def _resolve_bound(self) -> tuple[dict[int, VersionSnapshot | None], list[AssemblyError]]:
        errors: list[AssemblyError] = []
        bound: dict[int, VersionSnapshot | None] = {}
        for index, slot in enumerate(self.slots):
            if slot.module_id is None:
                continue
            v = self.bound_version(slot)
            if v is None:
                errors.append(AssemblyError(
                    "not_approved", f"{slot.module_code} has no version yet.", slot.module_code))
            bound[index] = v
        return bound, errors

    def bound_version(self, slot: SlotSpec) -> VersionSnapshot | None:
        """The newest locked version in the locale, else the newest locked, else the newest
        (whose state the rules then refuse)."""
        versions = self.by_module.get(slot.module_id, [])
        locked = [v for v in versions if v.state in LOCKED_STATES]
        for v in locked:
            if locale_matches(v.locale, self.locale):
                return v
        return locked[0] if locked else (versions[0] if versions else None)

    def select(self, recipient: Mapping, seen: Iterable = ()) -> tuple[Picks, list[AssemblyError]]:
        """The version for each slot (None when an optional selector finds nothing)."""
        if not self.selectors:
            return self.bound_picks, self.bound_errors
        errors = list(self.bound_errors)
        chosen = dict(self.bound)
        seen_set = {str(x).upper() for x in seen} | {
            str(x).upper() for x in (recipient.get("seen_modules") or ())}
        specialty = str(recipient.get("specialty") or "").strip().lower()
        profile = self.ranker.profile_of(recipient) if self.ranker is not None else None
        rankings = {}
        for index in self.selectors:
            slot = self.slots[index]
            if profile is not None and slot.ranks_by_engagement:
                v, why = choose(list(self.eligible(slot, chosen, seen_set, specialty)),
                                profile, self.ranker.catalogue)
                if why is not None:
                    rankings[index] = why
            else:
                v = self.pick(slot, chosen, seen_set, specialty)
            if v is None and slot.required:
                errors.append(AssemblyError(
                    "not_approved",
                    f"No approved {slot.kind or 'module'} fits slot {slot.order} for this "
                    f"recipient in {self.where}."))
            chosen[index] = v
        picks = [(s, chosen.get(i)) for i, s in enumerate(self.slots)]
        return (RankedPicks(picks, rankings) if rankings else picks), errors

    def pick(self, slot: SlotSpec, chosen: dict, seen: set[str],
             specialty: str) -> VersionSnapshot | None:
        """The newest eligible candidate; one tagged for the recipient's specialty beats an
        untagged one, which beats one tagged for another specialty."""
        best, best_rank = None, -1
        for v, rank in self.eligible(slot, chosen, seen, specialty):
            if rank > best_rank:  # candidates are already newest-approval first
                best, best_rank = v, rank
                if rank == 2:
                    break
        return best

    def eligible(self, slot: SlotSpec, chosen: dict, seen: set[str],
                 specialty: str) -> Iterator[tuple[VersionSnapshot, int]]:
        """The approved candidates of the slot's kind that are unseen, tagged for the slot,
        compliant and compatible with what is chosen, newest approval first, each with its
        specialty rank (2 tagged for the recipient's, 1 untagged, 0 another). The one rule
        of what a selector may pick, ranked or not."""
        present = {v.module_id for v in chosen.values() if v is not None}
        for v in self.candidates:
            if v.kind != slot.kind or v.module_id in present:
                continue
            if str(v.module_id) in seen or v.code in seen:
                continue
            if slot.stage_ids and not (slot.stage_ids & v.stage_ids):
                continue
            if slot.specialties and not (slot.specialties & v.specialties):
                continue
            if self.version_errors(v):
                continue
            # (most versions have neither: skip building the generators)
            if v.excludes and any(m in present for m, _ in v.excludes):
                continue
            if v.requires and any(m not in present for m, _ in v.requires):
                continue
            if not v.specialties:
                yield v, 1
            else:
                yield v, (2 if specialty and specialty in v.specialties else 0)
