"""Footnotes: one numbering rule for the superscripts and the reference list."""

import pytest

from content.footnotes import (
    Numbering,
    cited_codes,
    marker_html,
    number_footnotes,
    ordered_references,
)
from content.rules import review_readiness_errors
from tests.factories import ModuleFactory, ReferenceFactory, VersionFactory


def test_numbers_follow_the_first_appearance_not_what_the_editor_wrote():
    html = (f"<p>A{marker_html('REF-B', 7)} B{marker_html('REF-A', 7)} "
            f"again{marker_html('REF-B', 3)}</p>")
    numbered = number_footnotes(html)
    assert numbered == (f"<p>A{marker_html('REF-B', 1)} B{marker_html('REF-A', 2)} "
                        f"again{marker_html('REF-B', 1)}</p>")
    assert number_footnotes(numbered) == numbered  # idempotent
    assert cited_codes(html) == ["REF-B", "REF-A"]


def test_plain_superscripts_are_left_alone():
    html = "<p>x<sup>2</sup> and E=mc<sup class=\"exp\">2</sup></p>"
    assert number_footnotes(html) == html
    assert cited_codes(html) == []


def test_assembly_numbering_carries_on_across_modules():
    numbering = Numbering()
    first = numbering.apply(f"<p>one{marker_html('REF-A', 1)}</p>")
    second = numbering.apply(f"<p>two{marker_html('REF-C', 1)}{marker_html('REF-A', 9)}</p>")
    assert ">1</sup>" in first
    assert second == f"<p>two{marker_html('REF-C', 2)}{marker_html('REF-A', 1)}</p>"


@pytest.mark.django_db
def test_saved_body_and_reference_list_agree(brand_a, author_a):
    ref_a = ReferenceFactory(brand=brand_a, code="REF-A")
    ref_b = ReferenceFactory(brand=brand_a, code="REF-B")
    ref_c = ReferenceFactory(brand=brand_a, code="REF-C")  # cited, never marked: listed last
    version = VersionFactory(
        module=ModuleFactory(brand=brand_a, owner=author_a, kind="claim"),
        body_html=f"<p>x{marker_html('REF-B', 5)} y{marker_html('REF-A', 5)}</p>")
    version.citations.set([ref_a, ref_b, ref_c])
    version.refresh_from_db()
    assert f"x{marker_html('REF-B', 1)} y{marker_html('REF-A', 2)}" in version.body_html
    assert [(n, r.code) for n, r in ordered_references(version)] == [
        (1, "REF-B"), (2, "REF-A"), (3, "REF-C")]
    assert "x1 y2" in version.body_text.replace(" ", " ")


@pytest.mark.django_db
def test_a_footnote_to_an_uncited_reference_keeps_the_version_from_review(brand_a, author_a):
    ref_a = ReferenceFactory(brand=brand_a, code="REF-A")
    version = VersionFactory(
        module=ModuleFactory(brand=brand_a, owner=author_a, kind="claim"),
        body_html=f"<p>x{marker_html('REF-Z', 1)}</p>")
    version.citations.set([ref_a])
    problems = review_readiness_errors(version)
    assert any("REF-Z" in p and "does not cite" in p for p in problems)


@pytest.mark.django_db
def test_assembled_email_numbers_footnotes_across_modules():
    """Two claims that each say "1" in their own text read 1 and 2 in one email."""
    from journeys.assembly.rendering import Page, layout_fingerprint, render
    from journeys.assembly.snapshot import VersionSnapshot
    from journeys.models import Layout

    def claim(pk, code, ref):
        return VersionSnapshot(
            id=pk, module_id=pk, code=code, kind="claim", purpose="promotional", number=1,
            state="approved", sha256=f"{pk:064d}", locale="en", subject="",
            body_html=f"<p>{code}{marker_html(ref, 1)}</p>", body_text=code,
            token_fallbacks={}, valid_from=None, expires_at=None, approved_at=None,
            withdrawn_at=None, image=None, audiences=frozenset(), jurisdictions=frozenset(),
            channels=frozenset(), stage_ids=frozenset(), specialties=frozenset(), requires=(),
            excludes=(), created_at="t")

    page = Page(layout=Layout.EMAIL, layout_sha256=layout_fingerprint(Layout.EMAIL)["sha256"],
                locale="en", jurisdiction="US", year=2026, brand_name="Alphazen")
    html = "".join(render([claim(901, "ONE", "REF-A"), claim(902, "TWO", "REF-B")], page).html.parts)
    before, after = html.split("<p>TWO")
    assert ">1</sup>" in before and after.startswith(f"{marker_html('REF-B', 2)}</p>")
