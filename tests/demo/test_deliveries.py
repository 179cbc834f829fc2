"""The demo's delivery log: served through the real batch path to the demo's enrolled
recipients, so content performance per module version has figures on a fresh demo."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from delivery.models import DeliveredVersion, Delivery
from demo import events as demo_events
from journeys.models import Enrollment

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

HCP = "cardiozen-hcp-new-to-therapy"


def test_demo_content_performance_shows_served_versions_and_a_ranked_selector(
        eager_celery, client):
    call_command("load_demo", stdout=io.StringIO())
    deliveries = Delivery.objects.count()
    assert deliveries > 0 and DeliveredVersion.objects.count() > deliveries

    # The log's pseudonyms are the demo enrollments' (that is what joins engagement).
    logged = set(Delivery.objects.filter(journey_slug=HCP).values_list(
        "recipient_pseudonym", flat=True))
    enrolled = set(Enrollment.objects.filter(journey__slug=HCP).values_list(
        "recipient_hash", flat=True))
    assert logged and logged <= enrolled
    # Served by an operator at the shell, like assemble_batch: no token, no user.
    assert not Delivery.objects.exclude(token_id=None, user_id=None).exists()

    client.force_login(get_user_model().objects.get(username="admin"))
    content = client.get(f"/api/v1/analytics/journeys/{HCP}/").json()["content"]
    shown = [v for v in content["versions"]
             if isinstance(v["deliveries"], int) and v["deliveries"] > 0
             and isinstance(v["rate"], float)]
    assert shown, content["versions"]
    # The engagement-ranked claim selector served several candidates: compared.
    [slot] = [s for s in content["selector_slots"] if s["step"] == "portal-micro"]
    assert len(slot["candidates"]) >= 2 and slot["comparisons"]
    manifest = Delivery.objects.filter(journey_slug=HCP, step_key="portal-micro").first().manifest
    [claim] = [m for m in manifest["modules"] if m["kind"] == "claim"]
    assert claim["ranking"]["by"] == "engagement" and claim["ranking"]["reason"]

    # Idempotent: a second run serves nobody again.
    out = io.StringIO()
    demo_events.load(out)
    assert Delivery.objects.count() == deliveries
    assert "served" not in out.getvalue()


def test_a_demo_history_with_unkeyed_pseudonyms_is_left_alone(db):
    """A database loaded before the demo's pseudonyms were keyed: no second history (the
    journey would double) and no deliveries that could not join its enrollments."""
    import hashlib

    from content.models import Audience, Brand, Locale
    from journeys.models import Journey

    brand = Brand.objects.create(name="Cardiozen", slug="cardiozen")
    journey = Journey.objects.create(slug="cardiozen-patient", name="Patient", brand=brand,
                                     audience=Audience.objects.get(code="patient"),
                                     locale=Locale.objects.get(code="en"))
    legacy = hashlib.sha256(b"tessera-demo:cardiozen-patient:0").hexdigest()
    Enrollment.objects.create(journey=journey, recipient_hash=legacy)
    out = io.StringIO()
    demo_events.load(out)
    assert "older demo history" in out.getvalue()
    assert Enrollment.objects.filter(journey=journey).count() == 1
    assert not Delivery.objects.exists()
