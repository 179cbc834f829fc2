"""Rendering a combination of versions once: layout, inlined CSS, plain text, compiled tokens.

Module bodies are never evaluated as templates. Each allowlisted token is turned into a
private-use placeholder before the layout is rendered (so neither Django nor css-inline
can see or change it) and the rendered page is split on those placeholders into a
`content.tokens.CompiledText`; `content.tokens.fill` then joins the literal parts with the
recipient's escaped values. Whatever a recipient field contains stays inert text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from html import escape
from pathlib import Path

import css_inline
from django.conf import settings
from django.template.loader import get_template
from django.utils.safestring import mark_safe

from content.assets import DeliveredImage, delivered_images
from content.footnotes import Numbering
from content.models import ModuleKind
from content.tokens import TOKEN_RE, CompiledText

from .. import unsubscribe
from ..models import Layout
from . import cache
from .snapshot import VersionSnapshot

LAYOUT_TEMPLATES = {
    Layout.EMAIL: ("email/base.html", "email/base.txt"),
    Layout.PORTAL: ("portal/page.html", "email/base.txt"),
}
# Kinds that are not part of the body: they fill the subject line and the preheader.
HEADER_KINDS = frozenset({ModuleKind.SUBJECT, ModuleKind.PREHEADER})

# Placeholders from Unicode's private-use area: they survive Django rendering and
# css-inline unchanged and never occur in sanitised content (we strip them from anything
# that is not a token, so no text can forge one).
PH_OPEN, PH_CLOSE = "\ue000", "\ue001"
PH_RE = re.compile(f"{PH_OPEN}([^{PH_CLOSE}]*){PH_CLOSE}")
PH_CHARS = {ord(PH_OPEN): None, ord(PH_CLOSE): None}
# Control characters a header line (subject) must not carry.
LINE_BREAKS = {i: " " for i in (*range(0, 32), 127)}

_inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


@dataclass(frozen=True)
class Page:
    """Where the versions are rendered: everything besides them the bytes depend on."""

    layout: str
    layout_sha256: str
    locale: str
    jurisdiction: str
    year: int
    brand_name: str
    unsubscribe: bool = False  # an email: the footer carries the reader's unsubscribe link
    # Set by `render`: each version's delivered image, as (version id, image) pairs, and
    # the base URL their `src`s are absolute on.
    images: tuple = ()
    public_base_url: str = ""


@dataclass(frozen=True)
class Rendered:
    """The compiled outputs and, per placeholder key, (recipient field, fallback)."""

    html: CompiledText
    text: CompiledText
    subject: CompiledText
    preheader: CompiledText
    keys: dict[str, tuple[str, str | None]]


def layout_fingerprint(layout: str) -> dict:
    """Name and sha256 of the layout's template sources (re-hashed when a file changes)."""
    names = LAYOUT_TEMPLATES[layout]
    paths = []
    for name in names:
        template = get_template(name)
        origin = getattr(getattr(template, "template", template), "origin", None)
        paths.append(Path(origin.name) if origin and origin.name else None)
    key = (layout, tuple(p.stat().st_mtime_ns if p else 0 for p in paths))
    info = cache.LAYOUT_FINGERPRINTS.get(key)
    if info is None:
        digest = hashlib.sha256()
        for name, path in zip(names, paths, strict=True):
            source = path.read_bytes() if path else name.encode()
            digest.update(name.encode() + b"\0" + source + b"\0")
        info = {"name": layout, "templates": list(names), "sha256": digest.hexdigest()}
        cache.LAYOUT_FINGERPRINTS.put(key, info)
    return info


def render(versions: list[VersionSnapshot], page: Page,
           footer: VersionSnapshot | None = None) -> Rendered:
    """The versions in the page with the footer, from the process cache when rendered
    before (approved versions are immutable, and the key holds every other input)."""
    page = replace(page, images=tuple(images_of([*versions, *([footer] if footer else [])])
                                      .items()),
                   public_base_url=settings.TESSERA_PUBLIC_BASE_URL)
    key = (page.layout, page.layout_sha256, page.locale, page.jurisdiction, page.year,
           page.brand_name, page.unsubscribe, page.images, page.public_base_url,
           tuple((v.id, v.sha256, v.created_at, v.code, v.kind, v.number) for v in versions),
           (footer.id, footer.sha256, footer.created_at) if footer else None)
    rendered = cache.RENDERED.get(key)
    if rendered is None:
        rendered = _render(versions, page, footer)
        cache.RENDERED.put(key, rendered)
    return rendered


class _Placeholders:
    """Tokens → private-use placeholders keyed by field and the module's fallback."""

    def __init__(self):
        self.keys: dict[str, tuple[str, str | None]] = {}

    def __call__(self, v: VersionSnapshot, text: str) -> str:
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

        return TOKEN_RE.sub(swap, (text or "").translate(PH_CHARS))

    def unsubscribe_link(self) -> str:
        """The placeholder of the reader's unsubscribe link (not a module token: no author
        places it, the layout does, in the footer of every email)."""
        self.keys[unsubscribe.FIELD] = (unsubscribe.FIELD, "")
        return f"{PH_OPEN}{unsubscribe.FIELD}{PH_CLOSE}"


# The unsubscribe link's words, by language (the layout places the link).
UNSUBSCRIBE_LABELS = {"en": "Unsubscribe", "de": "Abmelden", "fr": "Se désabonner"}


def unsubscribe_label(locale: str) -> str:
    return UNSUBSCRIBE_LABELS.get((locale or "en").split("-", 1)[0].lower(),
                                  UNSUBSCRIBE_LABELS["en"])


def _render(versions: list[VersionSnapshot], page: Page,
            footer: VersionSnapshot | None) -> Rendered:
    placeholders = _Placeholders()
    subject_src = next(
        ((v, v.subject or v.body_text) for v in versions
         if v.kind == ModuleKind.SUBJECT and (v.subject or v.body_text)),
        next(((v, v.subject) for v in versions if v.subject), None),
    )
    subject = placeholders(*subject_src) if subject_src else page.brand_name.translate(PH_CHARS)
    subject = " ".join(subject.split())
    preheader_src = next((v for v in versions if v.kind == ModuleKind.PREHEADER), None)
    preheader = (" ".join(placeholders(preheader_src, preheader_src.body_text).split())
                 if preheader_src else "")
    modules = []
    images = dict(page.images)
    numbering = Numbering()  # footnotes numbered across the modules (content.footnotes)
    for v in versions:
        if v.kind in HEADER_KINDS:
            continue
        html = placeholders(v, numbering.apply(v.body_html))
        if v.id in images:
            html = image_html(images[v.id], responsive=page.layout == Layout.PORTAL) + html
        modules.append({
            "code": v.code, "kind": v.kind, "html": mark_safe(html),  # sanitised on save
            "text": placeholders(v, v.body_text).strip(),
        })
    context = {
        "subject": subject, "preheader": preheader, "modules": modules,
        "footer": footer and {
            "code": footer.code, "html": mark_safe(placeholders(footer, footer.body_html)),
            "text": placeholders(footer, footer.body_text).strip()},
        "unsubscribe_url": placeholders.unsubscribe_link() if page.unsubscribe else "",
        "unsubscribe_label": unsubscribe_label(page.locale),
        "brand": page.brand_name.translate(PH_CHARS),
        "lang": page.locale or "en", "year": page.year,
        "jurisdiction": page.jurisdiction, "layout": page.layout,
    }
    html_template, text_template = LAYOUT_TEMPLATES[page.layout]
    html = get_template(html_template).render(context)
    if page.layout == Layout.EMAIL:
        html = _inliner.inline(html)
    text = get_template(text_template).render(context)
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    return Rendered(html=compile_placeholders(html), text=compile_placeholders(text),
                    subject=compile_placeholders(subject),
                    preheader=compile_placeholders(preheader), keys=placeholders.keys)


def images_of(versions: list[VersionSnapshot]) -> dict[int, DeliveredImage]:
    """The delivered image of each version that has one (`content.assets`)."""
    with_image = [v for v in versions if v.image]
    return delivered_images(with_image) if with_image else {}


def image_html(image: DeliveredImage, *, responsive: bool) -> str:
    """The `<img>` of a module: absolute `src` (the 600 px rendition), its `width` and
    `height`, the asset's alt text; on responsive pages the renditions as `srcset`."""
    attrs = (f'src="{escape(image.url(image.email))}" alt="{escape(image.alt)}" '
             f'width="{image.width}" height="{image.height}"')
    if responsive and image.srcset:
        srcset = ", ".join(f"{image.url(f)} {f.width}w" for f in image.srcset)
        attrs += (f' srcset="{escape(srcset)}" '
                  f'sizes="(max-width: {image.width}px) 100vw, {image.width}px"')
    return f'<img {attrs} class="module-image">'


def image_manifest(versions: list[VersionSnapshot], layout: str) -> list[dict]:
    """Per image a message links: the module, the asset's sha256 (signed with the version)
    and every file linked with its absolute URL and sha256."""
    images = images_of(versions)
    return [
        {"module": v.code, "version_id": v.id, "asset_sha256": image.asset_sha256,
         "files": [f.manifest_entry(image.asset_sha256)
                   for f in image.files(responsive=layout == Layout.PORTAL)]}
        for v in versions if v.id in images for image in (images[v.id],)
    ]


def compile_placeholders(text: str) -> CompiledText:
    return CompiledText(tuple(PH_RE.split(text)))
