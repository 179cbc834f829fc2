"""Rendered word diffs (approvals/diffs.py) on the review page: against the last approved
version and against the previous round, block by block, labelled "v2 · round 3"."""

import pytest
from django.test import Client
from django.urls import reverse

from approvals import diffs, services
from tests.factories import ReferenceFactory, UserFactory, VersionFactory

from .helpers import approve_all, sign

pytestmark = pytest.mark.django_db


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def section(body: str, element_id: str) -> str:
    return body.split(f'id="{element_id}"', 1)[1].split('<div class="diff-compare"', 1)[0]


@pytest.fixture
def author():
    return UserFactory(username="author-diff", first_name="Ana", last_name="Author")


def test_word_diff_is_on_words_of_the_rendered_text():
    old = diffs.Snapshot(label="v1 · approved", sha256="a",
                         body_html="<p>Reduces risk by 26% on top of standard therapy.</p>")
    new = diffs.Snapshot(label="v2 · round 1", sha256="b",
                         body_html="<p>Reduces risk by 26% when added to standard therapy.</p>")
    cmp = diffs.compare(old, new)
    body = next(b for b in cmp.blocks if b.key == "body")
    assert body.changed and cmp.changed
    assert "<del>on top of" in body.html and "<ins>when added to" in body.html
    assert "<p>Reduces risk by 26% <" in body.html  # unchanged words stay whole
    # Never split mid-word (difflib on HTML source did): changes start and end at spaces.
    assert "26<" not in body.html and ">%" not in body.html
    assert not next(b for b in cmp.blocks if b.key == "subject").changed


def test_diff_output_is_sanitised():
    old = diffs.Snapshot(label="a", sha256="a", references=("R1: Smith",))
    new = diffs.Snapshot(label="b", sha256="b", references=("R1: <script>alert(1)</script>",))
    html = next(b for b in diffs.compare(old, new).blocks if b.key == "references").html
    assert "<script" not in html and "&lt;script&gt;" in html


def test_review_page_shows_diff_against_last_approved(reviewers, author):
    first = VersionFactory(body_html="<p>Old claim text for doctors.</p>", module__owner=author,
                           created_by=author)
    first.citations.add(ReferenceFactory(brand=first.module.brand, citation="Smith J. 2024."))
    services.submit_for_review(version=first, actor=author)
    approve_all(first, reviewers)
    second = first.module.new_version(author=author)
    second.body_html = "<p>New claim text for doctors.</p>"
    second.body_text = ""
    second.save()
    second.citations.add(ReferenceFactory(brand=first.module.brand, citation="Jones K. 2025."))
    services.submit_for_review(version=second, actor=author)

    body = logged_in(reviewers["medical"]).get(
        reverse("approvals:review", args=[second.pk])).content.decode()
    approved = section(body, "diff-approved")
    assert 'data-from="v1 · approved"' in body and 'data-to="v2 · round 1"' in body
    assert "<del>Old</del>" in approved and "<ins>New</ins>" in approved
    assert "claim text for doctors." in approved
    assert 'data-block="references"' in approved and "<ins>" in approved.split(
        'data-block="references"')[1]
    assert 'data-block="subject"' not in approved  # unchanged blocks are folded
    assert "diff_chg" not in body  # no difflib table any more


def test_resubmission_shows_round_to_round_diff(reviewers, author):
    version = VersionFactory(body_html="<p>Lowers LDL by 40 percent.</p>", module__owner=author,
                             created_by=author)
    services.submit_for_review(version=version, actor=author)
    sign(version, reviewers["medical"], "medical", "request_changes", comment="Say 38 percent")
    version.refresh_from_db()
    if version.state == "in_review":  # parallel rounds: the others decide too
        sign(version, reviewers["legal"], "legal")
        sign(version, reviewers["regulatory"], "regulatory")
        version.refresh_from_db()
    assert version.state == "changes_requested"
    version.body_html = "<p>Lowers LDL by 38 percent.</p>"
    version.body_text = ""
    version._history_user = author
    version.save()
    services.submit_for_review(version=version, actor=author)
    version.refresh_from_db()

    body = logged_in(reviewers["legal"]).get(
        reverse("approvals:review", args=[version.pk])).content.decode()
    rnd = section(body, "diff-round")
    assert 'data-from="v1 · round 1" data-to="v1 · round 2"' in body
    assert "<del>40" in rnd and "<ins>38" in rnd
    assert "diff-approved" not in body  # nothing approved yet


def test_first_submission_has_nothing_to_compare(submitted, reviewers):
    body = logged_in(reviewers["medical"]).get(
        reverse("approvals:review", args=[submitted.pk])).content.decode()
    assert "this is new content; review all of it" in body


def test_tags_companions_and_image_are_compared_as_blocks():
    old = diffs.Snapshot(label="v1 · approved", sha256="a",
                         tags=(("Markets", ("DE",)), ("Channels", ("Email",))),
                         companions=("CZN-ISI-001 — ISI",),
                         image=diffs.Image(url="/media/a.png", alt="Chart", sha256="1"))
    new = diffs.Snapshot(label="v2 · round 1", sha256="b",
                         tags=(("Markets", ("DE", "US")), ("Channels", ("Email",))),
                         companions=("CZN-ISI-001 — ISI", "CZN-ISI-002 — ISI US"),
                         image=diffs.Image(url="/media/b.png", alt="Chart", sha256="2"))
    cmp = diffs.compare(old, new)
    blocks = {b.key: b for b in cmp.blocks}
    assert blocks["tags"].changed and "<ins>" in blocks["tags"].html
    assert "US" in blocks["tags"].html.split("<ins>")[1]
    assert blocks["companions"].changed and "CZN-ISI-002" in blocks["companions"].html
    assert not blocks["references"].changed and not blocks["subject"].changed
    assert cmp.image_changed and cmp.changed
    same = diffs.compare(old, old)
    assert not same.changed and not same.changed_blocks
