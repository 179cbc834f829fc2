"""Journeys and steps: `restrict(user_or_client, action)` by brand for people, by market
for channel callers."""

import pytest

from cms.api.auth import ChannelClient
from content.models import Audience, Channel, Jurisdiction, Locale
from content.models import Stage as AudienceStage
from content.permissions import grant_author_brand
from journeys.models import Journey, Stage, Step
from tests.factories import BrandFactory, UserFactory, term

pytestmark = pytest.mark.django_db


def channel(*jurisdictions):
    return ChannelClient(token_id=1, name="sender", channels=frozenset({"email"}),
                         jurisdictions=frozenset(jurisdictions), rate_limit="")


@pytest.fixture
def journeys(db):
    """A journey with one step for each of two brands: alpha in the US, beta in DE."""
    hcp = term(Audience, "hcp")
    stage, _ = AudienceStage.objects.get_or_create(audience=hcp, code="awareness",
                                                   defaults={"name": "Awareness"})
    made = {}
    for slug, market in (("alpha", "US"), ("beta", "DE")):
        brand = BrandFactory(name=slug.title(), slug=slug)
        journey = Journey.objects.create(slug=f"{slug}-j", name=slug, brand=brand, audience=hcp,
                                         locale=term(Locale, "en"))
        journey.jurisdictions.set(
            [Jurisdiction.objects.get_or_create(code=market, defaults={"name": market})[0]])
        column = Stage.objects.create(journey=journey, audience_stage=stage)
        Step.objects.create(journey=journey, stage=column, key="welcome", name="Welcome",
                            channel=term(Channel, "email"))
        made[slug] = journey
    return made


def test_an_author_of_brand_a_sees_no_journey_or_step_of_brand_b(journeys):
    author = UserFactory(username="author-alpha")
    grant_author_brand(author, journeys["alpha"].brand)
    for action in ("view", "change"):
        assert list(Journey.objects.restrict(author, action)) == [journeys["alpha"]]
        assert {s.journey for s in Step.objects.restrict(author, action)} == {journeys["alpha"]}


def test_outsiders_see_no_journey(journeys):
    assert not Journey.objects.restrict(UserFactory(username="nobody")).exists()
    assert not Step.objects.restrict(None).exists()


def test_a_channel_sees_journeys_and_steps_of_its_markets_and_changes_none(journeys):
    assert list(Journey.objects.restrict(channel("US"))) == [journeys["alpha"]]
    assert {s.journey for s in Step.objects.restrict(channel("DE"))} == {journeys["beta"]}
    assert not Journey.objects.restrict(channel("FR")).exists()
    assert not Journey.objects.restrict(channel("US", "DE"), "change").exists()
