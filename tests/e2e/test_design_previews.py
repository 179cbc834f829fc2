"""One design and previews that match, in a real browser with the demo data: the review
inbox, the journeys index and previews (email, SMS on the patient journey, handout) at
1,440 px and 390 px — axe-core finds no serious or critical violation and the page never
scrolls sideways at 390 px; the header is the same everywhere and reaches the other areas;
the email frame is as tall as the email (its safety information is visible).

Screenshots (docs/screenshots/ under `make screenshots`): design-inbox-390.png, design-review-390.png,
design-journeys-390.png, design-map-390.png, preview-email-fitted.png, preview-sms.png, preview-handout.png, admin-index.png.
"""

import io

import pytest

from tests.axe import assert_no_horizontal_scroll, assert_no_serious_axe_violations
from tests.screenshots import save as save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDE, PHONE = {"width": 1440, "height": 900}, {"width": 390, "height": 844}


@pytest.fixture
def demo(monkeypatch, settings, live_server):
    from cms.celery import app
    from demo import approvals as approvals_demo
    from demo import content as content_demo
    from demo import journeys as journeys_demo

    monkeypatch.setattr(app.conf, "task_always_eager", True)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.TESSERA_PUBLIC_BASE_URL = live_server.url  # images load from the server under test
    content_demo.load(io.StringIO())
    approvals_demo.load(io.StringIO())
    journeys_demo.load(io.StringIO())


@pytest.fixture
def browser(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                      args=["--no-sandbox", "--disable-background-networking"])
        yield chromium
        chromium.close()


def logged_in(browser, base, username, password):
    context = browser.new_context(viewport=WIDE)
    page = context.new_page()
    page.csp = []
    page.on("console", lambda m: page.csp.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{base}/review/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Inbox')")
    return context, page


def check_both_widths(page, label, shot=None):
    """axe at 1,440 px, then axe and no sideways scroll at 390 px (the page as loaded)."""
    page.set_viewport_size(WIDE)
    assert_no_serious_axe_violations(page, f"{label} at 1440 px")
    page.set_viewport_size(PHONE)
    assert_no_serious_axe_violations(page, f"{label} at 390 px")
    assert_no_horizontal_scroll(page, f"{label} at 390 px")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    if shot:
        save_screenshot(page, shot, full_page=True)
    page.set_viewport_size(WIDE)


def test_one_header_everywhere_accessible_and_no_sideways_scroll_at_390(demo, live_server, browser):
    base = live_server.url
    context, page = logged_in(browser, base, "medical", "tessera-medical")

    # The header: product navigation, the user's name and role; a skip link first.
    header = page.locator("header.ts-header")
    assert header.get_by_role("link", name="Review").get_attribute("aria-current") == "page"
    assert "Mira Keller" in header.inner_text() and "Medical" in header.inner_text()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.evaluate("document.activeElement.blur()")
    check_both_widths(page, "review inbox", "design-inbox-390.png")
    page.set_viewport_size(PHONE)
    assert page.get_by_role("button", name="Log out").is_visible()  # not pushed off screen

    # A review page (diff, preview frames, signing form) fits a phone too.
    page.set_viewport_size(WIDE)
    page.locator("main a[href^='/review/v/']").first.click()
    page.wait_for_url("**/review/v/**")
    check_both_widths(page, "review page", "design-review-390.png")

    page.goto(f"{base}/review/")
    header = page.locator("header.ts-header")
    header.get_by_role("link", name="Journeys").click()
    page.wait_for_selector(".journey-card")
    assert page.locator("header.ts-header a[aria-current=page]").inner_text() == "Journeys"
    check_both_widths(page, "journeys index", "design-journeys-390.png")

    # The map on a phone: the page stays put, the map scrolls by stage beside sticky headings.
    page.goto(f"{base}/journeys/cardiozen-hcp-new-to-therapy/map/")
    page.set_viewport_size(PHONE)
    assert_no_horizontal_scroll(page, "journey map at 390 px")
    rowhead = page.locator("table.journey-map tbody .rowhead").first
    assert rowhead.evaluate("e => getComputedStyle(e).position") == "sticky"
    scroller = page.locator(".map-scroll")
    assert scroller.evaluate("e => getComputedStyle(e).scrollSnapType").startswith("x")
    assert scroller.evaluate("e => e.scrollWidth > e.clientWidth")
    stage = page.locator("table.journey-map thead th:not(.rowhead)").first.bounding_box()
    assert 390 - 24 - 94 - 4 <= stage["width"] <= 390  # one stage per screen beside the headings
    scroller.evaluate("e => { e.scrollLeft = e.clientWidth; }")
    assert rowhead.bounding_box()["x"] <= 16  # the headings stayed
    save_screenshot(page, "design-map-390.png")
    page.set_viewport_size(WIDE)

    # Email preview: the frame is as tall as the email, so its ISI is on the page.
    page.goto(f"{base}/journeys/cardiozen-hcp-new-to-therapy/steps/awareness-email/preview/")
    frame = page.locator("#preview-email iframe")
    page.wait_for_selector("#preview-email iframe[data-fitted=true]")
    inner = page.frame_locator("#preview-email iframe").locator("body")
    assert "Dr. Morgan" in inner.inner_text()
    hidden = page.frame_locator("#preview-email iframe").locator("html").evaluate(
        "e => e.scrollHeight - window.innerHeight")
    assert hidden <= 2 and frame.bounding_box()["height"] > 900  # nothing left below the fold
    assert "Important Safety Information" in inner.inner_text()
    check_both_widths(page, "email preview")
    save_screenshot(page.locator("#preview-email"), "preview-email-fitted.png")

    # SMS on the patient journey: text with its segments, a patient sample.
    page.goto(f"{base}/journeys/cardiozen-patient/steps/pickup-sms/preview/")
    sms = page.locator("#preview-sms")
    assert sms.locator("#sms-segments").inner_text().isdigit()
    assert "Morgan" not in page.inner_text("main")
    assert page.locator("#pv-sample option").count() == 2
    page.select_option("#pv-sample", "patient-caregiver")
    page.click("button:has-text('Show preview')")
    page.wait_for_url("**sample=patient-caregiver**")
    check_both_widths(page, "SMS preview")
    save_screenshot(page.locator("#preview-sms"), "preview-sms.png")

    # Congress handout: printable page with a PDF link, or refusals that link to the fix.
    page.goto(f"{base}/journeys/cardiozen-hcp-new-to-therapy/steps/congress-booth/preview/")
    handout = page.locator("#preview-handout")
    if handout.locator("#refusals").count():
        assert handout.locator("#refusals a[href^='/admin/content/contentmodule/']").count() >= 1
    else:
        assert handout.locator("#handout-pdf").count() == 1
    check_both_widths(page, "handout preview")
    save_screenshot(page, "preview-handout.png", full_page=True)
    assert not page.csp, page.csp
    context.close()


def test_the_admin_wears_the_same_header_and_links_to_review_and_journeys(demo, live_server, browser):
    base = live_server.url
    context = browser.new_context(viewport=WIDE)
    page = context.new_page()
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "author.cardiozen")
    page.fill("#id_password", "tessera-author")
    page.click("input[type=submit]")
    header = page.locator("header.ts-header")
    header.wait_for()
    assert header.get_by_role("link", name="Content").get_attribute("aria-current") == "page"
    assert header.get_by_role("link", name="Review").get_attribute("href") == "/review/"
    assert header.get_by_role("link", name="Journeys").get_attribute("href") == "/journeys/"
    assert "Camille Durand" in header.inner_text() and "Authors" in header.inner_text()
    assert "WELCOME" not in page.inner_text("body").upper().split("CAMILLE")[0]
    # Light theme only: the dark-mode sheet is not loaded.
    assert page.locator("link[href*='dark_mode.css']").count() == 0
    assert_no_serious_axe_violations(page, "admin index at 1440 px")
    save_screenshot(page, "admin-index.png")

    # Date and time inputs each have a label (the stock widget left the time unlabelled).
    page.goto(f"{base}/admin/content/moduleversion/add/")
    assert page.locator("label[for=id_valid_from_1]").inner_text().startswith("Time")
    assert page.get_by_label("Time:").first.get_attribute("name") == "valid_from_1"
    assert_no_serious_axe_violations(page, "admin version form at 1440 px")
    context.close()
