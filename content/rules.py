"""Content rules: HTML sanitising, personalization tokens, module codes, content sha256.

Plain functions, called by the model layer (so the admin, API, shell and tasks all obey
them) and by the workflow before a version goes to review.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import html2text
import nh3
from django.core.exceptions import ValidationError

from .footnotes import footnote_errors, number_footnotes
from .tokens import RECIPIENT_FIELDS, TEMPLATE_SYNTAX_RE, token_errors

# --- HTML sanitising --------------------------------------------------------------------

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "col", "colgroup", "dd",
    "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "i", "img", "li", "ol", "p", "small", "span", "strong", "sub", "sup", "table", "tbody",
    "td", "tfoot", "th", "thead", "tr", "u", "ul",
}
ALLOWED_ATTRIBUTES = {
    "*": {"class", "lang", "title"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align", "scope"},
    "col": {"span"},
    "ol": {"start"},
}
URL_SCHEMES = {"https", "http", "mailto", "tel"}
# Tags whose whole content is dropped, not just the tag.
DROPPED_WITH_CONTENT = {"script", "style", "iframe", "object", "embed", "noscript", "template"}


@dataclass
class SanitiseReport:
    html: str
    removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.removed)

    def message(self) -> str:
        return "Removed from the HTML for safety: " + "; ".join(self.removed) + "."


class _MarkupCensus(HTMLParser):
    """Lists the tags and attributes the sanitiser is going to drop, to tell the author."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.removed: dict[str, None] = {}

    def handle_starttag(self, tag, attrs):
        if tag not in ALLOWED_TAGS:
            self.removed.setdefault(f"<{tag}> element", None)
            return
        allowed = ALLOWED_ATTRIBUTES.get(tag, set()) | ALLOWED_ATTRIBUTES["*"]
        for name, value in attrs:
            if name not in allowed:
                self.removed.setdefault(f"{name} attribute on <{tag}>", None)
            elif name in {"href", "src"} and value and ":" in value.split("/")[0]:
                scheme = value.split(":", 1)[0].strip().lower()
                if scheme not in URL_SCHEMES:
                    self.removed.setdefault(f"{scheme}: link on <{tag}>", None)

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        if tag not in ALLOWED_TAGS:
            self.removed.setdefault(f"<{tag}> element", None)

    def handle_comment(self, data):
        self.removed.setdefault("HTML comment", None)

    # Markup HTML has no place for: browsers (and nh3) read each as a comment and drop it.
    def unknown_decl(self, data):
        kind = "CDATA section" if data.upper().startswith("CDATA[") else f"<![{data[:20]}…]>"
        self.removed.setdefault(kind, None)

    def handle_decl(self, decl):
        self.removed.setdefault(f"<!{decl.split(' ')[0][:20]}> declaration", None)

    def handle_pi(self, data):
        self.removed.setdefault("<?…?> processing instruction", None)


class _VisibleText(HTMLParser):
    """The text a reader sees, whitespace-normalised: what must survive sanitising."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in DROPPED_WITH_CONTENT:
            self._skipping.append(tag)

    def handle_endtag(self, tag):
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()

    def handle_data(self, data):
        if not self._skipping:
            self.parts.append(data)

    @classmethod
    def of(cls, html: str) -> str:
        reader = cls()
        reader.feed(html)
        reader.close()
        return " ".join("".join(reader.parts).split())


class _AttributeTokenFinder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: dict[str, None] = {}

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value and TEMPLATE_SYNTAX_RE.search(value):
                self.found.setdefault(
                    f"Token in the {name} attribute of <{tag}>: personalization tokens may only "
                    "stand in text, not in attributes (a recipient value in a link could become "
                    "a javascript: URL).", None)

    handle_startendtag = handle_starttag


def tokens_in_attributes(html: str) -> list[str]:
    """Tokens placed inside attribute values (href, src, ...), each named in words."""
    finder = _AttributeTokenFinder()
    finder.feed(html or "")
    finder.close()
    return list(finder.found)


def sanitise_html(raw: str) -> SanitiseReport:
    """Clean HTML against the allowlist with nh3 and say what was removed."""
    census = _MarkupCensus()
    census.feed(raw or "")
    census.close()
    cleaned = nh3.clean(
        raw or "",
        tags=ALLOWED_TAGS,
        clean_content_tags=DROPPED_WITH_CONTENT,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    removed = list(census.removed)
    if not removed and _VisibleText.of(cleaned) != _VisibleText.of(raw or ""):
        # The census and the browser-grade parser read the markup differently: whatever it
        # was, the author must hear that their text changed.
        removed.append("markup that browsers would read differently from how it is written "
                       "(the visible text changed; compare the stored body with yours)")
    return SanitiseReport(html=cleaned, removed=removed)


def html_to_text(html: str) -> str:
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    converter.ignore_emphasis = True
    return converter.handle(html or "").strip()


# --- Module codes -----------------------------------------------------------------------

MODULE_CODE_RE = re.compile(r"^[A-Z0-9]+(?:-[A-Z0-9]+)*$")


def validate_module_code(code: str) -> None:
    if not MODULE_CODE_RE.fullmatch(code or ""):
        raise ValidationError(
            {"code": f"{code!r} is not a valid module code: use capital letters, digits and "
                     "dashes, e.g. CZN-EFF-001."}
        )


# --- Versions ---------------------------------------------------------------------------


def prepare_version_content(version) -> None:
    """Sanitise, derive plain text and check tokens before an editable version is saved.

    Raises ValidationError naming every bad token; leaves the sanitiser's report on
    `version.sanitise_report` so the admin can tell the author what was removed.
    """
    report = sanitise_html(version.body_html)
    # Footnote numbers follow the one rule (content.footnotes), whatever the editor sent.
    version.body_html = number_footnotes(report.html)
    version.sanitise_report = report
    if not (version.body_text or "").strip() and version.body_html:
        version.body_text = html_to_text(version.body_html)
    errors: dict[str, list[str]] = {}
    for name in ("subject", "body_html", "body_text"):
        found = token_errors(getattr(version, name))
        if found:
            errors[name] = found
    in_attributes = tokens_in_attributes(version.body_html)
    if in_attributes:
        errors.setdefault("body_html", []).extend(in_attributes)
    fallbacks = version.token_fallbacks or {}
    if not isinstance(fallbacks, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in fallbacks.items()
    ):
        errors["token_fallbacks"] = ['Fallbacks must be an object of text values, e.g. {"first_name": "Doctor"}.']
    else:
        unknown = sorted(set(fallbacks) - set(RECIPIENT_FIELDS))
        if unknown:
            errors["token_fallbacks"] = [f"Fallback for unknown field(s): {', '.join(unknown)}."]
        for value in fallbacks.values():
            if TEMPLATE_SYNTAX_RE.search(value) or "<" in value:
                errors.setdefault("token_fallbacks", []).append(
                    f"Fallback {value!r} must be plain text without markup or tokens."
                )
    if errors:
        raise ValidationError(errors)


@dataclass(frozen=True)
class ReadinessItem:
    """One thing that keeps a version from review, and the form field where it is fixed."""

    field: str
    message: str


def review_readiness(version) -> list[ReadinessItem]:
    """What keeps a saved version from going to review (rules that need its tags), each
    with the field that fixes it (the admin's checklist links there)."""
    problems = []
    module = version.module
    citation_codes = list(version.citations.values_list("code", flat=True)) if version.pk else []
    if module.kind == "claim" and not citation_codes:
        problems.append(ReadinessItem(
            "citations", f"{module.code} is a claim: it must cite at least one reference."))
    problems += [ReadinessItem("body_html", m)
                 for m in footnote_errors(version.body_html, citation_codes)]
    if not version.jurisdictions.exists():
        problems.append(ReadinessItem("jurisdictions",
                                      "Tag at least one jurisdiction (market) the version is for."))
    if not version.channels.exists():
        problems.append(ReadinessItem("channels", "Tag at least one channel."))
    if not version.audiences.exists():
        problems.append(ReadinessItem("audiences", "Tag at least one audience."))
    if module.kind == "image" and version.asset_id is None:
        problems.append(ReadinessItem("asset", "An image module needs an asset."))
    if module.kind != "image" and not (version.body_html or version.subject).strip():
        problems.append(ReadinessItem("body_html", "The version has no content."))
    if module.kind == "footer":
        problems += [ReadinessItem("body_html", m) for m in footer_part_errors(version.body_html)]
        problems += [ReadinessItem("jurisdictions", m) for m in footer_overlap_errors(version)]
    return problems


def review_readiness_errors(version) -> list[str]:
    """What keeps a saved version from going to review, in words (`review_readiness`)."""
    return [item.message for item in review_readiness(version)]


# --- Footers ----------------------------------------------------------------------------

# The parts every footer must hold, each marked by a class on the element that holds it
# (classes survive sanitising; assembly renders the footer as approved, so the parts are
# checked once, here, before MLR sees the version).
FOOTER_PARTS = {
    "adverse-events": "the adverse-event reporting line",
    "postal-address": "the sender's postal address",
}
VOID_TAGS = {"br", "col", "hr", "img"}


class _MarkedText(HTMLParser):
    """The text inside the elements carrying each FOOTER_PARTS class."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text: dict[str, list[str]] = {marker: [] for marker in FOOTER_PARTS}
        self._open: list[set[str]] = []

    def handle_starttag(self, tag, attrs):
        if tag in VOID_TAGS:
            return
        classes = set((dict(attrs).get("class") or "").split())
        self._open.append(classes & set(FOOTER_PARTS))

    def handle_endtag(self, tag):
        if tag not in VOID_TAGS and self._open:
            self._open.pop()

    def handle_data(self, data):
        for markers in self._open:
            for marker in markers:
                self.text[marker].append(data)


def footer_part_errors(html: str) -> list[str]:
    """Each required footer part that is absent or empty, in words for the author."""
    reader = _MarkedText()
    reader.feed(html or "")
    reader.close()
    return [f"A footer must hold {what}: put it in an element with class=\"{marker}\", "
            f'e.g. <p class="{marker}">…</p>.'
            for marker, what in FOOTER_PARTS.items() if not "".join(reader.text[marker]).strip()]


def footer_overlap_errors(version) -> list[str]:
    """A brand has one footer module per market and locale: another footer module of the
    brand approved or in review for one of this version's markets in its locale makes this
    one a second footer (a change is a new version of that module)."""
    if not version.pk:
        return []
    others = (type(version).objects
              .filter(module__brand_id=version.module.brand_id, module__kind="footer",
                      state__in=["approved", "in_review"], locale_id=version.locale_id,
                      jurisdictions__in=version.jurisdictions.all())
              .exclude(module_id=version.module_id)
              .values_list("module__code", "jurisdictions__code").distinct())
    return [f"{code} already is this brand's footer for {market} in this locale: make a new "
            f"version of {code} instead of a second footer module."
            for code, market in sorted(set(others))]


def validate_version(version) -> None:
    """Model-form validation (clean): token rules plus what the sanitiser would do."""
    prepare_version_content(version)


def compute_sha256(version) -> str:
    """The version's sha256 by the one canonical rule (`content.signing_hash`): module
    identity, number, locale, texts, asset bytes, fallbacks, validity start, all tags and
    citations, companions and exclusions, so a signature binds the exact version."""
    from .signing_hash import SignedTags, canonical_sha256

    tags = None
    if version.pk:
        tags = SignedTags(
            audiences=version.audiences.values_list("code", flat=True),
            specialties=version.specialties.values_list("code", flat=True),
            stages=[f"{a}:{s}" for a, s in version.stages.values_list("audience__code", "code")],
            jurisdictions=version.jurisdictions.values_list("code", flat=True),
            channels=version.channels.values_list("code", flat=True),
            citations=[f"{c}:{t}" for c, t in version.citations.values_list("code", "citation")],
            requires=version.requires.values_list("code", flat=True),
            excludes=version.excludes.values_list("code", flat=True),
        )
    return canonical_sha256(
        module=version.module.code if version.module_id else None, number=version.number,
        locale=version.locale.code if version.locale_id else None, subject=version.subject,
        body_html=version.body_html, body_text=version.body_text,
        asset=version.asset.content_sha256 if version.asset_id else None,
        token_fallbacks=version.token_fallbacks, valid_from=version.valid_from, tags=tags)
