"""The per-brand split: who sees and changes which brand's content, through the admin."""

import pytest
from django.urls import reverse

from content.models import Asset, Brand, ContentModule, ModuleVersion, Reference
from content.permissions import can_author_brand, grant_author_brand, revoke_author_brand
from tests.content.helpers import version_form_data
from tests.factories import ModuleFactory, ReferenceFactory, UserFactory, VersionFactory

pytestmark = pytest.mark.django_db


def test_for_user_gives_authors_their_brands_reviewers_and_superusers_all_others_none(
        version_a, version_b, author_a, reviewer, superuser):
    outsider = UserFactory(username="nobody", is_staff=True)
    assert list(ContentModule.objects.for_user(author_a)) == [version_a.module]
    assert list(ModuleVersion.objects.for_user(author_a)) == [version_a]
    assert set(ContentModule.objects.for_user(reviewer)) == {version_a.module, version_b.module}
    assert set(ModuleVersion.objects.for_user(superuser)) == {version_a, version_b}
    assert not ContentModule.objects.for_user(outsider).exists()
    assert not ContentModule.objects.for_user(None).exists()
    assert list(Brand.objects.for_user(author_a)) == [version_a.module.brand]


def test_for_user_is_a_fixed_number_of_queries(version_a, version_b, author_a,
                                               django_assert_max_num_queries):
    # One for the role check (then cached on the user), one for the rows.
    with django_assert_max_num_queries(2):
        list(ModuleVersion.objects.for_user(author_a).select_related("module"))


def test_brand_permission_through_a_group_counts(brand_a, brand_b):
    from django.contrib.auth.models import Group

    team = Group.objects.create(name="alpha-team")
    member = UserFactory(username="member")
    member.groups.add(team)
    grant_author_brand(team, brand_a)
    assert can_author_brand(member, brand_a)
    assert not can_author_brand(member, brand_b)
    assert list(Brand.objects.for_user(member)) == [brand_a]


def test_revoking_the_permission_hides_the_brand(author_a, brand_a, version_a):
    revoke_author_brand(author_a, brand_a)
    author = type(author_a).objects.get(pk=author_a.pk)  # fresh object, no permission cache
    assert not ContentModule.objects.for_user(author).exists()


def test_inactive_user_sees_nothing(author_a, version_a):
    author_a.is_active = False
    author_a.save()
    assert not ModuleVersion.objects.for_user(author_a).exists()


def test_author_lists_only_own_brand_in_admin(client_a, version_a, version_b):
    for name in ("contentmodule", "moduleversion"):
        body = client_a.get(reverse(f"admin:content_{name}_changelist")).content.decode()
        assert "ALP-BODY-001" in body
        assert "BET-BODY-001" not in body
        assert "Betavane" not in body  # not even in the brand filter


def test_author_cannot_open_other_brands_pages(client_a, version_b):
    module = version_b.module
    ref = ReferenceFactory(brand=module.brand)
    urls = [
        reverse("admin:content_contentmodule_change", args=[module.pk]),
        reverse("admin:content_moduleversion_change", args=[version_b.pk]),
        reverse("admin:content_moduleversion_preview", args=[version_b.pk]),
        reverse("admin:content_moduleversion_delete", args=[version_b.pk]),
        reverse("admin:content_reference_change", args=[ref.pk]),
        reverse("admin:content_brand_change", args=[module.brand.pk]),
    ]
    for url in urls:
        assert client_a.get(url).status_code == 404, url
    for url in (reverse("admin:content_contentmodule_history", args=[module.pk]),
                reverse("admin:content_moduleversion_history", args=[version_b.pk])):
        assert client_a.get(url).status_code == 403, url
    history_id = version_b.history.first().history_id
    url = reverse("admin:content_moduleversion_simple_history", args=[version_b.pk, history_id])
    assert client_a.get(url).status_code == 403


def test_author_cannot_change_other_brands_version_by_post(client_a, version_b):
    url = reverse("admin:content_moduleversion_change", args=[version_b.pk])
    response = client_a.post(url, {"body_html": "<p>hijacked</p>", "locale": version_b.locale_id})
    assert response.status_code == 404
    version_b.refresh_from_db()
    assert "hijacked" not in version_b.body_html


def test_author_cannot_pick_other_brand_in_module_form(client_a, author_a, brand_b):
    response = client_a.post(reverse("admin:content_contentmodule_add"), {
        "code": "ALP-NEW-001", "brand": brand_b.pk, "kind": "body", "purpose": "promotional",
        "title": "Sneaky",
    })
    assert response.status_code == 200
    assert "brand" in response.context["adminform"].form.errors
    assert not ContentModule.objects.filter(code="ALP-NEW-001").exists()


def test_author_cannot_cite_other_brands_reference(client_a, version_a, brand_b):
    foreign = ReferenceFactory(brand=brand_b)
    url = reverse("admin:content_moduleversion_change", args=[version_a.pk])
    data = version_form_data(version_a, citations=[foreign.pk])
    response = client_a.post(url, data)
    assert response.status_code == 200
    assert "citations" in response.context["adminform"].form.errors
    assert not version_a.citations.exists()


def test_author_cannot_use_other_brands_module_for_a_version(client_a, version_b):
    data = version_form_data(version_b)
    response = client_a.post(reverse("admin:content_moduleversion_add"), data)
    assert response.status_code == 200
    assert "module" in response.context["adminform"].form.errors
    assert version_b.module.versions.count() == 1


def test_reviewer_sees_all_brands_read_only(client, reviewer, version_a, version_b):
    client.force_login(reviewer)
    body = client.get(reverse("admin:content_contentmodule_changelist")).content.decode()
    assert "ALP-BODY-001" in body and "BET-BODY-001" in body
    url = reverse("admin:content_moduleversion_change", args=[version_b.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, version_form_data(version_b, body_html="<p>reviewer edit</p>"))
    assert response.status_code == 403
    version_b.refresh_from_db()
    assert "reviewer edit" not in version_b.body_html


def test_user_without_brand_sees_no_content(client, brand_a, version_a):
    stranger = UserFactory(username="stranger", is_staff=True)
    from django.contrib.auth.models import Group

    stranger.groups.add(Group.objects.get(name="authors"))
    client.force_login(stranger)
    response = client.get(reverse("admin:content_contentmodule_changelist"))
    assert response.status_code == 200
    assert "ALP-BODY-001" not in response.content.decode()
    assert client.get(reverse("admin:content_contentmodule_add")).status_code == 403


def test_references_and_assets_are_scoped_by_brand(author_a, version_a, brand_b):
    ReferenceFactory(brand=brand_b, code="ref-b")
    ReferenceFactory(brand=version_a.module.brand, code="ref-a")
    assert list(Reference.objects.for_user(author_a).values_list("code", flat=True)) == ["ref-a"]
    assert not Asset.objects.for_user(author_a).exists()


def test_superuser_can_author_any_brand(superuser, brand_b):
    assert can_author_brand(superuser, brand_b)
    assert can_author_brand(superuser, brand_b.pk)


def test_modules_of_many_brands_list_without_n_plus_one(client_a, author_a, brand_a,
                                                        django_assert_max_num_queries):
    for n in range(15):
        VersionFactory(module=ModuleFactory(code=f"ALP-N-{n:03d}", brand=brand_a, owner=author_a))
    with django_assert_max_num_queries(25):
        assert client_a.get(reverse("admin:content_contentmodule_changelist")).status_code == 200
    with django_assert_max_num_queries(25):
        assert client_a.get(reverse("admin:content_moduleversion_changelist")).status_code == 200

