"""Review records (rounds, signatures, comments) follow their version's brand."""

import pytest

from approvals import services
from approvals.models import Comment, ReviewRound, Signature
from cms.api.auth import ChannelClient
from content.permissions import grant_author_brand
from tests.approvals.helpers import sign
from tests.factories import BrandFactory, ModuleFactory, UserFactory, VersionFactory

pytestmark = pytest.mark.django_db

REVIEW_MODELS = (ReviewRound, Signature, Comment)


@pytest.fixture
def two_brands(reviewers):
    """A version of each brand in review, with a signature and a comment; an author of A."""
    author_a = UserFactory(username="author-a")
    versions = {}
    for slug in ("alpha", "beta"):
        brand = BrandFactory(name=slug.title(), slug=slug)
        version = VersionFactory(module=ModuleFactory(brand=brand, code=f"{slug.upper()}-X-001"))
        services.submit_for_review(version=version, actor=version.created_by)
        version.refresh_from_db()
        sign(version, reviewers["medical"], "medical")
        services.add_comment(version=version, actor=reviewers["legal"], body="Check the claim.")
        versions[slug] = version
    grant_author_brand(author_a, versions["alpha"].module.brand)
    return author_a, versions


def test_an_author_of_brand_a_sees_no_review_record_of_brand_b(two_brands):
    author_a, versions = two_brands
    for model in REVIEW_MODELS:
        rows = model.objects.restrict(author_a)
        assert set(rows.values_list("version_id", flat=True)) == {versions["alpha"].pk}, model


def test_reviewers_see_every_brand_and_channels_nothing(two_brands, reviewers):
    channel = ChannelClient(token_id=1, name="sender", channels=frozenset({"email"}),
                            jurisdictions=frozenset({"US"}), rate_limit="")
    for model in REVIEW_MODELS:
        assert model.objects.restrict(reviewers["regulatory"]).count() == 2, model
        assert not model.objects.restrict(channel).exists(), model


def test_signatures_stay_append_only_with_restrict(two_brands, reviewers):
    from approvals.models import AppendOnlyError

    with pytest.raises(AppendOnlyError):
        Signature.objects.restrict(reviewers["medical"]).update(comment="x")
