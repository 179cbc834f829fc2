"""A regulatory reviewer withdraws an approved version in the browser: refused without a
reason, then signed with one; the version is withdrawn and the audit chain verifies."""

import io

import pytest
from django.core.management import call_command

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "correct-horse-battery"


@pytest.fixture
def approved_version(settings):
    from approvals import services
    from approvals.roles import REQUIRED_ROLES, role_group
    from approvals.signing import Credentials
    from tests.factories import UserFactory, VersionFactory

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    version = VersionFactory(body_html="<p>Once-daily dosing for {{ recipient.last_name }}.</p>")
    services.submit_for_review(version=version, actor=version.created_by)
    people = {}
    for role in REQUIRED_ROLES:
        user = UserFactory(username=f"wd-{role}", first_name=role.title(), last_name="Signer")
        user.groups.add(role_group(role))
        people[role] = user
        services.decide(version=version, actor=user, role=role, decision="approve",
                        expected_sha256=version.sha256,
                        credentials=Credentials(password=PASSWORD, username=user.username))
    version.refresh_from_db()
    assert version.state == "approved"
    return version


@pytest.fixture
def page(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM stays in the server thread
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                     args=["--no-sandbox", "--disable-background-networking"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        yield context.new_page()
        context.close()
        browser.close()


def test_withdrawal_needs_a_reason_then_takes_effect(approved_version, live_server, page):
    from content.models import ModuleVersion

    page.goto(f"{live_server.url}/review/login/")
    page.fill("#id_username", "wd-regulatory")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Inbox')")
    page.goto(f"{live_server.url}/review/v/{approved_version.pk}/")
    page.fill("#withdraw-username", "wd-regulatory")
    page.fill("#withdraw-password", PASSWORD)
    page.click("#sign-withdrawal")
    page.wait_for_selector("#refusal")
    assert page.get_attribute("#refusal", "data-code") == "reason_required"
    assert ModuleVersion.objects.get(pk=approved_version.pk).state == "approved"

    page.fill("#withdraw-reason", "Safety signal: hepatic events under review")
    if page.locator("#withdraw-username").count():
        page.fill("#withdraw-username", "wd-regulatory")
    page.fill("#withdraw-password", PASSWORD)
    page.click("#sign-withdrawal")
    page.wait_for_selector("text=is withdrawn everywhere")
    assert page.inner_text("#version-state") == "Withdrawn"
    version = ModuleVersion.objects.get(pk=approved_version.pk)
    assert version.withdrawal_reason == "Safety signal: hepatic events under review"
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert "intact" in out.getvalue()
