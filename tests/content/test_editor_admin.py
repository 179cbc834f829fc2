"""The author's admin (issue 13) through the test client: one page per module, the editor,
scoped autocompletes, the readiness checklist, submit, recall and the reviewers' feedback."""

import json

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from approvals import services
from approvals.models import Meaning
from approvals.signing import Credentials
from content.footnotes import marker_html
from content.models import Audience, ContentModule, Locale, ModuleVersion
from tests.content.conftest import staff_user
from tests.factories import ModuleFactory, ReferenceFactory, VersionFactory, term

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:content_contentmodule_add")
PASSWORD = "correct-horse-battery"


def texts(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def change_url(version):
    return reverse("admin:content_moduleversion_change", args=[version.pk])


def add_form(brand, **version):
    data = {
        "brand": brand.pk, "code": "ALP-EFF-009", "kind": "claim", "purpose": "promotional",
        "title": "Efficacy claim",
        "versions-TOTAL_FORMS": 1, "versions-INITIAL_FORMS": 0, "versions-MIN_NUM_FORMS": 1,
        "versions-MAX_NUM_FORMS": 1,
        "versions-0-locale": term(Locale, "en").pk, "versions-0-subject": "",
        "versions-0-body_html": "<p>Works.</p>",
    }
    data.update({f"versions-0-{k}": v for k, v in version.items()})
    return data


def test_add_page_is_one_page_with_editor_brand_preselected_and_human_labels(client_a, brand_a):
    page = client_a.get(ADD_URL).content.decode()
    assert f'<option value="{brand_a.pk}" selected>' in page  # one-brand author
    assert "data-tessera-editor" in page and 'src="/static/content/editor.js"' in page
    assert 'type="module"' in page
    assert "versions-0-body_html" in page and "versions-0-citations" in page
    assert "Body html" not in page and "Hold down" not in page
    assert ">Text:</label>" in page and ">References:</label>" in page
    assert "admin-autocomplete" in page  # compact pickers, not dual lists


def test_module_and_first_version_are_created_together(client_a, author_a, brand_a):
    ref = ReferenceFactory(brand=brand_a, code="REF-A")
    body = f"<p>Works{marker_html('REF-A', 9)} for {{{{ recipient.last_name }}}}.</p>"
    response = client_a.post(ADD_URL, add_form(brand_a, body_html=body, citations=[ref.pk]))
    module = ContentModule.objects.get(code="ALP-EFF-009")
    version = module.versions.get()
    assert response.status_code == 302 and response["Location"] == change_url(version)
    assert (module.owner, version.created_by, version.number) == (author_a, author_a, 1)
    assert list(version.citations.all()) == [ref]
    assert marker_html("REF-A", 1) in version.body_html  # numbered by the rule
    assert version.history.first().history_user == author_a


def test_first_version_cannot_cite_another_brands_reference(client_a, brand_a, brand_b):
    foreign = ReferenceFactory(brand=brand_b, code="REF-B")
    response = client_a.post(ADD_URL, add_form(brand_a, citations=[foreign.pk]))
    assert response.status_code == 200
    assert not ContentModule.objects.filter(code="ALP-EFF-009").exists()


def test_autocomplete_offers_only_the_pages_brand(client_a, brand_a, brand_b, version_a):
    ReferenceFactory(brand=brand_a, code="REF-A")
    ReferenceFactory(brand=brand_b, code="REF-B")
    url = reverse("admin:autocomplete")
    params = {"app_label": "content", "model_name": "moduleversion", "field_name": "citations",
              "term": "REF"}
    codes = lambda r: sorted(x["text"].split(":")[0] for x in json.loads(r.content)["results"])  # noqa: E731
    assert codes(client_a.get(url, params)) == ["REF-A"]
    assert codes(client_a.get(url, {**params, "brand": brand_b.pk})) == []  # not theirs
    page = client_a.get(change_url(version_a)).content.decode()
    assert f"/admin/autocomplete/?brand={brand_a.pk}" in page


def test_stage_autocomplete_is_limited_to_the_versions_audiences(client_a, version_a):
    hcp = Audience.objects.get(code="hcp")
    url = reverse("admin:autocomplete")
    params = {"app_label": "content", "model_name": "moduleversion", "field_name": "stages",
              "audience": str(hcp.pk)}
    texts_ = [x["text"] for x in json.loads(client_a.get(url, params).content)["results"]]
    assert texts_ and all(t.startswith("hcp:") for t in texts_)


def test_checklist_links_each_problem_to_its_field(client_a, author_a, brand_a):
    version = VersionFactory(module=ModuleFactory(brand=brand_a, owner=author_a, kind="claim"))
    version.channels.clear()
    page = client_a.get(change_url(version)).content.decode()
    assert 'href="#id_citations"' in page and "must cite at least one reference" in page
    assert 'href="#id_channels"' in page
    assert 'id="submit-for-review"' not in page


def test_submit_is_one_click_from_the_version_page(client_a, author_a, brand_a):
    ref = ReferenceFactory(brand=brand_a, code="REF-A")
    version = VersionFactory(module=ModuleFactory(brand=brand_a, owner=author_a, kind="claim"),
                             tags={"jurisdictions": ["DE"]})
    version.citations.set([ref])
    page = client_a.get(change_url(version)).content.decode()
    submit_url = reverse("approvals:submit", args=[version.pk])
    assert f'action="{submit_url}"' in page and 'id="submit-for-review"' in page
    client_a.post(submit_url)
    version.refresh_from_db()
    assert version.state == "in_review"


@pytest.fixture
def submitted(author_a, brand_a):
    version = VersionFactory(module=ModuleFactory(brand=brand_a, owner=author_a),
                             tags={"jurisdictions": ["DE"]})
    services.submit_for_review(version=version, actor=author_a)
    return version


def test_version_in_review_is_read_only_and_says_wait_or_recall(client_a, submitted):
    response = client_a.get(change_url(submitted))
    page = response.content.decode()
    assert 'name="_save"' not in page and 'name="_continue"' not in page
    assert any("in review" in m and "recall" in m for m in texts(response))
    assert "use New version" not in page.replace("“", "").replace("”", "")
    assert 'id="recall-form"' in page


def test_author_recalls_a_submission_with_a_signature(client_a, author_a, submitted):
    url = reverse("admin:content_moduleversion_recall", args=[submitted.pk])
    wrong = client_a.post(url, {"username": author_a.username, "password": "nope"})
    submitted.refresh_from_db()
    assert wrong.status_code == 302 and submitted.state == "in_review"
    client_a.post(url, {"username": author_a.username, "password": PASSWORD, "reason": "typo"})
    submitted.refresh_from_db()
    assert submitted.state == "draft"
    assert submitted.signatures.filter(meaning=Meaning.RECALL, signer=author_a).exists()


def test_recall_is_refused_after_the_first_decision(client_a, author_a, submitted):
    legal = staff_user("legal.one", "mlr-legal")
    services.decide(version=submitted, actor=legal, role="legal", decision=Meaning.APPROVE,
                    expected_sha256=submitted.sha256,
                    credentials=Credentials(password=PASSWORD, username=legal.username))
    page = client_a.get(change_url(submitted)).content.decode()
    assert 'id="recall-form"' not in page
    url = reverse("admin:content_moduleversion_recall", args=[submitted.pk])
    client_a.post(url, {"username": author_a.username, "password": PASSWORD})
    submitted.refresh_from_db()
    assert submitted.state == "in_review"


def test_change_requests_of_every_role_show_on_the_edit_page(client_a, submitted):
    for role in ("medical", "legal", "regulatory"):
        person = staff_user(f"{role}.one", f"mlr-{role}")
        decision = Meaning.APPROVE if role == "legal" else Meaning.REQUEST_CHANGES
        services.decide(version=submitted, actor=person, role=role, decision=decision,
                        expected_sha256=submitted.sha256, comment=f"{role} says fix the dose",
                        credentials=Credentials(password=PASSWORD, username=person.username))
    submitted.refresh_from_db()
    assert submitted.state == "changes_requested"
    page = client_a.get(change_url(submitted)).content.decode()
    assert "medical says fix the dose" in page and "regulatory says fix the dose" in page
    assert 'name="_save"' in page  # editable again


def test_other_brands_recall_url_is_404(client, author_b, submitted):
    client.force_login(author_b)
    url = reverse("admin:content_moduleversion_recall", args=[submitted.pk])
    assert client.post(url, {"password": PASSWORD}).status_code == 404


def test_lists_show_state_and_expiry_and_view_site_goes_to_journeys(client_a, version_a):
    page = client_a.get(reverse("admin:content_contentmodule_changelist")).content.decode()
    assert "Latest version" in page and "Approval expires" in page
    assert 'href="/journeys/"' in page
    page = client_a.get(reverse("admin:content_moduleversion_changelist")).content.decode()
    assert "Expires at" in page


def test_new_version_refusal_for_a_version_in_review_says_wait_or_recall(client_a, submitted):
    response = client_a.post(reverse("admin:content_moduleversion_new_version",
                                     args=[submitted.pk]))
    message = " ".join(texts(response))
    assert "in review" in message and "recall" in message and "edit it instead" not in message


def test_module_page_of_an_approved_only_module_has_no_save(client_a, version_a):
    version_a.state = "approved"
    version_a.save(update_fields=["state", "updated_at"])
    page = client_a.get(reverse("admin:content_contentmodule_change",
                                args=[version_a.module_id])).content.decode()
    assert 'name="_save"' not in page
    assert reverse("admin:content_moduleversion_new_version", args=[version_a.pk]) in page


@pytest.mark.parametrize("field", ["audiences", "jurisdictions", "channels"])
def test_taxonomy_is_searchable_for_the_pickers(client_a, field):
    url = reverse("admin:autocomplete")
    response = client_a.get(url, {"app_label": "content", "model_name": "moduleversion",
                                  "field_name": field, "term": ""})
    assert response.status_code == 200 and json.loads(response.content)["results"]


def test_preview_lists_references_numbered_as_the_superscripts(client_a, author_a, brand_a):
    first = ReferenceFactory(brand=brand_a, code="REF-Z", citation="Zed trial.")
    second = ReferenceFactory(brand=brand_a, code="REF-A", citation="Alpha trial.")
    version = VersionFactory(
        module=ModuleFactory(brand=brand_a, owner=author_a, kind="claim"),
        body_html=f"<p>x{marker_html('REF-Z', 4)} y{marker_html('REF-A', 4)}</p>")
    version.citations.set([first, second])
    page = client_a.get(reverse("admin:content_moduleversion_preview", args=[version.pk]))
    html = page.content.decode()
    assert f"x{marker_html('REF-Z', 1)} y{marker_html('REF-A', 2)}" in html
    assert '<li value="1">Zed trial.</li>' in html and '<li value="2">Alpha trial.</li>' in html


XSS = [line for line in
       (__import__("pathlib").Path("/work/shared/corpus/xss-vectors.txt").read_text().splitlines())
       if line.strip()]


@pytest.mark.parametrize("payload", XSS[:12])
def test_hostile_text_in_titles_citations_and_first_versions_stays_inert(client_a, brand_a,
                                                                        payload):
    """The editor's data attributes (reference labels), the module title and the first
    version's body: hostile text is escaped or sanitised, never markup on the page."""
    ReferenceFactory(brand=brand_a, code="REF-X", citation=payload)
    page = client_a.get(ADD_URL).content.decode()
    if "<" in payload:
        assert payload not in page  # only ever escaped (&lt;...) in attributes and text
    data = add_form(brand_a, body_html=f"<p>ok</p>{payload}")
    data["title"] = payload[:200]
    client_a.post(ADD_URL, data)
    version = ModuleVersion.objects.filter(module__code="ALP-EFF-009").first()
    if version is not None:
        assert "<script" not in version.body_html and "onerror" not in version.body_html
        assert "javascript:" not in version.body_html.lower()
        page = client_a.get(change_url(version)).content.decode()
        if "<" in payload:
            assert payload not in page


def test_reviewers_comments_show_on_the_edit_page(client_a, submitted):
    medical = staff_user("medical.two", "mlr-medical")
    services.add_comment(version=submitted, actor=medical, body="Which trial is this <b>?",
                         anchor="general")
    page = client_a.get(change_url(submitted)).content.decode()
    assert "Which trial is this &lt;b&gt;?" in page


def test_version_add_page_and_reviewer_view_render(client_a, client, reviewer, version_a):
    assert client_a.get(reverse("admin:content_moduleversion_add")).status_code == 200
    client.force_login(reviewer)
    page = client.get(change_url(version_a))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="_save"' not in html and 'id="submit-for-review"' not in html
