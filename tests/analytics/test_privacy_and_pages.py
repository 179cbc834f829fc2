"""k-anonymity through every layer a person or a channel touches: a journey with 4
recipients at a step shows "< 5" on the page, in the CSV and in the API — never the 4.
Also: who may see the page and the API (brand rule, the analytics scope of tokens)."""

import datetime as dt
import re

import pytest
from django.core.cache import cache
from django.urls import reverse

from analytics import rollups
from analytics.models import AnalyticsGrant
from delivery.tokens import create_token
from tests.factories import UserFactory

from .conftest import T0, add_event

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


@pytest.fixture
def four_at_b(mini):
    """9 recipients at a (5 coherent... all opened), 4 of them reach b, 5 reach c."""
    j, s = mini["journey"], mini["steps"]
    for n in range(9):
        add_event(j, s["a"], f"p{n}", "opened" if n < 4 else "ignored",
                  T0 + dt.timedelta(hours=n))
        step = s["b"] if n < 4 else s["c"]
        add_event(j, step, f"p{n}", "clicked", T0 + dt.timedelta(days=1, hours=n))
    rollups.run()
    return mini


def superuser():
    return UserFactory(username="analyst", is_superuser=True, is_staff=True)


def test_four_recipients_at_a_step_show_as_under_five_everywhere(client, four_at_b):
    client.force_login(superuser())
    url = reverse("analytics:journey", args=["mini"])
    page = client.get(url).content.decode()
    row_b = re.search(r"<th scope=\"row\">Interest</th><td>b</td><td>portal</td><td>(.*?)</td>", page)
    assert row_b and row_b.group(1) == "&lt; 5"
    assert re.search(r"<th scope=\"row\">b</th><td>portal</td><td>0</td><td>&lt; 5</td>", page)  # touchpoints

    csv = client.get(url, {"csv": "funnel"}).content.decode()
    assert "Interest,b,portal,< 5" in csv and "Interest,c,email,5" in csv
    assert ",4," not in csv and not csv.rstrip().endswith(",4")

    api = client.get("/api/v1/analytics/journeys/mini/").json()
    interest = api["funnel"][1]
    assert interest["reached"] == 9
    assert {s["step"]: s["reached"] for s in interest["steps"]} == {"b": "< 5", "c": 5}
    assert api["min_cohort"] == 5
    # The four are not recoverable from a rate either: the a→b moves are shown as "< 5".
    off = {(o["from"], o["to"]): o["recipients"] for o in api["coherence"]["off_path"]}
    assert all(v == "< 5" or v == 0 or v >= 5 for v in off.values())


def test_lowering_the_threshold_shows_the_count(client, four_at_b, settings):
    settings.TESSERA_MIN_COHORT = 2
    client.force_login(superuser())
    api = client.get("/api/v1/analytics/journeys/mini/").json()
    assert {s["step"]: s["reached"] for s in api["funnel"][1]["steps"]} == {"b": 4, "c": 5}


def test_an_author_of_another_brand_cannot_see_the_page(client, four_at_b):
    client.force_login(UserFactory(username="stranger"))
    assert client.get(reverse("analytics:journey", args=["mini"])).status_code == 404
    assert client.get("/api/v1/analytics/journeys/mini/").status_code == 404


def test_a_channel_token_needs_the_analytics_scope(client, four_at_b):
    token, key = create_token(name="BI export", channels=["email"], jurisdictions=["US"])
    headers = {"HTTP_AUTHORIZATION": f"Token {key}"}
    refused = client.get("/api/v1/analytics/journeys/mini/", **headers)
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["code"] == "analytics_scope_required"
    AnalyticsGrant.objects.create(token=token)
    ok = client.get("/api/v1/analytics/journeys/mini/", **headers)
    assert ok.status_code == 200 and ok.json()["funnel"][0]["reached"] == 9


def test_a_bad_date_range_is_a_400_not_a_500(client, four_at_b):
    client.force_login(superuser())
    bad = client.get("/api/v1/analytics/journeys/mini/", {"start": "2026-03-05",
                                                          "end": "2026-03-01"})
    assert bad.status_code == 400
    page = client.get(reverse("analytics:journey", args=["mini"]),
                      {"start": "2026-03-05", "end": "2026-03-01"})
    assert page.status_code == 200 and "must not be after" in page.content.decode()


def test_the_governance_dashboard_lists_every_touchpoint_per_market(client, four_at_b):
    client.force_login(superuser())
    response = client.get(reverse("analytics:governance"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Coverage" in body and ">a</td><td>US</td>" in body
    csv = client.get(reverse("analytics:governance"), {"csv": "coverage"}).content.decode()
    assert csv.splitlines()[0].startswith("Journey,Step,Market,Locale,today,in 30 days")
    assert any(line.startswith("Mini journey,e,US,en,empty") for line in csv.splitlines())


def test_the_endpoint_is_in_the_openapi_schema(client):
    client.force_login(superuser())
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/v1/analytics/journeys/{slug}/" in schema and "JourneyAnalytics" in schema
