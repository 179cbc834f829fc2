"""The second factor in a real browser: a medical reviewer without one opens a version in
review and finds no signing form, only the link to /review/second-factor/; enrols (the code
her app would show, computed from the device's key), sees her recovery codes once, comes
back and signs. Another session verifies with a recovery code.

Screenshots (docs/screenshots/ under `make screenshots`): review-second-factor.png.
"""

import time

import pytest

from tests.screenshots import save as save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's password


@pytest.fixture
def browser(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM runs in the server
    # thread and in the test, so Django's async guard has nothing to protect here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                      args=["--no-sandbox", "--disable-background-networking"])
        yield chromium
        chromium.close()


@pytest.fixture
def in_review(settings):
    from approvals import services
    from approvals.roles import role_group
    from tests.factories import UserFactory, VersionFactory

    settings.TESSERA_SECOND_FACTOR_REQUIRED = True
    reviewer = UserFactory(username="rev-medical", first_name="Mira", last_name="Keller")
    reviewer.groups.add(role_group("medical"))
    version = VersionFactory()
    services.submit_for_review(version=version, actor=version.created_by)
    return version


def new_page(browser, csp_violations):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.on("console", lambda msg: csp_violations.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    return context, page


def login(page, base):
    page.goto(f"{base}/review/login/")
    page.fill("#id_username", "rev-medical")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Inbox')")


def app_code() -> str:
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.get(user__username="rev-medical")
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return f"{totp.token():06d}"


def test_a_reviewer_enrols_a_second_factor_before_the_signing_form_opens(in_review, live_server,
                                                                         browser):
    from approvals.models import Signature

    base = live_server.url
    review_url = f"{base}/review/v/{in_review.pk}/"
    csp_violations: list[str] = []

    context, page = new_page(browser, csp_violations)
    login(page, base)
    page.goto(review_url)
    page.wait_for_selector("#second-factor-needed")
    assert page.locator("#decision").count() == 0
    assert page.locator("input[type=password]").count() == 0

    page.click("#second-factor-link")
    page.wait_for_selector("#enrol-form")
    assert page.locator(".qr svg").count() == 1
    assert page.inner_text("#totp-secret").strip()
    save_screenshot(page, "review-second-factor.png", full_page=True)
    page.fill("#second-factor-code", app_code())
    page.click("#second-factor-submit")
    page.wait_for_selector("#recovery-codes")
    codes = [c.strip() for c in page.locator("#recovery-codes code").all_inner_texts()]
    assert len(codes) == 10

    page.click("#second-factor-continue")
    page.wait_for_selector("#decision")
    assert page.url == review_url
    page.check("#decision-approve")  # the decision has no default
    page.fill("#decision-username", "rev-medical")
    page.fill("#decision-password", PASSWORD)
    page.click("#sign-decision")
    page.wait_for_selector("text=Signed:")
    assert Signature.objects.filter(version=in_review, signer__username="rev-medical").exists()
    context.close()

    # A later session: the recovery code stands in for the phone, once.
    context, page = new_page(browser, csp_violations)
    login(page, base)
    page.goto(f"{base}/review/second-factor/")
    page.wait_for_selector("#verify-form")
    page.fill("#second-factor-code", codes[0])
    page.click("#second-factor-submit")
    page.wait_for_selector("text=Second factor accepted")
    context.close()

    context, page = new_page(browser, csp_violations)
    login(page, base)
    page.goto(f"{base}/review/second-factor/")
    page.fill("#second-factor-code", codes[0])
    page.click("#second-factor-submit")
    page.wait_for_selector("#second-factor-error")
    context.close()
    assert csp_violations == []
