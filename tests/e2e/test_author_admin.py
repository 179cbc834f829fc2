"""An author in a real browser: log in, filter modules, open one, see its preview.

Screenshots (docs/screenshots/ under `make screenshots`): admin-modules.png and docs/screenshots/admin-preview.png for the README; admin-module-add.png (a claim written in the editor) and admin-version-ready.png (the version page ready to submit) for docs/authoring.md.
"""

import io

import pytest

from tests.e2e.pickers import pick
from tests.screenshots import save as save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]



@pytest.fixture
def demo_content(monkeypatch, settings):
    from cms.celery import app
    from demo import content as demo_content
    from demo.specs import target_states

    # Renditions in-process even when a broker is configured (no worker runs here).
    monkeypatch.setattr(app.conf, "task_always_eager", True)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    demo_content.load(io.StringIO())
    # Show the states the approvals demo would reach (its signatures are not needed for
    # these pictures, and its password re-entries would triple the test's time).
    from content.models import ModuleVersion

    for version in ModuleVersion.objects.select_related("module"):
        version.state = target_states()[version.module.code]
        version.save(update_fields=["state", "updated_at"])


@pytest.fixture
def page(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM stays in the server
    # thread and in fixtures that ran before, so Django's async guard has nothing to protect.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                     args=["--no-sandbox", "--disable-background-networking"])
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        yield context.new_page()
        context.close()
        browser.close()


def test_author_filters_opens_and_previews_a_module(demo_content, live_server, page):
    page.goto(f"{live_server.url}/admin/login/?next=/admin/content/contentmodule/")
    page.fill("#id_username", "author.cardiozen")
    page.fill("#id_password", "tessera-author")
    page.click("input[type=submit]")
    page.wait_for_selector("#result_list")
    assert "RSP-" not in page.inner_text("#result_list")  # the other brand stays hidden

    filters = page.locator("#changelist-filter")
    filters.get_by_role("link", name="Claim", exact=True).first.click()
    page.wait_for_url("**kind__exact=claim**")
    rows = page.inner_text("#result_list")
    assert "CZN-EFF-001-US" in rows and "CZN-HCP-SUBJ-AWR-US" not in rows
    save_screenshot(page, "admin-modules.png", full_page=False)

    page.get_by_role("link", name="CZN-EFF-001-US", exact=True).click()
    page.wait_for_selector("#contentmodule_form")
    assert "Approved" in page.inner_text(".inline-group")
    page.locator(".inline-related").get_by_role("link", name="Preview").first.click()
    page.wait_for_selector(".tessera-preview-frame")
    assert "Preview of CZN-EFF-001-US v1" in page.inner_text("#content")
    assert "Approved" in page.inner_text("#content")
    email = page.locator('[data-preview="email"]')
    assert "26%" in email.inner_text()
    assert email.bounding_box()["width"] == pytest.approx(600, abs=2)
    save_screenshot(page, "admin-preview.png", full_page=True)


def _axe_both_widths(page, label):
    from tests.axe import assert_no_serious_axe_violations

    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert_no_serious_axe_violations(page, f"{label} at {width} px")
    page.set_viewport_size({"width": 1400, "height": 900})


def test_author_writes_a_claim_with_a_footnote_and_submits_from_the_version_page(
        demo_content, live_server, page):
    from content.models import ModuleVersion

    page.goto(f"{live_server.url}/admin/login/?next=/admin/content/contentmodule/")
    page.fill("#id_username", "author.cardiozen")
    page.fill("#id_password", "tessera-author")
    page.click("input[type=submit]")
    page.wait_for_selector("#result_list")
    assert page.locator('a[href="/journeys/"]').count() >= 1  # admin -> journeys

    actions = 0
    page.get_by_role("link", name="Add content module").click(); actions += 1  # noqa: E702
    editor = page.locator(".tessera-editor .ProseMirror[contenteditable=true]")
    editor.wait_for()
    _axe_both_widths(page, "module add page")
    assert page.locator("#id_brand").input_value() != ""  # one-brand author: preselected
    page.fill("#id_code", "CZN-EFF-900-DE"); actions += 1  # noqa: E702
    page.select_option("#id_kind", "claim"); actions += 1  # noqa: E702
    page.fill("#id_title", "Efficacy: primary endpoint (DE, editor)"); actions += 1  # noqa: E702
    editor.click()
    page.keyboard.type("Cardiozen reduced the risk by 26%"); actions += 1  # noqa: E702
    page.select_option("#id_versions-0-body_html-footnote", "REF-ZENHF"); actions += 1  # noqa: E702
    assert page.locator(".ProseMirror sup.footnote").inner_text() == "1"
    save_screenshot(page, "admin-module-add.png", full_page=True)
    page.click("input[name=_save]"); actions += 1  # noqa: E702
    assert actions <= 8, actions  # create a claim with a citation (docs/authoring.md)

    page.wait_for_selector("#review-readiness")
    version = ModuleVersion.objects.get(module__code="CZN-EFF-900-DE")
    assert list(version.citations.values_list("code", flat=True)) == ["REF-ZENHF"]
    assert '<sup class="footnote cite-REF-ZENHF">1</sup>' in version.body_html
    assert "Tag at least one channel" in page.inner_text("#review-readiness")
    _axe_both_widths(page, "version page (draft)")

    # A personalisation chip, then the tags review needs; the checklist turns into the
    # submit button.
    page.locator(".tessera-editor .ProseMirror[contenteditable=true]").click()
    page.keyboard.press("End")
    page.select_option("#id_body_html-token", "last_name")
    assert page.locator(".ProseMirror .tessera-token-chip").inner_text() == "last name"
    pick(page, "id_audiences", "hcp")
    pick(page, "id_jurisdictions", "DE")
    pick(page, "id_channels", "email")
    with page.expect_navigation():
        page.click("input[name=_continue]")
    page.wait_for_selector("#review-readiness")
    assert page.locator("#submit-for-review").count() == 1, page.inner_text("#review-readiness")
    save_screenshot(page, "admin-version-ready.png", full_page=True)
    page.click("#submit-for-review")  # one click
    page.wait_for_url("**/review/v/**")
    version.refresh_from_db()
    assert version.state == "in_review"
    assert '<span class="token">{{ recipient.last_name }}</span>' in version.body_html
    assert '<sup class="footnote cite-REF-ZENHF">1</sup>' in version.body_html

    page.goto(f"{live_server.url}/admin/content/moduleversion/{version.pk}/change/")
    page.wait_for_selector("#recall-form")
    assert page.locator("input[name=_save]").count() == 0
    _axe_both_widths(page, "version page (in review)")
    page.goto(f"{live_server.url}/admin/content/contentmodule/{version.module_id}/change/")
    _axe_both_widths(page, "module change page")
