"""The author admin through the test client, logged in as a brand author."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from content.models import (
    Audience,
    Channel,
    ContentModule,
    Jurisdiction,
    Locale,
    ModuleVersion,
    Stage,
)
from tests.content.helpers import approve, version_form_data
from tests.factories import ModuleFactory, ReferenceFactory, VersionFactory

pytestmark = pytest.mark.django_db

MODULES_URL = reverse("admin:content_contentmodule_changelist")


def texts(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def listed_codes(response):
    return sorted(str(obj) for obj in response.context["cl"].result_list)


def module_form_data(module=None, versions=(), **overrides):
    """The module change form's POST body, with its versions inline."""
    data = {
        "code": "", "kind": "body", "purpose": "promotional", "title": "A module",
        "versions-TOTAL_FORMS": len(versions), "versions-INITIAL_FORMS": len(versions),
        "versions-MIN_NUM_FORMS": 0, "versions-MAX_NUM_FORMS": 1000,
    }
    if module is not None:
        data.update(kind=module.kind, purpose=module.purpose, title=module.title)
    for i, version in enumerate(versions):
        data.update({
            f"versions-{i}-id": version.pk, f"versions-{i}-module": version.module_id,
            f"versions-{i}-locale": version.locale_id, f"versions-{i}-subject": version.subject,
            f"versions-{i}-body_html": version.body_html,
        })
    data.update(overrides)
    return data


@pytest.fixture
def tagged_modules(author_a, brand_a):
    """Two modules of brand A that differ in every filterable tag."""
    us_hcp = VersionFactory(
        module=ModuleFactory(code="ALP-HCP-US", brand=brand_a, owner=author_a, kind="claim"),
        body_html="<p>Heart failure data for cardiologists</p>",
        tags={"audience": "hcp", "jurisdictions": ["US"], "channels": ["email"],
              "stages": ["awareness"]})
    de_patient = VersionFactory(
        module=ModuleFactory(code="ALP-PAT-DE", brand=brand_a, owner=author_a, kind="cta"),
        locale=Locale.objects.get(code="de"), body_html="<p>Atemnot im Alltag</p>",
        tags={"audience": "patient", "jurisdictions": ["DE"], "channels": ["sms"],
              "stages": ["research"]})
    approve(de_patient)
    return us_hcp, de_patient


def test_module_list_filters_by_every_tag(client_a, tagged_modules, brand_a):
    stage = Stage.objects.get(audience__code="patient", code="research")
    filters = {
        f"brand__id__exact={brand_a.pk}": ["ALP-HCP-US", "ALP-PAT-DE"],
        "kind__exact=claim": ["ALP-HCP-US"],
        "versions__state__exact=approved": ["ALP-PAT-DE"],
        f"versions__audiences__id__exact={Audience.objects.get(code='hcp').pk}": ["ALP-HCP-US"],
        f"versions__stages__id__exact={stage.pk}": ["ALP-PAT-DE"],
        f"versions__jurisdictions__id__exact={Jurisdiction.objects.get(code='DE').pk}": ["ALP-PAT-DE"],
        f"versions__channels__id__exact={Channel.objects.get(code='email').pk}": ["ALP-HCP-US"],
        f"versions__locale__id__exact={Locale.objects.get(code='de').pk}": ["ALP-PAT-DE"],
    }
    for query, expected in filters.items():
        response = client_a.get(f"{MODULES_URL}?{query}")
        assert response.status_code == 200, query
        assert listed_codes(response) == expected, query


def test_module_search_finds_code_and_text(client_a, tagged_modules):
    assert listed_codes(client_a.get(MODULES_URL, {"q": "alp-pat"})) == ["ALP-PAT-DE"]
    assert listed_codes(client_a.get(MODULES_URL, {"q": "cardiologists"})) == ["ALP-HCP-US"]


def test_version_list_filters_by_state_and_channel(client_a, tagged_modules):
    url = reverse("admin:content_moduleversion_changelist")
    response = client_a.get(url, {"state__exact": "draft"})
    assert listed_codes(response) == ["ALP-HCP-US v1"]
    response = client_a.get(url, {"channels__id__exact": Channel.objects.get(code="sms").pk})
    assert listed_codes(response) == ["ALP-PAT-DE v1"]


def test_script_and_event_handlers_are_removed_and_the_author_told(client_a, version_a):
    url = reverse("admin:content_moduleversion_change", args=[version_a.pk])
    dirty = '<p onclick="steal()">Hi</p><script>alert(1)</script><a href="javascript:x()">go</a>'
    response = client_a.post(url, version_form_data(version_a, body_html=dirty, body_text=""))
    assert response.status_code == 302
    version_a.refresh_from_db()
    assert "<script" not in version_a.body_html and "onclick" not in version_a.body_html
    assert "javascript:" not in version_a.body_html
    assert "Hi" in version_a.body_html
    message = " ".join(texts(response))
    assert "<script> element" in message and "onclick attribute on <p>" in message
    assert "javascript: link" in message


def test_unknown_token_is_a_form_error_and_nothing_changes(client_a, version_a):
    before = version_a.body_html
    url = reverse("admin:content_moduleversion_change", args=[version_a.pk])
    response = client_a.post(url, version_form_data(version_a, body_html="<p>{{ recipient.ssn }}</p>"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "recipient.ssn" in str(errors["body_html"])
    version_a.refresh_from_db()
    assert version_a.body_html == before


def test_malformed_fallbacks_are_a_form_error(client_a, version_a):
    url = reverse("admin:content_moduleversion_change", args=[version_a.pk])
    response = client_a.post(url, version_form_data(version_a, token_fallbacks='{"ssn": "x"}'))
    assert response.status_code == 200
    assert "ssn" in str(response.context["adminform"].form.errors["token_fallbacks"])


def test_duplicate_module_code_is_refused_whatever_the_case(client_a, version_a, brand_a):
    response = client_a.post(reverse("admin:content_contentmodule_add"),
                             module_form_data(code="alp-body-001", brand=brand_a.pk))
    assert response.status_code == 200
    error = str(response.context["adminform"].form.errors["code"])
    assert "ALP-BODY-001 is already taken" in error
    assert ContentModule.objects.filter(code__iexact="alp-body-001").count() == 1


def test_author_creates_a_module_owned_by_them(client_a, author_a, brand_a):
    response = client_a.post(reverse("admin:content_contentmodule_add"),
                             module_form_data(code="alp-new-002", brand=brand_a.pk))
    assert response.status_code == 302
    module = ContentModule.objects.get(code="ALP-NEW-002")
    assert module.owner == author_a
    assert module.history.first().history_user == author_a


def test_invalid_module_code_says_how_to_write_one(client_a, brand_a):
    response = client_a.post(reverse("admin:content_contentmodule_add"),
                             module_form_data(code="bad code!", brand=brand_a.pk))
    assert response.status_code == 200
    assert "capital letters, digits and dashes" in str(response.context["adminform"].form.errors)


def test_edit_of_approved_version_is_refused_with_a_message(client_a, version_a):
    approve(version_a)
    before = (version_a.body_html, version_a.sha256, version_a.history.count())
    url = reverse("admin:content_moduleversion_change", args=[version_a.pk])
    response = client_a.post(url, version_form_data(version_a, body_html="<p>changed</p>"))
    assert response.status_code == 302
    assert any("approved: its content cannot change" in m for m in texts(response))
    version_a.refresh_from_db()
    assert (version_a.body_html, version_a.sha256, version_a.history.count()) == before


def test_approved_version_opens_read_only(client_a, version_a):
    approve(version_a)
    url = reverse("admin:content_moduleversion_change", args=[version_a.pk])
    response = client_a.get(url)
    assert response.status_code == 200
    assert response.context["has_change_permission"] is False
    assert 'name="body_html"' not in response.content.decode()
    assert any("shown read-only" in m for m in texts(response))


@pytest.mark.parametrize("state", ["in_review", "expired", "withdrawn"])
def test_frozen_states_refuse_edits(client_a, version_a, state):
    version_a.state = state
    version_a.save(update_fields=["state"])
    url = reverse("admin:content_moduleversion_change", args=[version_a.pk])
    client_a.post(url, version_form_data(version_a, body_html="<p>changed</p>"))
    version_a.refresh_from_db()
    assert "changed" not in version_a.body_html


def test_claim_without_reference_is_saved_as_draft_with_a_warning(client_a, author_a, brand_a):
    version = VersionFactory(module=ModuleFactory(code="ALP-EFF-001", brand=brand_a,
                                                  owner=author_a, kind="claim"))
    url = reverse("admin:content_moduleversion_change", args=[version.pk])
    response = client_a.post(url, version_form_data(version, body_html="<p>Cuts risk by 26%.</p>"))
    assert response.status_code == 302
    assert any("must cite at least one reference" in m for m in texts(response))
    client_a.get(url)  # shows (and so consumes) the warning
    ref = ReferenceFactory(brand=brand_a)
    response = client_a.post(url, version_form_data(version, citations=[ref.pk]))
    assert not any("must cite" in m for m in texts(response))
    assert list(version.citations.all()) == [ref]


def test_stage_of_an_untagged_audience_is_refused(client_a, version_a):
    patient_stage = Stage.objects.get(audience__code="patient", code="purchase")
    url = reverse("admin:content_moduleversion_change", args=[version_a.pk])
    response = client_a.post(url, version_form_data(version_a, stages=[patient_stage.pk]))
    assert response.status_code == 200
    assert "not tagged for" in str(response.context["adminform"].form.errors["stages"])


def test_changed_html_rederives_the_plain_text(client_a, version_a):
    url = reverse("admin:content_moduleversion_change", args=[version_a.pk])
    client_a.post(url, version_form_data(version_a, body_html="<p>Brand new words</p>"))
    version_a.refresh_from_db()
    assert version_a.body_text == "Brand new words"


def test_new_version_action_copies_approved_into_draft(client_a, version_a):
    approve(version_a)
    response = client_a.post(MODULES_URL, {"action": "make_new_version",
                                           "_selected_action": [version_a.module_id]})
    assert response.status_code == 302
    draft = version_a.module.versions.get(number=2)
    assert draft.state == "draft" and draft.body_html == version_a.body_html
    assert any("draft" in m and "v2" in m for m in texts(response))


def test_new_version_action_on_open_draft_says_why_not(client_a, version_a):
    response = client_a.post(MODULES_URL, {"action": "make_new_version",
                                           "_selected_action": [version_a.module_id]})
    assert any("still draft: edit it instead" in m for m in texts(response))
    assert version_a.module.versions.count() == 1


def test_preview_renders_sample_recipient_at_email_and_portal_width(client_a, version_a):
    response = client_a.get(reverse("admin:content_moduleversion_preview", args=[version_a.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Hello Dr. Morgan." in body
    assert 'data-preview="email" style="width: 600px"' in body
    assert 'data-preview="portal"' in body


def test_preview_shows_personalised_subject_and_plain_text(client_a, author_a, brand_a):
    version = VersionFactory(
        module=ModuleFactory(code="ALP-SUBJ-001", brand=brand_a, owner=author_a, kind="subject"),
        subject="Hi {{ recipient.first_name }}", body_html="<p>{{ recipient.practice_name }}</p>")
    response = client_a.get(reverse("admin:content_moduleversion_preview", args=[version.pk]))
    assert response.context["subject"] == "Hi Alex"
    assert response.context["text"] == "Riverside Heart Clinic"


def test_module_page_lists_versions_read_only_with_their_pages(client_a, author_a, brand_a):
    module = ModuleFactory(code="ALP-INL-001", brand=brand_a, owner=author_a)
    approved = approve(VersionFactory(module=module, body_html="<p>approved text</p>"))
    draft = VersionFactory(module=module, body_html="<p>draft text</p>")
    url = reverse("admin:content_contentmodule_change", args=[module.pk])
    page = client_a.get(url).content.decode()
    # Versions are edited on their own page (editor, tags); the module page links there.
    assert "versions-0-body_html" not in page
    for version in (approved, draft):
        assert reverse("admin:content_moduleversion_change", args=[version.pk]) in page
        assert reverse("approvals:review", args=[version.pk]) in page
    assert "Approved" in page and "Draft" in page


def test_version_history_page_lists_changes(client_a, version_a):
    url = reverse("admin:content_moduleversion_change", args=[version_a.pk])
    client_a.post(url, version_form_data(version_a, body_html="<p>second text</p>"))
    response = client_a.get(reverse("admin:content_moduleversion_history", args=[version_a.pk]))
    assert response.status_code == 200
    assert "author.alpha" in response.content.decode()


def test_history_revert_of_a_version_is_refused(client_a, version_a):
    first = version_a.history.last()
    url = reverse("admin:content_moduleversion_simple_history", args=[version_a.pk, first.history_id])
    response = client_a.post(url, version_form_data(version_a))
    assert response.status_code == 302
    assert any("never reverted" in m for m in texts(response))


def test_taxonomy_is_editable_by_superuser(client, superuser):
    client.force_login(superuser)
    jurisdiction = Jurisdiction.objects.get(code="DE")
    url = reverse("admin:content_jurisdiction_change", args=[jurisdiction.pk])
    response = client.post(url, {"code": "DE", "name": "Deutschland"})
    assert response.status_code == 302
    jurisdiction.refresh_from_db()
    assert jurisdiction.name == "Deutschland"


def test_brand_validity_days_are_edited_by_superuser_only(client, superuser, client_a, brand_a):
    url = reverse("admin:content_brand_change", args=[brand_a.pk])
    data = {"name": brand_a.name, "slug": brand_a.slug, "product_name": brand_a.product_name,
            "indication": "", "approval_validity_days": 730, "expiry_notice_days": 45}
    assert client_a.post(url, data).status_code == 403
    client.force_login(superuser)
    assert client.post(url, data).status_code == 302
    brand_a.refresh_from_db()
    assert brand_a.effective_validity_days == 730


def test_versions_are_listed_with_their_state(client_a, version_a):
    approve(version_a)
    ModuleVersion.objects.get(pk=version_a.pk).module.new_version(author=version_a.created_by)
    page = client_a.get(reverse("admin:content_contentmodule_change",
                                args=[version_a.module_id])).content.decode()
    assert "Approved" in page and "Draft" in page


def test_module_page_with_many_versions_has_no_n_plus_one(client_a, author_a, brand_a,
                                                          django_assert_max_num_queries):
    module = ModuleFactory(code="ALP-MANY-001", brand=brand_a, owner=author_a)
    for _ in range(8):
        approve(VersionFactory(module=module))
    VersionFactory(module=module)
    with django_assert_max_num_queries(25):
        response = client_a.get(reverse("admin:content_contentmodule_change", args=[module.pk]))
    assert response.status_code == 200


def test_superuser_grants_brand_authoring_on_the_object_permissions_page(client, superuser,
                                                                         brand_a, author_b):
    from content.permissions import can_author_brand

    client.force_login(superuser)
    url = reverse("admin:content_brand_permissions_manage_user", args=[brand_a.pk, author_b.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"permissions": ["author_brand"]})
    assert response.status_code == 302
    assert can_author_brand(type(author_b).objects.get(pk=author_b.pk), brand_a)


def test_bulk_delete_never_removes_a_frozen_version(client_a, version_a):
    approve(version_a)
    url = reverse("admin:content_moduleversion_changelist")
    response = client_a.post(url, {"action": "delete_selected", "_selected_action": [version_a.pk],
                                   "post": "yes"})
    assert response.status_code in (200, 302, 403)
    assert ModuleVersion.objects.filter(pk=version_a.pk).exists()


def test_author_deletes_own_draft_version(client_a, version_a):
    url = reverse("admin:content_moduleversion_delete", args=[version_a.pk])
    assert client_a.post(url, {"post": "yes"}).status_code == 302
    assert not ModuleVersion.objects.filter(pk=version_a.pk).exists()


def test_reviewer_previews_any_brand(client, reviewer, version_b):
    client.force_login(reviewer)
    response = client.get(reverse("admin:content_moduleversion_preview", args=[version_b.pk]))
    assert response.status_code == 200
    assert "Hello Dr. Morgan." in response.content.decode()


def test_preview_names_companions_and_exclusions(client_a, author_a, brand_a, version_a):
    isi = ModuleFactory(code="ALP-ISI-US", brand=brand_a, owner=author_a, kind="isi")
    other = ModuleFactory(code="ALP-MED-001", brand=brand_a, owner=author_a)
    version_a.requires.add(isi)
    version_a.excludes.add(other)
    body = client_a.get(reverse("admin:content_moduleversion_preview",
                                args=[version_a.pk])).content.decode()
    assert "Travels with <strong>ALP-ISI-US</strong> (" in body and "latest version no version" in body
    assert "Never in the same assembly as <strong>ALP-MED-001</strong>" in body


def test_admin_pages_and_preview_send_csp_and_nosniff(client_a, version_a):
    for url in (MODULES_URL, reverse("admin:content_moduleversion_preview", args=[version_a.pk])):
        response = client_a.get(url)
        assert "script-src 'self'" in response["Content-Security-Policy"]
        assert response["X-Content-Type-Options"] == "nosniff"


def test_new_version_button_on_a_frozen_version_starts_a_draft(client_a, version_a):
    approve(version_a)
    page = client_a.get(reverse("admin:content_moduleversion_change", args=[version_a.pk]))
    url = reverse("admin:content_moduleversion_new_version", args=[version_a.pk])
    assert url in page.content.decode()
    assert client_a.get(url).status_code == 302  # a GET changes nothing
    assert version_a.module.versions.count() == 1
    response = client_a.post(url)
    draft = version_a.module.versions.get(number=2)
    assert response["Location"] == reverse("admin:content_moduleversion_change", args=[draft.pk])
    response = client_a.post(url)  # again: the draft is open, say so
    assert any("still draft: edit it instead" in m for m in texts(response))
    assert version_a.module.versions.count() == 2


def test_new_version_button_is_for_the_brands_authors_only(client, author_a, reviewer, version_b):
    approve(version_b)
    url = reverse("admin:content_moduleversion_new_version", args=[version_b.pk])
    client.force_login(author_a)
    assert client.post(url).status_code == 404
    client.force_login(reviewer)
    page = client.get(reverse("admin:content_moduleversion_change", args=[version_b.pk]))
    assert url not in page.content.decode()
    assert client.post(url).status_code == 403
    assert version_b.module.versions.count() == 1
