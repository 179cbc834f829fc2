import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from rest_framework.test import APIClient

from content.permissions import grant_author_brand
from tests.api.conftest import approve, approved_version, token_client
from tests.factories import BrandFactory, ModuleFactory, UserFactory, VersionFactory

pytestmark = pytest.mark.django_db


def codes(response):
    return [e["code"] for e in response.json()["errors"]]


def test_channel_token_sees_only_approved_in_window_in_scope_versions(make_token):
    _, key = make_token(channels=["email"], jurisdictions=["US"])
    visible = approved_version()
    draft = VersionFactory()
    expired = approved_version(expires_at=timezone.now() - timezone.timedelta(days=1))
    future = approved_version(valid_from=timezone.now() + timezone.timedelta(days=3))
    german = approved_version(tags={"jurisdictions": ["DE"]})
    portal = approved_version(tags={"channels": ["portal"]})
    response = token_client(key).get("/api/v1/modules/")
    assert response.status_code == 200
    listed = {m["code"] for m in response.json()["results"]}
    assert listed == {visible.module.code}
    for hidden in (draft, expired, future, german, portal):
        detail = token_client(key).get(f"/api/v1/modules/{hidden.module.code}/")
        assert detail.status_code == 404
        assert codes(detail) == ["not_found"]
    body = token_client(key).get(f"/api/v1/modules/{visible.module.code}/").json()
    assert [v["state"] for v in body["versions"]] == ["approved"]
    assert "Hello" in body["versions"][0]["body_html"]


def test_channel_token_cannot_see_a_newer_draft_of_a_listed_module(make_token):
    _, key = make_token()
    approved = approved_version()
    approved.module.new_version(author=approved.created_by)
    body = token_client(key).get(f"/api/v1/modules/{approved.module.code}/").json()
    assert [v["number"] for v in body["versions"]] == [1]


def test_module_list_filters_by_every_tag(make_token):
    _, key = make_token(channels=["email", "portal"], jurisdictions=["US", "DE"])
    a = approved_version(tags={"audience": "hcp", "stages": ["awareness"]})
    b = approved_version(tags={"audience": "patient", "channels": ["portal"],
                               "jurisdictions": ["DE"]}, module=ModuleFactory(kind="isi"))
    client = token_client(key)

    def listed(**params):
        response = client.get("/api/v1/modules/", params)
        assert response.status_code == 200, response.content
        return {m["code"] for m in response.json()["results"]}

    assert listed() == {a.module.code, b.module.code}
    assert listed(audience="patient") == {b.module.code}
    assert listed(stage="awareness") == {a.module.code}
    assert listed(jurisdiction="de") == {b.module.code}
    assert listed(channel="portal") == {b.module.code}
    assert listed(locale="en") == {a.module.code, b.module.code}
    assert listed(locale="de") == set()
    assert listed(state="approved") == {a.module.code, b.module.code}
    assert listed(kind="isi") == {b.module.code}
    assert listed(brand=a.module.brand.slug) == {a.module.code}


def test_invalid_filter_value_is_a_400_naming_the_field(channel_client):
    response = channel_client.get("/api/v1/modules/", {"state": "published"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "state"
    assert codes(response) == ["invalid_choice"]


def test_filter_outside_token_scope_is_403_with_reason(make_token):
    _, key = make_token(channels=["email"], jurisdictions=["US"])
    client = token_client(key)
    assert codes(client.get("/api/v1/modules/", {"channel": "sms"})) == ["channel_out_of_scope"]
    response = client.get("/api/v1/modules/", {"jurisdiction": "DE"})
    assert response.status_code == 403
    assert codes(response) == ["jurisdiction_out_of_scope"]


def test_person_sees_only_their_brands_and_other_brand_detail_is_404():
    mine, theirs = BrandFactory(), BrandFactory()
    author = UserFactory()
    Group.objects.get_or_create(name="authors")[0].user_set.add(author)
    grant_author_brand(author, mine)
    my_version = VersionFactory(module=ModuleFactory(brand=mine))
    their_version = approved_version(module=ModuleFactory(brand=theirs))
    client = APIClient()
    client.force_login(author)
    listed = {m["code"] for m in client.get("/api/v1/modules/").json()["results"]}
    assert listed == {my_version.module.code}
    response = client.get(f"/api/v1/modules/{their_version.module.code}/")
    assert response.status_code == 404
    response = client.get(f"/api/v1/modules/{their_version.module.code}/versions/1/usage/")
    assert response.status_code == 404
    # A person sees drafts of their own brand, with their state.
    body = client.get(f"/api/v1/modules/{my_version.module.code}/").json()
    assert body["versions"][0]["state"] == "draft"


def test_module_list_query_count_does_not_grow_with_page_size(channel_client,
                                                              django_assert_max_num_queries):
    for _ in range(30):
        approved_version(tags={"stages": ["awareness"]})
    with django_assert_max_num_queries(12):
        response = channel_client.get("/api/v1/modules/")
    assert response.json()["count"] == 30


def test_version_detail_and_unknown_version(channel_client):
    version = approved_version()
    ok = channel_client.get(f"/api/v1/modules/{version.module.code}/versions/1/")
    assert ok.status_code == 200 and ok.json()["sha256"] == version.sha256
    missing = channel_client.get(f"/api/v1/modules/{version.module.code}/versions/9/")
    assert missing.status_code == 404 and codes(missing) == ["not_found"]


def test_usage_and_unused_are_for_people_not_tokens(channel_client):
    version = approved_version()
    response = channel_client.get(f"/api/v1/modules/{version.module.code}/versions/1/usage/")
    assert response.status_code == 403 and codes(response) == ["people_only"]
    assert codes(channel_client.get("/api/v1/modules/unused/")) == ["people_only"]


def test_unused_lists_approved_versions_nobody_binds_or_delivered():
    admin = UserFactory(is_superuser=True, is_staff=True)
    unused = approved_version()
    VersionFactory()  # a draft is not a re-certification candidate
    client = APIClient()
    client.force_login(admin)
    body = client.get("/api/v1/modules/unused/").json()
    assert [r["module"] for r in body["results"]] == [unused.module.code]
    usage = client.get(f"/api/v1/modules/{unused.module.code}/versions/1/usage/").json()
    assert usage == {"module": unused.module.code, "version": 1, "state": "approved",
                     "steps": [], "deliveries": [], "total_deliveries": 0}


def test_approve_helper_keeps_content():
    version = approve(VersionFactory())
    assert version.state == "approved"
