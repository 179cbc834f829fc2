"""The journey-designer role: the group (made at migrate) carries the builder's model
permissions; the brand rule still decides which journeys a designer may change."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from content.permissions import grant_author_brand
from journeys.permissions import DESIGNER_MODEL_PERMS, DESIGNERS_GROUP
from tests.factories import BrandFactory, UserFactory

pytestmark = pytest.mark.django_db

MAP = "/journeys/hcp-new/map/"


def member(username, brand):
    user = UserFactory(username=username, is_staff=True)
    user.groups.add(Group.objects.get(name=DESIGNERS_GROUP))
    grant_author_brand(user, brand)
    client = Client()
    client.force_login(user)
    return client


def test_migrate_gives_the_group_every_builder_permission():
    group = Group.objects.get(name=DESIGNERS_GROUP)
    assert set(group.permissions.values_list("codename", flat=True)) >= set(DESIGNER_MODEL_PERMS)


def test_a_designer_of_the_brand_gets_the_builder(world):
    page = member("lena", world["brand"]).get(MAP).content.decode()
    assert "Build this journey" in page


def test_a_designer_of_another_brand_does_not(world):
    response = member("otto", BrandFactory(name="Elsewhere")).get(MAP)
    assert "Build this journey" not in response.content.decode()
