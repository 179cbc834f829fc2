"""Rendered, word-level diffs of module versions for the reviewer screens.

A version is compared block by block — subject, body (as the reader sees it, tokens filled
for the sample recipient), references, companions, exclusions, tags and the image — with
lxml's `htmldiff` (words, never half-words; markup kept), against two baselines:

- the **last approved** version of the module (what is live, or was);
- the **previous round**: the content reviewers saw at the round before this one (the same
  version's earlier round, read back from its field history at that round's sha256, or
  the previous version's last round).

Labels say which content is which: "v2 · round 3", "v1 · approved".
The output is sanitised again with nh3 (only the usual inline/block tags plus ins/del).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

import nh3
from lxml import html as lxml_html
from lxml.html.diff import htmldiff

from content.models import ModuleVersion, VersionState
from content.preview import render_module_html, render_module_text

from .workflow import round_label

TAG_FIELDS = (
    ("audiences", "Audiences"), ("specialties", "Specialties"), ("stages", "Stages"),
    ("jurisdictions", "Markets"), ("channels", "Channels"),
)


@dataclass(frozen=True)
class Image:
    url: str
    alt: str
    sha256: str


@dataclass(frozen=True)
class Snapshot:
    """What reviewers see of one version at one moment (live, or at a round's sha256)."""

    label: str
    sha256: str
    subject: str = ""
    body_html: str = ""
    text: str = ""  # the plain-text version (multipart emails, SMS)
    references: tuple[str, ...] = ()
    companions: tuple[str, ...] = ()
    exclusions: tuple[str, ...] = ()
    tags: tuple[tuple[str, tuple[str, ...]], ...] = ()
    locale: str = ""
    valid_from: str = ""
    image: Image | None = None


@dataclass(frozen=True)
class BlockDiff:
    key: str
    label: str
    html: str  # sanitised markup with <ins>/<del>
    changed: bool


@dataclass(frozen=True)
class Comparison:
    old: Snapshot
    new: Snapshot
    blocks: tuple[BlockDiff, ...] = field(default_factory=tuple)

    @property
    def changed(self) -> bool:
        return any(b.changed for b in self.blocks) or self.image_changed

    @property
    def image_changed(self) -> bool:
        old, new = self.old.image, self.new.image
        return (old.sha256 if old else None) != (new.sha256 if new else None)

    @property
    def changed_blocks(self) -> list[BlockDiff]:
        return [b for b in self.blocks if b.changed]


# --- labels ------------------------------------------------------------------------------


def label(version, round_number: int | None = None, *, approved: bool = False) -> str:
    """"v2 · round 3", "v1 · approved", "v3 · draft"."""
    if approved:
        return f"v{version.number} · approved"
    if round_number:
        return round_label(version.number, round_number)
    return f"v{version.number} · {VersionState(version.state).label.lower()}"


# --- snapshots ---------------------------------------------------------------------------


def _image(asset) -> Image | None:
    if asset is None or not asset.image:
        return None
    path = (asset.renditions or {}).get("thumbnail")
    url = asset.image.storage.url(path) if path else asset.image.url
    return Image(url=url, alt=asset.alt_text, sha256=asset.content_sha256)


def _rendered_body(version) -> str:
    """The body as the reader sees it, without the module image (shown in its own block)."""
    rendered = render_module_html(version)
    if not version.asset_id or not rendered.strip():
        return rendered
    root = lxml_html.fragment_fromstring(rendered, create_parent="div")
    first = root[0] if len(root) else None
    if first is not None and first.tag == "img":
        tail = first.tail or ""
        root.remove(first)
        root.text = (root.text or "") + tail
    inner = (root.text and escape(root.text)) or ""
    return inner + "".join(lxml_html.tostring(child, encoding="unicode") for child in root)


def _module_line(module) -> str:
    return f"{module.code} — {module.title}"


def _reference_line(reference) -> str:
    return f"{reference.code}: {reference.citation}"


def _stage_line(stage) -> str:
    return f"{stage.audience.code}: {stage.name}" if getattr(stage, "audience_id", None) else stage.name


def _term_line(name: str, obj) -> str:
    if name == "stages":
        return _stage_line(obj)
    if name == "jurisdictions":
        return obj.code
    return getattr(obj, "name", None) or str(obj)


def snapshot_of(version: ModuleVersion, label_text: str | None = None) -> Snapshot:
    """The live content of `version`."""
    return Snapshot(
        label=label_text or label(version),
        sha256=version.sha256,
        subject=version.subject or "",
        body_html=_rendered_body(version),
        text=render_module_text(version),
        references=tuple(sorted(_reference_line(r) for r in version.citations.all())),
        companions=tuple(sorted(_module_line(m) for m in version.requires.all())),
        exclusions=tuple(sorted(_module_line(m) for m in version.excludes.all())),
        tags=tuple((title, tuple(sorted(_term_line(name, o) for o in getattr(version, name).all())))
                   for name, title in TAG_FIELDS),
        locale=version.locale.code if version.locale_id else "",
        valid_from=version.valid_from.date().isoformat() if version.valid_from else "",
        image=_image(version.asset) if version.asset_id else None,
    )


def _historical_record(version_id: int, sha256: str):
    """The newest field-history record of the version carrying `sha256` (its content then)."""
    return (ModuleVersion.history.filter(id=version_id, sha256=sha256)
            .order_by("-history_date", "-history_id").first())


def _historical_m2m(record, name: str) -> list:
    """The related objects the record's many-to-many snapshot held for field `name`."""
    through = getattr(type(record), name).model
    target = ModuleVersion._meta.get_field(name).related_model
    fk_name = next(f.attname for f in through._meta.fields
                   if f.is_relation and f.related_model is target)
    ids = list(through.objects.filter(history_id=record.history_id).values_list(fk_name, flat=True))
    manager = target.objects
    if name == "stages":
        manager = manager.select_related("audience")
    return list(manager.filter(pk__in=ids))


def snapshot_at(version: ModuleVersion, sha256: str, label_text: str) -> Snapshot:
    """The version's content when its sha256 was `sha256`, from its field history; the live
    content when the version still carries that sha256 (or no record is found)."""
    if version.sha256 == sha256:
        return snapshot_of(version, label_text)
    record = _historical_record(version.pk, sha256)
    if record is None:
        return snapshot_of(version, label_text)
    then = record.instance  # a ModuleVersion with the fields of that moment
    then.module = version.module
    return Snapshot(
        label=label_text,
        sha256=sha256,
        subject=then.subject or "",
        body_html=_rendered_body(then),
        text=render_module_text(then),
        references=tuple(sorted(_reference_line(r) for r in _historical_m2m(record, "citations"))),
        companions=tuple(sorted(_module_line(m) for m in _historical_m2m(record, "requires"))),
        exclusions=tuple(sorted(_module_line(m) for m in _historical_m2m(record, "excludes"))),
        tags=tuple((title, tuple(sorted(_term_line(name, o) for o in _historical_m2m(record, name))))
                   for name, title in TAG_FIELDS),
        locale=then.locale.code if then.locale_id else "",
        valid_from=then.valid_from.date().isoformat() if then.valid_from else "",
        image=_image(then.asset) if then.asset_id else None,
    )


# --- baselines ---------------------------------------------------------------------------


def rounds_in_order(module_id: int) -> list:
    """Every review round of the module's versions, oldest first (version, then round)."""
    from .models import ReviewRound

    return list(ReviewRound.objects.filter(version__module_id=module_id)
                .select_related("version").order_by("version__number", "number"))


def current_round(version, rounds: list | None = None):
    rounds = rounds if rounds is not None else rounds_in_order(version.module_id)
    mine = [r for r in rounds if r.version_id == version.pk]
    return mine[-1] if mine else None


def previous_round(version, rounds: list | None = None):
    """The round reviewers saw before the content of `version` now under review: the one
    before its current round when the version is in review, else its newest round (an author
    preparing a resubmission compares against what reviewers last saw)."""
    rounds = rounds if rounds is not None else rounds_in_order(version.module_id)
    mine = current_round(version, rounds)
    if mine is None:
        earlier = [r for r in rounds if r.version.number < version.number]
        return earlier[-1] if earlier else None
    if version.state != VersionState.IN_REVIEW:
        return mine
    index = rounds.index(mine)
    return rounds[index - 1] if index > 0 else None


def last_approved(version) -> ModuleVersion | None:
    """The newest earlier version that was approved (even if since expired or withdrawn)."""
    return (ModuleVersion.objects.filter(module_id=version.module_id, number__lt=version.number,
                                         approved_at__isnull=False)
            .select_related("locale", "asset", "module")
            .prefetch_related("citations", "requires", "excludes", "audiences", "specialties",
                              "stages__audience", "jurisdictions", "channels")
            .order_by("-number").first())


def round_snapshot(round_) -> Snapshot:
    version = (ModuleVersion.objects.select_related("locale", "asset", "module")
               .get(pk=round_.version_id))
    return snapshot_at(version, round_.sha256, label(version, round_.number))


def this_snapshot(version, rounds: list | None = None) -> Snapshot:
    mine = current_round(version, rounds)
    if mine is not None and version.state == VersionState.IN_REVIEW:
        return snapshot_of(version, label(version, mine.number))
    return snapshot_of(version)


# --- the diff ----------------------------------------------------------------------------


def _clean(markup: str) -> str:
    return nh3.clean(markup)


def _word_diff(old_html: str, new_html: str) -> str:
    if old_html == new_html:
        return _clean(new_html)
    if not old_html.strip():
        return _clean(f"<ins>{new_html}</ins>") if new_html.strip() else ""
    if not new_html.strip():
        return _clean(f"<del>{old_html}</del>")
    return _clean(htmldiff(old_html, new_html))


def _text(value: str) -> str:
    return f"<p>{escape(value)}</p>" if value else ""


def _paragraphs(value: str) -> str:
    return "".join(f"<p>{escape(line)}</p>" for line in value.splitlines() if line.strip())


def _list(items) -> str:
    return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>" if items else ""


def _tags(tags) -> str:
    return "<ul>" + "".join(f"<li>{escape(title)}: {escape(', '.join(values) or '—')}</li>"
                            for title, values in tags) + "</ul>"


def compare(old: Snapshot, new: Snapshot) -> Comparison:
    """Block by block word diff of `old` → `new` (both rendered)."""
    def block(key, title, old_markup, new_markup, changed):
        return BlockDiff(key=key, label=title, html=_word_diff(old_markup, new_markup),
                         changed=changed)

    old_meta = (("Locale", (old.locale,)), ("Valid from", (old.valid_from or "—",)))
    new_meta = (("Locale", (new.locale,)), ("Valid from", (new.valid_from or "—",)))
    blocks = (
        block("subject", "Subject", _text(old.subject), _text(new.subject),
              old.subject != new.subject),
        block("body", "Body", old.body_html, new.body_html, old.body_html != new.body_html),
        block("text", "Plain-text version", _paragraphs(old.text), _paragraphs(new.text),
              old.text != new.text),
        block("references", "References", _list(old.references), _list(new.references),
              old.references != new.references),
        block("companions", "Must travel with", _list(old.companions), _list(new.companions),
              old.companions != new.companions),
        block("exclusions", "Never combined with", _list(old.exclusions), _list(new.exclusions),
              old.exclusions != new.exclusions),
        block("tags", "Tags", _tags(old.tags + old_meta), _tags(new.tags + new_meta),
              (old.tags + old_meta) != (new.tags + new_meta)),
    )
    return Comparison(old=old, new=new, blocks=blocks)


@dataclass(frozen=True)
class ReviewDiffs:
    """What the review page shows: this content against each baseline that exists."""

    current: Snapshot
    against_approved: Comparison | None
    against_previous_round: Comparison | None


def for_review(version: ModuleVersion) -> ReviewDiffs:
    rounds = rounds_in_order(version.module_id)
    current = this_snapshot(version, rounds)
    approved = last_approved(version)
    against_approved = (compare(snapshot_of(approved, label(approved, approved=True)), current)
                        if approved is not None else None)
    before = previous_round(version, rounds)
    against_previous = None
    # When the previous round is the approved version itself, one diff says it all.
    if before is not None and not (approved is not None and before.version_id == approved.pk
                                   and before.sha256 == approved.sha256):
        against_previous = compare(round_snapshot(before), current)
    return ReviewDiffs(current=current, against_approved=against_approved,
                       against_previous_round=against_previous)
