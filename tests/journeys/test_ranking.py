"""Next-best content: a selector slot that ranks approved candidates by the recipient's
engagement with their topics — hand-built histories with the pick and the reason they must
give, the rule that ranking never leaves the eligible approved candidates (and a property
test of it), the reads it costs, and the reason through the API, the delivery log,
reproduction and verification."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from content.models import Channel, Specialty
from delivery.models import Delivery
from delivery.verification import message_from_assembly
from journeys.assembly import assemble, assemble_many, load_context, rules
from journeys.assembly.ranking import WEIGHTS, Catalogue
from journeys.assembly.selection import Selection
from journeys.assembly.snapshot import SlotSpec, VersionSnapshot
from journeys.engagement import record_event
from journeys.models import Enrollment, Slot, Stage, Step, pseudonymous_id
from journeys.reproduce import reproduce
from tests.api.builders import (
    RECIPIENT,
    approve,
    assemble_body,
    build_world,
    make_version,
    token,
    token_client,
)
from tests.factories import term

pytestmark = pytest.mark.django_db

KW = {"channel": "email", "jurisdiction": "US", "locale": "en"}
URL = "/api/v1/journeys/hcp-new/steps/welcome/assemble/"


def cta(world, code, stages, *, days_ago=1, specialties=(), approved=True,
        jurisdictions=("US",), **fields):
    version = make_version(world["brand"], code, kind="cta", body=f"<p>{code}</p>",
                           tags={"stages": stages, "jurisdictions": list(jurisdictions)},
                           approved=False)
    for specialty in specialties:
        version.specialties.add(specialty)
    if approved:
        approve(version, approved_at=timezone.now() - timedelta(days=days_ago), **fields)
    return version


@pytest.fixture
def ranked():
    """hcp-new with two more email touchpoints — `moa-email` (a body tagged interest) and
    `trial-email` (a body tagged trial) — and a ranked CTA selector in `welcome` choosing
    between CTA-INT (interest, approved most recently: the default winner) and CTA-TRI
    (trial)."""
    world = build_world()
    journey, email = world["journey"], term(Channel, "email")
    column = Stage.objects.get(journey=journey)
    steps = {}
    for key, code, stage in (("moa-email", "CAR-MOA-001", "interest"),
                             ("trial-email", "CAR-TRIAL-001", "trial")):
        steps[key] = Step.objects.create(journey=journey, stage=column, key=key, name=key,
                                         channel=email, order=5)
        body = make_version(world["brand"], code, body=f"<p>{code}</p>", tags={"stages": [stage]})
        Slot.objects.create(step=steps[key], order=0, module=body.module)
    slot = Slot.objects.create(step=world["step"], order=9, selector_kind="cta",
                               ranking="engagement")
    world.update(steps=steps, slot=slot,
                 interest=cta(world, "CAR-CTA-INT", ["interest"], days_ago=1),
                 trial=cta(world, "CAR-CTA-TRI", ["trial"], days_ago=5))
    return world


def events(world, step_key, event_type, times=1, recipient_id="crm-0001"):
    for _ in range(times):
        record_event(world["journey"], world["steps"][step_key], pseudonymous_id(recipient_id),
                     event_type)


def ranking_of(result, code):
    return next(m for m in result.manifest["modules"] if m["module"] == code)["ranking"]


def test_two_clicks_on_trial_content_pick_the_trial_cta_and_say_so(ranked):
    events(ranked, "trial-email", "clicked", 2)
    result = assemble(ranked["step"], RECIPIENT, **KW)
    assert result.ok, result.errors
    assert "CAR-CTA-TRI" in result.html and "CAR-CTA-INT" not in result.html
    why = ranking_of(result, "CAR-CTA-TRI")
    assert why["reason"] == ("Chosen because: clicked trial-stage content twice "
                             "(score 4 among 2 eligible candidates).")
    assert why["topics"] == {"stage:hcp:trial": {"clicked": 2}}
    assert (why["by"], why["score"], why["candidates"], why["tied"]) == ("engagement", 4, 2, 0)
    # Only the ranked slot's entry carries a ranking; the recipient is nowhere in it.
    assert [m["module"] for m in result.manifest["modules"] if "ranking" in m] == ["CAR-CTA-TRI"]
    assert "crm-0001" not in json.dumps(result.manifest)


def test_without_engagement_the_default_order_stands_and_says_so(ranked):
    result = assemble(ranked["step"], RECIPIENT, **KW)
    assert result.ok and "CAR-CTA-INT" in result.html
    why = ranking_of(result, "CAR-CTA-INT")
    assert why["reason"] == ("No engagement recorded for this recipient in this journey yet: "
                             "chosen among 2 eligible candidates by specialty, then newest "
                             "approval.")
    assert why["score"] == 0 and why["topics"] == {}
    # Engagement with topics no candidate has: still the default order, said differently.
    record_event(ranked["journey"], ranked["step"], pseudonymous_id("crm-0001"), "opened")
    why = ranking_of(assemble(ranked["step"], RECIPIENT, **KW), "CAR-CTA-INT")
    assert why["reason"].startswith("No engagement with the topics of the 2 eligible "
                                    "candidates yet")


def test_weights_decide_and_a_tie_falls_back_to_the_default_order(ranked):
    events(ranked, "moa-email", "opened", 3)  # interest: 3 x 1
    events(ranked, "trial-email", "clicked", 1)  # trial: 1 x 2
    result = assemble(ranked["step"], RECIPIENT, **KW)
    assert "CAR-CTA-INT" in result.html
    assert ranking_of(result, "CAR-CTA-INT")["reason"] == (
        "Chosen because: opened interest-stage content 3 times (score 3 among 2 eligible "
        "candidates).")
    events(ranked, "trial-email", "opened", 1)  # trial 3 = interest 3: newest approval wins
    why = ranking_of(assemble(ranked["step"], RECIPIENT, **KW), "CAR-CTA-INT")
    assert why["tied"] == 1 and why["reason"].endswith(
        "1 other candidate scored the same: among them by specialty, then newest approval.")
    events(ranked, "trial-email", "downloaded", 1)  # trial 6
    result = assemble(ranked["step"], RECIPIENT, **KW)
    assert ranking_of(result, "CAR-CTA-TRI")["reason"] == (
        "Chosen because: downloaded trial-stage content once, clicked trial-stage content "
        "once, opened trial-stage content once (score 6 among 2 eligible candidates).")
    assert WEIGHTS == {"downloaded": 3, "clicked": 2, "opened": 1}


def test_another_recipients_engagement_does_not_count(ranked):
    events(ranked, "trial-email", "clicked", 4, recipient_id="crm-0002")
    assert "CAR-CTA-INT" in assemble(ranked["step"], RECIPIENT, **KW).html
    other = {**RECIPIENT, "id": "crm-0002"}
    assert "CAR-CTA-TRI" in assemble(ranked["step"], other, **KW).html


def test_specialty_topics_rank_too(ranked):
    hcp = ranked["journey"].audience
    cardio, _ = Specialty.objects.get_or_create(audience=hcp, code="cardiology",
                                                defaults={"name": "Cardiology"})
    nephro, _ = Specialty.objects.get_or_create(audience=hcp, code="nephrology",
                                                defaults={"name": "Nephrology"})
    case = make_version(ranked["brand"], "CAR-CASE-NEPH", body="<p>case</p>", approved=False)
    case.specialties.add(nephro)
    approve(case)
    Slot.objects.create(step=ranked["steps"]["moa-email"], order=1, module=case.module)
    cta(ranked, "CAR-CTA-NEPH", ["awareness"], days_ago=9, specialties=[nephro])
    cta(ranked, "CAR-CTA-CARD", ["awareness"], days_ago=8, specialties=[cardio])
    events(ranked, "moa-email", "clicked", 1)  # interest + nephrology content
    result = assemble(ranked["step"], RECIPIENT, **KW)  # a cardiologist
    # interest CTA: 2; nephrology CTA: 2 but "another specialty" ranks below untagged.
    assert "CAR-CTA-INT" in result.html
    events(ranked, "moa-email", "downloaded", 1)
    Slot.objects.filter(step=ranked["steps"]["moa-email"], order=0).delete()  # no interest body
    events(ranked, "moa-email", "opened", 1)
    result = assemble(ranked["step"], RECIPIENT, **KW)
    why = ranking_of(result, "CAR-CTA-NEPH")
    assert why["topics"] == {"specialty:nephrology": {"clicked": 1, "downloaded": 1, "opened": 1}}
    assert why["reason"].startswith("Chosen because: downloaded Nephrology content once")


def test_modules_a_selector_served_count_through_the_enrollments_seen_modules(ranked):
    """A touchpoint with a selector carried what the enrollment was served of its kind."""
    portal = ranked["portal"]
    Slot.objects.create(step=portal, order=0, selector_kind="dosing")
    dosing = make_version(ranked["brand"], "CAR-DOS-001", kind="dosing",
                          tags={"stages": ["trial"], "channels": ["portal"]})
    pseudonym = pseudonymous_id("crm-0001")
    record_event(ranked["journey"], portal, pseudonym, "clicked")
    assert "CAR-CTA-INT" in assemble(ranked["step"], RECIPIENT, **KW).html  # not served yet
    enrollment = Enrollment.objects.get(recipient_hash=pseudonym)
    enrollment.seen_module_ids = [dosing.module_id]
    enrollment.save()
    result = assemble(ranked["step"], RECIPIENT, **KW)
    assert ranking_of(result, "CAR-CTA-TRI")["topics"] == {"stage:hcp:trial": {"clicked": 1}}


def test_ranking_never_picks_an_expired_withdrawn_unapproved_or_seen_candidate(ranked):
    events(ranked, "trial-email", "downloaded", 5)
    cta(ranked, "CAR-CTA-EXP", ["trial"], days_ago=0, days_valid=-1)  # approved, expired
    cta(ranked, "CAR-CTA-WD", ["trial"], days_ago=0, state="withdrawn",
        withdrawn_at=timezone.now())
    cta(ranked, "CAR-CTA-DRAFT", ["trial"], approved=False)
    cta(ranked, "CAR-CTA-FUT", ["trial"], days_ago=0, valid_from=timezone.now() + timedelta(days=2))
    cta(ranked, "CAR-CTA-DE", ["trial"], days_ago=0, jurisdictions=["DE"])
    result = assemble(ranked["step"], RECIPIENT, **KW)
    assert result.ok and "CAR-CTA-TRI" in result.html
    assert ranking_of(result, "CAR-CTA-TRI")["candidates"] == 2
    seen = assemble(ranked["step"], RECIPIENT, **KW, seen=["CAR-CTA-TRI"])
    assert "CAR-CTA-INT" in seen.html
    assert ranking_of(seen, "CAR-CTA-INT")["reason"].startswith(
        "No engagement with the topics of the 1 eligible candidate yet")
    both = assemble(ranked["step"], RECIPIENT, **KW, seen=["CAR-CTA-TRI", "CAR-CTA-INT"])
    assert both.error_codes == ["not_approved"]  # the slot is required: nothing fits


def test_steps_without_a_ranked_selector_are_unchanged(ranked):
    Slot.objects.filter(pk=ranked["slot"].pk).update(ranking="default")
    events(ranked, "trial-email", "clicked", 3)
    result = assemble(ranked["step"], RECIPIENT, **KW)
    assert "CAR-CTA-INT" in result.html
    assert not any("ranking" in m for m in result.manifest["modules"])
    ctx = load_context(ranked["step"], **KW)
    assert ctx.selection.ranker is None


# --- Reads ----------------------------------------------------------------------------------


def test_a_ranked_assembly_reads_the_profile_with_one_query(ranked):
    events(ranked, "trial-email", "clicked", 2)
    ctx = load_context(ranked["step"], **KW)
    assert ctx.assemble(RECIPIENT).ok  # warm the process caches
    with CaptureQueriesContext(connection) as ranked_reads:
        assert "CAR-CTA-TRI" in ctx.assemble(RECIPIENT).html
    Slot.objects.filter(pk=ranked["slot"].pk).update(ranking="default")
    plain = load_context(ranked["step"], **KW)
    assert plain.assemble(RECIPIENT).ok
    with CaptureQueriesContext(connection) as plain_reads:
        assert plain.assemble(RECIPIENT).ok
    assert len(plain_reads) == 0 and len(ranked_reads) == 1, ranked_reads.captured_queries


def people(count):
    return [{**RECIPIENT, "id": f"crm-{i:04d}", "last_name": f"N{i}"} for i in range(count)]


def batch_queries(world, count, **kwargs):
    with CaptureQueriesContext(connection) as captured:
        results = list(assemble_many(world["step"], people(count), **KW, **kwargs))
    assert len(results) == count and all(r.ok for r in results)
    return [q["sql"] for q in captured], results


def profile_reads(sqls):
    return [sql for sql in sqls if "FROM journeys_enrollment n" in sql]


def test_a_batch_reads_profiles_once_per_chunk_whatever_its_size(ranked):
    for i in range(0, 100, 2):  # half of them clicked trial content
        events(ranked, "trial-email", "clicked", 1, recipient_id=f"crm-{i:04d}")
    batch_queries(ranked, 1)  # warm the process caches
    ten, _ = batch_queries(ranked, 10)
    hundred, results = batch_queries(ranked, 100)
    assert len(hundred) == len(ten)
    assert len(profile_reads(ten)) == len(profile_reads(hundred)) == 1
    picked = ["CAR-CTA-TRI" in r.html for r in results]
    assert picked == [i % 2 == 0 for i in range(100)]
    chunked, results = batch_queries(ranked, 10, chunk_size=4)
    assert len(profile_reads(chunked)) == 3  # one per chunk
    assert ["CAR-CTA-TRI" in r.html for r in results] == picked[:10]
    # The same batch without ranking: neither the journey's topics nor the profiles.
    Slot.objects.filter(pk=ranked["slot"].pk).update(ranking="default")
    plain, _ = batch_queries(ranked, 10)
    catalogue = [sql for sql in ten if "FROM journeys_slot sl JOIN journeys_step s" in sql
                 or "'stages', a.code" in sql]
    assert len(catalogue) == 2
    assert not profile_reads(plain) and not [sql for sql in plain if sql in catalogue]


# --- Through the API, the delivery log, reproduction and verification ----------------------


def test_the_api_answers_and_logs_the_reason_and_the_delivery_reproduces(ranked, tmp_path):
    events(ranked, "trial-email", "clicked", 2)
    _, key = token()
    client = token_client(key)
    response = client.post(URL, assemble_body(), format="json")
    assert response.status_code == 200, response.content
    assembly = response.json()
    entry = next(m for m in assembly["manifest"]["modules"] if m["module"] == "CAR-CTA-TRI")
    assert entry["ranking"]["reason"].startswith("Chosen because: clicked trial-stage content twice")
    logged = Delivery.objects.latest("pk").manifest
    assert logged == assembly["manifest"]
    check = reproduce(logged, RECIPIENT)
    assert check.matches, check.describe()
    message, manifest = tmp_path / "m.eml", tmp_path / "m.json"
    message.write_bytes(bytes(message_from_assembly(assembly, sender="a@example.org",
                                                    to="b@example.org")))
    manifest.write_text(json.dumps(logged))
    out = io.StringIO()
    call_command("verify_delivery", str(message), "--manifest", str(manifest), stdout=out)
    assert "verified:" in out.getvalue()
    # Served once: the enrollment has seen it, so the next best is the other CTA.
    again = client.post(URL, assemble_body(), format="json").json()
    entry = next(m for m in again["manifest"]["modules"] if m.get("ranking"))
    assert entry["module"] == "CAR-CTA-INT" and entry["ranking"]["candidates"] == 1


def test_a_warm_ranked_api_assembly_costs_one_query_more_than_a_plain_one(ranked):
    events(ranked, "trial-email", "clicked", 2)
    _, key = token()
    client = token_client(key)
    body = assemble_body(recipient={**RECIPIENT, "id": "not-enrolled"})

    def warm_reads():
        assert client.post(URL, body, format="json").status_code == 200
        with CaptureQueriesContext(connection) as captured:
            assert client.post(URL, body, format="json").status_code == 200
        return len(captured)

    ranked_reads = warm_reads()
    Slot.objects.filter(pk=ranked["slot"].pk).update(ranking="default")
    Slot.objects.get(pk=ranked["slot"].pk).save()  # moves the catalog epoch
    assert warm_reads() == ranked_reads - 1


def test_an_old_delivery_reproduces_after_its_selector_starts_ranking(ranked):
    Slot.objects.filter(pk=ranked["slot"].pk).update(ranking="default")
    before = assemble(ranked["step"], RECIPIENT, **KW)
    assert before.ok and not any("ranking" in m for m in before.manifest["modules"])
    Slot.objects.filter(pk=ranked["slot"].pk).update(ranking="engagement")
    events(ranked, "trial-email", "clicked", 2)
    assert "CAR-CTA-TRI" in assemble(ranked["step"], RECIPIENT, **KW).html
    check = reproduce(before.manifest, RECIPIENT)
    assert check.matches and check.result.html == before.html


# --- The rule, as a property: never outside the eligible approved candidates --------------

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
TARGET = rules.Target(jurisdiction="US", audience="hcp", channel="email", locale="en",
                      step_purpose="promotional", now=NOW)
STATES = ["approved", "approved", "approved", "draft", "in_review", "expired", "withdrawn"]


@st.composite
def candidate_sets(draw):
    count = draw(st.integers(1, 8))
    versions = []
    for i in range(count):
        state = draw(st.sampled_from(STATES))
        versions.append(VersionSnapshot(
            id=100 + i, module_id=10 + i, code=f"CTA-{i}", kind="cta", purpose="promotional",
            number=1, state=state, sha256="0" * 64, locale=draw(st.sampled_from(["en", "de"])),
            subject="", body_html="<p>x</p>", body_text="x", token_fallbacks={},
            valid_from=NOW - timedelta(days=draw(st.sampled_from([-1, 10]))),
            expires_at=NOW + timedelta(days=draw(st.sampled_from([-1, 30]))),
            approved_at=NOW - timedelta(days=draw(st.integers(1, 5))),
            withdrawn_at=None, image=None, audiences=frozenset({"hcp"}),
            jurisdictions=frozenset(draw(st.sampled_from([{"US"}, {"DE"}]))),
            channels=frozenset({"email"}), stage_ids=frozenset(),
            specialties=frozenset(draw(st.sampled_from([set(), {"cardiology"}, {"nephrology"}]))),
            requires=(), excludes=()))
    topics = {v.id: frozenset(draw(st.sets(st.sampled_from(
        ["stage:hcp:interest", "stage:hcp:trial", "specialty:cardiology", "kind:cta"]),
        max_size=3))) for v in versions}
    profile = draw(st.dictionaries(
        st.sampled_from(["stage:hcp:interest", "stage:hcp:trial", "specialty:cardiology",
                         "kind:cta"]),
        st.dictionaries(st.sampled_from(["opened", "clicked", "downloaded"]),
                        st.integers(1, 5), min_size=1), max_size=4))
    seen = draw(st.sets(st.sampled_from([str(v.module_id) for v in versions])))
    specialty = draw(st.sampled_from(["", "cardiology", "nephrology"]))
    return versions, topics, profile, seen, specialty


class FixedRanker:
    def __init__(self, profile, topics):
        self.profile = profile
        self.catalogue = Catalogue(step_modules={}, step_kinds={}, module_kind={},
                                   module_topics={}, version_topics=topics, labels={})

    def profile_of(self, recipient):
        return self.profile


def select(versions, ranking, ranker, seen, specialty):
    slot = SlotSpec(order=0, module_id=None, module_code=None, kind="cta",
                    stage_ids=frozenset(), specialties=frozenset(), priority=0, required=True,
                    ranking=ranking)

    def version_errors(v):
        return rules.integrity_errors(v) or rules.version_errors(v, TARGET)

    selection = Selection([slot], versions, locale="en", where="US/email/en",
                          version_errors=version_errors, ranker=ranker)
    picks, errors = selection.select({"specialty": specialty}, seen)
    return picks[0][1], errors, getattr(picks, "rankings", {}), version_errors


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(candidate_sets())
def test_ranking_only_reorders_the_candidates_the_rules_allow(case):
    versions, topics, profile, seen, specialty = case
    chosen, errors, rankings, version_errors = select(
        versions, "engagement", FixedRanker(profile, topics), seen, specialty)
    plain, plain_errors, _, _ = select(versions, "default", None, seen, specialty)
    eligible = [v for v in versions if v.state == "approved" and not version_errors(v)
                and str(v.module_id) not in seen]
    # The same candidates qualify, ranked or not: both find one, or both refuse.
    assert (chosen is None) == (plain is None) == (not eligible)
    assert [e.code for e in errors] == [e.code for e in plain_errors]
    if chosen is None:
        return
    assert chosen in eligible
    assert chosen.state == "approved" and chosen.expires_at > NOW and chosen.valid_from <= NOW

    def score(v):
        return sum(WEIGHTS[e] * n for t in topics[v.id] if not t.startswith("kind:")
                   for e, n in profile.get(t, {}).items())

    best = max(score(v) for v in eligible)
    assert score(chosen) == best and rankings[0].score == best
    leaders = [v for v in eligible if score(v) == best]
    assert rankings[0].tied == len(leaders) - 1
    # Among the leaders, the default order decides: the plain pick among them.
    expected, _, _, _ = select(leaders, "default", None, seen, specialty)
    assert chosen == expected
    if best == 0:
        assert chosen == plain


def test_the_preview_shows_the_ranking_reason_in_its_manifest(ranked, client):
    from tests.factories import UserFactory

    client.force_login(UserFactory(username="previewer", is_staff=True, is_superuser=True))
    page = client.get("/journeys/hcp-new/steps/welcome/preview/").content.decode()
    assert "CAR-CTA-INT" in page and "&quot;ranking&quot;" in page
    assert "chosen among 2 eligible candidates by specialty, then newest approval." in page


def test_the_journey_api_says_which_selector_ranks_by_engagement(ranked):
    _, key = token()
    detail = token_client(key).get("/api/v1/journeys/hcp-new/").json()
    welcome = next(s for stage in detail["stages"] for s in stage["steps"]
                   if s["key"] == "welcome")
    selectors = [slot["selector"] for slot in welcome["slots"] if slot["selector"]]
    assert selectors == [{"kind": "cta", "stages": [], "specialties": [], "priority": 0,
                          "ranking": "engagement"}]
