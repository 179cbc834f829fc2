"""Builders for journeys tests: a small compliant email step and ways to break it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from content.models import Audience, Channel, ContentModule, Jurisdiction, Locale
from content.models import Stage as AudienceStage
from journeys.models import Journey, Slot, Stage, Step
from tests.factories import BrandFactory, ModuleFactory, UserFactory, VersionFactory, term

US_FOOTER = "For U.S. audiences only. Report adverse events to FDA at 1-800-FDA-1088."

RECIPIENT = {
    "id": "crm-0001",
    "title": "Dr.",
    "first_name": "Alex",
    "last_name": "Morgan",
    "specialty": "Cardiology",
    "consent": {"email": True, "portal": True},
}


def approve(version, *, days_valid=365):
    """Approve as the workflow would leave it (the approvals service signs in its own tests)."""
    version.state = "approved"
    version.approved_at = timezone.now() - timedelta(days=1)
    version.expires_at = timezone.now() + timedelta(days=days_valid)
    version.save(update_fields=["state", "approved_at", "expires_at"])
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
    us.legal_footer = US_FOOTER
    us.save()
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
                              body="<p>Cut hospitalisations by 27%.</p>"),
    }
    versions["claim"].module.requires.add(versions["isi"].module)
    for order, name in enumerate(["subject", "headline", "claim", "isi"]):
        Slot.objects.create(step=step, order=order, module=versions[name].module)
    return {"brand": brand, "journey": journey, "step": step, "stage": column,
            "audience_stage": stage, "versions": versions, "us": us,
            "author": UserFactory(username="journeys-author")}


def assemble_kwargs(**overrides):
    return {"channel": "email", "jurisdiction": "US", "locale": "en", **overrides}
