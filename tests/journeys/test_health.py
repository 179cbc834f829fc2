"""Touchpoint health on the journey map: the assembly refusal codes per market and locale,
expiring in N days, unreachable steps and dead ends, in a fixed number of queries."""

from datetime import timedelta

import pytest
from django.utils import timezone

from content.models import Channel, ContentModule, Jurisdiction
from journeys.health import BLOCKED, EXPIRING, READY, journey_health, journeys_health
from journeys.models import Journey, Slot, Step, Transition
from tests.factories import VersionFactory, term
from tests.journeys.conftest import make_version

pytestmark = pytest.mark.django_db


def _health(world):
    return journey_health(world["journey"]).steps[world["step"].pk]


def test_a_compliant_touchpoint_is_ready(world):
    health = _health(world)
    assert health.status == READY and health.reasons == [] and health.label == "ready"
    assert [m.code for m in health.modules] == ["CZN-SUBJ-001", "CZN-HEAD-001", "CZN-EFF-001",
                                                "CZN-ISI-US"]
    assert all(m.status == "ok" for m in health.modules)


def test_an_expired_cta_blocks_the_touchpoint_with_its_code_and_links(world):
    cta = make_version(world["brand"], "CZN-CTA-001", kind="cta", body="<p>Register</p>")
    cta.expires_at = timezone.now() - timedelta(days=1)
    cta.save(update_fields=["expires_at"])
    Slot.objects.create(step=world["step"], order=9, module=cta.module)
    health = _health(world)
    assert health.status == BLOCKED
    [reason] = [r for r in health.reasons if r.module == "CZN-CTA-001"]
    assert reason.code == "expired" and reason.markets == ["US"] and reason.locale == "en"
    assert reason.links.admin_url == f"/admin/content/contentmodule/{cta.module_id}/change/"
    assert reason.links.review_url == f"/review/v/{cta.pk}/"
    assert reason.links.owner_name


def test_a_draft_module_blocks_the_touchpoint(world):
    draft = make_version(world["brand"], "CZN-BODY-009", approved=False)
    Slot.objects.create(step=world["step"], order=9, module=draft.module)
    health = _health(world)
    assert health.status == BLOCKED
    assert [(r.code, r.module) for r in health.reasons] == [("not_approved", "CZN-BODY-009")]
    assert "draft, not approved" in health.reasons[0].detail


def test_a_module_in_review_blocks_the_touchpoint_until_it_is_approved(world):
    from approvals import services
    from tests.journeys.conftest import approve

    draft = make_version(world["brand"], "CZN-BODY-010", approved=False)
    services.submit_for_review(version=draft, actor=draft.created_by)
    Slot.objects.create(step=world["step"], order=9, module=draft.module)
    health = _health(world)
    assert health.status == BLOCKED and "in review, not approved" in health.reasons[0].detail
    draft.refresh_from_db()
    approve_rest(draft, approve)
    assert _health(world).status == READY


def approve_rest(version, approve):
    """Approve a version already in review (conftest.approve submits first)."""
    from approvals import services
    from approvals.signing import Credentials
    from tests.journeys.conftest import PASSWORD, _reviewers

    del approve
    for role, user in _reviewers().items():
        services.decide(version=version, actor=user, role=role, decision="approve",
                        expected_sha256=version.sha256,
                        credentials=Credentials(password=PASSWORD, username=user.username))
    version.refresh_from_db()
    assert version.state == "approved"


def test_expiring_in_n_days(world):
    isi = world["versions"]["isi"]
    isi.expires_at = timezone.now() + timedelta(days=5, hours=1)
    isi.save(update_fields=["expires_at"])
    health = _health(world)
    assert health.status == EXPIRING and health.days == 6
    assert health.label == "expiring in 6 days"


def test_each_market_of_the_journey_is_checked(world):
    de, _ = Jurisdiction.objects.get_or_create(code="DE", defaults={"name": "Germany"})
    world["journey"].jurisdictions.add(de)
    health = _health(world)
    assert health.status == BLOCKED
    codes = {(r.code, tuple(r.markets)) for r in health.reasons}
    assert ("jurisdiction_not_covered", ("DE",)) in codes
    assert ("missing_footer", ("DE",)) in codes
    assert all(r.markets == ["DE"] for r in health.reasons)  # US is fine


def test_unreachable_steps_and_dead_ends(world):
    email = world["step"].channel
    second = Step.objects.create(journey=world["journey"], stage=world["stage"], key="second",
                                 name="Second", channel=email, order=2)
    orphan = Step.objects.create(journey=world["journey"], stage=world["stage"], key="orphan",
                                 name="Orphan", channel=email, order=3)
    Transition.objects.create(from_step=world["step"], event_type="clicked", to_step=second)
    from content.models import Stage as AudienceStage

    later, _ = AudienceStage.objects.get_or_create(
        audience=world["journey"].audience, code="interest", defaults={"name": "Interest"})
    last_column = world["journey"].stages.create(audience_stage=later, order=2)
    final = Step.objects.create(journey=world["journey"], stage=last_column, key="final",
                                name="Final", channel=email)
    health = journey_health(world["journey"])
    by_key = {h.step.key: h for h in health.steps.values()}
    assert by_key["orphan"].unreachable and by_key["final"].unreachable
    assert not by_key["welcome"].unreachable and not by_key["second"].unreachable
    assert by_key["second"].dead_end and not by_key["welcome"].dead_end
    assert not by_key["final"].dead_end  # the last stage ends the journey
    assert by_key["second"].empty and by_key["second"].status == BLOCKED
    Transition.objects.create(from_step=second, event_type="opened", to_step=final)
    by_key = {h.step.key: h for h in journey_health(world["journey"]).steps.values()}
    assert not by_key["final"].unreachable and not by_key["second"].dead_end
    assert orphan.pk in health.steps


def test_query_count_does_not_grow_with_journeys_steps_or_slots(world):
    def count():
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            journeys_health(Journey.objects.all())
        return len(ctx.captured_queries)

    Slot.objects.create(step=world["step"], order=9, selector_kind="headline", required=False)
    VersionFactory(module=world["versions"]["headline"].module)  # a draft: read every time
    journeys_health(Journey.objects.all())  # warm the verified-content caches
    before = count()
    for n in range(3):
        journey = Journey.objects.create(slug=f"more-{n}", name=f"More {n}",
                                         brand=world["brand"], audience=world["journey"].audience,
                                         locale=world["journey"].locale)
        journey.jurisdictions.set([world["us"]])
        column = journey.stages.create(audience_stage=world["audience_stage"], order=1)
        for i in range(4):
            step = Step.objects.create(journey=journey, stage=column, key=f"s{i}", name=f"S{i}",
                                       channel=term(Channel, "email"))
            for module in ContentModule.objects.filter(brand=world["brand"]):
                Slot.objects.create(step=step, module=module)
            Slot.objects.create(step=step, selector_kind="headline")
    assert count() == before


def test_index_shows_each_journeys_health_in_constant_queries(client, world):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from content.permissions import grant_author_brand
    from tests.factories import UserFactory

    user = UserFactory(username="index-viewer", is_staff=True)
    grant_author_brand(user, world["brand"])
    client.force_login(user)

    def count():
        with CaptureQueriesContext(connection) as ctx:
            page = client.get("/journeys/").content.decode()
        return len(ctx.captured_queries), page

    client.get("/journeys/")
    before, page = count()
    assert "1 ready · 0 expiring · 0 blocked" in page
    for n in range(4):
        journey = Journey.objects.create(slug=f"idx-{n}", name=f"Index {n}", brand=world["brand"],
                                         audience=world["journey"].audience,
                                         locale=world["journey"].locale)
        journey.jurisdictions.set([world["us"]])
        column = journey.stages.create(audience_stage=world["audience_stage"], order=1)
        step = Step.objects.create(journey=journey, stage=column, key="only", name="Only",
                                   channel=term(Channel, "email"))
        Slot.objects.create(step=step, module=world["versions"]["headline"].module)
    after, page = count()
    assert after == before
    assert page.count("1 ready · 0 expiring · 0 blocked") == 5
