"""A footer module goes to review only with its adverse-event line and postal address
(marked by class), and a brand has one footer per market and locale."""

import pytest

from approvals import services
from approvals.errors import ApprovalError
from content.rules import footer_part_errors, review_readiness_errors
from tests.api.builders import approve
from tests.factories import BrandFactory, ModuleFactory, VersionFactory

pytestmark = pytest.mark.django_db

COMPLETE = ('<p>For U.S. audiences only.</p>'
            '<p class="adverse-events">Report adverse events to FDA at 1-800-FDA-1088.</p>'
            '<p class="postal-address"><small>Demo Pharma, 1 Example Plaza, Princeton</small></p>')


def test_a_complete_footer_has_no_part_errors():
    assert footer_part_errors(COMPLETE) == []
    # The marker may sit on any element, the part's text nested inside it.
    assert footer_part_errors('<div class="x adverse-events"><p>Report to 1-800</p></div>'
                              '<span class="postal-address">1 Road<br>Town</span>') == []


@pytest.mark.parametrize("body, missing", [
    ("<p>Legal text only.</p>", ["adverse-events", "postal-address"]),
    ('<p class="adverse-events">Report to FDA.</p>', ["postal-address"]),
    ('<p class="postal-address">1 Road</p><p class="adverse-events">  </p>', ["adverse-events"]),
    ('<p class="adverse-events"></p><p>Report to FDA.</p><p class="postal-address">1 Road</p>',
     ["adverse-events"]),
])
def test_a_footer_lacking_a_part_is_told_which_and_how(body, missing):
    errors = footer_part_errors(body)
    assert len(errors) == len(missing)
    for marker, error in zip(missing, errors, strict=True):
        assert f'class="{marker}"' in error


def test_submission_of_a_footer_without_its_parts_is_refused_with_the_reason():
    module = ModuleFactory(kind="footer", code="TST-FOOT-US")
    version = VersionFactory(module=module, body_html="<p>Legal text only.</p>")
    with pytest.raises(ApprovalError) as refused:
        services.submit_for_review(version=version, actor=version.created_by)
    text = str(refused.value) + " ".join(getattr(refused.value, "details", []) or [])
    assert "adverse-event reporting line" in text and "postal address" in text
    version.refresh_from_db()
    assert version.state == "draft"


def test_a_complete_footer_is_ready_for_review():
    version = VersionFactory(module=ModuleFactory(kind="footer"), body_html=COMPLETE)
    assert review_readiness_errors(version) == []


def test_a_second_footer_module_for_the_same_brand_market_and_locale_is_refused():
    brand = BrandFactory(slug="footbrand")
    first = approve(VersionFactory(module=ModuleFactory(kind="footer", brand=brand,
                                                        code="FB-FOOT-US"), body_html=COMPLETE))
    second = VersionFactory(module=ModuleFactory(kind="footer", brand=brand, code="FB-FOOT-US2"),
                            body_html=COMPLETE)
    errors = review_readiness_errors(second)
    assert errors == [f"{first.module.code} already is this brand's footer for US in this "
                      f"locale: make a new version of {first.module.code} instead of a second "
                      "footer module."]
    # Another market, or another brand, is no overlap; nor is a new version of the same module.
    elsewhere = VersionFactory(module=ModuleFactory(kind="footer", brand=brand, code="FB-FOOT-DE"),
                               body_html=COMPLETE, tags={"jurisdictions": ["DE"]})
    assert review_readiness_errors(elsewhere) == []
    other = VersionFactory(module=ModuleFactory(kind="footer", code="OB-FOOT-US"),
                           body_html=COMPLETE)
    assert review_readiness_errors(other) == []
    again = VersionFactory(module=first.module, body_html=COMPLETE, number=2)
    assert review_readiness_errors(again) == []
