"""The content demo: what it promises the other apps, and that it can run again."""

import io

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.test import RequestFactory

from content.models import Asset, ContentModule, ModuleVersion, Reference, Stage
from content.rules import review_readiness_errors
from content.tokens import find_tokens
from demo import content as demo_content
from demo import specs

pytestmark = pytest.mark.django_db


@pytest.fixture
def loaded(eager_celery, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        demo_content.load(io.StringIO())


def versions_of(prefix):
    return (ModuleVersion.objects.filter(module__code__startswith=prefix)
            .select_related("module", "locale").prefetch_related(
                "audiences", "stages__audience", "jurisdictions", "citations", "channels"))


def test_content_demo_is_idempotent(loaded, eager_celery, django_capture_on_commit_callbacks):
    counts = lambda: (ContentModule.objects.count(), ModuleVersion.objects.count(),  # noqa: E731
                      Reference.objects.count(), Asset.objects.count(),
                      ModuleVersion.history.count(), ContentModule.history.count())
    before = counts()
    with django_capture_on_commit_callbacks(execute=True):
        demo_content.load(io.StringIO())
    assert counts() == before


def test_demo_authors_see_only_their_brand_and_reviewers_all(loaded):
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    brands = set(ContentModule.objects.for_user(users.get(username="author.cardiozen"))
                 .values_list("brand__slug", flat=True))
    assert brands == {"cardiozen"}
    reviewer = users.get(username="legal")
    assert ContentModule.objects.for_user(reviewer).count() == ContentModule.objects.count()


def test_demo_covers_audiences_stages_markets_locales_and_an_isi_per_market(loaded):
    assert ContentModule.objects.filter(brand__slug="cardiozen").count() >= 40
    versions = list(versions_of("CZN-"))
    covered = {(s.audience.code, s.code) for v in versions for s in v.stages.all()}
    for audience in ("hcp", "patient", "pharmacist"):
        for stage in Stage.objects.filter(audience__code=audience):
            assert (audience, stage.code) in covered, f"{audience}/{stage.code} has no module"
    pairs = {(j.code, v.locale.code) for v in versions for j in v.jurisdictions.all()}
    assert {("US", "en"), ("DE", "de")} <= pairs
    for market in ("US", "DE"):
        isi = ContentModule.objects.get(code=f"CZN-ISI-{market}")
        assert isi.kind == "isi"
        assert list(isi.latest_version().jurisdictions.values_list("code", flat=True)) == [market]


def test_demo_claims_cite_references_travel_with_their_isi_and_exclusions_exist(loaded):
    claims = [v for v in versions_of("") if v.module.kind == "claim"]
    assert len(claims) >= 5
    for version in claims:
        assert version.citations.exists(), version
        market = version.jurisdictions.get().code
        if version.module.purpose == "promotional":
            required = set(version.requires.values_list("code", flat=True))
            isi_prefix = version.module.code.split("-")[0]
            assert f"{isi_prefix}-ISI-{market}" in required, version
    samples = ContentModule.objects.get(code="CZN-HCP-CTA-SAMPLES-US")
    medical = ContentModule.objects.get(code="CZN-MED-001-US")
    assert medical in samples.latest_version().excludes.all()
    assert samples in medical.latest_version().excludes.all()


def test_demo_drafts_are_ready_for_review_personalise_with_fallbacks_and_include_an_image(loaded):
    personalised = 0
    for version in versions_of(""):
        assert version.state == "draft"
        assert review_readiness_errors(version) == [], version
        used = set(find_tokens(version.subject) + find_tokens(version.body_html))
        if used:
            personalised += 1
            assert used <= set(version.token_fallbacks), version
    assert personalised >= 5
    kinds = set(ContentModule.objects.values_list("kind", flat=True))
    assert {"subject", "preheader", "headline", "body", "claim", "isi", "cta", "footer",
            "dosing", "image"} <= kinds
    image = ContentModule.objects.get(code="CZN-IMG-MOA-US").latest_version()
    assert image.asset.alt_text and image.asset.width == 1200
    assert set(image.asset.renditions) == {"email", "email_2x", "thumbnail"}


def test_target_states_cover_every_module_with_the_promised_mix():
    assert set(specs.target_states()) == {spec.code for spec in specs.module_specs()}
    states = list(specs.target_states().values())
    assert set(states) == {"approved", "in_review", "draft", "expired", "withdrawn"}
    assert states.count("withdrawn") == 1
    assert states.count("approved") > len(states) / 2


def test_load_demo_command_twice_prints_working_logins(eager_celery):
    first, second = io.StringIO(), io.StringIO()
    call_command("load_demo", stdout=first)
    modules = ContentModule.objects.count()
    call_command("load_demo", stdout=second)
    assert ContentModule.objects.count() == modules
    output = second.getvalue()
    for user in specs.demo_users():
        assert f"{user.username}" in output and user.password in output
        # A request, as the sign-in lockout (django-axes) needs to know who is knocking.
        request = RequestFactory().post("/admin/login/")
        assert authenticate(request, username=user.username, password=user.password) is not None


def test_demo_restores_the_default_taxonomy_a_flush_removed():
    from content.models import Locale

    Locale.objects.all().delete()  # what a transactional test's flush leaves behind
    demo_content.ensure_taxonomy()
    assert {"en", "de", "en-US", "de-DE"} <= set(Locale.objects.values_list("code", flat=True))
