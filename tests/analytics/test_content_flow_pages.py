"""Content performance, the flow view and re-engagement through the layers people and
channels touch (page, CSV, API), on a journey built for the purpose:

- step a has a fixed slot bound to module HEAD: 10 recipients were served HEAD v1 (5 of
  them opened at a), 10 were served HEAD v2 (9 opened); of the 20, the ones who did not
  open either ignored a (so they are enrolled) or never answered at all;
- step c has a selector slot (kind cta): 10 recipients were served CTA-X v1 (8 clicked at
  c), 10 were served CTA-Y v1 (5 clicked);
- 6 recipients were paused at b by 30 days of silence; 5 engaged again, 2, 2, 4, 6 and 10
  days later.

And the k-anonymity rule for the new sections: a journey where 4 recipients make each
figure shows "< 5" everywhere (page, CSV, API), never the 4.
"""

import csv
import datetime as dt
import io
import re

import pytest
from django.core.cache import cache
from django.urls import reverse

from analytics import rollups
from delivery.models import DeliveredVersion, Delivery
from journeys.models import EngagementEvent, Enrollment, Slot, Transition
from tests.factories import ModuleFactory, UserFactory, VersionFactory

from .conftest import T0, add_event

pytestmark = pytest.mark.django_db
API = "/api/v1/analytics/journeys/mini/"


@pytest.fixture(autouse=True)
def _own_cache(settings):
    """A cache of this module's own (the default file cache outlives test runs, and fresh
    databases repeat journey ids and watermarks)."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "analytics-content-flow"}}
    cache.clear()


def pseudonym(who: str) -> str:
    return f"{who:0>64}"[-64:]


def serve(step, who: str, version, at: dt.datetime):
    delivery = Delivery.objects.create(
        served_at=at, channel=step.channel.code, jurisdiction="US", locale="en",
        journey_slug=step.journey.slug, step_key=step.key, recipient_pseudonym=pseudonym(who),
        output_sha256="0" * 64, manifest={})
    DeliveredVersion.objects.create(delivery=delivery, version=version,
                                    channel=step.channel.code, jurisdiction="US")


def silence(journey, step, who: str, days: int, at: dt.datetime):
    enrollment, _ = Enrollment.objects.get_or_create(
        journey=journey, recipient_hash=pseudonym(who), defaults={"current_step": step})
    EngagementEvent.objects.create(enrollment=enrollment, step=step, days=days,
                                   event_type="no_engagement_for", occurred_at=at)


@pytest.fixture
def content(mini):
    j, s = mini["journey"], mini["steps"]
    head = ModuleFactory(code="HEAD", brand=j.brand, kind="headline")
    head_v1, head_v2 = VersionFactory(module=head, number=1), VersionFactory(module=head, number=2)
    Slot.objects.create(step=s["a"], module=head, order=1)
    Slot.objects.create(step=s["c"], selector_kind="cta", order=1)
    x = VersionFactory(module=ModuleFactory(code="CTA-X", brand=j.brand, kind="cta"), number=1)
    y = VersionFactory(module=ModuleFactory(code="CTA-Y", brand=j.brand, kind="cta"), number=1)
    for n in range(20):
        who, at = f"h{n}", T0 + dt.timedelta(hours=n)
        serve(s["a"], who, head_v1 if n < 10 else head_v2, at)
        if n < 5 or n >= 11:  # v1: h0-h4 open (5 of 10); v2: h11-h19 open (9 of 10)
            add_event(j, s["a"], who, "opened", at + dt.timedelta(hours=1))
        elif n % 2:  # some who did not open ignored; the others never answered
            add_event(j, s["a"], who, "ignored", at + dt.timedelta(hours=1))
    for n in range(20):
        who, at = f"h{n}", T0 + dt.timedelta(days=2, hours=n)
        serve(s["c"], who, x if n < 10 else y, at)
        if n < 8 or 10 <= n < 15:  # X: 8 of 10 click; Y: 5 of 10
            add_event(j, s["c"], who, "clicked", at + dt.timedelta(hours=1))
    Transition.objects.create(from_step=s["b"], event_type="no_engagement_for", days=30,
                              pause=True)
    for n, back in enumerate([2, 2, 4, 6, 10, None]):
        who = f"q{n}"
        add_event(j, s["a"], who, "opened", T0)
        add_event(j, s["b"], who, "opened", T0 + dt.timedelta(days=1))
        paused_at = T0 + dt.timedelta(days=31)
        silence(j, s["b"], who, 30, paused_at)
        if back is not None:
            add_event(j, s["b"], who, "clicked", paused_at + dt.timedelta(days=back))
    rollups.run()
    return {**mini, "versions": {"HEAD v1": head_v1, "HEAD v2": head_v2, "CTA-X v1": x,
                                 "CTA-Y v1": y}}


def analyst(client):
    client.force_login(UserFactory(username="analyst", is_superuser=True, is_staff=True))


def test_content_performance_per_version_in_the_api(client, content):
    analyst(client)
    data = client.get(API).json()["content"]
    versions = {f"{v['module']} v{v['version']}": v for v in data["versions"]}
    expected = {"recipients": 10, "engaged": 5, "rate": 0.5, "ci_low": 0.237, "ci_high": 0.763,
                "steps": ["a"], "deliveries": 10, "kind": "headline"}
    assert {k: versions["HEAD v1"][k] for k in expected} == expected
    assert (versions["HEAD v2"]["engaged"], versions["HEAD v2"]["rate"]) == (9, 0.9)
    assert (versions["HEAD v2"]["ci_low"], versions["HEAD v2"]["ci_high"]) == (0.596, 0.982)
    assert (versions["CTA-X v1"]["engaged"], versions["CTA-Y v1"]["engaged"]) == (8, 5)
    # HEAD v2 minus v1: 0.4, interval -0.002 to 0.676 (hand-computed in the measures test).
    [head] = data["module_comparisons"]
    assert head == {"module": "HEAD", "a": "HEAD v1", "b": "HEAD v2", "difference": 0.4,
                    "ci_low": -0.002, "ci_high": 0.676, "reading": "no clear difference"}
    [slot] = data["selector_slots"]
    assert (slot["step"], slot["kind"], slot["leader"]) == ("c", "cta", "CTA-X v1")
    assert [c["rate"] for c in slot["candidates"]] == [0.8, 0.5]
    [versus] = slot["comparisons"]
    assert (versus["b"], versus["difference"], versus["reading"]) == (
        "CTA-Y v1", -0.3, "no clear difference")


def test_content_performance_on_the_page_links_each_version_and_its_usage(client, content):
    analyst(client)
    page = client.get(reverse("analytics:journey", args=["mini"])).content.decode()
    v1 = content["versions"]["HEAD v1"]
    assert f'href="/admin/content/moduleversion/{v1.pk}/change/">HEAD v1</a>' in page
    assert f'href="/admin/delivery/moduleusage/{v1.pk}/change/">where used</a>' in page
    assert "no clear difference" in page
    assert 'id="content_selectors"' in page and "CTA-Y v1" in page
    rows = list(csv.reader(io.StringIO(client.get(
        reverse("analytics:journey", args=["mini"]), {"csv": "content"}).content.decode())))
    assert rows[0][:3] == ["Module version", "Kind", "Steps served"]
    head_v1 = next(r for r in rows if r[0] == "HEAD v1")
    assert head_v1[3:9] == ["10", "10", "5", "0.5", "0.237", "0.763"]
    assert head_v1[9] == f"/admin/delivery/moduleusage/{v1.pk}/change/"


def test_flows_over_the_map_in_the_api_page_and_csv(client, content):
    analyst(client)
    flows = {(f["from"], f["to"]): f for f in client.get(API).json()["flows"]}
    # 17 h-recipients answered at a; 13 clicked at c. The 11 who did both moved a → c
    # (designed); h6 and h10 clicked at c without answering at a: their path starts at c
    # (off-path, 2: "< 5"). The 6 q-recipients go a → b.
    assert flows[("start", "a")] == {"from": "start", "to": "a", "recipients": 23,
                                     "designed": True}
    assert flows[("a", "c")]["recipients"] == 11 and flows[("a", "b")]["recipients"] == 6
    assert flows[("start", "c")]["recipients"] == "< 5"
    assert flows[("start", "c")]["designed"] is False
    assert flows[("b", "d")] == {"from": "b", "to": "d", "recipients": 0, "designed": True}
    page = client.get(reverse("analytics:journey", args=["mini"])).content.decode()
    assert "<svg" in page and 'aria-labelledby="flow-svg-title flow-svg-desc"' in page
    assert re.search(r'<th scope="row">a</th><td>b</td><td>6</td><td>designed</td>', page)
    flow_csv = client.get(reverse("analytics:journey", args=["mini"]), {"csv": "flows"})
    assert "a,b,6,designed" in flow_csv.content.decode()


def test_reengagement_after_pauses_by_silence(client, content):
    analyst(client)
    rows = {r["step"]: r for r in client.get(API).json()["reengagement"]}
    # 6 paused at b; 5 engaged again after 2, 2, 4, 6, 10 days: median 4, p90 10 (⌈4.5⌉ = 5th).
    assert rows["b"] == {"step": "b", "paused": 6, "reengaged": 5, "share": 0.833,
                         "median_days": 4.0, "p90_days": 10.0}
    assert rows["all steps"]["paused"] == 6
    page = client.get(reverse("analytics:journey", args=["mini"])).content.decode()
    assert re.search(r'<th scope="row">b</th><td>6</td><td>5</td><td>0.833</td><td>4</td>'
                     r'<td>10</td>', page)


def test_time_in_stage_and_touchpoint_rates_are_on_the_page_and_in_the_api(client, content):
    analyst(client)
    page = client.get(reverse("analytics:journey", args=["mini"])).content.decode()
    assert 'id="time_in_stage"' in page and 'id="touchpoints"' in page
    for head in ("Opened", "Clicked", "Declined", "Ignored"):
        assert f'<th scope="col">{head}</th>' in page
    api = client.get(API).json()
    touch = {t["step"]: t for t in api["touchpoints"]}
    assert touch["a"]["deliveries"] == 20 and touch["a"]["reached"] == 23
    assert touch["c"]["clicked_rate"] == 1.0
    assert {t["stage"] for t in api["time_in_stage"]} == {"Awareness", "Interest", "Trial"}


def test_a_filter_reaches_the_new_sections(client, content):
    analyst(client)
    later = client.get(API, {"start": (T0 + dt.timedelta(days=2)).date().isoformat()}).json()
    versions = {f"{v['module']} v{v['version']}" for v in later["content"]["versions"]}
    assert versions == {"CTA-X v1", "CTA-Y v1"}  # HEAD went out on the first day only
    assert client.get(API, {"channel": "portal"}).json()["content"]["versions"] == []
    us = client.get(API, {"market": "US"}).json()
    assert {r["step"]: r["paused"] for r in us["reengagement"]} == {"b": 6, "all steps": 6}
    de = client.get(API, {"market": "DE"}).json()
    assert de["content"]["versions"] == [] and de["reengagement"] == [
        {"step": "all steps", "paused": 0, "reengaged": 0, "share": None, "median_days": None,
         "p90_days": None}]
    assert client.get(API, {"start": "2026-03-01", "end": "2026-03-02"}).json()[
        "reengagement"][-1]["paused"] == 0  # the pauses fell on 2026-04-02


# --- k-anonymity: four recipients everywhere ----------------------------------------------

@pytest.fixture
def four(mini):
    """Four recipients: served HEAD v1 at a, all opened, moved a → b, paused at b by
    silence, all four engaged again."""
    j, s = mini["journey"], mini["steps"]
    head = ModuleFactory(code="HEAD", brand=j.brand, kind="headline")
    v1 = VersionFactory(module=head, number=1)
    v2 = VersionFactory(module=head, number=2)
    Slot.objects.create(step=s["a"], module=head, order=1)
    Transition.objects.create(from_step=s["b"], event_type="no_engagement_for", days=30,
                              pause=True)
    for n in range(4):
        who = f"f{n}"
        serve(s["a"], who, v1, T0)
        serve(s["a"], f"g{n}", v2, T0)
        add_event(j, s["a"], who, "opened", T0 + dt.timedelta(hours=1))
        add_event(j, s["b"], who, "clicked", T0 + dt.timedelta(days=1))
        silence(j, s["b"], who, 30, T0 + dt.timedelta(days=31))
        add_event(j, s["b"], who, "opened", T0 + dt.timedelta(days=33))
    rollups.run()
    return mini


NEW_SECTIONS = ["content", "content_versions", "flows", "reengagement"]


def test_four_recipients_show_as_under_five_in_every_new_section(client, four):
    analyst(client)
    url = reverse("analytics:journey", args=["mini"])
    page = client.get(url).content.decode()
    for name in NEW_SECTIONS:
        section = re.search(rf'<section class="an-section" id="{name}".*?</section>', page,
                            re.S).group(0)
        cells = re.findall(r"<t[hd][^>]*>(?:<a [^>]*>)?([^<]*)", section.split("<tbody>")[1])
        assert "&lt; 5" in cells, name
        assert "4" not in cells, (name, cells)
        assert "0.5" not in cells and "1" not in cells, (name, cells)  # no rate of the four
        body = client.get(url, {"csv": name}).content.decode()
        values = [v for row in csv.reader(io.StringIO(body)) for v in row]
        assert "< 5" in values and "4" not in values and "1.0" not in values, (name, values)
    assert "<path" not in re.search(r"<svg.*?</svg>", page, re.S).group(0).split(
        "stroke-dasharray=\"3 4\"")[-1]  # no flow drawn, only the designed transitions

    api = client.get(API).json()
    [version_1, version_2] = api["content"]["versions"]
    for v in (version_1, version_2):
        assert v["recipients"] == v["rate"] == v["ci_low"] == v["ci_high"] == "< 5"
        assert v["deliveries"] == "< 5"
    [comparison] = api["content"]["module_comparisons"]
    assert comparison["difference"] == comparison["ci_low"] == "< 5"
    assert comparison["reading"] == "too few recipients to compare"
    flows = {(f["from"], f["to"]): f["recipients"] for f in api["flows"]}
    assert flows[("start", "a")] == "< 5" and flows[("a", "b")] == "< 5"
    assert all(v in ("< 5", 0) for v in flows.values())
    for row in api["reengagement"]:
        assert row["paused"] == row["reengaged"] == row["share"] == row["median_days"] == "< 5"


def test_the_new_sections_are_in_the_openapi_schema(client):
    analyst(client)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    for name in ("VersionPerformance", "ModuleComparison", "SelectorSlot", "Flow",
                 "Reengagement"):
        assert name in schema, name
