"""Review API: annotations listed, created, resolved, reopened by people; channel tokens and
other brands refused; refusals keep their workflow codes."""

import pytest
from rest_framework.test import APIClient

from approvals.models import Annotation, AuditEntry
from approvals.snapshots import rendered_blocks
from content.permissions import grant_author_brand
from tests.api.conftest import make_token, token_client  # noqa: F401 - fixture
from tests.factories import BrandFactory, ModuleFactory, UserFactory, VersionFactory

from .helpers import sign

pytestmark = pytest.mark.django_db


def person(user, brand=None):
    """A signed-in API client; with `brand`, an author of that brand (authors see only
    the brands they author, reviewers every brand)."""
    if brand is not None:
        grant_author_brand(user, brand)
    client = APIClient(enforce_csrf_checks=False)
    client.force_login(user)
    return client


def url(version):
    return f"/api/v1/modules/{version.module.code}/versions/{version.number}/annotations/"


def codes(response):
    return [e["code"] for e in response.json()["errors"]]


def text_anchor(version):
    return {"exact": " ".join(rendered_blocks(version)["body"].split()[:2]), "block": "body"}


def test_a_reviewer_annotates_lists_and_the_author_resolves(submitted, reviewers):
    legal = person(reviewers["legal"])
    created = legal.post(url(submitted), {"kind": "text", "anchor": text_anchor(submitted),
                                          "body": "Source?"}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["role"], body["state"], body["round"], body["anchor"]["exact"]) == (
        "legal", "open", 1, "Hello Dr.")
    assert body["round_label"] == f"v{submitted.number} · round 1"
    author = person(submitted.created_by, submitted.module.brand)
    listed = author.get(url(submitted))
    assert [a["id"] for a in listed.json()] == [body["id"]]
    # The open annotation blocks legal's approval (the screens' signing refuses the same).
    from approvals.errors import ApprovalError

    with pytest.raises(ApprovalError):
        sign(submitted, reviewers["legal"], "legal")
    resolved = author.post(f"/api/v1/annotations/{body['id']}/resolve/",
                                                 {"note": "Ref 2"}, format="json")
    assert resolved.status_code == 200 and resolved.json()["state"] == "resolved"
    assert resolved.json()["resolution_note"] == "Ref 2"
    reopened = legal.post(f"/api/v1/annotations/{body['id']}/reopen/", {}, format="json")
    assert reopened.status_code == 200 and reopened.json()["state"] == "open"
    assert AuditEntry.objects.filter(event__startswith="annotation_").count() == 3


@pytest.mark.parametrize("payload,status,code", [
    ({"kind": "text", "anchor": {"exact": "nowhere to be found"}, "body": "x"}, 400,
     "invalid_anchor"),
    ({"kind": "text", "anchor": {"exact": "Hello"}, "body": ""}, 400, "blank"),
    ({"kind": "sticker", "anchor": {}, "body": "x"}, 400, "invalid_choice"),
    ({"kind": "text", "anchor": "Hello", "body": "x"}, 400, "not_a_dict"),
    ({"kind": "text", "anchor": {"exact": "Hello"}, "body": "x", "role": "medical"}, 403,
     "role_not_held"),
])
def test_bad_requests_are_refused_with_codes(submitted, reviewers, payload, status, code):
    response = person(reviewers["legal"]).post(url(submitted), payload, format="json")
    assert response.status_code == status, response.content
    assert codes(response) == [code]
    assert not Annotation.objects.exists()


def test_deciding_role_and_author_refused_with_workflow_codes(submitted, reviewers):
    author = person(submitted.created_by, submitted.module.brand)
    response = author.post(url(submitted), {"kind": "text", "anchor": text_anchor(submitted),
                                            "body": "x"}, format="json")
    assert response.status_code == 403 and codes(response) == ["role_not_held"]
    sign(submitted, reviewers["legal"], "legal")
    response = person(reviewers["legal"]).post(
        url(submitted), {"kind": "text", "anchor": text_anchor(submitted), "body": "x"},
        format="json")
    assert response.status_code == 409 and codes(response) == ["already_decided"]


def test_channel_tokens_and_other_brands_are_refused(submitted, reviewers, make_token):  # noqa: F811
    _token, key = make_token()
    assert codes(token_client(key).get(url(submitted))) == ["people_only"]
    other_brand_author = UserFactory()
    hidden = person(other_brand_author, BrandFactory()).get(url(submitted))
    assert hidden.status_code == 404 and codes(hidden) == ["not_found"]
    assert person(reviewers["legal"]).get(
        url(VersionFactory(module=ModuleFactory(code="NOPE-1"))).replace("NOPE-1", "NOPE-2")
    ).status_code == 404
    assert person(reviewers["legal"]).post("/api/v1/annotations/999999/resolve/", {},
                                           format="json").status_code == 404


def test_the_schema_documents_the_review_endpoints(client):
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/modules/{code}/versions/{number}/annotations/"])
    assert "post" in paths["/api/v1/annotations/{id}/resolve/"]
    assert "post" in paths["/api/v1/annotations/{id}/reopen/"]
