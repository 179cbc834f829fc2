"""A reviewer in a real browser: the journey map and a step preview, with screenshots.

Screenshots (docs/screenshots/ under `make screenshots`): journey-map.png and preview-email.png.
"""

import io

import pytest

from tests.screenshots import save as save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]



@pytest.fixture
def demo_journeys(monkeypatch, settings, live_server):
    from cms.celery import app
    from demo import content as content_demo
    from demo import journeys as demo
    from tests.demo.test_journeys import _reach_target_states

    monkeypatch.setattr(app.conf, "task_always_eager", True)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.TESSERA_PUBLIC_BASE_URL = live_server.url  # images load from the server under test
    content_demo.load(io.StringIO())
    _reach_target_states()
    demo.load(io.StringIO())
    from content.models import Brand
    from content.permissions import grant_author_brand
    from tests.factories import UserFactory

    user = UserFactory(username="map-reviewer", is_staff=True, password="map-reviewer-pass")
    grant_author_brand(user, Brand.objects.get(slug="cardiozen"))  # journey pages: by brand


@pytest.fixture
def page(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                     args=["--no-sandbox", "--disable-background-networking"])
        context = browser.new_context(viewport={"width": 1500, "height": 1000})
        page = context.new_page()
        page.console_problems = []
        page.on("console", lambda message: page.console_problems.append(message.text)
                if message.type == "error" else None)
        yield page
        context.close()
        browser.close()


def test_reviewer_reads_the_map_and_previews_a_step(demo_journeys, live_server, page):
    page.goto(f"{live_server.url}/admin/login/?next=/journeys/")
    page.fill("#id_username", "map-reviewer")
    page.fill("#id_password", "map-reviewer-pass")
    page.click("input[type=submit]")
    page.wait_for_selector(".journey-card")
    assert page.locator(".journey-card").count() == 3
    page.click("a[href='/journeys/cardiozen-hcp-new-to-therapy/map/']")
    page.wait_for_selector("table.journey-map")
    head = page.inner_text("table.journey-map thead")
    for stage in ("Awareness", "Interest", "Trial", "Adoption", "Ongoing use", "Advocacy"):
        assert stage in head
    assert page.locator("li.mod.status-ok").count() > 5
    assert page.locator("li.mod.status-blocked").count() >= 1  # the expired congress CTA
    assert page.locator("svg path.edge").count() >= 10
    save_screenshot(page, "journey-map.png", full_page=True)

    page.locator("#step-awareness-email").get_by_role("link", name="preview").click()
    page.wait_for_selector("#preview-email iframe")
    email_frame = page.frame_locator("#preview-email iframe")
    assert "Dr. Morgan" in email_frame.locator("body").inner_text()
    assert "Compliant" in page.inner_text("#preview-email")
    assert "Important Safety Information" in email_frame.locator("body").inner_text()
    save_screenshot(page.locator("#preview-email"), "preview-email.png")

    # A congress step previews as a handout (tests/e2e/test_design_previews.py: each channel).
    page.goto(f"{live_server.url}/journeys/cardiozen-hcp-new-to-therapy/steps/congress-booth/preview/")
    reasons = page.inner_text("#preview-handout .pv-reasons")
    assert "expired" in reasons and "CZN-HCP-CTA-CONGRESS-US" in reasons
    assert not [p for p in page.console_problems if "Content Security Policy" in p]
