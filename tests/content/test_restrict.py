"""`<Model>.objects.restrict(user_or_client, action)`: the one visibility entry point.

People see by brand; a channel caller (API token) sees only what it may deliver now, in its
channels and jurisdictions; nobody else sees anything.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from cms.api.auth import ChannelClient
from content.models import Asset, Brand, ContentModule, ModuleVersion, Reference, VersionState
from content.permissions import channel_scope
from tests.factories import ModuleFactory, ReferenceFactory, UserFactory, VersionFactory

pytestmark = pytest.mark.django_db

CONTENT_MODELS = (Brand, ContentModule, ModuleVersion, Reference)


def channel(channels=("email",), jurisdictions=("US",)):
    return ChannelClient(token_id=1, name="sender", channels=frozenset(channels),
                         jurisdictions=frozenset(jurisdictions), rate_limit="")


@pytest.fixture
def cited(version_a, version_b):
    """A reference of each brand, cited by that brand's version."""
    refs = {}
    for version in (version_a, version_b):
        ref = ReferenceFactory(brand=version.module.brand)
        version.citations.add(ref)
        refs[version.module.brand.slug] = ref
    return refs


def test_an_author_of_brand_a_sees_nothing_of_brand_b_in_any_model(
        version_a, version_b, author_a, cited):
    brand_b = version_b.module.brand
    for model in CONTENT_MODELS:
        for action in ("view", "change"):
            rows = model.objects.restrict(author_a, action)
            lookup = model.brand_lookup
            assert rows.exists(), (model, action)
            assert not rows.filter(**{lookup: brand_b.pk}).exists(), (model, action)


def test_reviewers_view_every_brand_but_change_none(version_a, version_b, reviewer, cited):
    for model in CONTENT_MODELS:
        assert model.objects.restrict(reviewer, "view").count() == 2, model
        assert not model.objects.restrict(reviewer, "change").exists(), model


def test_superusers_view_and_change_everything(version_a, version_b, superuser):
    for action in ("view", "change"):
        assert ModuleVersion.objects.restrict(superuser, action).count() == 2


def test_outsiders_anonymous_and_inactive_see_nothing(version_a, author_a):
    from django.contrib.auth.models import AnonymousUser

    outsider = UserFactory(username="nobody", is_staff=True)
    author_a.is_active = False
    for who in (None, AnonymousUser(), outsider, author_a):
        assert not ModuleVersion.objects.restrict(who).exists(), who


def test_for_user_is_restrict_view(version_a, version_b, author_a):
    assert list(ModuleVersion.objects.for_user(author_a)) == list(
        ModuleVersion.objects.restrict(author_a, "view"))


def test_an_unknown_action_is_refused(author_a):
    with pytest.raises(ValueError, match="delete"):
        ModuleVersion.objects.restrict(author_a, "delete")


def test_a_channel_is_recognised_and_a_person_is_not(author_a):
    assert channel_scope(channel()).channels == frozenset({"email"})
    assert channel_scope(author_a) is None
    assert channel_scope(None) is None


def _version(code, *, state=VersionState.APPROVED, channels=("email",), jurisdictions=("US",),
             **fields):
    """A version tagged as a draft, then moved to `state` as the workflow does."""
    expires_at = fields.pop("expires_at", None)
    version = VersionFactory(module=ModuleFactory(code=code), **fields,
                             tags={"channels": list(channels),
                                   "jurisdictions": list(jurisdictions)})
    version.state, version.expires_at = state, expires_at
    version.save(update_fields=["state", "expires_at", "updated_at"])
    return version


def test_a_channel_never_sees_a_version_it_may_not_deliver():
    now = timezone.now()
    day = timedelta(days=1)
    deliverable = _version("CH-OK-001", valid_from=now - day, expires_at=now + day)
    _version("CH-WDR-001", state=VersionState.WITHDRAWN)
    _version("CH-EXP-001", state=VersionState.EXPIRED)
    _version("CH-OLD-001", expires_at=now - day)  # approved, past its expiry, not yet swept
    _version("CH-NEW-001", valid_from=now + day)  # approved, not yet valid
    _version("CH-DRF-001", state=VersionState.DRAFT)
    _version("CH-REV-001", state=VersionState.IN_REVIEW)
    _version("CH-SMS-001", channels=("sms",))  # deliverable, another channel
    _version("CH-DEU-001", jurisdictions=("DE",))  # deliverable, another market
    caller = channel()
    assert list(ModuleVersion.objects.restrict(caller)) == [deliverable]
    assert list(ContentModule.objects.restrict(caller)) == [deliverable.module]
    assert list(Brand.objects.restrict(caller)) == [deliverable.module.brand]


def test_a_channel_sees_references_and_assets_only_of_versions_it_may_deliver(version_a,
                                                                            cited):
    caller = channel()
    assert not Reference.objects.restrict(caller).exists()  # version_a is a draft
    version_a.state = VersionState.APPROVED
    version_a.save(update_fields=["state", "updated_at"])
    assert list(Reference.objects.restrict(caller)) == [cited["alphazen"]]
    assert not Asset.objects.restrict(caller).exists()


def test_a_channel_changes_nothing():
    _version("CH-OK-002")
    assert ModuleVersion.objects.restrict(channel(), "view").exists()
    for model in CONTENT_MODELS:
        assert not model.objects.restrict(channel(), "change").exists()
