"""The journey map asks the shared rules: deliverability health with the brand's notice
period, the state groups and the channel taxonomy."""

import pytest
from django.utils import timezone

from content.models import Channel
from journeys.selectors import journey_map, sample_recipient

pytestmark = pytest.mark.django_db


def _statuses(journey):
    cells = journey_map(journey)["cells"].values()
    return {m.code: m.status for cell in cells for m in cell.modules}


def test_map_warns_within_the_brands_notice_period_not_the_sites(world, settings):
    settings.TESSERA_EXPIRY_NOTICE_DAYS = 1
    journey, brand = world["journey"], world["brand"]
    version = world["versions"]["claim"]
    days_left = (version.expires_at - timezone.now()).days
    brand.expiry_notice_days = days_left + 5
    brand.save()
    journey.refresh_from_db()
    assert _statuses(journey)["CZN-EFF-001"] == "expiring"
    brand.expiry_notice_days = max(days_left - 5, 1)
    brand.save()
    journey.refresh_from_db()
    assert _statuses(journey)["CZN-EFF-001"] == "ok"


def test_map_shows_an_approved_version_not_yet_valid_as_pending(world):
    from datetime import timedelta

    from django.db import connection

    from content.models import ModuleVersion

    version = world["versions"]["headline"]
    # valid_from is signed content: set it in SQL, past the immutability guard (the map's
    # rule is under test here, not the guard).
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {ModuleVersion._meta.db_table} SET valid_from = %s WHERE id = %s",
                       [timezone.now() + timedelta(days=3), version.pk])
    assert _statuses(world["journey"])["CZN-HEAD-001"] == "pending"


def test_the_sample_recipient_consents_to_every_channel_of_the_taxonomy(db):
    Channel.objects.get_or_create(code="print", defaults={"name": "Print"})
    consent = sample_recipient()["consent"]
    assert set(consent) == set(Channel.objects.values_list("code", flat=True))
    assert "print" in consent and all(consent.values())
