"""Issue 13's whole flow in a real browser, no URL typed after the first login: the author
writes a claim with a footnote in the editor and submits it from the version page; medical
and regulatory request changes with anchored annotations while legal approves; the round
returns to the author with all the feedback on the edit page; the author fixes and
resubmits; each reviewer sees the round-to-round word diff, resolves their annotation and
signs; the version is approved.

Clicks from the inbox to a signed decision are counted (docs/authoring.md).
"""

import io

import pytest

from tests.axe import assert_no_serious_axe_violations
from tests.e2e.pickers import pick

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CODE = "CZN-EFF-901-DE"
PASSWORDS = {"author.cardiozen": "tessera-author", "medical": "tessera-medical",
             "legal": "tessera-legal", "regulatory": "tessera-regulatory"}


@pytest.fixture
def demo_content(monkeypatch, settings):
    from cms.celery import app
    from demo import content as demo_content

    monkeypatch.setattr(app.conf, "task_always_eager", True)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    demo_content.load(io.StringIO())


@pytest.fixture
def page(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                     args=["--no-sandbox", "--disable-background-networking"])
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        yield context.new_page()
        context.close()
        browser.close()


def axe(page, label):
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert_no_serious_axe_violations(page, f"{label} at {width} px")
    page.set_viewport_size({"width": 1440, "height": 1000})


def log_in(page, username):
    """On the login page (where logging out lands): sign in as `username`."""
    page.wait_for_selector("#id_username")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORDS[username])
    page.click("button[type=submit], input[type=submit]")


def log_out(page):
    page.get_by_role("button", name="Log out").click()
    page.wait_for_selector("#id_username")


def select_text(page, selector: str, text: str) -> None:
    """Select `text` inside the first element matching `selector` that holds it."""
    page.evaluate("""([selector, text]) => {
        const seen = [];
        for (const root of document.querySelectorAll(selector)) {
            const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
            let node;
            while ((node = walker.nextNode())) {
                const at = node.nodeValue.indexOf(text);
                if (at >= 0) {
                    const range = document.createRange();
                    range.setStart(node, at);
                    range.setEnd(node, at + text.length);
                    const selection = window.getSelection();
                    selection.removeAllRanges();
                    selection.addRange(range);
                    return;
                }
            }
            seen.push(root.outerHTML.slice(0, 400));
        }
        throw new Error("text not found: " + text + " in " + JSON.stringify(seen));
    }""", [selector, text])


def open_from_inbox(page) -> int:
    page.wait_for_selector("h1:has-text('Inbox')")
    page.locator("#inbox-mine").get_by_role("link", name=CODE, exact=True).click()
    page.wait_for_selector("#decision")
    return 1


def annotate(page, quote, text):
    select_text(page, "#annotatable-body", quote)
    page.click("#annotate-selection")
    page.fill("#id_body", text)
    page.click("#save-annotation")
    page.wait_for_selector("text=Annotation saved")


def sign(page, username, decision, comment="") -> int:
    """Choose the decision, re-enter the credentials, sign: the clicks it took."""
    clicks = 0
    page.check("#decision-approve" if decision == "approve" else "#decision-changes")
    clicks += 1
    if comment:
        page.fill("#decision-comment", comment)
    if page.locator("#decision-username").count():
        page.fill("#decision-username", username)
    page.fill("#decision-password", PASSWORDS[username])
    page.click("#sign-decision")
    clicks += 1
    page.wait_for_selector("text=Signed:")
    return clicks


def test_author_and_three_reviewers_take_a_claim_to_approval(demo_content, live_server, page):
    from approvals.models import Annotation
    from content.models import ModuleVersion

    # --- the author writes the claim with a footnote and submits it -----------------------
    page.goto(f"{live_server.url}/admin/login/?next=/admin/content/contentmodule/")
    log_in(page, "author.cardiozen")
    page.wait_for_selector("#result_list")
    page.get_by_role("link", name="Add content module").click()
    editor = page.locator(".tessera-editor .ProseMirror[contenteditable=true]")
    editor.wait_for()
    page.fill("#id_code", CODE)
    page.select_option("#id_kind", "claim")
    page.fill("#id_title", "Efficacy: primary endpoint (DE, MLR flow)")
    editor.click()
    page.keyboard.type("Cardiozen reduced the risk of hospitalisation by 26%")
    page.select_option("#id_versions-0-body_html-footnote", "REF-ZENHF")
    page.click("input[name=_save]")
    page.wait_for_selector("#review-readiness")
    pick(page, "id_audiences", "hcp")
    pick(page, "id_jurisdictions", "DE")
    pick(page, "id_channels", "email")
    page.click("input[name=_continue]")
    page.click("#submit-for-review")
    page.wait_for_url("**/review/v/**")
    version = ModuleVersion.objects.get(module__code=CODE)
    assert version.state == "in_review"
    log_out(page)

    # --- round 1: medical and regulatory annotate and request changes, legal approves -----
    log_in(page, "medical")
    open_from_inbox(page)
    axe(page, "review page (round 1)")
    annotate(page, "26%", "Give the absolute risk reduction next to the relative one.")
    sign(page, "medical", "request_changes", "See my annotation on 26%.")
    log_out(page)

    log_in(page, "regulatory")
    open_from_inbox(page)
    annotate(page, "reduced the risk of hospitalisation", "Name the endpoint as in the label.")
    sign(page, "regulatory", "request_changes", "Wording must follow the label.")
    log_out(page)

    log_in(page, "legal")
    inbox_to_signed = open_from_inbox(page)
    inbox_to_signed += sign(page, "legal", "approve")
    assert inbox_to_signed <= 4, inbox_to_signed  # plus typing the credentials
    version.refresh_from_db()
    assert version.state == "changes_requested"  # consolidated: returned after the last role
    log_out(page)

    # --- the author sees every role's feedback on the edit page, fixes, resubmits ---------
    log_in(page, "author.cardiozen")
    page.wait_for_selector("h1:has-text('Inbox')")
    page.locator("#my-versions").get_by_role("link", name=CODE, exact=True).click()
    page.click("#admin-version-link")
    page.wait_for_selector("#review-feedback")
    feedback = page.inner_text("#review-feedback")
    assert "See my annotation on 26%." in feedback and "Wording must follow the label." in feedback
    assert "absolute risk reduction" in feedback and "Name the endpoint" in feedback
    axe(page, "version page with feedback")
    editor = page.locator(".tessera-editor .ProseMirror[contenteditable=true]")
    editor.click()
    select_text(page, ".ProseMirror", "reduced")  # as a double-click would
    page.keyboard.type("lowered")
    page.click("input[name=_continue]")
    page.click("#submit-for-review")
    page.wait_for_url("**/review/v/**")
    version.refresh_from_db()
    assert version.state == "in_review"
    log_out(page)

    # --- round 2: word diff, resolve, sign ------------------------------------------------
    for username in ("medical", "regulatory", "legal"):
        log_in(page, username)
        open_from_inbox(page)
        assert "v1 · round 2" in page.inner_text("#round-label")
        diff = page.locator("#diff-round")
        assert diff.get_attribute("data-from") == "v1 · round 1"
        inserted = " ".join(diff.locator(".diff-block[data-block=body] ins").all_inner_texts())
        deleted = " ".join(diff.locator(".diff-block[data-block=body] del").all_inner_texts())
        assert "lowered" in inserted and "reduced" in deleted, (inserted, deleted)
        if username == "regulatory":  # its quote is no longer in the text
            changed = Annotation.objects.get(version=version, role="regulatory")
            assert "anchored text changed" in page.inner_text(f"#annotation-{changed.pk}")
        for annotation in Annotation.objects.filter(version=version, role=username,
                                                    state="open"):
            page.click(f"#resolve-{annotation.pk}")
            page.wait_for_selector("text=Annotation resolved")
        assert page.locator("#blocking-annotations").count() == 0
        if username == "medical":
            axe(page, "review page (round 2, diff)")
        sign(page, username, "approve")
        log_out(page)

    version.refresh_from_db()
    assert version.state == "approved"
    assert not Annotation.objects.filter(version=version, state="open").exists()
