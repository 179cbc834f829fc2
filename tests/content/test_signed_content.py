"""What reviewers signed stays put: references, assets and module identity under frozen versions."""

import pytest
from django.urls import reverse

from content.models import ImmutableVersionError, ModuleVersion, Reference
from tests.content.helpers import approve
from tests.factories import ModuleFactory, ReferenceFactory, VersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def cited(version_a):
    ref = ReferenceFactory(brand=version_a.module.brand, code="ref-trial")
    version_a.citations.add(ref)
    approve(version_a)
    return ref


def test_reference_cited_by_an_approved_version_cannot_change(cited, version_a):
    sha = ModuleVersion.objects.get(pk=version_a.pk).sha256
    cited.citation = "A different paper"
    with pytest.raises(ImmutableVersionError, match="ALP-BODY-001 v1"):
        cited.save()
    with pytest.raises(ImmutableVersionError, match="cannot be deleted"):
        Reference.objects.get(pk=cited.pk).delete()
    assert Reference.objects.get(pk=cited.pk).citation != "A different paper"
    assert ModuleVersion.objects.get(pk=version_a.pk).sha256 == sha


def test_reference_admin_explains_why_it_cannot_change(client_a, cited):
    url = reverse("admin:content_reference_change", args=[cited.pk])
    response = client_a.post(url, {"brand": cited.brand_id, "code": cited.code,
                                   "source": "publication", "citation": "Rewritten"})
    assert response.status_code == 200
    assert "citation cannot change" in str(response.context["adminform"].form.errors)
    cited.refresh_from_db()
    assert cited.citation != "Rewritten"


def test_reference_of_drafts_only_can_still_be_corrected(client_a, version_a):
    ref = ReferenceFactory(brand=version_a.module.brand, code="ref-draft")
    version_a.citations.add(ref)
    ref.citation = "Corrected citation"
    ref.save()
    assert Reference.objects.get(pk=ref.pk).citation == "Corrected citation"


def test_module_kind_purpose_and_code_are_fixed_once_a_version_is_approved(client_a, version_a):
    approve(version_a)
    module = version_a.module
    module.purpose = "medical"
    with pytest.raises(ImmutableVersionError, match="purpose cannot change"):
        module.save()
    url = reverse("admin:content_contentmodule_change", args=[module.pk])
    page = client_a.get(url).content.decode()
    assert 'name="kind"' not in page and 'name="purpose"' not in page
    module.refresh_from_db()
    module.title = "Retitled"  # internal name: not signed, may change
    module.save()


def test_open_draft_blocks_a_second_version_from_the_add_form(client_a, version_a):
    from tests.content.helpers import version_form_data

    response = client_a.post(reverse("admin:content_moduleversion_add"), version_form_data(version_a))
    assert response.status_code == 200
    assert "still draft: edit it instead" in str(response.context["adminform"].form.errors)
    assert version_a.module.versions.count() == 1


def test_asset_image_cannot_be_replaced_under_an_approved_version(client_a, author_a, brand_a):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from content.assets import store_asset
    from tests.content.helpers import image_bytes

    asset = store_asset(brand=brand_a, title="Hero", alt_text="Red",
                        upload=SimpleUploadedFile("a.png", image_bytes()), uploaded_by=author_a)
    approve(VersionFactory(module=ModuleFactory(code="ALP-IMG-002", brand=brand_a, owner=author_a,
                                                kind="image"), asset=asset, body_html=""))
    sha = asset.content_sha256
    response = client_a.post(reverse("admin:content_asset_change", args=[asset.pk]), {
        "title": "Hero", "alt_text": "Red",
        "upload": SimpleUploadedFile("b.png", image_bytes(color=(0, 0, 255)))})
    assert response.status_code == 200
    assert "ALP-IMG-002 v1" in str(response.context["adminform"].form.errors)
    asset.refresh_from_db()
    assert asset.content_sha256 == sha
    response = client_a.post(reverse("admin:content_asset_change", args=[asset.pk]),
                             {"title": "Hero (renamed)", "alt_text": "Red"})
    assert response.status_code == 302  # the title is internal, not signed
