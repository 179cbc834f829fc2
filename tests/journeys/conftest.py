"""Builders for journeys tests: a small compliant email step and ways to break it."""

import pytest

from content.models import Audience, Channel, ContentModule, Jurisdiction, Locale
from content.models import Stage as AudienceStage
from journeys.models import Journey, Slot, Stage, Step
from tests.factories import (
    BrandFactory,
    ModuleFactory,
    ReferenceFactory,
    UserFactory,
    VersionFactory,
    term,
)

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's password

# The adverse-event line of the brand's approved US footer module (every assembly carries it).
US_FOOTER = "For U.S. audiences only. Report adverse events to FDA at 1-800-FDA-1088."
US_ADDRESS = "Cardiozen Pharma, Inc., 1 Example Plaza, Princeton, NJ 08540, USA"
UNSUBSCRIBE_URL = "https://prefs.example.test/unsubscribe/crm-0001?t=abc&list=hcp"

RECIPIENT = {
    "id": "crm-0001",
    "title": "Dr.",
    "first_name": "Alex",
    "last_name": "Morgan",
    "specialty": "Cardiology",
    "consent": {"email": True, "portal": True},
    "unsubscribe_url": UNSUBSCRIBE_URL,
}


def footer_body(adverse_events: str = US_FOOTER, address: str = US_ADDRESS) -> str:
    """A footer body with the parts content.rules requires (marked by class)."""
    return (f'<p class="adverse-events">{adverse_events}</p>'
            f'<p class="postal-address">{address}</p>')


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Approving signs three decisions, each re-checking a password.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _reviewers():
    from approvals.roles import REQUIRED_ROLES, role_group

    people = {}
    for role in REQUIRED_ROLES:
        user = UserFactory(username=f"journeys-{role}", first_name=role.title(),
                           last_name="Reviewer")
        user.groups.add(role_group(role))
        people[role] = user
    return people


def approve(version):
    """Approve through the MLR workflow: submit, then one signed decision per role."""
    from approvals import services
    from approvals.signing import Credentials

    if version.module.kind == "claim" and not version.citations.exists():
        version.citations.add(ReferenceFactory(brand=version.module.brand))
    services.submit_for_review(version=version, actor=version.created_by)
    version.refresh_from_db()
    for role, user in _reviewers().items():
        services.decide(version=version, actor=user, role=role, decision="approve",
                        expected_sha256=version.sha256,
                        credentials=Credentials(password=PASSWORD, username=user.username))
    version.refresh_from_db()
    assert version.state == "approved", version.state
    return version


def make_version(brand, code, *, kind="body", purpose="promotional", body="<p>Body</p>",
                 subject="", tags=None, fallbacks=None, approved=True, locale="en"):
    module = ContentModule.objects.filter(code=code).first() or ModuleFactory(
        code=code, brand=brand, kind=kind, purpose=purpose)
    version = VersionFactory(module=module, body_html=body, subject=subject,
                             locale=term(Locale, locale), tags=tags or {},
                             token_fallbacks=fallbacks or {})
    return approve(version) if approved else version


@pytest.fixture
def world(db):
    """A promotional US email step: subject, headline (personalised), claim + its ISI."""
    brand = BrandFactory(name="Cardiozen", slug="cardiozen")
    hcp = term(Audience, "hcp")
    us, _ = Jurisdiction.objects.get_or_create(code="US", defaults={"name": "United States"})
    stage, _ = AudienceStage.objects.get_or_create(audience=hcp, code="awareness",
                                                   defaults={"name": "Awareness"})
    journey = Journey.objects.create(slug="hcp-new", name="HCP new to therapy", brand=brand,
                                     audience=hcp, locale=term(Locale, "en"))
    journey.jurisdictions.set([us])
    column = Stage.objects.create(journey=journey, audience_stage=stage, order=1)
    step = Step.objects.create(journey=journey, stage=column, key="welcome", name="Welcome email",
                               channel=term(Channel, "email"), purpose="promotional")
    versions = {
        "subject": make_version(brand, "CZN-SUBJ-001", kind="subject",
                                subject="News for {{ recipient.title }} {{ recipient.last_name }}",
                                body=""),
        "headline": make_version(brand, "CZN-HEAD-001", kind="headline",
                                 body="<h1>Hello {{ recipient.title }} {{ recipient.last_name }}</h1>"),
        "isi": make_version(brand, "CZN-ISI-US", kind="isi",
                            body="<p><strong>Important Safety Information</strong> Do not use in pregnancy.</p>"),
        "claim": make_version(brand, "CZN-EFF-001", kind="claim",
                              body="<p>Cut hospitalisations by 27%.</p>", approved=False),
    }
    versions["claim"].requires.add(versions["isi"].module)  # signed with the claim
    approve(versions["claim"])
    for order, name in enumerate(["subject", "headline", "claim", "isi"]):
        Slot.objects.create(step=step, order=order, module=versions[name].module)
    footer = make_version(brand, "CZN-FOOT-US", kind="footer", body=footer_body(),
                          tags={"channels": ["email", "portal"]})
    return {"brand": brand, "journey": journey, "step": step, "stage": column,
            "audience_stage": stage, "versions": versions, "us": us, "footer": footer,
            "author": UserFactory(username="journeys-author")}


def assemble_kwargs(**overrides):
    return {"channel": "email", "jurisdiction": "US", "locale": "en", **overrides}
