"""The analytics and governance pages in a real browser: charts drawn by the vendored
Chart.js under the strict CSP (no console errors), every chart with its table, axe-core
finds no serious or critical violation.

Screenshots (docs/screenshots/ under `make screenshots`): analytics-journey.png,
governance.png.
"""

import datetime as dt
import random

import pytest

from tests.axe import assert_no_serious_axe_violations
from tests.screenshots import save as save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(live_server, monkeypatch, settings):
    from playwright.sync_api import sync_playwright

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
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


def test_analytics_and_governance_pages(mini, page, live_server):
    from analytics import rollups
    from demo import events as demo_events
    from tests.factories import UserFactory

    demo_events.generate(mini["journey"], 300, random.Random("15:browser"),
                         dt.datetime.now(dt.UTC))
    rollups.run()
    UserFactory(username="analyst", is_superuser=True, is_staff=True)
    page.goto(f"{live_server.url}/review/login/")
    page.fill("#id_username", "analyst")
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_load_state()

    page.goto(f"{live_server.url}/journeys/mini/analytics/")
    page.wait_for_function("() => window.Chart && Object.keys(Chart.instances).length >= 4")
    charts = page.locator("canvas[data-chart]")
    assert charts.count() == 5
    for name in ("funnel", "velocity", "touchpoints", "daily"):
        assert page.locator(f"#{name} table tbody tr").count() >= 1
        assert page.locator(f"#{name} a.an-csv").get_attribute("href").endswith(f"csv={name}")
    assert page.locator("text=Journey coherence").count() >= 1
    assert_no_serious_axe_violations(page, "journey analytics")
    save_screenshot(page, "analytics-journey.png", full_page=True)

    page.goto(f"{live_server.url}/review/governance/")
    page.wait_for_selector("h1:has-text('Content governance')")
    assert page.locator("#coverage-title + p + div table tbody tr").count() == 5  # a–e in US
    assert_no_serious_axe_violations(page, "governance dashboard")
    save_screenshot(page, "governance.png", full_page=True)
    assert page.problems == []
