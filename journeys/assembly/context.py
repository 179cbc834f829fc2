"""The step context: everything one batch reads once, and the per-recipient assembly.

`StepContext` reads the step, its market, slots, candidate versions and signatures, then
assembles for each recipient from what it read and prepared. `PinnedStepContext`
re-assembles a manifest: the versions and the footer are the manifest's, and nothing is
checked again (it was checked when the manifest was made) except that the content is
still what was signed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from html import escape

from django.utils import timezone

from content.models import ModuleKind, ModuleVersion
from content.tokens import fill

from .. import unsubscribe
from ..models import Step
from . import ranking, rules, snapshot
from .manifest import output_sha256, recipient_sha256
from .prepared import Prepared
from .rendering import LAYOUT_TEMPLATES, LINE_BREAKS, layout_fingerprint
from .results import AssemblyError, AssemblyResult
from .selection import Picks, Selection
from .signatures import read_signatures
from .snapshot import SlotSpec, StepRow, VersionSnapshot


class StepContext:
    """A step ready for assembly in one channel, market and locale.

    Holds the database reads of one batch and the outputs prepared per combination of
    module versions. Build it with `load_context`.
    """

    def __init__(self, step: Step, *, channel: str, jurisdiction: str, locale: str,
                 layout: str | None, now: datetime | None):
        self.step = step
        self.channel = channel
        self.jurisdiction_code = (jurisdiction or "").upper()
        self.locale = locale or ""
        self.layout = layout
        self.now = now or timezone.now()
        self.year = self.now.astimezone(UTC).year
        self._prepared: dict[tuple, Prepared] = {}
        self._version_errors: dict[int, list[AssemblyError]] = {}
        self._last: tuple | None = None  # (picks, prepared) of the previous recipient
        self._load()

    # Reading ----------------------------------------------------------------------------

    def _load(self) -> None:
        row = snapshot.read_step(self.step.pk)
        self.journey_id, self.brand_id = row.journey_id, row.brand_id
        self.step_key, self.step_purpose, self.step_channel = row.key, row.purpose, row.channel
        self.journey_slug, self.brand_name, self.audience_code = (
            row.journey_slug, row.brand_name, row.audience_code)
        markets = snapshot.read_markets(row.journey_id, self.jurisdiction_code)
        self.journey_jurisdictions = {m.code for m in markets if m.in_journey}
        self.layout = self.layout or row.layout
        if self.layout not in LAYOUT_TEMPLATES:
            raise ValueError(f"Unknown layout {self.layout!r}")
        self.target = rules.Target(
            jurisdiction=self.jurisdiction_code, audience=self.audience_code,
            channel=self.channel, locale=self.locale, step_purpose=self.step_purpose,
            now=self.now)
        self.slots, versions = self._read_slots_and_versions(row)
        self.versions = {v.id: v for v in versions}
        self.selection = self._selection(versions)
        self.footer, self.footer_errors = self._footer(versions)
        self.signatures = read_signatures(versions)
        self.layout_info = layout_fingerprint(self.layout)
        self.states = {v.id: (v.state, v.expires_at) for v in versions}
        self.step_errors = rules.step_errors(
            channel=self.channel, step_key=self.step_key, step_channel=self.step_channel,
            journey_slug=self.journey_slug, jurisdiction=self.jurisdiction_code,
            journey_jurisdictions=self.journey_jurisdictions)

    def _footer(self, versions: list[VersionSnapshot]
                ) -> tuple[VersionSnapshot | None, list[AssemblyError]]:
        """The brand's approved footer for this market and locale (read with the versions)."""
        return rules.footer_choice(versions, brand=self.brand_name,
                                   jurisdiction=self.jurisdiction_code, locale=self.locale,
                                   now=self.now)

    def _read_slots_and_versions(self, row: StepRow) -> tuple[list[SlotSpec], list[VersionSnapshot]]:
        slots = snapshot.read_slots(self.step.pk)
        # The brand's approved footers are candidates of every step (in the same query).
        versions = snapshot.read_step_versions(
            [s.module_id for s in slots if s.module_id], brand_id=row.brand_id,
            selector_kinds=sorted({s.kind for s in slots if s.module_id is None}
                                  | {ModuleKind.FOOTER}))
        return slots, versions

    def _selection(self, versions: list[VersionSnapshot]) -> Selection | None:
        return Selection(
            self.slots, versions, locale=self.locale, version_errors=self.version_errors,
            where=f"{self.jurisdiction_code}/{self.channel}/{self.locale}",
            ranker=ranking.ranker_for(self.slots, journey_id=self.journey_id,
                                      brand_id=self.brand_id))

    def is_current(self) -> bool:
        """Whether the versions read are still in the state read (one query)."""
        rows = ModuleVersion.objects.filter(pk__in=list(self.states)).values_list(
            "id", "state", "expires_at")
        return {i: (s, e) for i, s, e in rows} == self.states

    # Checks -----------------------------------------------------------------------------

    def recipient_errors(self, recipient: Mapping) -> list[AssemblyError]:
        """Consent and the unsubscribe link, then whether the step runs in this channel and
        market and has its footer."""
        errors = rules.consent_errors(recipient, self.channel)
        errors += rules.unsubscribe_errors(recipient, self.channel)
        if self.step_errors:
            errors += self.step_errors
        if self.footer_errors:
            errors += self.footer_errors
        return errors

    def version_errors(self, v: VersionSnapshot) -> list[AssemblyError]:
        """Every rule one version breaks in this context (cached per version)."""
        errors = self._version_errors.get(v.id)
        if errors is None:
            errors = self._version_errors[v.id] = (
                rules.integrity_errors(v) or rules.version_errors(v, self.target))
        return errors

    # Selection and preparation ----------------------------------------------------------

    def select(self, recipient: Mapping, seen: Iterable = ()) -> tuple[Picks, list[AssemblyError]]:
        """The version for each slot (None when an optional selector finds nothing)."""
        return self.selection.select(recipient, seen)

    def prepared(self, picks: Picks) -> Prepared:
        last = self._last
        if last is not None and last[0] is picks:  # fixed slots: the same list every time
            return last[1]
        key = tuple(v.id if v is not None else None for _, v in picks)
        prep = self._prepared.get(key)
        if prep is None:
            prep = self._prepared[key] = Prepared(self, picks)
        self._last = (picks, prep)
        return prep

    # Assembly ---------------------------------------------------------------------------

    def assemble(self, recipient: Mapping, *, seen: Iterable = ()) -> AssemblyResult:
        """Assemble for one recipient from what this context has read and prepared."""
        if not isinstance(recipient, Mapping):
            recipient = {}
        errors = self.recipient_errors(recipient)
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
            return AssemblyResult(ok=False, errors=errors,
                                  manifest=ranking.annotate(prep.manifest_without_output(), picks))
        html_values, text_values, line_values = {}, {}, {}
        for key, (name, fallback) in prep.keys.items():
            value = values[name]
            if value is None:
                value = fallback
            html_values[key] = escape(value)
            text_values[key] = value
            line_values[key] = value.translate(LINE_BREAKS)
        subject = fill(prep.subject, line_values)
        preheader = fill(prep.preheader, line_values)
        html = fill(prep.html, html_values)
        text = fill(prep.text, text_values)
        manifest = ranking.annotate(dict(prep.manifest), picks)
        manifest["output_sha256"] = output_sha256(subject, html, text)
        manifest["recipient_sha256"] = recipient_sha256(recipient)  # covers unsubscribe_url
        headers = (unsubscribe.headers(values[unsubscribe.FIELD])
                   if unsubscribe.FIELD in prep.keys else {})
        return AssemblyResult(ok=True, subject=subject, html=html, text=text,
                              preheader=preheader, manifest=manifest, headers=headers)


class PinnedStepContext(StepContext):
    """Reproduction of a manifest: `pinned` is the version of every slot (None = the slot
    was left empty), `pinned_footer` the footer version, `now` the manifest's time."""

    def __init__(self, step: Step, *, pinned: list[int | None], pinned_footer: int | None = None,
                 **kwargs):
        self.pinned = list(pinned)
        self.pinned_footer = pinned_footer
        super().__init__(step, **kwargs)

    def _footer(self, versions: list[VersionSnapshot]
                ) -> tuple[VersionSnapshot | None, list[AssemblyError]]:
        """The footer the manifest names (it was checked when the manifest was made)."""
        footer = next((v for v in versions if v.id == self.pinned_footer), None)
        return footer, []

    def _read_slots_and_versions(self, row: StepRow) -> tuple[list[SlotSpec], list[VersionSnapshot]]:
        slots = [SlotSpec(order=i, module_id=None, module_code=None, kind="",
                          stage_ids=frozenset(), specialties=frozenset(), priority=0,
                          required=False) for i in range(len(self.pinned))]
        ids = [i for i in (*self.pinned, self.pinned_footer) if i]
        return slots, snapshot.read_versions_by_id(list(dict.fromkeys(ids)))

    def _selection(self, versions: list[VersionSnapshot]) -> None:
        self._picks = [(s, self.versions.get(i)) for s, i in zip(self.slots, self.pinned, strict=True)]
        return None

    def recipient_errors(self, recipient: Mapping) -> list[AssemblyError]:
        return []  # consent and markets were checked when the manifest was made

    def version_errors(self, v: VersionSnapshot) -> list[AssemblyError]:
        # The rules were checked when the manifest was made (the versions may have expired
        # since); that the content is still what was signed is checked now.
        return rules.integrity_errors(v)

    def select(self, recipient: Mapping, seen: Iterable = ()) -> tuple[Picks, list[AssemblyError]]:
        return self._picks, []
