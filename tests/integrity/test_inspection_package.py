"""The PDF inspection package of a version: downloads for reviewers and authors of its
brand, opens (pdftoppm renders page 1), and names the three signers; nobody else gets it."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from django.test import Client

from approvals import services
from approvals.roles import REQUIRED_ROLES, role_group
from content.permissions import grant_author_brand
from tests.approvals.helpers import approve_all
from tests.factories import ModuleFactory, ReferenceFactory, UserFactory, VersionFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not (shutil.which("pdftoppm") and shutil.which("pdftotext")),
                       reason="needs poppler-utils (pdftoppm, pdftotext): .ci/run installs it"),
]


@pytest.fixture
def reviewers(db):
    people = {}
    for role in REQUIRED_ROLES:
        user = UserFactory(username=f"insp-{role}", first_name=role.title(),
                           last_name="Inspectable")
        user.groups.add(role_group(role))
        people[role] = user
    return people


@pytest.fixture
def approved(reviewers):
    """A demo-like claim: cited, tagged, commented, approved by all three roles."""
    version = VersionFactory(module__code="CZN-EFF-009", module__kind="claim",
                             body_html="<p>Cut hospitalisations by 27% in {{ recipient.specialty }}.</p>")
    version.citations.add(ReferenceFactory(brand=version.module.brand, code="REF-77",
                                           citation="Doe J et al. Heart Journal 2024;1:1-9."))
    # A US promotional claim travels with its brand's ISI (fair balance, a market rule).
    version.requires.add(ModuleFactory(code="CZN-ISI-US", kind="isi", brand=version.module.brand))
    version.refresh_sha256()
    services.submit_for_review(version=version, actor=version.created_by)
    services.add_comment(version=version, actor=reviewers["legal"],
                         body="Claim wording checked against the label.", anchor="body")
    return approve_all(version, reviewers)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def pdf_of(client, version):
    return client.get(f"/review/v/{version.pk}/inspection.pdf")


def test_the_package_downloads_opens_and_names_the_three_signers(approved, reviewers, tmp_path):
    response = pdf_of(logged_in(reviewers["medical"]), approved)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="CZN-EFF-009-v1-inspection.pdf"'
    pdf = tmp_path / "package.pdf"
    pdf.write_bytes(response.content)

    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(pdf),
                    str(tmp_path / "page")], check=True, timeout=60)
    pages = list(tmp_path.glob("page*.png"))
    assert len(pages) == 1 and pages[0].read_bytes().startswith(b"\x89PNG")

    text = subprocess.run(["pdftotext", str(pdf), "-"], check=True, timeout=60,
                          capture_output=True, text=True).stdout
    text = " ".join(text.split())  # table cells wrap lines
    for user in reviewers.values():
        assert f"{user.get_full_name()} ({user.username})" in text  # the printed name
    for expected in ("Approved", "REF-77", "Claim wording checked against the label.",
                     "Cut hospitalisations by 27% in Cardiology", "submitted", "approved",
                     approved.sha256[:32], "matches the signed sha256", " UTC",
                     "CZN-ISI-US"):
        assert expected in text, expected


def test_authors_of_the_brand_get_it_authors_of_another_brand_do_not(approved):
    own = UserFactory(is_staff=True)
    grant_author_brand(own, approved.module.brand)
    other_brand_version = VersionFactory()
    stranger = UserFactory(is_staff=True)
    grant_author_brand(stranger, other_brand_version.module.brand)

    assert pdf_of(logged_in(own), approved).status_code == 200
    assert pdf_of(logged_in(stranger), approved).status_code in (403, 404)
    assert pdf_of(logged_in(UserFactory()), approved).status_code in (403, 404)
    assert pdf_of(Client(), approved).status_code == 302  # to the login page


def test_the_review_page_and_the_admin_link_it(approved, reviewers):
    url = f"/review/v/{approved.pk}/inspection.pdf"
    assert url in logged_in(reviewers["legal"]).get(f"/review/v/{approved.pk}/").content.decode()
    admin = UserFactory(is_staff=True, is_superuser=True)
    page = logged_in(admin).get(f"/admin/content/moduleversion/{approved.pk}/change/")
    assert page.status_code == 200
    assert url in page.content.decode()
