"""A reviewer annotates selected words of the rendered text in a real browser and resolves
the annotation; axe-core finds no serious or critical violation on the inbox, the review
page and the history, at 1440 px and 390 px.

Screenshots (docs/screenshots/ under `make screenshots`): review-annotations.png.
"""

import pytest

from tests.axe import assert_no_horizontal_scroll, assert_no_serious_axe_violations
from tests.screenshots import save as save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery"


@pytest.fixture
def browser(live_server, monkeypatch, settings):
    from playwright.sync_api import sync_playwright

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                      args=["--no-sandbox", "--disable-background-networking"])
        yield chromium
        chromium.close()


@pytest.fixture
def in_review(db):
    from approvals import services
    from approvals.roles import role_group
    from tests.factories import ReferenceFactory, UserFactory, VersionFactory

    reviewer = UserFactory(username="rev-medical", first_name="Camille", last_name="Martin")
    reviewer.groups.add(role_group("medical"))
    version = VersionFactory(module__code="ANN-EFF-001", module__title="LDL claim",
                             body_html="<p>Cuts LDL cholesterol by 40 percent in 12 weeks.</p>")
    version.citations.add(ReferenceFactory(brand=version.module.brand, citation="Smith J. 2024."))
    services.submit_for_review(version=version, actor=version.created_by)
    return version


def select_text(page, selector: str, text: str) -> None:
    """Select `text` inside the element, as a mouse drag would."""
    page.evaluate("""([selector, text]) => {
        const root = document.querySelector(selector);
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
        throw new Error("text not found: " + text);
    }""", [selector, text])


def check_axe(page, label):
    for width, height in ((1440, 1000), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        assert_no_serious_axe_violations(page, f"{label} at {width} px")
        if width == 390:
            assert_no_horizontal_scroll(page, f"{label} at {width} px")
    page.set_viewport_size({"width": 1440, "height": 1000})


def test_annotate_a_selection_resolve_it_and_pages_pass_axe(in_review, live_server, browser):
    from approvals.models import Annotation

    base = live_server.url
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    errors = []  # scripts that fail, resources that do not load (the favicon aside)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and "favicon" not in r.url else None)
    page.goto(f"{base}/review/login/")
    page.fill("#id_username", "rev-medical")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Inbox')")
    check_axe(page, "review inbox")

    page.locator("#inbox-mine").get_by_role("link", name="ANN-EFF-001", exact=True).click()
    page.wait_for_selector("#annotatable-body")
    check_axe(page, "review page")

    # Select words in the rendered text: the button offers to annotate them.
    select_text(page, "#annotatable-body", "40 percent")
    page.wait_for_selector("#annotate-selection:visible")
    assert "40 percent" in page.inner_text("#annotate-selection")
    page.click("#annotate-selection")
    assert page.input_value("#id_exact") == "40 percent"
    assert page.input_value("#annotation-form [name=prefix]").endswith("LDL cholesterol by ")
    assert page.input_value("#annotation-form [name=suffix]").startswith(" in 12 weeks")
    page.fill("#id_body", "The study says 38 percent.")
    page.click("#save-annotation")
    page.wait_for_selector("text=Annotation saved")
    annotation = Annotation.objects.get(version=in_review)
    assert annotation.anchor["exact"] == "40 percent" and annotation.state == "open"
    item = page.locator(f"#annotation-{annotation.pk}")
    assert "The study says 38 percent." in item.inner_text()
    # Highlighted in the text, and listed as blocking the approval in the signing panel.
    assert page.locator(f"#annotatable-body mark[data-annotation='{annotation.pk}']").count() == 1
    assert page.locator("#blocking-annotations").count() == 1
    check_axe(page, "review page with an annotation")
    save_screenshot(page, "review-annotations.png", full_page=True)

    page.click(f"#resolve-{annotation.pk}")
    page.wait_for_selector("text=Annotation resolved")
    annotation.refresh_from_db()
    assert annotation.state == "resolved"
    assert page.locator("#blocking-annotations").count() == 0
    assert page.locator(f"#annotation-{annotation.pk}").get_attribute("data-state") == "resolved"

    page.click("#history-tab")
    page.wait_for_selector("#history-timeline")
    assert "annotated v1 · round 1" in page.inner_text("#history-timeline")
    # Times in the reader's zone (review/localtime.js); the server's UTC text in the title.
    # The script is deferred: wait until it has rewritten the first time, not only until the list exists.
    page.wait_for_selector("#history-timeline time[title]")
    first_time = page.locator("#history-timeline time").first
    assert first_time.get_attribute("title").endswith("UTC")
    assert "." not in first_time.inner_text().split(":")[-1]  # no seconds, no microseconds
    check_axe(page, "module history")
    page.get_by_role("link", name="Review", exact=True).first.click()
    page.click("#approved-link")
    page.wait_for_selector("#approved-filters")
    check_axe(page, "approved content")
    assert not errors, errors
    context.close()
