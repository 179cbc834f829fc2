"""The named reads of assembly (journeys.assembly.snapshot), its caches and reproduction."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from content.models import Specialty
from journeys.assembly import PinnedStepContext, StepContext, cache, load_context, snapshot
from journeys.models import Slot, Step
from tests.journeys.conftest import RECIPIENT, assemble_kwargs, make_version


@pytest.fixture(autouse=True)
def _empty_caches():
    cache.clear()
    yield
    cache.clear()


def test_read_step_names_the_step_journey_brand_audience_and_channel(world):
    row = snapshot.read_step(world["step"].pk)
    assert row == snapshot.StepRow(
        key="welcome", purpose="promotional", layout=world["step"].layout, channel="email",
        journey_id=world["journey"].pk, journey_slug="hcp-new", brand_id=world["brand"].pk,
        brand_name="Cardiozen", audience_code="hcp")
    with pytest.raises(Step.DoesNotExist):
        snapshot.read_step(world["step"].pk + 1000)


def test_read_markets_gives_the_asked_market_and_the_journeys_own(world):
    from content.models import Jurisdiction

    Jurisdiction.objects.get_or_create(code="DE", defaults={"name": "Germany"})
    by_code = {m.code: m for m in snapshot.read_markets(world["journey"].pk, "DE")}
    assert by_code["US"] == snapshot.Market("US", world["us"].pk, True)
    assert by_code["DE"].in_journey is False
    assert set(by_code) == {"US", "DE"}


def test_read_slots_in_order_with_selector_tags(world):
    hcp = world["journey"].audience
    cardio, _ = Specialty.objects.get_or_create(audience=hcp, code="cardiology",
                                                defaults={"name": "Cardiology"})
    selector = Slot.objects.create(step=world["step"], order=9, selector_kind="body", priority=2,
                                   required=True)
    selector.selector_stages.add(world["audience_stage"])
    selector.selector_specialties.add(cardio)
    slots = snapshot.read_slots(world["step"].pk)
    assert [s.module_code for s in slots] == [
        "CZN-SUBJ-001", "CZN-HEAD-001", "CZN-EFF-001", "CZN-ISI-US", None]
    last = slots[-1]
    assert (last.kind, last.priority, last.required, last.module_id) == ("body", 2, True, None)
    assert last.stage_ids == frozenset({world["audience_stage"].pk})
    assert last.specialties == frozenset({"cardiology"})
    assert slots[0].stage_ids == frozenset() and slots[0].specialties == frozenset()


def test_read_step_versions_gives_bound_versions_and_approved_selector_candidates(world):
    make_version(world["brand"], "CZN-CASE-001", kind="body", body="<p>Case</p>",
                 tags={"jurisdictions": ["US"], "stages": ["awareness"]})
    make_version(world["brand"], "CZN-CASE-002", kind="body", approved=False)  # a draft
    make_version(world["brand"], "CZN-CTA-001", kind="cta")  # another kind
    bound = [v.module_id for v in world["versions"].values()]
    versions = snapshot.read_step_versions(bound, brand_id=world["brand"].pk,
                                           selector_kinds=["body"])
    assert {v.code for v in versions} == {
        "CZN-SUBJ-001", "CZN-HEAD-001", "CZN-EFF-001", "CZN-ISI-US", "CZN-CASE-001"}
    case = next(v for v in versions if v.code == "CZN-CASE-001")
    assert case.label == "CZN-CASE-001 v1" and case.state == "approved"
    assert (case.audiences, case.jurisdictions, case.channels) == (
        frozenset({"hcp"}), frozenset({"US"}), frozenset({"email"}))
    assert case.stage_ids == frozenset({world["audience_stage"].pk})
    assert case.locale == "en" and case.body_html == "<p>Case</p>"
    assert case.approved_at is not None and case.approved_at.tzinfo is not None
    claim = next(v for v in versions if v.code == "CZN-EFF-001")
    assert claim.requires == ((world["versions"]["isi"].module_id, "CZN-ISI-US"),)
    assert claim.excludes == ()
    no_selectors = snapshot.read_step_versions(bound, brand_id=world["brand"].pk, selector_kinds=[])
    assert {v.code for v in no_selectors} == {
        "CZN-SUBJ-001", "CZN-HEAD-001", "CZN-EFF-001", "CZN-ISI-US"}


def test_read_versions_by_id_reads_exactly_those(world):
    claim = world["versions"]["claim"]
    [version] = snapshot.read_versions_by_id([claim.pk])
    assert (version.id, version.code, version.sha256) == (claim.pk, "CZN-EFF-001", claim.sha256)
    assert snapshot.read_versions_by_id([]) == []


def test_read_content_and_relations_by_name(world):
    head = world["versions"]["headline"]
    content = snapshot.read_content([head.pk])[head.pk]
    assert content.body_html == head.body_html and content.token_fallbacks == {}
    assert content.subject == "" and content.channels == frozenset({"email"})
    claim = snapshot.read_content([world["versions"]["claim"].pk])[world["versions"]["claim"].pk]
    assert claim.requires == ((world["versions"]["isi"].module_id, "CZN-ISI-US"),)
    assert claim.excludes == ()
    assert list(claim.signed_tags.requires) == ["CZN-ISI-US"]


def test_as_datetime_reads_sqlite_text_and_aware_values_as_utc():
    assert snapshot.as_datetime(None) is None
    assert snapshot.as_datetime("2026-01-02 03:04:05").isoformat() == "2026-01-02T03:04:05+00:00"
    parsed = snapshot.as_datetime("2026-01-02T03:04:05+01:00")
    assert parsed.utcoffset().total_seconds() == 3600


def test_locked_content_is_read_once_per_process_and_drafts_every_time(world):
    draft = make_version(world["brand"], "CZN-DRAFT-001", approved=False)
    ids = [v.pk for v in world["versions"].values()] + [draft.pk]
    with CaptureQueriesContext(connection) as cold:
        snapshot.read_versions_by_id(ids)
    with CaptureQueriesContext(connection) as warm:
        snapshot.read_versions_by_id(ids)
    assert len(cold) == 4  # versions, approval signatures, content with tags and relations
    assert len(warm) == 3  # the draft's content and tags are read again
    assert len(cache.LOCKED_CONTENT) == 4
    draft.delete()
    with CaptureQueriesContext(connection) as all_locked:
        snapshot.read_versions_by_id(ids)
    assert len(all_locked) == 1  # versions only: verified content and signatures cached
    assert cache.LOCKED_CONTENT.stats().hits >= 8


def test_assembly_caches_share_one_bounded_lru_with_counters(world):
    from cms.lru import LRUCache

    assert all(isinstance(c, LRUCache) for c in cache.ALL)
    load_context(world["step"], **assemble_kwargs()).assemble(RECIPIENT)
    load_context(world["step"], **assemble_kwargs()).assemble(RECIPIENT)
    rendered = next(s for s in cache.stats() if s.name == "assembly.rendered")
    assert (rendered.hits, rendered.misses, rendered.size) == (1, 1, 1)


def test_reproduction_is_a_pinned_context_that_checks_nothing_again(world):
    ctx = load_context(world["step"], **assemble_kwargs())
    assert type(ctx) is StepContext
    first = ctx.assemble(RECIPIENT)
    pinned = load_context(world["step"], **assemble_kwargs(), now=ctx.now,
                          pinned=first.manifest["slots"], pinned_footer=first.manifest["footer"])
    assert isinstance(pinned, PinnedStepContext)
    no_consent = {k: v for k, v in RECIPIENT.items() if k != "consent"}
    assert not load_context(world["step"], **assemble_kwargs()).assemble(no_consent).ok
    again = pinned.assemble(no_consent)  # consent was checked when the manifest was made
    assert again.ok and again.html == first.html
