"""Builders shared by the API and delivery tests: a compliant US email step, tokens."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework.test import APIClient

from content.models import Audience, Channel, ContentModule, Jurisdiction, Locale
from content.models import Stage as AudienceStage
from delivery.tokens import create_token
from journeys.models import Journey, Slot, Stage, Step, Transition
from tests.factories import (
    BrandFactory,
    ModuleFactory,
    VersionFactory,
    record_approval_signatures,
    term,
)

UNSUBSCRIBE_URL = "https://prefs.example.test/unsubscribe/crm-0001"
RECIPIENT = {
    "id": "crm-0001", "title": "Dr.", "first_name": "Alex", "last_name": "Morgan",
    "specialty": "Cardiology", "consent": {"email": True, "portal": True},
    "unsubscribe_url": UNSUBSCRIBE_URL,
}
# The brand's approved US footer: legal text, adverse-event line, postal address.
FOOTER_BODY = ('<p>For U.S. audiences only.</p>'
               '<p class="adverse-events">Report adverse events to FDA at 1-800-FDA-1088.</p>'
               '<p class="postal-address">Demo Pharma, Inc., 1 Example Plaza, Princeton, NJ '
               '08540, USA</p>')


def approve(version, *, days_valid=365, **fields):
    version.state = "approved"
    version.approved_at = timezone.now() - timedelta(days=1)
    version.expires_at = timezone.now() + timedelta(days=days_valid)
    for name, value in fields.items():
        setattr(version, name, value)
    version.save(update_fields=["state", "approved_at", "expires_at", *fields])
    return record_approval_signatures(version)


def make_version(brand, code, *, kind="body", body="<p>Body</p>", subject="", tags=None,
                 approved=True):
    module = ContentModule.objects.filter(code=code).first() or ModuleFactory(
        code=code, brand=brand, kind=kind)
    version = VersionFactory(module=module, body_html=body, subject=subject,
                             locale=term(Locale, "en"), tags=tags or {})
    return approve(version) if approved else version


def build_world(slug="hcp-new", brand_slug="cardiozen", step_key="welcome"):
    """Journey `slug` (US, HCP) with an email step `welcome` (subject, headline, claim+ISI)
    and a portal step `portal-followup`; two ignored welcome emails move to the portal."""
    brand = BrandFactory(name=brand_slug.title(), slug=brand_slug)
    hcp = term(Audience, "hcp")
    us, _ = Jurisdiction.objects.get_or_create(code="US", defaults={"name": "United States"})
    Jurisdiction.objects.get_or_create(code="DE", defaults={"name": "Germany"})
    stage, _ = AudienceStage.objects.get_or_create(audience=hcp, code="awareness",
                                                   defaults={"name": "Awareness"})
    journey = Journey.objects.create(slug=slug, name=f"Journey {slug}", brand=brand,
                                     audience=hcp, locale=term(Locale, "en"))
    journey.jurisdictions.set([us])
    column = Stage.objects.create(journey=journey, audience_stage=stage, order=1)
    step = Step.objects.create(journey=journey, stage=column, key=step_key,
                               name="Welcome email", channel=term(Channel, "email"))
    portal = Step.objects.create(journey=journey, stage=column, key="portal-followup",
                                 name="Portal follow-up", channel=term(Channel, "portal"),
                                 layout="portal", order=1)
    prefix = brand_slug[:3].upper()
    versions = {
        "subject": make_version(brand, f"{prefix}-SUBJ-001", kind="subject",
                                subject="News for {{ recipient.title }} {{ recipient.last_name }}",
                                body=""),
        "headline": make_version(brand, f"{prefix}-HEAD-001", kind="headline",
                                 body="<h1>Hello {{ recipient.title }} {{ recipient.last_name }}</h1>"),
        "claim": make_version(brand, f"{prefix}-EFF-001", kind="claim",
                              body="<p>Cut hospitalisations by 27%.</p>", approved=False),
        "isi": make_version(brand, f"{prefix}-ISI-US", kind="isi",
                            body="<p>Important Safety Information.</p>"),
    }
    versions["claim"].requires.add(versions["isi"].module)  # signed with the claim
    approve(versions["claim"])
    for order, name in enumerate(["subject", "headline", "claim", "isi"]):
        Slot.objects.create(step=step, order=order, module=versions[name].module)
    Transition.objects.create(from_step=step, event_type="ignored", threshold=2, to_step=portal)
    footer = make_version(brand, f"{prefix}-FOOT-US", kind="footer", body=FOOTER_BODY,
                          tags={"channels": ["email", "portal"]})
    return {"brand": brand, "journey": journey, "step": step, "portal": portal,
            "versions": versions, "footer": footer}


def token(channels=("email",), jurisdictions=("US",), name="Email sender", rate_limit=""):
    for code in channels:
        term(Channel, code)
    for code in jurisdictions:
        Jurisdiction.objects.get_or_create(code=code, defaults={"name": code})
    return create_token(name=name, channels=channels, jurisdictions=jurisdictions,
                        rate_limit=rate_limit)


def token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def codes(response) -> list[str]:
    return [e["code"] for e in response.json()["errors"]]


def assemble_body(**overrides):
    body = {"channel": "email", "jurisdiction": "US", "locale": "en", "recipient": dict(RECIPIENT)}
    body.update(overrides)
    return body
