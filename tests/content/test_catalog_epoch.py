"""The catalog epoch moves with every change that can alter an assembly or a token scope,
and in the same transaction (a rolled-back change leaves it where it was)."""

import pytest
from django.db import transaction
from django.utils import timezone

from content import catalog_epoch
from content.models import Channel, Jurisdiction, MarketRule
from delivery.tokens import revoke_token
from journeys.models import Slot
from tests.api.builders import build_world, token

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db):
    return build_world()


def moves(change) -> bool:
    before = catalog_epoch.current()
    change()
    return catalog_epoch.current() != before


def test_version_state_change_moves_the_epoch(world):
    version = world["versions"]["claim"]

    def withdraw():
        version.state, version.withdrawn_at = "withdrawn", timezone.now()
        version.save(update_fields=["state", "withdrawn_at"])
    assert moves(withdraw)


def test_version_validity_change_moves_the_epoch(world):
    version = world["versions"]["isi"]

    def shorten():
        version.expires_at = timezone.now()
        version.save(update_fields=["expires_at"])
    assert moves(shorten)


def test_slot_change_moves_the_epoch(world):
    slot = Slot.objects.filter(step=world["step"]).first()
    assert moves(lambda: Slot.objects.create(step=world["step"], order=9, module=slot.module))
    assert moves(lambda: Slot.objects.filter(step=world["step"], order=9).get().delete())


def test_step_change_moves_the_epoch(world):
    step = world["step"]

    def relayout():
        step.layout = "portal"
        step.save()
    assert moves(relayout)


def test_journey_market_change_moves_the_epoch(world):
    de = Jurisdiction.objects.get(code="DE")
    assert moves(lambda: world["journey"].jurisdictions.add(de))
    assert moves(lambda: world["journey"].jurisdictions.remove(de))


def test_footer_change_moves_the_epoch(world):
    footer = world["footer"]

    def withdraw_footer():
        footer.state, footer.withdrawn_at = "withdrawn", timezone.now()
        footer.save(update_fields=["state", "withdrawn_at"])
    assert moves(withdraw_footer)


def test_market_rule_change_moves_the_epoch(world):
    us = Jurisdiction.objects.get(code="US")
    kind = MarketRule.Kind.values[0]
    rule = MarketRule.objects.filter(jurisdiction=us, kind=kind).first()
    if rule is None:
        assert moves(lambda: MarketRule.objects.create(jurisdiction=us, kind=kind))
        rule = MarketRule.objects.get(jurisdiction=us, kind=kind)

    def switch():
        rule.active = not rule.active
        rule.save()
    assert moves(switch)


def test_token_revocation_and_scope_change_move_the_epoch(world):
    channel_token, _ = token()
    portal, _ = Channel.objects.get_or_create(code="portal", defaults={"name": "Portal"})
    assert moves(lambda: channel_token.channels.add(portal))
    assert moves(lambda: revoke_token(channel_token))


def test_a_rolled_back_change_leaves_the_epoch(world):
    before = catalog_epoch.current()
    with pytest.raises(RuntimeError), transaction.atomic():
        world["step"].save()
        assert catalog_epoch.current() != before  # the change's transaction sees it
        raise RuntimeError("roll back")
    assert catalog_epoch.current() == before


def test_reading_does_not_move_the_epoch(world):
    assert catalog_epoch.current() == catalog_epoch.current()
