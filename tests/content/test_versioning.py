"""Versions: new_version() and set_tags() keep numbers, sha256 and history straight."""

import pytest
from django.core.exceptions import ValidationError

from content.models import Channel, ImmutableVersionError, Jurisdiction
from content.versioning import set_tags
from tests.content.helpers import approve
from tests.factories import ReferenceFactory, UserFactory, VersionFactory, term

pytestmark = pytest.mark.django_db


def test_set_tags_writes_one_history_record_and_refreshes_sha256():
    version = VersionFactory()
    before_sha, before_count = version.sha256, version.history.count()
    ref = ReferenceFactory(brand=version.module.brand)
    set_tags(version, channels=[term(Channel, "sms"), term(Channel, "email")],
             jurisdictions=[Jurisdiction.objects.get(code="DE")], citations=[ref])
    version.refresh_from_db()
    assert version.sha256 != before_sha
    assert version.history.count() == before_count + 1
    record = version.history.first()
    assert set(record.channels.values_list("channel__code", flat=True)) == {"sms", "email"}
    assert list(record.citations.values_list("reference_id", flat=True)) == [ref.pk]


def test_set_tags_refuses_frozen_versions_and_unknown_names():
    version = approve(VersionFactory())
    with pytest.raises(ImmutableVersionError):
        set_tags(version, channels=[term(Channel, "sms")])
    assert list(version.channels.values_list("code", flat=True)) == ["email"]
    with pytest.raises(ValueError, match="colour"):
        set_tags(VersionFactory(), colour=[])


def test_new_version_is_refused_while_a_draft_is_open():
    version = VersionFactory()
    with pytest.raises(ValidationError, match="edit it instead"):
        version.module.new_version(author=UserFactory())


def test_new_version_numbers_follow_on_and_sha256_binds_the_number():
    first = approve(VersionFactory())
    second = first.module.new_version(author=first.created_by)
    approve(second)
    third = first.module.new_version(author=first.created_by)
    assert [first.number, second.number, third.number] == [1, 2, 3]
    assert len({first.sha256, second.sha256, third.sha256}) == 3
