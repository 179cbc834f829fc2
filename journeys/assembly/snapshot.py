"""The reads of one assembly: named functions returning dataclasses (no positional rows).

Raw SQL on purpose: these are the hot reads of every single assembly, and the ORM's query
compilation cost more than the queries (bench/assembly.py). Each query's columns are
listed once, next to the dataclass they fill, in the same order. The SQL text lives in
`queries.py`.

Verify on read: the content of every locked version (text, tags, citations, companions,
exclusions, image bytes) is hashed as read, by the one rule in `content.signing_hash`, and
compared with the sha256 its append-only approval signatures carry. A version that does
not match carries `integrity_problem` (assembly refuses it: `integrity_mismatch`), is
reported once (`integrity`) and never enters a process cache (`verified`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from content.models import VersionState

from ..models import SelectorRanking, Slot, Step
from . import queries
from .queries import placeholders
from .verified import (  # noqa: F401 (read_content, hash_as_read: part of the named reads)
    VersionContent,
    as_datetime,
    hash_as_read,
    read_assets,
    read_content,
    verified_contents,
)


@dataclass(frozen=True)
class StepRow:
    """A step with what assembly needs of its journey, brand, audience and channel."""

    key: str
    purpose: str
    layout: str
    channel: str
    journey_id: int
    journey_slug: str
    brand_id: int
    brand_name: str
    audience_code: str


@dataclass(frozen=True)
class Market:
    """A jurisdiction as assembly reads it, and whether the journey runs there (its legal
    text is the brand's approved footer module, read with the versions)."""

    code: str
    id: int
    in_journey: bool


@dataclass(frozen=True)
class SlotSpec:
    order: int
    module_id: int | None
    module_code: str | None
    kind: str
    stage_ids: frozenset
    specialties: frozenset
    priority: int
    required: bool
    ranking: str = "default"  # models.SelectorRanking: "engagement" ranks by `ranking.py`

    @property
    def ranks_by_engagement(self) -> bool:
        return self.module_id is None and self.ranking == SelectorRanking.ENGAGEMENT


@dataclass(frozen=True)
class VersionRow:
    """Metadata of a version (read every time); columns as in `queries.VERSION_COLUMNS`."""

    id: int
    module_id: int
    code: str
    kind: str
    purpose: str
    number: int
    state: str
    sha256: str
    valid_from: datetime | None
    expires_at: datetime | None
    approved_at: datetime | None
    withdrawn_at: datetime | None
    asset_id: int | None
    created_at: str


@dataclass(frozen=True)
class VersionSnapshot:
    """A module version as read for one batch: content, state and tags as plain values."""

    id: int
    module_id: int
    code: str
    kind: str
    purpose: str
    number: int
    state: str
    sha256: str
    locale: str
    subject: str
    body_html: str
    body_text: str
    token_fallbacks: dict
    valid_from: datetime | None
    expires_at: datetime | None
    approved_at: datetime | None
    withdrawn_at: datetime | None
    image: tuple[str, str, int] | None
    audiences: frozenset
    jurisdictions: frozenset
    channels: frozenset
    stage_ids: frozenset
    specialties: frozenset  # lower-case codes and names
    requires: tuple  # (module_id, code) pairs
    excludes: tuple
    created_at: str = ""
    integrity_problem: str = ""  # why the content read is not what MLR signed ("" = it is)

    @property
    def label(self) -> str:
        return f"{self.code} v{self.number}"


def read_step(step_id: int) -> StepRow:
    with connection.cursor() as cursor:
        cursor.execute(queries.step_sql(), [step_id])
        row = cursor.fetchone()
    if row is None:
        raise Step.DoesNotExist(f"Step {step_id} does not exist.")
    return StepRow(*row)


def read_markets(journey_id: int, code: str) -> list[Market]:
    """The jurisdiction `code` and the journey's jurisdictions, in one read."""
    with connection.cursor() as cursor:
        cursor.execute(queries.markets_sql(), [journey_id, code, journey_id])
        return [Market(c, pk, bool(used)) for c, pk, used in cursor.fetchall()]


def read_slots(step_id: int) -> list[SlotSpec]:
    """The step's slots in order; selector tags with two small reads, only when needed."""
    with connection.cursor() as cursor:
        cursor.execute(queries.slots_sql(), [step_id])
        rows = cursor.fetchall()
    selector_ids = [slot_id for slot_id, _, module_id, *_ in rows if module_id is None]
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
    return [
        SlotSpec(order=order, module_id=module_id, module_code=code, kind=kind or "",
                 stage_ids=frozenset(stage_tags[slot_id]),
                 specialties=frozenset(specialty_tags[slot_id]),
                 priority=priority, required=bool(required), ranking=ranking)
        for slot_id, order, module_id, code, kind, priority, required, ranking in rows
    ]


def read_versions_by_id(ids: list[int]) -> list[VersionSnapshot]:
    """Exactly these versions (reproduction pins them)."""
    return _read_versions(f"v.id IN ({placeholders(ids)})", list(ids))


def read_step_versions(bound_module_ids: list[int], *, brand_id: int,
                       selector_kinds: list[str]) -> list[VersionSnapshot]:
    """Every version of the bound modules, and the brand's approved candidates of the
    selector kinds (tags are checked in Python by the rules: an indexed, join-light query)."""
    where, params = f"v.module_id IN ({placeholders(bound_module_ids)})", list(bound_module_ids)
    if selector_kinds:
        # No module has id 0: `NOT IN (NULL)` would match nothing when no slot is bound.
        bound = list(bound_module_ids) or [0]
        where += ";" + queries.CANDIDATES_WHERE.format(
            kinds=placeholders(selector_kinds), bound=placeholders(bound))
        params += [brand_id, *selector_kinds, *bound, VersionState.APPROVED]
    return _read_versions(where, params)


def _read_versions(where: str, params: list) -> list[VersionSnapshot]:
    """Versions matching `where` with content, tags, companions and exclusions, locked ones
    verified against their signatures. Warm (verified content and signatures cached): one
    query, and one more when there are images; cold: four, plus the signatures'."""
    with connection.cursor() as cursor:
        cursor.execute(queries.versions_sql(where), params)
        rows = [VersionRow(*row) for row in cursor.fetchall()]
    if not rows:
        return []
    assets = read_assets({r.asset_id for r in rows if r.asset_id})
    contents, problems = verified_contents(rows, assets)
    return [
        VersionSnapshot(
            id=r.id, module_id=r.module_id, code=r.code, kind=r.kind, purpose=r.purpose,
            number=r.number, state=r.state, sha256=r.sha256, locale=c.locale,
            subject=c.subject, body_html=c.body_html, body_text=c.body_text,
            token_fallbacks=c.token_fallbacks, valid_from=as_datetime(r.valid_from),
            expires_at=as_datetime(r.expires_at), approved_at=as_datetime(r.approved_at),
            withdrawn_at=as_datetime(r.withdrawn_at),
            image=assets[r.asset_id].image if r.asset_id in assets else None,
            audiences=c.audiences, jurisdictions=c.jurisdictions, channels=c.channels,
            stage_ids=c.stage_ids, specialties=c.specialties, requires=c.requires,
            excludes=c.excludes, created_at=str(r.created_at),
            integrity_problem=problems.get(r.id, ""),
        )
        for r in rows for c in (contents[r.id],)
    ]
