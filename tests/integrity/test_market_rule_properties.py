"""Property: for any set of modules (kinds, purposes, audiences, brands — another brand's
included) in a step, any market, audience and set of active market rules, no assembly that
succeeds contains a US promotional claim without an approved ISI of the claim's brand, or
promotional content for patients in DE; and whenever the drawn set breaks an active rule,
the refusal names it."""

import itertools

import pytest
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from content.market_rules import AUDIENCE_NOT_PERMITTED, FAIR_BALANCE_MISSING_ISI
from content.models import Audience, ContentModule, Jurisdiction, MarketRule, ModuleVersion
from journeys.assembly import assemble, cache
from journeys.models import Slot
from tests.api.builders import FOOTER_BODY, RECIPIENT, approve, build_world
from tests.factories import BrandFactory, ModuleFactory, VersionFactory

pytestmark = pytest.mark.django_db
_codes = itertools.count()

ModuleSpec = st.fixed_dictionaries({
    "kind": st.sampled_from(["claim", "isi", "body"]),
    "purpose": st.sampled_from(["promotional", "patient_support"]),
    "audience": st.sampled_from(["hcp", "patient"]),
    "other_brand": st.booleans(),
})


@pytest.fixture
def world(db):
    world = build_world()
    world["other_brand"] = BrandFactory(name="Otherbrand", slug="otherbrand")
    world["journey"].jurisdictions.add(Jurisdiction.objects.get(code="DE"))
    de_footer = VersionFactory(
        module=ModuleFactory(code="PBT-FOOT-DE", brand=world["brand"], kind="footer"),
        body_html=FOOTER_BODY, tags={"jurisdictions": ["DE"], "channels": ["email", "portal"]})
    approve(de_footer)
    return world


def make_module(world, spec) -> ModuleVersion:
    brand = world["other_brand"] if spec["other_brand"] else world["brand"]
    module = ModuleFactory(code=f"PBT-MR-{next(_codes)}", brand=brand, kind=spec["kind"],
                           purpose=spec["purpose"])
    version = VersionFactory(module=module, body_html="<p>Drawn content.</p>",
                             tags={"jurisdictions": ["US", "DE"], "audience": spec["audience"]})
    return approve(version)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(modules=st.lists(ModuleSpec, min_size=1, max_size=4),
       market=st.sampled_from(["US", "DE"]), audience=st.sampled_from(["hcp", "patient"]),
       fair_balance=st.booleans(), audience_limit=st.booleans())
def test_no_assembly_delivers_a_market_rule_violation(world, modules, market, audience,
                                                      fair_balance, audience_limit):
    cache.clear()
    with transaction.atomic():
        for rule in MarketRule.objects.all():
            rule.active = {"fair_balance": fair_balance,
                           "audience_limit": audience_limit}[rule.kind]
            rule.save()
        journey = world["journey"]
        journey.audience = Audience.objects.get(code=audience)
        journey.save()
        made = [make_module(world, spec) for spec in modules]
        step = world["step"]
        Slot.objects.filter(step=step).delete()
        # bulk_create: another brand's module too, as a script writing the table could.
        Slot.objects.bulk_create([Slot(step=step, order=i, module=v.module)
                                  for i, v in enumerate(made)])
        result = assemble(step, RECIPIENT, channel="email", jurisdiction=market, locale="en")
        event(f"assembled: {result.ok}")  # the statistics show the property is not vacuous

        picked = list(ContentModule.objects.filter(
            code__in=[m["module"] for m in result.manifest.get("modules", [])]))
        # The oracle, from the drawn modules (not from assembly's code): which rules break.
        unbalanced = fair_balance and market == "US" and any(
            v.module.kind == "claim" and v.module.purpose == "promotional"
            and not any(o.module.kind == "isi" and o.module.brand_id == v.module.brand_id
                        for o in made)
            for v in made)
        patient_promotion = audience_limit and market == "DE" and audience == "patient" and any(
            v.module.purpose == "promotional" for v in made)
        if unbalanced:
            assert FAIR_BALANCE_MISSING_ISI in result.error_codes
        if patient_promotion:
            assert AUDIENCE_NOT_PERMITTED in result.error_codes
        if result.ok:
            assert not unbalanced and not patient_promotion
            if fair_balance and market == "US":
                for module in picked:
                    if module.kind == "claim" and module.purpose == "promotional":
                        assert any(m.kind == "isi" and m.brand_id == module.brand_id
                                   for m in picked)
            if audience_limit and market == "DE" and audience == "patient":
                assert all(m.purpose != "promotional" or m.kind == "footer" for m in picked)
        transaction.set_rollback(True)
    assert not ContentModule.objects.filter(code__startswith="PBT-MR-").exists()
