"""Reviewer screens (issue 13) through the Django test client: the inbox's filters, sort,
search and paging; the approved list with expiry filters; a decision with no default;
anchored annotations (create, list, resolve, the signing panel's blocking list); links to
the admin and journeys."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from approvals import services
from approvals.models import Annotation, ReviewRound, Signature
from tests.factories import BrandFactory, UserFactory, VersionFactory

from .helpers import PASSWORD, approve_all

pytestmark = pytest.mark.django_db


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def submit(version):
    services.submit_for_review(version=version, actor=version.created_by)
    return version


def codes_in(body: str, table_id: str) -> list[str]:
    if f'id="{table_id}"' not in body:
        return []
    table = body.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    import re

    return re.findall(r'<a href="/review/v/\d+/">([A-Z0-9-]+)</a>', table)


@pytest.fixture
def queue(reviewers):
    """Three versions in review: two brands, different due dates, one overdue."""
    alpha, beta = BrandFactory(name="Alphacor"), BrandFactory(name="Betazen")
    first = submit(VersionFactory(module__brand=alpha, module__code="ALP-EFF-001",
                                  module__title="Alpha efficacy"))
    second = submit(VersionFactory(module__brand=alpha, module__code="ALP-SAF-002",
                                   module__title="Alpha safety"))
    third = submit(VersionFactory(module__brand=beta, module__code="BET-EFF-003",
                                  module__title="Beta efficacy"))
    now = timezone.now()
    # Due dates set directly on the rounds (the clock is H13a's policy; the screen reads it).
    ReviewRound.objects.filter(version=first).update(due_at=now - timedelta(days=1),
                                                     submitted_at=now - timedelta(days=6))
    ReviewRound.objects.filter(version=second).update(due_at=now + timedelta(days=2),
                                                      submitted_at=now - timedelta(days=3))
    ReviewRound.objects.filter(version=third).update(due_at=now + timedelta(days=6),
                                                     submitted_at=now - timedelta(days=1))
    return {"first": first, "second": second, "third": third, "alpha": alpha, "beta": beta}


def inbox(client, **params):
    response = client.get(reverse("approvals:inbox"), params)
    assert response.status_code == 200
    return response.content.decode()


def test_inbox_default_is_soonest_due_first_with_an_overdue_badge(queue, reviewers):
    body = inbox(logged_in(reviewers["medical"]))
    assert codes_in(body, "inbox-mine") == ["ALP-EFF-001", "ALP-SAF-002", "BET-EFF-003"]
    mine = body.split('id="inbox-mine"')[1].split("</table>")[0]
    first_row = mine.split("<tr")[2]
    assert "ALP-EFF-001" in first_row and "Overdue" in first_row
    assert "Overdue" not in mine.split("<tr")[3]


def test_inbox_filters_by_brand(queue, reviewers):
    body = inbox(logged_in(reviewers["medical"]), brand=queue["beta"].pk)
    assert codes_in(body, "inbox-mine") == ["BET-EFF-003"]
    assert codes_in(body, "inbox-all") == ["BET-EFF-003"]


def test_inbox_filters_by_role_still_to_decide(queue, reviewers):
    from .helpers import sign

    sign(queue["second"], reviewers["legal"], "legal")  # legal decided ALP-SAF-002
    body = inbox(logged_in(reviewers["medical"]), role="legal")
    assert codes_in(body, "inbox-all") == ["ALP-EFF-001", "BET-EFF-003"]
    body = inbox(logged_in(reviewers["medical"]), role="medical")
    assert codes_in(body, "inbox-all") == ["ALP-EFF-001", "ALP-SAF-002", "BET-EFF-003"]


def test_inbox_filters_by_due_and_overdue(queue, reviewers):
    client = logged_in(reviewers["medical"])
    assert codes_in(inbox(client, overdue="on"), "inbox-mine") == ["ALP-EFF-001"]
    assert codes_in(inbox(client, due="today"), "inbox-mine") == ["ALP-EFF-001"]
    assert codes_in(inbox(client, due="3"), "inbox-mine") == ["ALP-EFF-001", "ALP-SAF-002"]
    assert codes_in(inbox(client, due="7"), "inbox-mine") == [
        "ALP-EFF-001", "ALP-SAF-002", "BET-EFF-003"]


def test_inbox_search_by_code_or_title(queue, reviewers):
    client = logged_in(reviewers["medical"])
    assert codes_in(inbox(client, q="saf-002"), "inbox-mine") == ["ALP-SAF-002"]
    assert codes_in(inbox(client, q="gamma"), "inbox-mine") == []
    assert codes_in(inbox(client, q="Beta efficacy"), "inbox-mine") == ["BET-EFF-003"]
    assert codes_in(inbox(client, q="efficacy"), "inbox-mine") == ["ALP-EFF-001", "BET-EFF-003"]


@pytest.mark.parametrize("sort, expected", [
    ("-due", ["BET-EFF-003", "ALP-SAF-002", "ALP-EFF-001"]),
    ("submitted", ["ALP-EFF-001", "ALP-SAF-002", "BET-EFF-003"]),
    ("-submitted", ["BET-EFF-003", "ALP-SAF-002", "ALP-EFF-001"]),
    ("code", ["ALP-EFF-001", "ALP-SAF-002", "BET-EFF-003"]),
    ("brand", ["ALP-EFF-001", "ALP-SAF-002", "BET-EFF-003"]),
])
def test_inbox_sorts(queue, reviewers, sort, expected):
    assert codes_in(inbox(logged_in(reviewers["medical"]), sort=sort), "inbox-mine") == expected


def test_inbox_ignores_junk_filters(queue, reviewers):
    body = inbox(logged_in(reviewers["medical"]), sort="drop table", due="x", brand="abc",
                 page="999", mine_page="-1")
    assert len(codes_in(body, "inbox-mine")) == 3
    # A junk value drops that filter only.
    body = inbox(logged_in(reviewers["medical"]), due="x", q="BET")
    assert codes_in(body, "inbox-mine") == ["BET-EFF-003"]


def test_inbox_pages_25_at_a_time_keeping_the_filters(reviewers, settings):
    brand = BrandFactory(name="Pagina")
    for n in range(27):
        submit(VersionFactory(module__brand=brand, module__code=f"PAG-{n:03d}"))
    client = logged_in(reviewers["legal"])
    first = inbox(client, brand=brand.pk, sort="code")
    assert len(codes_in(first, "inbox-mine")) == 25
    assert "Page 1 of 2" in first
    assert f"brand={brand.pk}&amp;sort=code&amp;mine_page=2" in first
    second = inbox(client, brand=brand.pk, sort="code", mine_page=2)
    assert codes_in(second, "inbox-mine") == ["PAG-025", "PAG-026"]


def test_approved_list_is_its_own_page_with_expiry_filters(reviewers):
    now = timezone.now()
    versions = {}
    for code, days in (("EXP-030", 20), ("EXP-060", 50), ("EXP-090", 80), ("EXP-400", 400)):
        version = submit(VersionFactory(module__code=code))
        approve_all(version, reviewers)
        version.expires_at = now + timedelta(days=days)
        version.save(update_fields=["expires_at"])
        versions[code] = version
    client = logged_in(reviewers["medical"])
    assert "EXP-030" not in inbox(client)  # the inbox lists reviews, not approved content

    def listed(**params):
        response = client.get(reverse("approvals:approved"), params)
        assert response.status_code == 200
        return codes_in(response.content.decode(), "approved-list")

    assert listed() == ["EXP-030", "EXP-060", "EXP-090", "EXP-400"]
    assert listed(expires="30") == ["EXP-030"]
    assert listed(expires="60") == ["EXP-030", "EXP-060"]
    assert listed(expires="90") == ["EXP-030", "EXP-060", "EXP-090"]
    assert listed(sort="-expires") == ["EXP-400", "EXP-090", "EXP-060", "EXP-030"]
    assert listed(q="exp-06") == ["EXP-060"]
    assert listed(expires="bogus") == ["EXP-030", "EXP-060", "EXP-090", "EXP-400"]


def test_a_decision_has_no_default_and_must_be_chosen(submitted, reviewers):
    client = logged_in(reviewers["medical"])
    page = client.get(reverse("approvals:review", args=[submitted.pk])).content.decode()
    decision = page.split('id="decision"')[1].split("</form>")[0]
    assert 'value="approve"' in decision and " checked" not in decision
    response = client.post(reverse("approvals:decide", args=[submitted.pk]), {
        "role": "medical", "username": "rev-medical", "password": PASSWORD,
        "expected_sha256": submitted.sha256})
    assert response.status_code == 400
    body = response.content.decode()
    assert 'data-code="unknown_decision"' in body
    assert "Choose Approve or Request changes." in body
    assert not Signature.objects.filter(version=submitted).exists()


def annotate(client, version, **data):
    return client.post(reverse("approvals:annotate", args=[version.pk]), data)


def test_a_reviewer_annotates_selected_text_and_resolves_it(reviewers):
    version = submit(VersionFactory(body_html="<p>Cuts LDL by 40 percent in 12 weeks.</p>"))
    client = logged_in(reviewers["medical"])
    response = annotate(client, version, target="text", exact="40 percent", prefix="Cuts LDL by ",
                        suffix=" in 12 weeks.", block="body", role="medical",
                        body="Source says 38 percent.")
    assert response.status_code == 302
    annotation = Annotation.objects.get(version=version)
    assert annotation.anchor["exact"] == "40 percent" and annotation.role == "medical"

    page = client.get(reverse("approvals:review", args=[version.pk])).content.decode()
    item = page.split(f'id="annotation-{annotation.pk}"')[1].split("</li>")[0]
    assert "<q>40 percent</q>" in item and "Source says 38 percent." in item
    assert "Open" in item and f'id="resolve-{annotation.pk}"' in item
    # The signing panel lists what blocks the approval.
    blocking = page.split('id="blocking-annotations"')[1].split("</div>")[0]
    assert f'href="#annotation-{annotation.pk}"' in blocking

    response = client.post(reverse("approvals:resolve_annotation",
                                   args=[version.pk, annotation.pk]), {"note": "agreed"})
    assert response.status_code == 302
    annotation.refresh_from_db()
    assert annotation.state == "resolved" and annotation.resolution_note == "agreed"
    page = client.get(reverse("approvals:review", args=[version.pk])).content.decode()
    assert 'id="blocking-annotations"' not in page
    assert f'id="reopen-{annotation.pk}"' in page


def test_an_annotation_on_a_reference_and_a_refused_anchor(reviewers):
    from tests.factories import ReferenceFactory

    version = VersionFactory(body_html="<p>Claim text.</p>")
    reference = ReferenceFactory(brand=version.module.brand, citation="Smith J. 2024.")
    version.citations.add(reference)
    submit(version)
    client = logged_in(reviewers["legal"])
    page = client.get(reverse("approvals:review", args=[version.pk])).content.decode()
    assert f'data-target="reference:{reference.pk}"' in page
    assert annotate(client, version, target=f"reference:{reference.pk}", role="legal",
                    body="Is this the label?").status_code == 302
    assert Annotation.objects.get(version=version).kind == "reference"
    # A quote that is not in the text is refused, nothing saved.
    response = annotate(client, version, target="text", exact="not in the text", block="body",
                        role="legal", body="?")
    assert response.status_code == 400 and 'data-code="invalid_anchor"' in response.content.decode()
    assert Annotation.objects.filter(version=version).count() == 1
    # No body: refused with the form's message.
    response = annotate(client, version, target=f"reference:{reference.pk}", role="legal", body="")
    assert response.status_code == 400 and "Write the annotation." in response.content.decode()


def test_an_author_sees_annotations_but_gets_no_annotation_form(reviewers):
    author = UserFactory(username="author-ann")
    version = submit(VersionFactory(module__owner=author, created_by=author,
                                    body_html="<p>Claim text here.</p>"))
    annotate(logged_in(reviewers["medical"]), version, target="text", exact="Claim text",
             block="body", role="medical", body="Reword.")
    from content.permissions import grant_author_brand

    grant_author_brand(author, version.module.brand)
    page = logged_in(author).get(reverse("approvals:review", args=[version.pk])).content.decode()
    assert "Reword." in page and 'id="annotation-form"' not in page


def test_review_page_links_to_the_admin_for_staff(submitted, reviewers):
    staff = reviewers["regulatory"]
    staff.is_staff = True
    staff.save()
    page = logged_in(staff).get(reverse("approvals:review", args=[submitted.pk])).content.decode()
    assert reverse("admin:content_moduleversion_change", args=[submitted.pk]) in page
    assert reverse("admin:content_contentmodule_change", args=[submitted.module_id]) in page
    page = logged_in(reviewers["medical"]).get(
        reverse("approvals:review", args=[submitted.pk])).content.decode()
    assert 'id="admin-version-link"' not in page


def test_history_reads_as_sentences_with_readable_times(reviewers):
    import csv
    import io
    import re

    from .helpers import sign

    author = UserFactory(username="author-h", first_name="Ana", last_name="Author")
    version = submit(VersionFactory(module__owner=author, created_by=author))
    reviewers["medical"].first_name, reviewers["medical"].last_name = "Camille", "Martin"
    reviewers["medical"].save()
    sign(version, reviewers["medical"], "medical", "request_changes", comment="Cite the label")
    client = logged_in(reviewers["legal"])
    page = client.get(reverse("approvals:history", args=[version.module.code])).content.decode()
    assert "Camille Martin (Medical) requested changes on v1 · round 1" in page
    assert "Ana Author submitted v1 · round 1 for MLR review" in page
    timeline = page.split('id="history-timeline"')[1].split("</ol>")[0]
    assert re.search(r">\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} UTC<", timeline)
    assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d{3,6}", page)  # no microseconds anywhere
    assert "round=1" not in page and "meaning=" not in page  # no key=value text

    response = client.get(reverse("approvals:export", args=[version.module.code, "csv"]))
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    header = list(rows[0].keys())
    for column in ("section", "timestamp", "actor", "event", "sentence", "version", "round",
                   "role", "meaning", "sha256", "body", "field", "old_value", "new_value"):
        assert column in header
    assert "detail" not in header
    signed = [r for r in rows if r["section"] == "signature"]
    assert signed[0]["role"] == "medical" and signed[0]["meaning"] == "request_changes"
    assert signed[0]["body"] == "Cite the label" and signed[0]["version"] == "1"
    decided = next(r for r in rows if r["section"] == "audit" and r["event"] == "decided")
    assert decided["sentence"].startswith("Camille Martin (Medical) requested changes on v1")
    assert decided["round"] == "1" and decided["meaning"] == "request_changes"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", decided["timestamp"])
    for row in rows:  # no JSON object stuffed in a cell
        for value in row.values():
            assert not (value or "").startswith("{"), row
    changed = [r for r in rows if r["section"] == "field_history" and r["field"] == "state"]
    assert any(r["new_value"] == "in_review" for r in changed)


def test_review_page_links_to_journeys_that_bind_the_module(submitted, reviewers):
    from content.models import Audience, Channel, Locale
    from content.models import Stage as AudienceStage
    from journeys.models import Journey, Slot, Stage, Step

    audience = Audience.objects.get(code="hcp")
    journey = Journey.objects.create(slug="hf-launch", name="HF launch",
                                     brand=submitted.module.brand, audience=audience,
                                     locale=Locale.objects.get(code="en"))
    audience_stage, _ = AudienceStage.objects.get_or_create(audience=audience, code="aware",
                                                            defaults={"name": "Aware"})
    stage = Stage.objects.create(journey=journey, audience_stage=audience_stage)
    step = Step.objects.create(journey=journey, stage=stage, key="welcome", name="Welcome",
                               channel=Channel.objects.get(code="email"))
    Slot.objects.create(step=step, module=submitted.module)
    page = logged_in(reviewers["medical"]).get(
        reverse("approvals:review", args=[submitted.pk])).content.decode()
    links = page.split('id="related-links"')[1].split("</p>")[0]
    assert reverse("journeys:map", args=["hf-launch"]) in links and "HF launch" in links


def test_review_page_numbers_references_as_the_body_superscripts(reviewers):
    """The reference list follows the footnote markers (content.footnotes), so the
    superscript a reviewer reads and the list's number agree — not database order."""
    from content.footnotes import marker_html
    from tests.factories import ReferenceFactory

    version = VersionFactory(body_html="<p>x</p>")
    brand = version.module.brand
    first_in_db = ReferenceFactory(brand=brand, code="REF-AAA", citation="Alpha 2020.")
    second_in_db = ReferenceFactory(brand=brand, code="REF-ZZZ", citation="Zeta 2021.")
    version.citations.set([first_in_db, second_in_db])
    version.body_html = (f"<p>Claim{marker_html('REF-ZZZ', 1)} and"
                         f" more{marker_html('REF-AAA', 2)}</p>")
    version.save()
    submit(version)
    page = logged_in(reviewers["legal"]).get(
        reverse("approvals:review", args=[version.pk])).content.decode()
    refs = page.split('id="references"', 1)[1].split("</ol>", 1)[0]
    assert refs.index("REF-ZZZ") < refs.index("REF-AAA")
    assert '<li value="1"><strong>REF-ZZZ' in refs and '<li value="2"><strong>REF-AAA' in refs
