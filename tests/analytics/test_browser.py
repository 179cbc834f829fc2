"""The analytics and governance pages in a real browser: charts drawn by the vendored
Chart.js under the strict CSP (no console errors), every chart with its table, axe-core
finds no serious or critical violation.

The analytics page also carries content performance per module version (a chart of the
rates over their 95 % intervals, with the where-used links), the flow view (a server-side
SVG of the moves over the designed map) and re-engagement after pauses: set up here with
deliveries of two versions at step a, two selector candidates at step c and silences at b.

Screenshots (docs/screenshots/ under `make screenshots`): analytics-journey.png,
analytics-content.png, analytics-flow.png, governance.png.
"""

import datetime as dt
import random
from collections import defaultdict

import pytest

from tests.axe import assert_no_serious_axe_violations
from tests.screenshots import folder as screenshot_folder
from tests.screenshots import save as save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(live_server, monkeypatch, settings):
    from playwright.sync_api import sync_playwright

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # A cache of this test's own: the default file cache (var/cache) outlives test runs, and
    # a fresh database repeats journey ids and rollup watermarks, so a view cached by an
    # earlier run would be served.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "analytics-browser"}}
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                     args=["--no-sandbox", "--disable-background-networking"])
        page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
        page.problems = []
        page.on("console", lambda m: page.problems.append(m.text) if m.type == "error"
                and "Failed to load resource" not in m.text else None)
        page.on("response", lambda r: page.problems.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("favicon.ico") else None)
        yield page
        browser.close()


def serve_content(mini):
    """Deliveries for the generated recipients: HEAD v1 or v2 (a fixed slot) at a, CTA-X or
    CTA-Y (a selector slot) at c; a silence that pauses at b, with some coming back."""
    from analytics import rollups
    from analytics.models import RecipientStep
    from delivery.models import DeliveredVersion, Delivery
    from journeys.models import EngagementEvent, Enrollment, Slot, Transition
    from tests.factories import ModuleFactory, VersionFactory

    j, s = mini["journey"], mini["steps"]
    head = ModuleFactory(code="HEAD", brand=j.brand, kind="headline")
    head_versions = [VersionFactory(module=head, number=1), VersionFactory(module=head, number=2)]
    ctas = [VersionFactory(module=ModuleFactory(code=code, brand=j.brand, kind="cta"), number=1)
            for code in ("CTA-X", "CTA-Y")]
    Slot.objects.create(step=s["a"], module=head, order=1)
    Slot.objects.create(step=s["c"], selector_kind="cta", order=1)
    hashes = dict(Enrollment.objects.filter(journey=j).values_list("pk", "recipient_hash"))
    served = defaultdict(list)
    for n, (enrollment_id, step_id, first_at) in enumerate(RecipientStep.objects.filter(
            journey=j, step__in=[s["a"], s["c"]]).values_list("enrollment_id", "step_id",
                                                            "first_at").order_by("pk")):
        step = s["a"] if step_id == s["a"].pk else s["c"]
        versions = head_versions if step == s["a"] else ctas
        served[step.key].append((hashes[enrollment_id], versions[n % 2], first_at))
    for key, rows in served.items():
        step = s[key]
        for pseudonym, version, at in rows:
            delivery = Delivery.objects.create(
                served_at=at - dt.timedelta(hours=1), channel=step.channel.code,
                jurisdiction="US", locale="en", journey_slug=j.slug, step_key=key,
                recipient_pseudonym=pseudonym, output_sha256="0" * 64, manifest={})
            DeliveredVersion.objects.create(delivery=delivery, version=version,
                                            channel=step.channel.code, jurisdiction="US")
    Transition.objects.create(from_step=s["b"], event_type="no_engagement_for", days=30,
                              pause=True)
    at_b = list(RecipientStep.objects.filter(journey=j, step=s["b"]).values_list(
        "enrollment_id", "last_at").order_by("pk")[:30])
    for n, (enrollment_id, last_at) in enumerate(at_b):  # paused after their last event
        paused_at = last_at + dt.timedelta(days=30)
        EngagementEvent.objects.create(enrollment_id=enrollment_id, step=s["b"], days=30,
                                       event_type="no_engagement_for", occurred_at=paused_at)
        if n % 3:  # two in three come back, 1 to 9 days later
            EngagementEvent.objects.create(enrollment_id=enrollment_id, step=s["b"],
                                           event_type="opened",
                                           occurred_at=paused_at + dt.timedelta(days=1 + n % 9))
    at_c = RecipientStep.objects.filter(journey=j, step=s["c"]).values_list(
        "enrollment_id", "last_at").order_by("pk")[:12]
    for enrollment_id, last_at in at_c:  # off the designed paths: c → e
        EngagementEvent.objects.create(enrollment_id=enrollment_id, step=s["e"],
                                       event_type="opened",
                                       occurred_at=last_at + dt.timedelta(days=2))
    rollups.run()


def test_analytics_and_governance_pages(mini, page, live_server):
    from analytics import rollups
    from demo import events as demo_events
    from tests.factories import UserFactory

    demo_events.generate(mini["journey"], [demo_events.pseudonym("mini", n) for n in range(300)],
                         random.Random("15:browser"),
                         dt.datetime.now(dt.UTC))
    rollups.run()
    serve_content(mini)
    UserFactory(username="analyst", is_superuser=True, is_staff=True)
    page.goto(f"{live_server.url}/review/login/")
    page.fill("#id_username", "analyst")
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_load_state()

    page.goto(f"{live_server.url}/journeys/mini/analytics/")
    page.wait_for_function("() => window.Chart && Object.keys(Chart.instances).length >= 7")
    charts = page.locator("canvas[data-chart]")
    assert charts.count() == 7
    for name in ("funnel", "velocity", "touchpoints", "daily", "time_in_stage", "content",
                 "content_versions", "content_selectors", "flows", "reengagement"):
        assert page.locator(f"#{name} table tbody tr").count() >= 1, name
        assert page.locator(f"#{name} a.an-csv").get_attribute("href").endswith(f"csv={name}")
    assert page.locator("text=Journey coherence").count() >= 1
    # Content performance: one row per version, each linking its admin page and its usage.
    content = page.locator("#content table tbody tr")
    assert content.count() == 4  # HEAD v1, v2, CTA-X v1, CTA-Y v1
    assert "/admin/content/moduleversion/" in content.first.locator("a").first.get_attribute("href")
    assert content.first.locator("a", has_text="where used").count() == 1
    assert page.locator("#content_versions tbody tr").first.locator("td").last.inner_text() in {
        "no clear difference", "HEAD v2 engages more", "HEAD v2 engages less"}
    # The flow view: the designed transitions and the drawn flows, named for screen readers.
    flow = page.locator("#flows svg")
    assert flow.get_attribute("role") == "img"
    assert flow.locator("path[stroke-dasharray='3 4']").count() == 4  # a→b, a→c, b→d, c→d
    assert flow.locator("path > title").count() >= 4
    assert flow.locator("path[stroke-dasharray='10 5']").count() >= 1  # c → e, off-path
    assert page.locator("#reengagement tbody tr").count() >= 2  # b and "all steps"
    assert_no_serious_axe_violations(page, "journey analytics")
    save_screenshot(page, "analytics-journey.png", full_page=True)
    for name in ("content", "flows"):  # the new sections alone, for docs/analytics.md
        page.locator(f"#{name}").screenshot(
            path=str(screenshot_folder() / f"analytics-{name.rstrip('s')}.png"))

    page.goto(f"{live_server.url}/review/governance/")
    page.wait_for_selector("h1:has-text('Content governance')")
    assert page.locator("#coverage-title + p + div table tbody tr").count() == 5  # a–e in US
    assert_no_serious_axe_violations(page, "governance dashboard")
    save_screenshot(page, "governance.png", full_page=True)
    assert page.problems == []
