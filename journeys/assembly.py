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
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path

import css_inline
from django.db.models import Q
from django.template.loader import get_template
from django.utils import timezone
from django.utils.safestring import mark_safe

from content.models import (
    ContentModule,
    Jurisdiction,
    ModuleKind,
    ModuleVersion,
    Purpose,
    VersionState,
)
from content.tokens import RECIPIENT_FIELDS, TOKEN_RE, CompiledText, fill, token_errors

from .models import Layout, Step

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

    @property
    def label(self) -> str:
        return f"{self.code} v{self.number}"


_VERSION_VALUES = (
    "id", "module_id", "module__code", "module__kind", "module__purpose", "number", "state",
    "sha256", "locale__code", "subject", "body_html", "body_text", "token_fallbacks",
    "valid_from", "expires_at", "approved_at", "withdrawn_at", "asset_id",
)


def _read_versions(queryset) -> list[VersionSnapshot]:
    """Versions with their tags, companions and exclusions in a fixed number of queries."""
    rows = list(queryset.order_by("module_id", "-number").values(*_VERSION_VALUES))
    if not rows:
        return []
    ids = queryset.values("id")
    tags: dict[str, dict[int, set]] = {}
    through = ModuleVersion
    for name, columns in (
        ("audiences", ("audience__code",)),
        ("jurisdictions", ("jurisdiction__code",)),
        ("channels", ("channel__code",)),
        ("stages", ("stage_id",)),
        ("specialties", ("specialty__code", "specialty__name")),
    ):
        found: dict[int, set] = defaultdict(set)
        model = getattr(through, name).through
        for version_id, *values in model.objects.filter(moduleversion_id__in=ids).values_list(
            "moduleversion_id", *columns
        ):
            found[version_id].update(str(v).lower() if name == "specialties" else v for v in values)
        tags[name] = found
    module_ids = {r["module_id"] for r in rows}
    requires: dict[int, list] = defaultdict(list)
    for src, dst, code in ContentModule.requires.through.objects.filter(
        from_contentmodule_id__in=module_ids
    ).values_list("from_contentmodule_id", "to_contentmodule_id", "to_contentmodule__code"):
        requires[src].append((dst, code))
    excludes: dict[int, list] = defaultdict(list)
    for src, dst, code in ContentModule.excludes.through.objects.filter(
        from_contentmodule_id__in=module_ids
    ).values_list("from_contentmodule_id", "to_contentmodule_id", "to_contentmodule__code"):
        excludes[src].append((dst, code))
    assets = {}
    asset_ids = {r["asset_id"] for r in rows if r["asset_id"]}
    if asset_ids:
        from content.models import Asset

        for asset in Asset.objects.filter(pk__in=asset_ids).only("image", "alt_text", "width"):
            assets[asset.pk] = (asset.image.url, asset.alt_text, min(asset.width or 600, 600))
    return [
        VersionSnapshot(
            id=r["id"], module_id=r["module_id"], code=r["module__code"], kind=r["module__kind"],
            purpose=r["module__purpose"], number=r["number"], state=r["state"],
            sha256=r["sha256"], locale=r["locale__code"], subject=r["subject"] or "",
            body_html=r["body_html"] or "", body_text=r["body_text"] or "",
            token_fallbacks=r["token_fallbacks"] or {}, valid_from=r["valid_from"],
            expires_at=r["expires_at"], approved_at=r["approved_at"],
            withdrawn_at=r["withdrawn_at"], image=assets.get(r["asset_id"]),
            audiences=frozenset(tags["audiences"][r["id"]]),
            jurisdictions=frozenset(tags["jurisdictions"][r["id"]]),
            channels=frozenset(tags["channels"][r["id"]]),
            stage_ids=frozenset(tags["stages"][r["id"]]),
            specialties=frozenset(tags["specialties"][r["id"]]),
            requires=tuple(sorted(requires[r["module_id"]])),
            excludes=tuple(sorted(excludes[r["module_id"]])),
        )
        for r in rows
    ]


def _signatures(version_ids: Iterable[int]) -> dict[int, list[dict]]:
    try:
        from approvals.selectors import approval_signatures_for_versions as read
    except ImportError:  # pragma: no cover - older approvals app
        try:
            from approvals.selectors import signatures_for_versions as read
        except ImportError:
            return {}
    return read(list(version_ids))


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


def _layout_fingerprint(layout: str) -> dict:
    names = LAYOUT_TEMPLATES[layout]
    digest = hashlib.sha256()
    for name in names:
        template = get_template(name)
        origin = getattr(getattr(template, "template", template), "origin", None)
        source = Path(origin.name).read_bytes() if origin and origin.name else name.encode()
        digest.update(name.encode() + b"\0" + source + b"\0")
    return {"name": layout, "templates": list(names), "sha256": digest.hexdigest()}


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
        self.journey = step.journey
        self.channel = channel
        self.jurisdiction_code = (jurisdiction or "").upper()
        self.locale = locale or ""
        self.layout = layout or step.layout
        if self.layout not in LAYOUT_TEMPLATES:
            raise ValueError(f"Unknown layout {self.layout!r}")
        self.now = now or timezone.now()
        # Reproduction pins the version of every slot (None = the slot was left empty).
        self.pinned = list(pinned) if pinned is not None else None
        self._prepared: dict[tuple, _Prepared] = {}
        self._version_errors: dict[int, list[AssemblyError]] = {}
        self._load()

    # Reading ----------------------------------------------------------------------------

    def _load(self) -> None:
        step, journey = self.step, self.journey
        self.brand_name = journey.brand.name
        self.audience_code = journey.audience.code
        self.step_channel = step.channel.code
        self.journey_jurisdictions = set(journey.jurisdictions.values_list("code", flat=True))
        market = Jurisdiction.objects.filter(code=self.jurisdiction_code).first()
        self.legal_footer = market.legal_footer if market else ""
        if market and self.pinned is not None:
            # Reproducing: the footer as it was when the manifest was made.
            try:
                self.legal_footer = market.history.as_of(self.now).legal_footer
            except Jurisdiction.DoesNotExist:
                pass
        self.slots: list[SlotSpec] = []
        slots = [] if self.pinned is not None else step.slots.select_related("module").prefetch_related(
            "selector_stages", "selector_specialties"
        ).order_by("order", "id")
        for slot in slots:
            self.slots.append(SlotSpec(
                order=slot.order, module_id=slot.module_id,
                module_code=slot.module.code if slot.module_id else None,
                kind=slot.selector_kind, stage_ids=frozenset(s.pk for s in slot.selector_stages.all()),
                specialties=frozenset(
                    x.lower() for s in slot.selector_specialties.all() for x in (s.code, s.name)),
                priority=slot.priority, required=slot.required,
            ))
        if self.pinned is not None:
            self.slots = [SlotSpec(order=i, module_id=None, module_code=None, kind="",
                                   stage_ids=frozenset(), specialties=frozenset(), priority=0,
                                   required=False) for i in range(len(self.pinned))]
            query = Q(pk__in=[i for i in self.pinned if i])
        else:
            bound = [s.module_id for s in self.slots if s.module_id]
            query = Q(module_id__in=bound)
            kinds = {s.kind for s in self.slots if s.module_id is None}
            if kinds:
                candidates = ModuleVersion.objects.filter(
                    module__brand_id=journey.brand_id, module__kind__in=kinds,
                    state=VersionState.APPROVED,
                    jurisdictions__code=self.jurisdiction_code, channels__code=self.channel,
                    audiences__code=self.audience_code,
                ).values("id")
                query |= Q(pk__in=candidates)
        versions = _read_versions(ModuleVersion.objects.filter(query))
        self.versions = {v.id: v for v in versions}
        self.by_module: dict[int, list[VersionSnapshot]] = defaultdict(list)
        for v in versions:  # newest first within a module
            self.by_module[v.module_id].append(v)
        self.candidates = sorted(
            (v for v in versions if v.state == VersionState.APPROVED),
            key=lambda v: (-(v.approved_at.timestamp() if v.approved_at else 0), v.code, -v.number),
        )
        self.signatures = _signatures(self.versions)
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
                f"Step {self.step.key!r} is a {self.step_channel} touchpoint, not {self.channel}."))
        if self.jurisdiction_code not in self.journey_jurisdictions:
            errors.append(AssemblyError(
                "jurisdiction_not_covered",
                f"Journey {self.journey.slug!r} does not run in {self.jurisdiction_code or '(none)'}; "
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
        if v.purpose not in ALLOWED_PURPOSES.get(self.step.purpose, ()):
            add(AssemblyError(
                "purpose_mismatch",
                f"{v.label} is {v.purpose.replace('_', ' ')} content; this step is "
                f"{self.step.purpose.replace('_', ' ')}.", v.code))
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
        errors: list[AssemblyError] = []
        chosen: dict[int, VersionSnapshot | None] = {}
        if self.pinned is not None:
            picks = [(s, self.versions.get(i)) for s, i in zip(self.slots, self.pinned, strict=True)]
            return picks, errors
        for index, slot in enumerate(self.slots):
            if slot.module_id is None:
                continue
            v = self._bound_version(slot)
            if v is None:
                errors.append(AssemblyError(
                    "not_approved", f"{slot.module_code} has no version yet.", slot.module_code))
            chosen[index] = v
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
        key = tuple(v.id if v is not None else None for _, v in picks)
        prep = self._prepared.get(key)
        if prep is None:
            prep = self._prepared[key] = _Prepared(self, picks)
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
        self._render(versions)

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
            "journey": ctx.journey.slug, "step": ctx.step.key,
            "channel": ctx.channel, "jurisdiction": ctx.jurisdiction_code, "locale": ctx.locale,
            "layout": ctx.layout_info,
            "legal_footer_sha256": hashlib.sha256(ctx.legal_footer.encode()).hexdigest(),
            "modules": modules,
            "slots": [v.id if v is not None else None for _, v in self.all_picks],
            "assembled_at": _iso(ctx.now),
        }

    def manifest_without_output(self) -> dict:
        return dict(self.manifest)


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
    """The step with what the context reads from it (one query)."""
    step_id = step.pk if isinstance(step, Step) else step
    return Step.objects.select_related(
        "journey__brand", "journey__audience", "journey__locale", "channel"
    ).get(pk=step_id)


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
