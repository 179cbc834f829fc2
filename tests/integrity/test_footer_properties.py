"""Property: whatever footer modules exist (none, approved, draft, expired, withdrawn, not
yet valid, for another market or locale, another brand's), no email assembly succeeds
without the brand's approved, current footer for its market and locale and the reader's
unsubscribe link (in the footer and the RFC 8058 headers), and no portal assembly without
that footer; and when both are there, the assembly succeeds (the property is not vacuous)."""

import itertools
from datetime import timedelta
from html import escape

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from content import deliverability
from content.models import ContentModule, Locale, ModuleVersion
from journeys.assembly import assemble, cache
from tests.api.builders import FOOTER_BODY, RECIPIENT, approve, build_world
from tests.factories import BrandFactory, ModuleFactory, VersionFactory, term

pytestmark = pytest.mark.django_db
_codes = itertools.count()

STATES = ["approved", "draft", "expired", "withdrawn", "not_yet_valid"]
FooterSpec = st.fixed_dictionaries({
    "state": st.sampled_from(STATES),
    "market": st.sampled_from(["US", "DE"]),
    "locale": st.sampled_from(["en", "en-US", "de"]),
    "other_brand": st.booleans(),
})
VALID_URL = "https://prefs.example.test/u/crm-0001?t=a&list=hcp%20us"  # & escaped in HTML
URLS = st.one_of(
    st.none(), st.just(VALID_URL),
    st.sampled_from(["http://prefs.example.test/u", "javascript:alert(1)",
                     "https://me:pw@prefs.example.test/u", "data:text/html,hi",
                     "https://prefs.example.test/" + "a" * 2001, " ", "https://"]))


@pytest.fixture
def world(db):
    world = build_world()
    footer = world["footer"]  # the builder's own footer is replaced by the drawn ones
    footer.state, footer.withdrawn_at = "withdrawn", timezone.now()
    footer.save(update_fields=["state", "withdrawn_at"])
    world["other_brand"] = BrandFactory(name="Otherbrand", slug="otherbrand")
    return world


def make_footer(world, spec) -> ModuleVersion:
    brand = world["other_brand"] if spec["other_brand"] else world["brand"]
    module = ModuleFactory(code=f"PBT-FOOT-{next(_codes)}", brand=brand, kind="footer")
    version = VersionFactory(module=module, body_html=FOOTER_BODY,
                             locale=term(Locale, spec["locale"]),
                             tags={"jurisdictions": [spec["market"]],
                                   "channels": ["email", "portal"]})
    now = timezone.now()
    if spec["state"] == "approved":
        approve(version)
    elif spec["state"] == "expired":
        approve(version, days_valid=-1)  # still "approved", but the approval has lapsed
    elif spec["state"] == "withdrawn":
        approve(version, state="withdrawn", withdrawn_at=now)
    elif spec["state"] == "not_yet_valid":
        approve(version, valid_from=now + timedelta(days=3))
    return version


def usable_footer(version: ModuleVersion, world) -> bool:
    """The oracle, from the database and the deliverability rule (not assembly's code)."""
    return (version.module.brand_id == world["brand"].pk
            and version.module.kind == "footer"
            and version.jurisdictions.filter(code="US").exists()
            and version.locale.code in ("en", "en-US")
            and deliverability.is_deliverable(state=version.state, valid_from=version.valid_from,
                                              expires_at=version.expires_at,
                                              now=timezone.now()))


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(footers=st.lists(FooterSpec, max_size=3), url=URLS,
       layout=st.sampled_from(["email", "portal"]), step_name=st.sampled_from(["step", "portal"]))
def test_no_assembly_succeeds_without_the_approved_footer_and_an_email_without_unsubscribe(
        world, footers, url, layout, step_name):
    cache.clear()
    with transaction.atomic():
        made = [make_footer(world, spec) for spec in footers]
        for version in made:
            version.refresh_from_db()
        recipient = {k: v for k, v in RECIPIENT.items() if k != "unsubscribe_url"}
        if url is not None:
            recipient["unsubscribe_url"] = url
        step = world[step_name]
        channel = step.channel.code
        result = assemble(step, recipient, channel=channel, jurisdiction="US", locale="en-US",
                          layout=layout)
        has_footer = any(usable_footer(v, world) for v in made)
        url_ok = url == VALID_URL
        needs_url = channel == "email"

        assert result.ok == (has_footer and (url_ok or not needs_url)), result.errors
        if not has_footer:
            assert "missing_footer" in result.error_codes
        if needs_url and not url_ok:
            assert "missing_unsubscribe" in result.error_codes
        if result.ok:
            footer = ModuleVersion.objects.select_related("module").get(pk=result.manifest["footer"])
            assert usable_footer(footer, world)
            assert [m["module"] for m in result.manifest["modules"] if m["kind"] == "footer"] == [
                footer.module.code]
            assert f'data-module="{footer.module.code}"' in result.html
            assert "1-800-FDA-1088" in result.html and "1-800-FDA-1088" in result.text
            if needs_url:
                assert f'href="{escape(url)}"' in result.html and url in result.text
                assert result.headers == {"List-Unsubscribe": f"<{url}>",
                                          "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
                assert url not in repr(result.manifest)
            else:
                assert result.headers == {}
        transaction.set_rollback(True)
    assert not ContentModule.objects.filter(code__startswith="PBT-FOOT-").exists()
