"""Footnotes: the one rule that numbers the superscripts and orders the reference list.

An author marks a claim with a footnote bound to one of the version's citations; the
editor writes it as `<sup class="footnote cite-REF-ZENHF">1</sup>` (classes survive the
sanitiser, `content.rules`). The number inside is never trusted:

    A reference's number is the order in which its first marker appears in the text;
    references the version cites but no marker names follow, by code.

The same function numbers the markers when a version is saved (so the stored body, its
plain text and the sha256 agree), the reference list of the admin preview and of the review
page (`ordered_references`), and assembly, where a `Numbering` carries on from module to
module so that an email with two claims reads 1, 2 — never 1, 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MARKER_CLASS = "footnote"
CITE_PREFIX = "cite-"
# A marker as the sanitiser writes it (nh3 re-serialises attributes with double quotes).
MARKER_RE = re.compile(
    r'<sup\b(?P<before>[^>]*?)\bclass="(?P<classes>[^"]*)"(?P<after>[^>]*)>(?P<inner>.*?)</sup>',
    re.DOTALL,
)


def marker_html(code: str, number: int | str) -> str:
    """The stored markup of one marker (what the editor writes too)."""
    return f'<sup class="{MARKER_CLASS} {CITE_PREFIX}{code}">{number}</sup>'


def _code_of(classes: str) -> str | None:
    names = classes.split()
    if MARKER_CLASS not in names:
        return None
    return next((n[len(CITE_PREFIX):] for n in names if n.startswith(CITE_PREFIX)
                 and len(n) > len(CITE_PREFIX)), None)


def cited_codes(html: str) -> list[str]:
    """Reference codes the markers of `html` name, in order of first appearance."""
    found: dict[str, None] = {}
    for match in MARKER_RE.finditer(html or ""):
        code = _code_of(match.group("classes"))
        if code:
            found.setdefault(code, None)
    return list(found)


@dataclass
class Numbering:
    """Numbers by first appearance, across every text passed to `apply` in turn."""

    numbers: dict[str, int] = field(default_factory=dict)

    def apply(self, html: str) -> str:
        """`html` with each marker's content replaced by its reference's number."""
        def renumber(match):
            code = _code_of(match.group("classes"))
            if code is None:
                return match.group(0)
            number = self.numbers.setdefault(code, len(self.numbers) + 1)
            return marker_html(code, number)

        return MARKER_RE.sub(renumber, html or "")


def number_footnotes(html: str) -> str:
    """A version's body with its markers numbered by the rule (idempotent)."""
    return Numbering().apply(html)


def ordered_codes(html: str, citation_codes) -> list[str]:
    """All codes in reference-list order: marked ones by first marker, then the rest."""
    marked = cited_codes(html)
    rest = sorted(set(citation_codes) - set(marked))
    return marked + rest


def ordered_references(version) -> list[tuple[int, object]]:
    """(number, Reference) for each citation of `version`, numbered as its superscripts.

    Markers naming a reference the version does not cite are left out here (and refused
    before review by `footnote_errors`)."""
    refs = {ref.code: ref for ref in version.citations.all()}
    codes = ordered_codes(version.body_html, refs)
    return [(i, refs[code]) for i, code in enumerate(codes, start=1) if code in refs]


def footnote_errors(html: str, citation_codes) -> list[str]:
    """Markers naming a reference the version does not cite, each in words."""
    cited = set(citation_codes)
    return [f"The footnote for {code} names a reference this version does not cite: add "
            f"{code} to its references or remove the footnote."
            for code in cited_codes(html) if code not in cited]
