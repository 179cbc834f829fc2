"""The assembly service: approved modules + a layout + one recipient → email or portal page.

One code path serves single and batch use. `load_context` reads everything a step needs
from the database once (slots, candidate module versions with their tags, companions,
exclusions, signatures, the market's legal footer). For each distinct combination of
module versions the context prepares the output once — layout rendered, CSS inlined with
css-inline, plain text laid out, tokens compiled — and per recipient only checks consent
and fields, substitutes escaped values and hashes. `assemble` is a batch of one.

Module bodies are never evaluated as templates. Each allowlisted token is turned into a
private-use placeholder before the layout is rendered (so neither Django nor css-inline
can see or change it) and the rendered page is split on those placeholders into a
`content.tokens.CompiledText`; `content.tokens.fill` then joins the literal parts with the
recipient's escaped values. Whatever a recipient field contains stays inert text.

Every compliance rule is checked and every failing one reported (see ERROR_CODES).
Recipient data is never stored or logged; the manifest carries only its sha256.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path

import css_inline
from django.db import connection
from django.template.loader import get_template
from django.utils import timezone
from django.utils.safestring import mark_safe

from content.models import (
    Audience,
    Brand,
    Channel,
    ContentModule,
    Jurisdiction,
    Locale,
    ModuleKind,
    ModuleVersion,
    Purpose,
    VersionState,
)
from content.tokens import RECIPIENT_FIELDS, TOKEN_RE, CompiledText, fill, token_errors

from .models import Journey, Layout, Slot, Step

ERROR_CODES = (
    "not_approved", "expired", "withdrawn", "jurisdiction_not_covered", "audience_not_covered",
    "channel_not_covered", "locale_mismatch", "missing_companion", "excluded_combination",
    "purpose_mismatch", "unknown_token", "missing_recipient_field", "no_consent",
)
MANIFEST_VERSION = 1
DEFAULT_CHUNK_SIZE = 1000

# Kinds that are not part of the body: they fill the subject line and the preheader.
HEADER_KINDS = frozenset({ModuleKind.SUBJECT, ModuleKind.PREHEADER})
LOCKED = (VersionState.APPROVED, VersionState.EXPIRED, VersionState.WITHDRAWN)

# Which module purposes a step of each purpose may carry. Medical (non-promotional)
# content and promotional content never mix; patient-support content may travel in a
# promotional touchpoint, but promotion never rides in a patient-support or medical one.
ALLOWED_PURPOSES = {
    Purpose.PROMOTIONAL: frozenset({Purpose.PROMOTIONAL, Purpose.PATIENT_SUPPORT}),
    Purpose.MEDICAL: frozenset({Purpose.MEDICAL}),
    Purpose.PATIENT_SUPPORT: frozenset({Purpose.PATIENT_SUPPORT}),
}

LAYOUT_TEMPLATES = {
    Layout.EMAIL: ("email/base.html", "email/base.txt"),
    Layout.PORTAL: ("portal/page.html", "email/base.txt"),
}

# Placeholders from Unicode's private-use area: they survive Django rendering and
# css-inline unchanged and never occur in sanitised content (we strip them from anything
# that is not a token, so no text can forge one).
PH_OPEN, PH_CLOSE = "\ue000", "\ue001"
PH_RE = re.compile(f"{PH_OPEN}([^{PH_CLOSE}]*){PH_CLOSE}")
_PH_CHARS = {ord(PH_OPEN): None, ord(PH_CLOSE): None}
# Control characters a header line (subject) must not carry.
_LINE_BREAKS = {i: " " for i in (*range(0, 32), 127)}

_inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


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
    errors: list[AssemblyError] = field(default_factory=list)

    @property
    def error_codes(self) -> list[str]:
        return [e.code for e in self.errors]


# --- Reading -------------------------------------------------------------------------------


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

    @property
    def label(self) -> str:
        return f"{self.code} v{self.number}"


def _version_sql(where: str) -> str:
    """Version metadata for each `;`-separated condition, as one UNION ALL (each part indexed)."""
    v, m = ModuleVersion._meta.db_table, ContentModule._meta.db_table
    select = (
        f"SELECT v.id, v.module_id, m.code, m.kind, m.purpose, v.number, v.state, v.sha256, "
        f"v.valid_from, v.expires_at, v.approved_at, v.withdrawn_at, v.asset_id, v.created_at "
        f"FROM {v} v JOIN {m} m ON m.id = v.module_id "
    )
    parts = [f"{select} WHERE {condition}" for condition in where.split(";")]
    return " UNION ALL ".join(parts) + " ORDER BY 2, 6 DESC"


def _content_sql(count: int) -> str:
    v, loc = ModuleVersion._meta.db_table, Locale._meta.db_table
    return (f"SELECT v.id, l.code, v.subject, v.body_html, v.body_text, v.token_fallbacks "
            f"FROM {v} v JOIN {loc} l ON l.id = v.locale_id WHERE v.id IN ({_in(range(count))})")


def _in(values) -> str:
    return ", ".join(["%s"] * len(values)) or "NULL"


def _dt(value) -> datetime | None:
    """A datetime from a raw row: SQLite gives naive UTC text, PostgreSQL aware values."""
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _tag_sql() -> str:
    """One UNION ALL over the five tag tables of the versions."""
    parts = []
    for tag, name, column, extra in (
        ("a", "audiences", "code", None), ("j", "jurisdictions", "code", None),
        ("c", "channels", "code", None), ("s", "stages", None, None),
        ("p", "specialties", "code", "name"),
    ):
        field_ = ModuleVersion._meta.get_field(name)
        through = field_.remote_field.through._meta
        target = field_.remote_field.model._meta
        source_col = through.get_field("moduleversion").column
        target_col = through.get_field(field_.m2m_reverse_field_name()).column
        if column is None:
            parts.append(f"SELECT {source_col}, '{tag}', CAST({target_col} AS TEXT), '' "
                         f"FROM {through.db_table} WHERE {source_col} IN ({{versions}})")
        else:
            parts.append(
                f"SELECT t.{source_col}, '{tag}', x.{column}, {f'x.{extra}' if extra else chr(39) * 2} "
                f"FROM {through.db_table} t JOIN {target.db_table} x ON x.id = t.{target_col} "
                f"WHERE t.{source_col} IN ({{versions}})")
    return " UNION ALL ".join(parts)


def _relation_sql() -> str:
    """Companions and exclusions of modules (module-level, editable: read every time)."""
    module_table = ContentModule._meta.db_table
    parts = []
    for tag, name in (("r", "requires"), ("x", "excludes")):
        through = ContentModule._meta.get_field(name).remote_field.through._meta
        parts.append(
            f"SELECT t.from_contentmodule_id, '{tag}', t.to_contentmodule_id, m.code "
            f"FROM {through.db_table} t JOIN {module_table} m ON m.id = t.to_contentmodule_id "
            f"WHERE t.from_contentmodule_id IN ({{modules}})")
    return " UNION ALL ".join(parts)


_SQL: dict[str, str] = {}


class _ContentCache:
    """Text and tags of locked versions, by (id, sha256).

    A locked (approved, expired, withdrawn) version's content and tags never change
    (model and signal guards; its sha256 covers both), so they are read once per process.
    States, validity and module-level data (code, kind, purpose, companions, exclusions)
    are read on every assembly.
    """

    def __init__(self, size: int = 20_000):
        self.size = size
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            return self.items.get(key)

    def put(self, key, value) -> None:
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)


_CONTENT = _ContentCache()


def _read_content(ids: list[int]) -> dict[int, tuple]:
    """(locale, subject, body_html, body_text, fallbacks, tags) of versions: two queries."""
    if "tags" not in _SQL:
        _SQL["tags"] = _tag_sql()
    content: dict[int, list] = {}
    tags: dict[str, dict[int, set]] = {t: defaultdict(set) for t in "ajcsp"}
    with connection.cursor() as cursor:
        cursor.execute(_content_sql(len(ids)), ids)
        for vid, locale, subject, body_html, body_text, fallbacks in cursor.fetchall():
            if isinstance(fallbacks, str):
                fallbacks = json.loads(fallbacks or "{}")
            content[vid] = [locale, subject or "", body_html or "", body_text or "", fallbacks or {}]
        cursor.execute(_SQL["tags"].format(versions=_in(ids)), ids * 5)
        for owner, tag, value, extra in cursor.fetchall():
            if tag == "s":
                tags["s"][owner].add(int(value))
            elif tag == "p":
                tags["p"][owner].update((value.lower(), extra.lower()))
            else:
                tags[tag][owner].add(value)
    return {
        vid: (*values, frozenset(tags["a"][vid]), frozenset(tags["j"][vid]),
              frozenset(tags["c"][vid]), frozenset(tags["s"][vid]), frozenset(tags["p"][vid]))
        for vid, values in content.items()
    }


def _read_versions(where: str, params: list) -> list[VersionSnapshot]:
    """Versions matching `where` with content, tags, companions and exclusions.

    Raw SQL on purpose: this is the hot read of every single assembly, and the ORM's query
    compilation cost more than the queries. Warm (content of locked versions cached): two
    queries; cold: four.
    """
    if "relations" not in _SQL:
        _SQL["relations"] = _relation_sql()
    with connection.cursor() as cursor:
        cursor.execute(_version_sql(where), params)
        rows = cursor.fetchall()
        if not rows:
            return []
        module_ids = sorted({r[1] for r in rows})
        requires: dict[int, list] = defaultdict(list)
        excludes: dict[int, list] = defaultdict(list)
        cursor.execute(_SQL["relations"].format(modules=_in(module_ids)), module_ids * 2)
        for owner, tag, target, code in cursor.fetchall():
            (requires if tag == "r" else excludes)[owner].append((target, code))
    contents: dict[int, tuple] = {}
    missing = []
    for row in rows:
        # created_at makes the key unique to the row even where ids are reused.
        cached = _CONTENT.get((row[0], row[7], str(row[13]))) if row[6] in LOCKED else None
        if cached is None:
            missing.append(row[0])
        else:
            contents[row[0]] = cached
    if missing:
        fresh = _read_content(missing)
        contents.update(fresh)
        for row in rows:
            if row[0] in fresh and row[6] in LOCKED:
                _CONTENT.put((row[0], row[7], str(row[13])), fresh[row[0]])
    assets = {}
    asset_ids = {r[12] for r in rows if r[12]}
    if asset_ids:
        from content.models import Asset

        for asset in Asset.objects.filter(pk__in=asset_ids).only("image", "alt_text", "width"):
            assets[asset.pk] = (asset.image.url, asset.alt_text, min(asset.width or 600, 600))
    snapshots = []
    for (vid, module_id, code, kind, purpose, number, state, sha, valid_from, expires_at,
         approved_at, withdrawn_at, asset_id, created_at) in rows:
        (locale, subject, body_html, body_text, fallbacks, audiences, jurisdictions, channels,
         stage_ids, specialties) = contents[vid]
        snapshots.append(VersionSnapshot(
            id=vid, module_id=module_id, code=code, kind=kind, purpose=purpose, number=number,
            state=state, sha256=sha, locale=locale, subject=subject, body_html=body_html,
            body_text=body_text, token_fallbacks=fallbacks, valid_from=_dt(valid_from),
            expires_at=_dt(expires_at), approved_at=_dt(approved_at),
            withdrawn_at=_dt(withdrawn_at), image=assets.get(asset_id),
            audiences=audiences, jurisdictions=jurisdictions, channels=channels,
            stage_ids=stage_ids, specialties=specialties,
            requires=tuple(sorted(requires[module_id])),
            excludes=tuple(sorted(excludes[module_id])), created_at=str(created_at),
        ))
    return snapshots


def _signatures(version_ids: Iterable[int]) -> dict[int, list[dict]]:
    try:
        from approvals.selectors import approval_signatures_for_versions as read
    except ImportError:  # pragma: no cover - older approvals app
        try:
            from approvals.selectors import signatures_for_versions as read
        except ImportError:
            return {}
    return read(list(version_ids))


_SIGNED: OrderedDict = OrderedDict()
_SIGNED_LOCK = threading.Lock()


def _approval_signatures(versions: list[VersionSnapshot]) -> dict[int, list[dict]]:
    """Approval signatures per version, cached while the version stays approved as it was.

    The signatures of an approval round never change; a withdrawal or a new round changes
    the state or approved_at, which are part of the key, so nothing stale is ever served.
    """
    # Only locked versions can appear in a manifest; drafts and reviews have no approval.
    keys = {v.id: (v.id, v.state, v.approved_at) for v in versions if v.state in LOCKED}
    found, missing = {}, []
    with _SIGNED_LOCK:
        for vid, key in keys.items():
            if key in _SIGNED:
                found[vid] = _SIGNED[key]
            else:
                missing.append(vid)
    if missing:
        fresh = _signatures(missing)
        with _SIGNED_LOCK:
            for vid in missing:
                found[vid] = fresh.get(vid, [])
                if keys[vid][2] is not None:
                    _SIGNED[keys[vid]] = found[vid]
            while len(_SIGNED) > 20_000:
                _SIGNED.popitem(last=False)
    return found


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


_FINGERPRINTS: dict = {}


def _layout_fingerprint(layout: str) -> dict:
    """Name and sha256 of the layout's template sources (re-hashed when a file changes)."""
    names = LAYOUT_TEMPLATES[layout]
    paths = []
    for name in names:
        template = get_template(name)
        origin = getattr(getattr(template, "template", template), "origin", None)
        paths.append(Path(origin.name) if origin and origin.name else None)
    stamp = tuple(p.stat().st_mtime_ns if p else 0 for p in paths)
    cached = _FINGERPRINTS.get(layout)
    if cached and cached[0] == stamp:
        return cached[1]
    digest = hashlib.sha256()
    for name, path in zip(names, paths, strict=True):
        source = path.read_bytes() if path else name.encode()
        digest.update(name.encode() + b"\0" + source + b"\0")
    info = {"name": layout, "templates": list(names), "sha256": digest.hexdigest()}
    _FINGERPRINTS[layout] = (stamp, info)
    return info


def _locale_matches(version_locale: str, wanted: str) -> bool:
    """Exact BCP 47 match, or a language-only version ('en') for a regional request ('en-US')."""
    v, w = version_locale.lower(), wanted.lower()
    return v == w or w.split("-", 1)[0] == v


# --- The step context: everything read once per batch ----------------------------------------


class StepContext:
    """A step ready for assembly in one channel, market and locale.

    Holds the database reads of one batch and the outputs prepared per combination of
    module versions. Build it with `load_context`.
    """

    def __init__(self, step: Step, *, channel: str, jurisdiction: str, locale: str,
                 layout: str | None, now: datetime | None, pinned: list[int | None] | None):
        self.step = step
        self.channel = channel
        self.jurisdiction_code = (jurisdiction or "").upper()
        self.locale = locale or ""
        self.layout = layout
        self.now = now or timezone.now()
        # Reproduction pins the version of every slot (None = the slot was left empty).
        self.pinned = list(pinned) if pinned is not None else None
        self._prepared: dict[tuple, _Prepared] = {}
        self._version_errors: dict[int, list[AssemblyError]] = {}
        self._bound: tuple | None = None
        self._last: tuple | None = None  # (picks, prepared) of the previous recipient
        self._load()

    # Reading ----------------------------------------------------------------------------

    def _load(self) -> None:
        tables = {name: model._meta.db_table for name, model in (
            ("step", Step), ("journey", Journey), ("brand", Brand), ("audience", Audience),
            ("channel", Channel), ("market", Jurisdiction), ("slot", Slot),
            ("module", ContentModule))}
        markets = Journey.jurisdictions.through._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT s.key, s.purpose, s.layout, c.code, j.id, j.slug, j.brand_id, b.name, a.code "
                f"FROM {tables['step']} s JOIN {tables['journey']} j ON j.id = s.journey_id "
                f"JOIN {tables['brand']} b ON b.id = j.brand_id "
                f"JOIN {tables['audience']} a ON a.id = j.audience_id "
                f"JOIN {tables['channel']} c ON c.id = s.channel_id WHERE s.id = %s",
                [self.step.pk])
            row = cursor.fetchone()
            if row is None:
                raise Step.DoesNotExist(f"Step {self.step.pk} does not exist.")
            (self.step_key, self.step_purpose, step_layout, self.step_channel, journey_id,
             self.journey_slug, brand_id, self.brand_name, self.audience_code) = row
            # The market's legal footer and the journey's markets, in one read.
            cursor.execute(
                f"SELECT x.code, x.legal_footer, x.id, (SELECT COUNT(*) FROM {markets} mj "
                f"WHERE mj.journey_id = %s AND mj.jurisdiction_id = x.id) FROM {tables['market']} x "
                f"WHERE x.code = %s OR x.id IN (SELECT jurisdiction_id FROM {markets} "
                f"WHERE journey_id = %s)", [journey_id, self.jurisdiction_code, journey_id])
            market_rows = cursor.fetchall()
        self.journey_jurisdictions = {code for code, _, _, used in market_rows if used}
        market = next((r for r in market_rows if r[0] == self.jurisdiction_code), None)
        self.legal_footer = market[1] if market else ""
        self.layout = self.layout or step_layout
        if self.layout not in LAYOUT_TEMPLATES:
            raise ValueError(f"Unknown layout {self.layout!r}")
        if market and self.pinned is not None:
            # Reproducing: the footer as it was when the manifest was made.
            past = Jurisdiction.history.filter(id=market[2], history_date__lte=self.now).order_by(
                "-history_date").first()
            if past is not None:
                self.legal_footer = past.legal_footer
        self.slots: list[SlotSpec] = []
        if self.pinned is None:
            with connection.cursor() as cursor:
                cursor.execute(
                    f'SELECT sl.id, sl."order", sl.module_id, m.code, sl.selector_kind, sl.priority, '
                    f"sl.required FROM {tables['slot']} sl "
                    f"LEFT JOIN {tables['module']} m ON m.id = sl.module_id "
                    f'WHERE sl.step_id = %s ORDER BY sl."order", sl.id', [self.step.pk])
                slots = cursor.fetchall()
            selector_ids = [slot[0] for slot in slots if slot[2] is None]
            stage_tags: dict[int, set] = defaultdict(set)
            specialty_tags: dict[int, set] = defaultdict(set)
            if selector_ids:  # two small reads, only for steps with selectors
                for slot_id, stage_id in Slot.selector_stages.through.objects.filter(
                        slot_id__in=selector_ids).values_list("slot_id", "stage_id"):
                    stage_tags[slot_id].add(stage_id)
                for slot_id, code, name in Slot.selector_specialties.through.objects.filter(
                        slot_id__in=selector_ids).values_list(
                        "slot_id", "specialty__code", "specialty__name"):
                    specialty_tags[slot_id].update((code.lower(), name.lower()))
            for slot_id, order, module_id, code, kind, priority, required in slots:
                self.slots.append(SlotSpec(
                    order=order, module_id=module_id, module_code=code, kind=kind or "",
                    stage_ids=frozenset(stage_tags[slot_id]),
                    specialties=frozenset(specialty_tags[slot_id]),
                    priority=priority, required=bool(required),
                ))
        if self.pinned is not None:
            self.slots = [SlotSpec(order=i, module_id=None, module_code=None, kind="",
                                   stage_ids=frozenset(), specialties=frozenset(), priority=0,
                                   required=False) for i in range(len(self.pinned))]
            ids = [i for i in self.pinned if i]
            versions = _read_versions(f"v.id IN ({_in(ids)})", ids)
        else:
            bound = [s.module_id for s in self.slots if s.module_id]
            where, params = f"v.module_id IN ({_in(bound)})", list(bound)
            kinds = sorted({s.kind for s in self.slots if s.module_id is None})
            if kinds:
                # Tags are checked in Python (version_errors): an indexed, join-light query.
                module_table = ContentModule._meta.db_table
                # `v.state || ''` keeps the planner on the module index: without statistics
                # SQLite would otherwise walk the (unselective) state index.
                where += (f"; v.module_id IN (SELECT id FROM {module_table} "
                          f"WHERE brand_id = %s AND kind IN ({_in(kinds)}) "
                          f"AND id NOT IN ({_in(bound)})) AND v.state || '' = %s")
                params += [brand_id, *kinds, *bound, VersionState.APPROVED]
            versions = _read_versions(where, params)
        self.versions = {v.id: v for v in versions}
        self.by_module: dict[int, list[VersionSnapshot]] = defaultdict(list)
        for v in versions:  # newest first within a module
            self.by_module[v.module_id].append(v)
        self.candidates = sorted(
            (v for v in versions if v.state == VersionState.APPROVED),
            key=lambda v: (-(v.approved_at.timestamp() if v.approved_at else 0), v.code, -v.number),
        )
        self.signatures = _approval_signatures(versions)
        self.layout_info = _layout_fingerprint(self.layout)
        self.states = {v.id: (v.state, v.expires_at) for v in versions}

    def is_current(self) -> bool:
        """Whether the versions read are still in the state read (one query)."""
        rows = ModuleVersion.objects.filter(pk__in=list(self.states)).values_list(
            "id", "state", "expires_at")
        return {i: (s, e) for i, s, e in rows} == self.states

    # Checks -----------------------------------------------------------------------------

    def context_errors(self, recipient: Mapping) -> list[AssemblyError]:
        errors = []
        if self.pinned is not None:
            return errors
        consent = recipient.get("consent") if isinstance(recipient, Mapping) else None
        if not (isinstance(consent, Mapping) and consent.get(self.channel) is True):
            errors.append(AssemblyError(
                "no_consent", f"The recipient has not consented to the {self.channel} channel."))
        if self.channel != self.step_channel:
            errors.append(AssemblyError(
                "channel_not_covered",
                f"Step {self.step_key!r} is a {self.step_channel} touchpoint, not {self.channel}."))
        if self.jurisdiction_code not in self.journey_jurisdictions:
            errors.append(AssemblyError(
                "jurisdiction_not_covered",
                f"Journey {self.journey_slug!r} does not run in {self.jurisdiction_code or '(none)'}; "
                f"it runs in {', '.join(sorted(self.journey_jurisdictions)) or 'no market'}."))
        return errors

    def version_errors(self, v: VersionSnapshot) -> list[AssemblyError]:
        """Every rule one version breaks in this context (cached per version)."""
        cached = self._version_errors.get(v.id)
        if cached is not None:
            return cached
        errors = []
        if self.pinned is not None:  # reproducing what was checked back then
            self._version_errors[v.id] = errors
            return errors
        add = errors.append
        if v.state == VersionState.WITHDRAWN:
            when = f" on {v.withdrawn_at:%Y-%m-%d}" if v.withdrawn_at else ""
            add(AssemblyError("withdrawn", f"{v.label} was withdrawn{when}.", v.code))
        elif v.state == VersionState.EXPIRED or (
            v.state == VersionState.APPROVED and v.expires_at and v.expires_at <= self.now
        ):
            when = f" on {v.expires_at:%Y-%m-%d}" if v.expires_at else ""
            add(AssemblyError("expired", f"The approval of {v.label} expired{when}.", v.code))
        elif v.state != VersionState.APPROVED:
            add(AssemblyError("not_approved",
                              f"{v.label} is {v.state.replace('_', ' ')}, not approved.", v.code))
        elif v.valid_from and v.valid_from > self.now:
            add(AssemblyError("not_approved",
                              f"{v.label} is approved but valid only from {v.valid_from:%Y-%m-%d}.",
                              v.code))
        if self.jurisdiction_code not in v.jurisdictions:
            add(AssemblyError(
                "jurisdiction_not_covered",
                f"{v.label} is approved for {', '.join(sorted(v.jurisdictions)) or 'no market'}, "
                f"not {self.jurisdiction_code}.", v.code))
        if self.audience_code not in v.audiences:
            add(AssemblyError(
                "audience_not_covered",
                f"{v.label} is for {', '.join(sorted(v.audiences)) or 'no audience'}, "
                f"not {self.audience_code}.", v.code))
        if self.channel not in v.channels:
            add(AssemblyError(
                "channel_not_covered",
                f"{v.label} is for {', '.join(sorted(v.channels)) or 'no channel'}, "
                f"not {self.channel}.", v.code))
        if not _locale_matches(v.locale, self.locale):
            add(AssemblyError("locale_mismatch",
                              f"{v.label} is in {v.locale}; {self.locale or '(none)'} was asked for.",
                              v.code))
        if v.purpose not in ALLOWED_PURPOSES.get(self.step_purpose, ()):
            add(AssemblyError(
                "purpose_mismatch",
                f"{v.label} is {v.purpose.replace('_', ' ')} content; this step is "
                f"{self.step_purpose.replace('_', ' ')}.", v.code))
        bad_tokens = token_errors(v.subject) + token_errors(v.body_html) + token_errors(v.body_text)
        if bad_tokens:
            add(AssemblyError("unknown_token", " ".join(dict.fromkeys(bad_tokens)), v.code))
        self._version_errors[v.id] = errors
        return errors

    # Selection --------------------------------------------------------------------------

    def _bound_version(self, slot: SlotSpec) -> VersionSnapshot | None:
        versions = self.by_module.get(slot.module_id, [])
        locked = [v for v in versions if v.state in LOCKED]
        for v in locked:
            if _locale_matches(v.locale, self.locale):
                return v
        return locked[0] if locked else (versions[0] if versions else None)

    def select(self, recipient: Mapping, seen: Iterable = ()) -> tuple[list, list[AssemblyError]]:
        """The version for each slot (None when an optional selector finds nothing)."""
        if self.pinned is not None:
            picks = [(s, self.versions.get(i)) for s, i in zip(self.slots, self.pinned, strict=True)]
            return picks, []
        if self._bound is None:  # fixed slots do not depend on the recipient: resolve once
            bound_errors: list[AssemblyError] = []
            bound: dict[int, VersionSnapshot | None] = {}
            for index, slot in enumerate(self.slots):
                if slot.module_id is None:
                    continue
                v = self._bound_version(slot)
                if v is None:
                    bound_errors.append(AssemblyError(
                        "not_approved", f"{slot.module_code} has no version yet.", slot.module_code))
                bound[index] = v
            self._bound = (bound, bound_errors,
                           [(s, bound.get(i)) for i, s in enumerate(self.slots)])
        bound, bound_errors, bound_picks = self._bound
        if len(bound) == len(self.slots):
            return bound_picks, bound_errors
        errors = list(bound_errors)
        chosen = dict(bound)
        selectors = sorted((i for i, s in enumerate(self.slots) if s.module_id is None),
                           key=lambda i: (-self.slots[i].priority, i))
        if selectors:
            seen_set = {str(x).upper() for x in seen} | {
                str(x).upper() for x in (recipient.get("seen_modules") or ())}
            specialty = str(recipient.get("specialty") or "").strip().lower()
            for index in selectors:
                v = self._pick(self.slots[index], chosen, seen_set, specialty)
                if v is None and self.slots[index].required:
                    errors.append(AssemblyError(
                        "not_approved",
                        f"No approved {self.slots[index].kind or 'module'} fits slot "
                        f"{self.slots[index].order} for this recipient in "
                        f"{self.jurisdiction_code}/{self.channel}/{self.locale}."))
                chosen[index] = v
        return [(s, chosen.get(i)) for i, s in enumerate(self.slots)], errors

    def _pick(self, slot, chosen, seen, specialty) -> VersionSnapshot | None:
        present = {v.module_id for v in chosen.values() if v is not None}
        best, best_rank = None, -1
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
            if any(m in present for m, _ in v.excludes) or any(
                m not in present for m, _ in v.requires):
                continue
            if not v.specialties:
                rank = 1
            else:
                rank = 2 if specialty and specialty in v.specialties else 0
            if rank > best_rank:  # candidates are already newest-approval first
                best, best_rank = v, rank
                if rank == 2:
                    break
        return best

    # Preparation ------------------------------------------------------------------------

    def prepared(self, picks: list) -> _Prepared:
        last = self._last
        if last is not None and last[0] is picks:  # fixed slots: the same list every time
            return last[1]
        key = tuple(v.id if v is not None else None for _, v in picks)
        prep = self._prepared.get(key)
        if prep is None:
            prep = self._prepared[key] = _Prepared(self, picks)
        self._last = (picks, prep)
        return prep

    def assemble(self, recipient: Mapping, *, seen: Iterable = ()) -> AssemblyResult:
        """Assemble for one recipient from what this context has read and prepared."""
        if not isinstance(recipient, Mapping):
            recipient = {}
        errors = self.context_errors(recipient)
        picks, selection_errors = self.select(recipient, seen)
        errors += selection_errors
        prep = self.prepared(picks)
        errors += prep.errors
        values = {}
        for name in prep.fields:
            value = recipient.get(name)
            if value is not None:
                value = str(value)
                if not value.strip():
                    value = None
            values[name] = value
        for name, code in prep.required_fields:
            if values[name] is None:
                errors.append(AssemblyError(
                    "missing_recipient_field",
                    f"{code} needs recipient.{name} and defines no fallback for it.", code))
        if errors or prep.html is None:
            return AssemblyResult(ok=False, manifest=prep.manifest_without_output(), errors=errors)
        html_values, text_values, line_values = {}, {}, {}
        for key, (name, fallback) in prep.keys.items():
            value = values[name]
            if value is None:
                value = fallback
            html_values[key] = escape(value)
            text_values[key] = value
            line_values[key] = value.translate(_LINE_BREAKS)
        subject = fill(prep.subject, line_values)
        preheader = fill(prep.preheader, line_values)
        html = fill(prep.html, html_values)
        text = fill(prep.text, text_values)
        manifest = dict(prep.manifest)
        manifest["output_sha256"] = output_sha256(subject, html, text)
        manifest["recipient_sha256"] = recipient_sha256(recipient)
        return AssemblyResult(ok=True, subject=subject, html=html, text=text,
                              preheader=preheader, manifest=manifest)


class _Prepared:
    """One combination of module versions, checked and rendered once."""

    def __init__(self, ctx: StepContext, picks: list):
        self.ctx = ctx
        self.all_picks = picks
        self.picks = [(slot, v) for slot, v in picks if v is not None]
        versions = [v for _, v in self.picks]
        errors: list[AssemblyError] = []
        for v in versions:
            errors += ctx.version_errors(v)
        present = {v.module_id for v in versions}
        for v in versions:
            for module_id, code in v.requires:
                if module_id not in present:
                    errors.append(AssemblyError(
                        "missing_companion", f"{v.code} must travel with {code}, which is not in this step.",
                        v.code))
        reported = set()
        for v in versions:
            for module_id, code in v.excludes:
                pair = frozenset((v.module_id, module_id))
                if module_id in present and pair not in reported:
                    reported.add(pair)
                    errors.append(AssemblyError(
                        "excluded_combination", f"{v.code} and {code} must never appear together.",
                        v.code))
        self.errors = errors
        self.keys: dict[str, tuple[str, str | None]] = {}
        self.fields: list[str] = []
        self.required_fields: list[tuple[str, str]] = []
        self.manifest = self._manifest(versions)
        self.html = self.text = None
        if errors:
            return
        for v in versions:
            used = {m for t in (v.subject, v.body_html, v.body_text) for m in TOKEN_RE.findall(t)}
            for name in sorted(used):
                if name not in self.fields:
                    self.fields.append(name)
                if not v.token_fallbacks.get(name):
                    self.required_fields.append((name, v.code))
        key = self._render_key(versions)
        cached = _RENDERED.get(key)
        if cached is None:
            self._render(versions)
            _RENDERED.put(key, (self.html, self.text, self.subject, self.preheader, dict(self.keys)))
        else:
            self.html, self.text, self.subject, self.preheader, keys = cached
            self.keys = dict(keys)

    def _render_key(self, versions: list[VersionSnapshot]) -> tuple:
        """Everything the rendered bytes depend on (approved versions are immutable)."""
        ctx = self.ctx
        return (
            ctx.layout, ctx.layout_info["sha256"], ctx.locale, ctx.jurisdiction_code,
            ctx.now.astimezone(UTC).year, ctx.brand_name,
            hashlib.sha256(ctx.legal_footer.encode()).hexdigest(),
            tuple((v.id, v.sha256, v.created_at, v.code, v.kind, v.number) for v in versions),
        )

    def _placeholders(self, v: VersionSnapshot, text: str) -> str:
        """Tokens → private-use placeholders keyed by field and this module's fallback."""
        def swap(match):
            name = match.group(1)
            fallback = v.token_fallbacks.get(name) or None
            key = name if fallback is None else f"{name}#{len(self.keys)}"
            for existing, spec in self.keys.items():
                if spec == (name, fallback):
                    key = existing
                    break
            self.keys[key] = (name, fallback)
            return f"{PH_OPEN}{key}{PH_CLOSE}"

        return TOKEN_RE.sub(swap, (text or "").translate(_PH_CHARS))

    def _render(self, versions: list[VersionSnapshot]) -> None:
        ctx = self.ctx
        subject_parts = [v for v in versions if v.kind == ModuleKind.SUBJECT]
        subject_src = next(
            ((v, v.subject or v.body_text) for v in subject_parts if (v.subject or v.body_text)),
            next(((v, v.subject) for v in versions if v.subject), None),
        )
        subject = self._placeholders(*subject_src) if subject_src else ctx.brand_name.translate(_PH_CHARS)
        subject = " ".join(subject.split())
        preheader_src = next((v for v in versions if v.kind == ModuleKind.PREHEADER), None)
        preheader = (" ".join(self._placeholders(preheader_src, preheader_src.body_text).split())
                     if preheader_src else "")
        modules = []
        for _slot, v in self.picks:
            if v.kind in HEADER_KINDS:
                continue
            html = self._placeholders(v, v.body_html)
            if v.image:
                url, alt, width = v.image
                html = (f'<img src="{escape(url)}" alt="{escape(alt)}" width="{width}" '
                        f'class="module-image">') + html
            modules.append({
                "code": v.code, "kind": v.kind, "html": mark_safe(html),  # sanitised on save
                "text": self._placeholders(v, v.body_text).strip(),
            })
        footer = ctx.legal_footer.translate(_PH_CHARS)
        context = {
            "subject": subject, "preheader": preheader, "modules": modules,
            "legal_footer": footer, "brand": ctx.brand_name.translate(_PH_CHARS),
            "lang": ctx.locale or "en", "year": ctx.now.astimezone(UTC).year,
            "jurisdiction": ctx.jurisdiction_code, "layout": ctx.layout,
        }
        html_template, text_template = LAYOUT_TEMPLATES[ctx.layout]
        html = get_template(html_template).render(context)
        if ctx.layout == Layout.EMAIL:
            html = _inliner.inline(html)
        text = get_template(text_template).render(context)
        text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
        self.html = _compile(html)
        self.text = _compile(text)
        self.subject = _compile(subject)
        self.preheader = _compile(preheader)

    def _manifest(self, versions: list[VersionSnapshot]) -> dict:
        ctx = self.ctx
        modules = []
        for slot, v in self.picks:
            modules.append({
                "slot": slot.order, "module": v.code, "kind": v.kind, "purpose": v.purpose,
                "version": v.number, "version_id": v.id, "sha256": v.sha256, "state": v.state,
                "locale": v.locale, "approved_at": _iso(v.approved_at),
                "expires_at": _iso(v.expires_at),
                "signatures": ctx.signatures.get(v.id, []),
            })
        return {
            "manifest_version": MANIFEST_VERSION,
            "journey": ctx.journey_slug, "step": ctx.step_key,
            "channel": ctx.channel, "jurisdiction": ctx.jurisdiction_code, "locale": ctx.locale,
            "layout": ctx.layout_info,
            "legal_footer_sha256": hashlib.sha256(ctx.legal_footer.encode()).hexdigest(),
            "modules": modules,
            "slots": [v.id if v is not None else None for _, v in self.all_picks],
            "assembled_at": _iso(ctx.now),
        }

    def manifest_without_output(self) -> dict:
        return dict(self.manifest)


class _RenderCache:
    """A small LRU of rendered combinations shared by all contexts of the process.

    Keys hold every input of the rendering (version ids with their content sha256, layout
    sha256, footer, brand, locale, year), so a hit is byte-identical to a fresh render;
    compliance is still checked on every assembly from freshly read states.
    """

    def __init__(self, size: int = 512):
        self.size = size
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            value = self.items.get(key)
            if value is not None:
                self.items.move_to_end(key)
            return value

    def put(self, key, value) -> None:
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


_RENDERED = _RenderCache()


def _compile(text: str) -> CompiledText:
    return CompiledText(tuple(PH_RE.split(text)))


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def output_sha256(subject: str, html: str, text: str) -> str:
    """sha256 over subject, HTML and text, NUL-separated (what the manifest records)."""
    return hashlib.sha256(f"{subject}\0{html}\0{text}".encode()).hexdigest()


def recipient_sha256(recipient: Mapping) -> str:
    """sha256 of the canonical JSON of the recipient data: proof without the data."""
    canonical = json.dumps(recipient, sort_keys=True, ensure_ascii=False,
                           separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- Public entry points -------------------------------------------------------------------


def load_step(step: Step | int) -> Step:
    """The step itself (the context reads what it needs in its own queries)."""
    if isinstance(step, Step):
        return step
    return Step.objects.get(pk=step)


def load_context(step: Step, *, channel: str, jurisdiction: str, locale: str,
                 layout: str | None = None, now: datetime | None = None,
                 pinned: list[int | None] | None = None) -> StepContext:
    """Read everything the step needs for this channel, market and locale (constant queries)."""
    return StepContext(load_step(step), channel=channel, jurisdiction=jurisdiction, locale=locale,
                       layout=layout, now=now, pinned=pinned)


def assemble_many(step: Step, recipients: Iterable[Mapping], *, channel: str, jurisdiction: str,
                  locale: str, layout: str | None = None, now: datetime | None = None,
                  chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[AssemblyResult]:
    """Assemble for many recipients, in order, preparing each combination once.

    Module version states are re-read at the start of every chunk; when any changed
    (a withdrawal, an expiry, a new approval) the context is read again, so a withdrawn
    version stops going out from the next chunk on.
    """
    fixed_now = now
    ctx = None
    for index, recipient in enumerate(recipients):
        if ctx is None:
            ctx = load_context(step, channel=channel, jurisdiction=jurisdiction, locale=locale,
                               layout=layout, now=fixed_now)
        elif index % chunk_size == 0 and not ctx.is_current():
            ctx = load_context(step, channel=channel, jurisdiction=jurisdiction, locale=locale,
                               layout=layout, now=fixed_now)
        yield ctx.assemble(recipient)


def assemble(step: Step, recipient: Mapping, *, channel: str, jurisdiction: str, locale: str,
             now: datetime | None = None, layout: str | None = None,
             seen: Iterable = ()) -> AssemblyResult:
    """Assemble one step for one recipient, or say every reason it cannot be compliant.

    Version states are read from the database now. `seen` lists module ids or codes the
    recipient already received (selector slots skip them), e.g. an enrollment's
    `seen_module_ids`. Writes nothing.
    """
    ctx = load_context(step, channel=channel, jurisdiction=jurisdiction, locale=locale,
                       layout=layout, now=now)
    return ctx.assemble(recipient, seen=seen)


__all__ = [
    "ERROR_CODES", "AssemblyError", "AssemblyResult", "StepContext", "assemble",
    "assemble_many", "load_context", "output_sha256", "recipient_sha256", "RECIPIENT_FIELDS",
]
