import pytest
from django.core.exceptions import ValidationError

from content.models import ImmutableVersionError, ModuleVersion
from tests.factories import UserFactory, VersionFactory

pytestmark = pytest.mark.django_db


def test_approved_version_content_cannot_change():
    version = VersionFactory()
    version.state = "approved"
    version.save(update_fields=["state"])
    version.body_html = "<p>changed</p>"
    with pytest.raises(ImmutableVersionError):
        version.save()
    with pytest.raises(ImmutableVersionError):
        version.delete()
    with pytest.raises(NotImplementedError):
        ModuleVersion.objects.filter(pk=version.pk).update(body_html="x")


def test_unknown_token_is_refused_naming_it():
    with pytest.raises(ValidationError, match="recipient.ssn"):
        VersionFactory(body_html="<p>{{ recipient.ssn }}</p>")


def test_new_version_copies_tags_into_next_draft():
    version = VersionFactory()
    version.state = "approved"
    version.save(update_fields=["state"])
    draft = version.module.new_version(author=UserFactory())
    assert (draft.number, draft.state) == (2, "draft")
    assert list(draft.jurisdictions.values_list("code", flat=True)) == ["US"]
    assert draft.sha256 != version.sha256
