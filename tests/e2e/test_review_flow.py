"""MLR review in a real browser with the demo data: the author submits a draft, then the
medical, legal and regulatory reviewers each log in, find it in their inbox, review it and
sign; the version ends approved, shows in the history, and the audit chain verifies.

Screenshots (docs/screenshots/ under `make screenshots`): review-inbox.png, review-page.png and review-metrics.png.
"""

import io

import pytest
from django.core.management import call_command

from tests.screenshots import save as save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REVIEWERS = [("medical", "tessera-medical"), ("legal", "tessera-legal"),
             ("regulatory", "tessera-regulatory")]


@pytest.fixture
def demo_data(monkeypatch, settings):
    from cms.celery import app
    from demo import approvals as approvals_demo
    from demo import content as content_demo

    monkeypatch.setattr(app.conf, "task_always_eager", True)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    content_demo.load(io.StringIO())
    approvals_demo.load(io.StringIO())


@pytest.fixture
def browser(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM runs in the server
    # thread and in fixtures, so Django's async guard has nothing to protect here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                      args=["--no-sandbox", "--disable-background-networking"])
        yield chromium
        chromium.close()


def new_page(browser, csp_violations):
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.on("console", lambda msg: csp_violations.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    return context, page


def login(page, base, username, password):
    page.goto(f"{base}/review/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Inbox')")


def draft_to_review():
    """A new draft of an approved claim (so the page shows a diff, references and its
    companion), else any Cardiozen draft that is ready for review."""
    from django.contrib.auth import get_user_model

    from content.models import ContentModule, ModuleVersion
    from content.rules import review_readiness_errors

    author = get_user_model().objects.get(username="author.cardiozen")
    claim = ContentModule.objects.filter(code="CZN-EFF-001-US").first()
    if claim is not None and claim.latest_version().state == "approved":
        draft = claim.new_version(author=author)
        draft.body_html = draft.body_html.replace("26%", "26 %").replace(
            "on top of standard therapy", "when added to guideline-directed medical therapy")
        draft.body_text = ""
        draft.save()
        return draft
    for version in ModuleVersion.objects.filter(state="draft", module__brand__slug="cardiozen"):
        if not review_readiness_errors(version):
            return version
    pytest.fail("the demo data has no Cardiozen draft ready for review")


def test_each_reviewer_signs_in_the_browser_and_the_draft_is_approved(demo_data, live_server,
                                                                      browser):
    from content.models import ModuleVersion

    base = live_server.url
    csp_violations: list[str] = []
    version = draft_to_review()
    code = version.module.code

    context, page = new_page(browser, csp_violations)
    login(page, base, "author.cardiozen", "tessera-author")
    page.get_by_role("link", name=code, exact=True).first.click()
    page.click("#submit-review")
    page.wait_for_selector("text=is submitted for MLR review")
    assert page.inner_text("#version-state") == "In review"
    context.close()

    for index, (username, password) in enumerate(REVIEWERS):
        context, page = new_page(browser, csp_violations)
        login(page, base, username, password)
        inbox = page.locator("#inbox-mine")
        assert code in inbox.inner_text()
        if index == 0:
            save_screenshot(page, "review-inbox.png", full_page=True)
        inbox.get_by_role("link", name=code, exact=True).click()
        page.wait_for_selector("#decision")
        email_frame = page.locator("iframe.email")
        assert email_frame.bounding_box()["width"] == pytest.approx(632, abs=2)
        assert page.frame_locator("iframe.email").locator("body").inner_text().strip()
        if index == 0:
            save_screenshot(page, "review-page.png", full_page=True)
        # A wrong password first: refused, nothing signed. The decision has no default.
        page.check("#decision-approve")
        page.fill("#decision-username", username)
        page.fill("#decision-password", "not-my-password")
        page.click("#sign-decision")
        page.wait_for_selector("#refusal")
        assert "Wrong" in page.inner_text("#refusal")
        page.check("#decision-approve")
        page.fill("#decision-username", username)
        page.fill("#decision-password", password)
        page.click("#sign-decision")
        page.wait_for_selector("text=Signed:")
        context.close()

    version.refresh_from_db()
    assert version.state == "approved"
    assert ModuleVersion.objects.get(pk=version.pk).approved_at is not None

    context, page = new_page(browser, csp_violations)
    login(page, base, "regulatory", "tessera-regulatory")
    page.goto(f"{base}/review/v/{version.pk}/")
    assert page.inner_text("#version-state") == "Approved"
    page.click("#history-tab")
    signatures = page.inner_text("#history-signatures")
    for name in ("Mira Keller (Medical) approved", "Jonas Weber (Legal) approved",
                 "Priya Natarajan (Regulatory) approved"):
        assert name in signatures
    assert "approved" in page.inner_text("#history-audit")
    page.goto(f"{base}/review/metrics/")
    page.wait_for_selector("svg.chart")
    save_screenshot(page, "review-metrics.png", full_page=True)
    context.close()

    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert "Audit chain intact" in out.getvalue()
    assert csp_violations == []
