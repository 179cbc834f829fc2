"""A designer builds a three-step journey on its map in a real browser, no admin URL typed:
adds stages and touchpoints, binds modules found by search, draws a path, and watches a
blocked touchpoint turn ready once its module is approved (approved through the workflow
services, not the UI). A second designer editing the same touchpoint gets the conflict
message with her input kept. axe-core on the map, index and builder at 1,440 and 390 px
(0 serious/critical), no sideways page scroll at 390 px.

Screenshot (docs/screenshots/ under `make screenshots`): journey-map-health.png.
"""

import pytest
from playwright.sync_api import expect

from tests.axe import assert_no_horizontal_scroll, assert_no_serious_axe_violations
from tests.screenshots import save as save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDE, PHONE = {"width": 1440, "height": 900}, {"width": 390, "height": 844}
PASSWORD = "designer-pass-1"


@pytest.fixture
def setup(settings):
    from django.contrib.auth.models import Permission

    from approvals import services
    from content.models import Audience, Channel, Jurisdiction, Locale
    from content.models import Stage as AudienceStage
    from content.permissions import grant_author_brand
    from journeys.models import Journey
    from tests.factories import BrandFactory, UserFactory, term
    from tests.journeys.conftest import footer_body, make_version

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    brand = BrandFactory(name="Cardiozen", slug="cardiozen")
    hcp = term(Audience, "hcp")
    us, _ = Jurisdiction.objects.get_or_create(code="US", defaults={"name": "United States"})
    stages = {code: AudienceStage.objects.get_or_create(
        audience=hcp, code=code, defaults={"name": code.title()})[0]
        for code in ("awareness", "interest")}
    journey = Journey.objects.create(slug="hcp-launch", name="HCP launch", brand=brand,
                                     audience=hcp, locale=term(Locale, "en"))
    journey.jurisdictions.set([us])
    make_version(brand, "CZN-SUBJ-001", kind="subject", subject="News for you", body="")
    make_version(brand, "CZN-HEAD-001", kind="headline", body="<h1>Hello</h1>")
    body = make_version(brand, "CZN-BODY-001", kind="body", body="<p>New data</p>",
                        approved=False)
    services.submit_for_review(version=body, actor=body.created_by)
    make_version(brand, "CZN-FOOT-US", kind="footer", body=footer_body(),
                 tags={"channels": ["email", "portal"]})
    perms = Permission.objects.filter(content_type__app_label="journeys")
    designers = []
    for name in ("camille", "dana"):
        user = UserFactory(username=name, first_name=name.title(), last_name="Designer",
                           is_staff=True, password=PASSWORD)
        user.user_permissions.add(*perms)
        grant_author_brand(user, brand)
        designers.append(user)
    return {"journey": journey, "stages": stages, "body": body,
            "email": term(Channel, "email").pk}


@pytest.fixture
def browser(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                      args=["--no-sandbox", "--disable-background-networking"])
        yield chromium
        chromium.close()


def logged_in(browser, base, username):
    context = browser.new_context(viewport=WIDE)
    page = context.new_page()
    page.problems = []  # failed requests (a conflict's 409 is the answer, not a problem)
    page.on("response", lambda r: page.problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and r.status != 409 and not r.url.endswith("/favicon.ico")
            else None)
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    page.goto(f"{base}/review/login/?next=/journeys/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Customer journeys')")
    return context, page


def check_both_widths(page, label):
    page.set_viewport_size(WIDE)
    assert_no_serious_axe_violations(page, f"{label} at 1440 px")
    page.set_viewport_size(PHONE)
    assert_no_serious_axe_violations(page, f"{label} at 390 px")
    assert_no_horizontal_scroll(page, f"{label} at 390 px")
    page.set_viewport_size(WIDE)


def open_tools(page):
    """The builder's forms fold away once the journey has touchpoints."""
    if not page.locator("#build").evaluate("details => details.open"):
        page.locator("#build > summary").click()


def add_step(page, stage_pk, name, key, channel):
    open_tools(page)
    form = page.locator("#add-step")
    form.locator("select[name=stage]").select_option(str(stage_pk))
    form.locator("input[name=name]").fill(name)
    form.locator("input[name=key]").fill(key)
    form.locator("select[name=channel]").select_option(str(channel))
    form.get_by_role("button", name="Add touchpoint").click()
    page.wait_for_selector(f"#step-{key}")


def bind(page, query, code):
    """Type into the search: htmx answers as one types (only the matching module is left)."""
    # htmx binds the search when it has processed the page: after a full load, or after a
    # boosted form's swap has settled. Typing before that is not seen (CI did, twice).
    page.wait_for_load_state("load")
    page.wait_for_function(
        "() => window.htmx && !document.querySelector('.htmx-request, .htmx-swapping, "
        ".htmx-settling')")
    page.fill("#module-q", query)
    expect(page.locator("#module-results li")).to_have_count(1)
    page.locator(f"#module-results button[aria-label='Bind {code}']").click()
    page.locator("#slots .slot-list", has_text=code).wait_for()


def test_designer_builds_a_journey_on_the_map(setup, live_server, browser):
    from tests.journeys.test_health import approve_rest

    base = live_server.url
    context, page = logged_in(browser, base, "camille")
    check_both_widths(page, "journeys index")
    page.get_by_role("link", name="Journey map of HCP launch").click()
    page.wait_for_selector("#build")

    # Two stages, three touchpoints. htmx swaps the page in place (no full reload).
    page.evaluate("window.stillTheSamePage = true")
    for code in ("awareness", "interest"):
        open_tools(page)
        page.locator("#add-stage select[name=audience_stage]").select_option(
            str(setup["stages"][code].pk))
        page.get_by_role("button", name="Add stage").click()
        page.locator("table.journey-map thead .stage-name", has_text=code.title()).wait_for()
    assert page.evaluate("window.stillTheSamePage === true")
    stage_of = {s.audience_stage.code: s.pk for s in setup["journey"].stages.all()}
    add_step(page, stage_of["awareness"], "Welcome email", "welcome", setup["email"])
    add_step(page, stage_of["awareness"], "Reminder email", "reminder", setup["email"])
    add_step(page, stage_of["interest"], "Webinar invitation", "invite", setup["email"])
    assert page.locator("#step-welcome [data-health=blocked]").count() == 1  # no content yet

    # Bind modules found by search on the touchpoint's editor.
    page.get_by_role("link", name="Edit Welcome email").click()
    page.wait_for_selector("#module-q")
    bind(page, "SUBJ", "CZN-SUBJ-001")
    bind(page, "head", "CZN-HEAD-001")
    bind(page, "BODY", "CZN-BODY-001")
    assert "in review" in page.inner_text("#slots")
    check_both_widths(page, "touchpoint editor")

    # Draw two paths on the map.
    page.get_by_role("link", name="Back to the map").first.click()
    page.wait_for_selector("#build")
    welcome_pk = str(setup["journey"].steps.get(key="welcome").pk)
    for event, target, threshold in (("clicked", "invite", "1"), ("ignored", "reminder", "2")):
        open_tools(page)
        form = page.locator("#add-path")
        form.locator("select[name=from_step]").select_option(welcome_pk)
        form.locator("select[name=event_type]").select_option(event)
        form.locator("input[name=threshold]").fill(threshold)
        form.locator("select[name=to_step]").select_option(
            str(setup["journey"].steps.get(key=target).pk))
        form.get_by_role("button", name="Draw path").click()
        page.locator("tr", has_text="Adaptive paths").locator(
            f"a[href='#step-{target}']").wait_for()
    assert page.locator("svg path.edge-move").count() == 2
    welcome = page.locator("#step-welcome")
    assert welcome.locator("[data-health=blocked]").count() == 1
    assert "not_approved" in welcome.inner_text() and "CZN-BODY-001" in welcome.inner_text()
    assert welcome.locator("a", has_text="review").count() >= 1
    # The reminder and the invitation are reached; none is unreachable.
    assert page.locator(".touchpoint.is-unreachable").count() == 0
    check_both_widths(page, "journey map (builder)")

    # MLR approves the body (workflow services); the touchpoint turns ready.
    body = setup["body"]
    body.refresh_from_db()
    approve_rest(body, None)
    page.reload()
    page.wait_for_selector("#step-welcome [data-health=ready]")
    save_screenshot(page, "journey-map-health.png", full_page=True)

    # Two designers on the same touchpoint: the second save gets the conflict, input kept.
    edit_url = f"{base}/journeys/hcp-launch/build/steps/welcome/"
    page.goto(edit_url)
    other_context, other = logged_in(browser, base, "dana")
    other.goto(edit_url)
    page.fill("#id_timing", "day 1, morning")
    with page.expect_response(lambda r: r.request.method == "POST" and r.status == 303):
        page.get_by_role("button", name="Save touchpoint").click()
    expect(page.locator("#id_timing")).to_have_value("day 1, morning")
    other.fill("#id_timing", "day 3")
    other.fill("#id_needs", "Dana's notes on dosing")
    other.get_by_role("button", name="Save touchpoint").click()
    conflict = other.locator("#conflict")
    conflict.wait_for()
    text = conflict.inner_text()
    assert "Camille Designer saved this step" in text and "Nothing of yours is lost" in text
    assert "day 1, morning" in text and "day 3" in text
    assert other.input_value("#id_needs") == "Dana's notes on dosing"  # her input, kept
    assert other.input_value("#id_timing") == "day 3"
    check_both_widths(other, "touchpoint editor with a conflict")
    assert not page.problems and not other.problems, page.problems + other.problems
    other_context.close()
    context.close()
