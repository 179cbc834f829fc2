"""Every demo email, assembled over the API with an unsubscribe link, carries the brand's
approved footer (its adverse-event line and postal address), the link, and both RFC 8058
headers; no demo step is refused for want of a footer."""

import io

import pytest

from content.models import ContentModule, VersionState
from demo import approvals as demo_approvals
from demo import content as demo_content
from demo import journeys as demo_journeys
from journeys.models import Step
from tests.api.builders import token, token_client
from tests.content.conftest import eager_celery  # noqa: F401  (a fixture, used by name)

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
LINK = "https://prefs.example.test/unsubscribe/demo-1?t=9f2c"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def demo(db, eager_celery):  # noqa: F811
    demo_content.load(io.StringIO())
    demo_approvals.load(io.StringIO())
    demo_journeys.load(io.StringIO())


def test_the_demo_has_an_approved_footer_per_brand_market_and_locale_its_journeys_use(demo):
    used = {(s.journey.brand_id, j.code, s.journey.locale.code)
            for s in Step.objects.select_related("journey__locale")
            for j in s.journey.jurisdictions.all()}
    assert used
    for brand_id, market, locale in used:
        footers = ContentModule.objects.filter(
            brand_id=brand_id, kind="footer", versions__state=VersionState.APPROVED,
            versions__jurisdictions__code=market, versions__locale__code=locale).distinct()
        assert footers.count() == 1, (brand_id, market, locale)


def test_every_demo_email_has_the_footer_the_link_and_both_headers(demo):
    _, key = token(channels=("email",), jurisdictions=("US",))
    client = token_client(key)
    steps = list(Step.objects.filter(channel__code="email").select_related("journey"))
    assert len(steps) >= 3
    delivered = 0
    for step in steps:
        recipient = {"id": "demo-1", "title": "Dr.", "first_name": "Alex", "last_name": "Morgan",
                     "specialty": "Cardiology", "consent": {"email": True}}
        response = client.post(
            f"/api/v1/journeys/{step.journey.slug}/steps/{step.key}/assemble/",
            {"channel": "email", "jurisdiction": "US", "locale": "en", "recipient": recipient,
             "unsubscribe_url": LINK}, format="json")
        if response.status_code == 422:  # refused for the demo's intended reasons only
            codes = {e["code"] for e in response.json()["errors"]}
            assert not codes & {"missing_footer", "missing_unsubscribe"}, (step.key, codes)
            continue
        assert response.status_code == 200, (step.key, response.content)
        body = response.json()
        delivered += 1
        assert body["headers"] == {"List-Unsubscribe": f"<{LINK}>",
                                   "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
        assert f'href="{LINK}"' in body["html"] and LINK in body["text"]
        assert "1-800-FDA-1088" in body["html"] and "1-800-FDA-1088" in body["text"]
        assert 'class="adverse-events"' in body["html"] and "Princeton, NJ" in body["html"]
        footers = [m for m in body["manifest"]["modules"] if m["kind"] == "footer"]
        assert [m["module"] for m in footers] == ["CZN-FOOT-US"]
        assert footers[0]["state"] == "approved" and len(footers[0]["signatures"]) == 3
        assert LINK not in str(body["manifest"])
    assert delivered >= 3
