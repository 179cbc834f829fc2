"""The demo's data files (demo/data/*.toml) read into typed specs.

The files hold what the demo creates; the loaders (`demo/content.py`, `approvals.py`,
`journeys.py`) hold how. Reading is cached: the files do not change while a process runs.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
ALL_STAGES = "*"  # in a module's `audiences`: every stage of that audience


def _read(name: str) -> dict:
    with (DATA_DIR / name).open("rb") as file:
        return tomllib.load(file)


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    first_name: str
    last_name: str
    role: str
    groups: tuple[str, ...] = ()
    superuser: bool = False
    brands: tuple[str, ...] = ()  # slugs of the brands the user authors


@dataclass(frozen=True)
class BrandSpec:
    slug: str
    name: str
    product_name: str
    indication: str
    approval_validity_days: int


@dataclass(frozen=True)
class ReferenceSpec:
    brand: str
    code: str
    source: str
    citation: str
    label_section: str = ""


@dataclass(frozen=True)
class ModuleSpec:
    code: str
    brand: str
    kind: str
    title: str
    market: str
    audiences: dict[str, tuple[str, ...] | str]  # audience code -> stage codes or ALL_STAGES
    channels: tuple[str, ...]
    body: str = ""
    subject: str = ""
    purpose: str = "promotional"
    cites: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    fallbacks: dict[str, str] = field(default_factory=dict)
    specialties: tuple[str, ...] = ()
    state: str = "approved"  # where the approvals demo drives the latest version
    image: bool = False


@dataclass(frozen=True)
class StageInsight:
    needs: str
    emotions: str
    pain_points: str
    opportunities: str


@dataclass(frozen=True)
class SelectorSlot:
    kind: str
    priority: int
    ranking: str = "default"  # "engagement": next-best content (docs/assembly.md)


@dataclass(frozen=True)
class StepSpec:
    key: str
    stage: str
    name: str
    channel: str
    owner_function: str
    purpose: str
    layout: str
    timing: str
    decision_moment: str
    slots: tuple[str | SelectorSlot, ...]  # a module code or a selector


@dataclass(frozen=True)
class TransitionSpec:
    from_step: str
    event: str
    threshold: int
    label: str
    days: int | None = None
    to_step: str | None = None  # None: the transition pauses the enrollment


@dataclass(frozen=True)
class JourneySpec:
    slug: str
    name: str
    brand: str
    audience: str
    jurisdictions: tuple[str, ...]
    locale: str
    description: str
    stages: dict[str, StageInsight]  # audience stage code -> insight, in journey order
    steps: tuple[StepSpec, ...]
    transitions: tuple[TransitionSpec, ...]


def _tuples(row: dict, *names: str) -> dict:
    return {**row, **{name: tuple(row[name]) for name in names if name in row}}


@cache
def demo_users() -> tuple[DemoUser, ...]:
    return tuple(DemoUser(**_tuples(row, "groups", "brands"))
                 for row in _read("people.toml")["user"])


@cache
def brands() -> tuple[BrandSpec, ...]:
    return tuple(BrandSpec(**row) for row in _read("brands.toml")["brand"])


@cache
def references() -> tuple[ReferenceSpec, ...]:
    return tuple(ReferenceSpec(**row) for row in _read("brands.toml")["reference"])


def author_of(brand_slug: str) -> str:
    """The username of the demo user who authors `brand_slug` (people.toml `brands`)."""
    authors = [user.username for user in demo_users()
               if brand_slug in user.brands and "authors" in user.groups]
    if len(authors) != 1:
        raise ValueError(f"brand {brand_slug} needs exactly one demo author, has {authors}")
    return authors[0]


@cache
def market_locales() -> dict[str, str]:
    return dict(_read("modules.toml")["market_locale"])


@cache
def module_specs() -> tuple[ModuleSpec, ...]:
    specs = []
    for row in _read("modules.toml")["module"]:
        row = _tuples(row, "channels", "cites", "requires", "excludes", "specialties")
        row["audiences"] = {audience: stages if stages == ALL_STAGES else tuple(stages)
                            for audience, stages in row["audiences"].items()}
        specs.append(ModuleSpec(**row))
    return tuple(specs)


def target_states() -> dict[str, str]:
    """Module code -> the state its latest version should reach."""
    return {spec.code: spec.state for spec in module_specs()}


def _journey(data: dict) -> JourneySpec:
    steps = tuple(
        StepSpec(**{**row, "slots": tuple(slot if isinstance(slot, str) else SelectorSlot(**slot)
                                          for slot in row["slots"])})
        for row in data["step"])
    transitions = tuple(
        TransitionSpec(from_step=row["from"], to_step=row.get("to"), event=row["event"],
                       threshold=row["threshold"], days=row.get("days"), label=row["label"])
        for row in data["transition"])
    return JourneySpec(**_tuples(data["journey"], "jurisdictions"), steps=steps, transitions=transitions,
                       stages={code: StageInsight(**insight)
                               for code, insight in data["stage"].items()})


@cache
def journey_specs() -> tuple[JourneySpec, ...]:
    return tuple(_journey(_read(f"journeys/{path.name}"))
                 for path in sorted((DATA_DIR / "journeys").glob("*.toml")))
