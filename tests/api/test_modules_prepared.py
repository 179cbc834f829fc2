"""The module list of channel tokens in prepared SQL (content.api.prepared) answers exactly
what the ORM path answers — same modules, versions, tags, order, pages, counts, errors and
ETags — for tokens in one or several jurisdictions and channels and every filter; and its
first page compiles no ORM query."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models.sql.compiler import SQLCompiler
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.pagination import PageNumberPagination

from cms.lru import LRUCache
from content.api import prepared, views
from content.api.serializers import ModuleSerializer, VersionSummarySerializer
from content.models import Audience, ContentModule, Stage
from tests.api.conftest import approve, approved_version, token_client
from tests.factories import BrandFactory, ModuleFactory, VersionFactory, term

pytestmark = pytest.mark.django_db
URL = "/api/v1/modules/"

TOKENS = {
    "us-email": (["email"], ["US"]),
    "us-de-email": (["email"], ["US", "DE"]),
    "us-de-email-portal": (["email", "portal"], ["US", "DE"]),
    "de-portal": (["portal"], ["DE"]),
    "us-sms": (["sms"], ["US"]),  # a scope nothing is tagged for
}
PARAMS = [
    {}, {"page": "2"}, {"page": "3"}, {"page": "last"}, {"page": "9"}, {"page": "x"},
    {"audience": "hcp"}, {"audience": "patient"}, {"audience": ""}, {"audience": "none"},
    {"stage": "awareness"}, {"stage": "decision"},
    {"jurisdiction": "de"}, {"jurisdiction": "US"}, {"jurisdiction": "FR"},
    {"channel": "portal"}, {"channel": "email"}, {"channel": "sms"},
    {"locale": "en"}, {"locale": "de"},
    {"state": "approved"}, {"state": "draft"}, {"state": "published"},
    {"kind": "isi"}, {"kind": "claim"}, {"kind": "nonsense"},
    {"brand": "alpha"}, {"brand": "beta"}, {"brand": "nobody"},
    {"audience": "hcp", "stage": "awareness", "kind": "claim", "brand": "alpha",
     "locale": "en", "state": "approved", "channel": "email", "jurisdiction": "us"},
    {"audience": "patient", "jurisdiction": "DE", "page": "1"},
    {"audience": "x" * 41}, {"jurisdiction": "USA"},
]


@pytest.fixture
def catalog(monkeypatch):
    """Pages of 10 modules; modules over two brands, enough for three pages, with versions inside, before and
    after their windows, withdrawn, expired, drafts, in other locales and markets, and a
    version tagged with two stages of the same code (of two audiences)."""
    monkeypatch.setattr(PageNumberPagination, "page_size", 10)
    now = timezone.now()
    alpha, beta = BrandFactory(slug="alpha"), BrandFactory(slug="beta")
    en, de = term_locale("en"), term_locale("de")
    for n in range(16):
        module = ModuleFactory(code=f"PRP-{n:03d}", brand=alpha if n % 3 else beta,
                               kind=("claim", "isi", "body")[n % 3])
        approved_version(module=module, tags={"stages": ["awareness"]} if n % 2 else None)
        if n % 4 == 0:  # a second, later version with other tags
            approved_version(module=module, locale=de, tags={
                "audience": "patient", "jurisdictions": ["DE"], "channels": ["portal"]})
        if n % 5 == 0:
            VersionFactory(module=module)  # a draft on top
    special = [
        approved_version(module=ModuleFactory(code="ZZ-FUTURE", brand=alpha),
                         valid_from=now + timedelta(days=2)),
        approved_version(module=ModuleFactory(code="ZZ-OLD", brand=alpha),
                         expires_at=now - timedelta(days=1)),
        approved_version(module=ModuleFactory(code="ZZ-WINDOW", brand=beta),
                         valid_from=now - timedelta(days=1), expires_at=now + timedelta(days=1)),
        approved_version(module=ModuleFactory(code="ZZ-BOTH", brand=beta, kind="isi"),
                         locale=en, tags={"jurisdictions": ["US", "DE"],
                                          "channels": ["email", "portal"]}),
    ]
    withdrawn = approved_version(module=ModuleFactory(code="ZZ-WITHDRAWN", brand=alpha))
    withdrawn.state = "withdrawn"
    withdrawn.save(update_fields=["state"])
    expired = approved_version(module=ModuleFactory(code="ZZ-EXPIRED", brand=alpha))
    expired.state = "expired"
    expired.save(update_fields=["state"])
    twice = VersionFactory(module=ModuleFactory(code="ZZ-TWO-STAGES", brand=alpha),
                           tags={"stages": ["awareness"]})
    twice.stages.add(Stage.objects.get_or_create(audience=term(Audience, "patient"),
                                                 code="awareness",
                                                 defaults={"name": "Awareness"})[0])
    approve(twice)
    assert ContentModule.objects.count() == 16 + 7
    return special


def term_locale(code):
    from content.models import Locale

    return term(Locale, code)


def get(client, params, *, use_prepared, monkeypatch):
    monkeypatch.setattr(views.ModuleListView, "use_prepared_sql", use_prepared)
    monkeypatch.setattr(views, "PAGES", LRUCache(8))  # build the page, don't reuse it
    response = client.get(URL, params)
    return response.status_code, response.content, response.get("ETag")  # the bytes


def test_every_filter_of_the_filterset_has_its_sql_and_every_field_is_rendered():
    assert prepared.SUPPORTED
    assert tuple(ModuleSerializer().fields) == prepared.MODULE_OUTPUT
    assert tuple(VersionSummarySerializer().fields) == prepared.VERSION_OUTPUT


def test_prepared_page_is_the_orm_page(catalog, make_token, monkeypatch):
    for scope, (channels, jurisdictions) in TOKENS.items():
        _, key = make_token(channels=channels, jurisdictions=jurisdictions, name=scope)
        client = token_client(key)
        listed = 0
        for params in PARAMS:
            orm = get(client, params, use_prepared=False, monkeypatch=monkeypatch)
            fast = get(client, params, use_prepared=True, monkeypatch=monkeypatch)
            assert fast == orm, (scope, params)
            if orm[0] == 200:
                listed += len(json.loads(orm[1])["results"])
        assert listed or scope == "us-sms", scope  # not only empty pages were compared


def test_the_two_stage_version_is_listed_once(catalog, make_token, monkeypatch):
    _, key = make_token()
    for use_prepared in (False, True):
        status, content, _ = get(token_client(key), {"stage": "awareness", "brand": "alpha",
                                                  "page": "last"},
                              use_prepared=use_prepared, monkeypatch=monkeypatch)
        module = next(m for m in json.loads(content)["results"] if m["code"] == "ZZ-TWO-STAGES")
        assert [v["number"] for v in module["versions"]] == [1]


def test_paging_covers_every_visible_module_once(catalog, make_token):
    _, key = make_token(channels=["email", "portal"], jurisdictions=["US", "DE"])
    client = token_client(key)
    pages = [client.get(URL).json()]
    while pages[-1]["next"]:
        pages.append(client.get(pages[-1]["next"]).json())
    first = pages[0]
    codes = [m["code"] for page in pages for m in page["results"]]
    assert codes == sorted(codes) and len(codes) == len(set(codes)) == first["count"]
    assert "ZZ-WINDOW" in codes and "ZZ-BOTH" in codes
    assert not {"ZZ-FUTURE", "ZZ-OLD", "ZZ-WITHDRAWN", "ZZ-EXPIRED"} & set(codes)
    assert len(pages) == 2 and first["next"].endswith("?page=2") and pages[1]["previous"]


def test_first_page_compiles_no_orm_query(catalog, make_token, monkeypatch):
    """After the token and the validity boundaries are known (cached per epoch), a page
    not yet cached runs the epoch read and four prepared statements — count, modules,
    versions, tags — and no ORM compilation."""
    _, key = make_token(channels=["email", "portal"], jurisdictions=["US", "DE"])
    client = token_client(key)
    assert client.get(URL).status_code == 200  # token scope, boundaries: now cached
    compiled = []
    original = SQLCompiler.as_sql
    monkeypatch.setattr(SQLCompiler, "as_sql",
                        lambda self, *a, **k: compiled.append(self.query) or original(self, *a, **k))
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL, {"audience": "hcp", "kind": "claim"})
    assert response.status_code == 200 and response.json()["results"]
    assert compiled == []
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == 5, statements
    assert "catalog_epoch" in statements[0]
    assert statements[1].startswith("SELECT COUNT(*)")


def test_first_page_after_a_catalog_change_compiles_no_orm_query(catalog, make_token,
                                                                 monkeypatch):
    """After a catalog change (a new epoch): the token's scope and the validity
    boundaries are read again, in plain SQL too."""
    _, key = make_token()
    client = token_client(key)
    before = client.get(URL)
    approved_version(valid_from=timezone.now() - timedelta(hours=1))
    compiled = []
    original = SQLCompiler.as_sql
    monkeypatch.setattr(SQLCompiler, "as_sql",
                        lambda self, *a, **k: compiled.append(self.query) or original(self, *a, **k))
    with CaptureQueriesContext(connection) as queries:
        after = client.get(URL, HTTP_IF_NONE_MATCH=before["ETag"])
    assert after.status_code == 200 and after["ETag"] != before["ETag"]
    assert after.json()["count"] == before.json()["count"] + 1
    assert compiled == []
    assert len(queries.captured_queries) == 7  # epoch, token, boundaries, 4 for the page


def test_the_same_page_again_is_cached_and_a_poll_is_304(catalog, make_token):
    _, key = make_token()
    client = token_client(key)
    first = client.get(URL, {"kind": "isi"})
    with CaptureQueriesContext(connection) as queries:
        again = client.get(URL, {"kind": "isi"})
        poll = client.get(URL, {"kind": "isi"}, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.json() == first.json() and again["ETag"] == first["ETag"]
    assert poll.status_code == 304
    assert len(queries.captured_queries) == 2  # the epoch, once per request
