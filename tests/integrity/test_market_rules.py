"""Market rules (content.market_rules): data per market, kept by administrators, enforced
when a version is submitted for review and when content is assembled."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.test import Client

from approvals import services
from approvals.errors import ApprovalError
from approvals.models import AuditEntry
from content.market_rules import AUDIENCE_NOT_PERMITTED, FAIR_BALANCE_MISSING_ISI
from content.models import Audience, Jurisdiction, MarketRule
from content.permissions import AUTHORS_GROUP, grant_author_brand
from journeys.assembly import assemble
from journeys.models import Slot
from tests.factories import (
    BrandFactory,
    ModuleFactory,
    ReferenceFactory,
    UserFactory,
    VersionFactory,
)
from tests.journeys.conftest import RECIPIENT, assemble_kwargs, make_version
from tests.journeys.conftest import world as journeys_world  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def draft(kind="body", purpose="promotional", *, brand=None, jurisdictions=("US",),
          audience="hcp"):
    module = ModuleFactory(kind=kind, purpose=purpose, **({"brand": brand} if brand else {}))
    version = VersionFactory(module=module, tags={"jurisdictions": list(jurisdictions),
                                                  "audience": audience})
    if kind == "claim":
        version.citations.add(ReferenceFactory(brand=module.brand))
    return version


def refusal(version) -> ApprovalError:
    with pytest.raises(ApprovalError) as caught:
        services.submit_for_review(version=version, actor=version.created_by)
    version.refresh_from_db()
    assert version.state == "draft"
    return caught.value


def submitted(version):
    services.submit_for_review(version=version, actor=version.created_by)
    version.refresh_from_db()
    return version.state == "in_review"


def set_rules_active(active: bool) -> None:
    for rule in MarketRule.objects.all():
        rule.active = active
        rule.save()


# --- the data ---------------------------------------------------------------------------


def test_demo_markets_have_their_rules_seeded_as_data():
    rules = {(r.jurisdiction.code, r.kind): r for r in MarketRule.objects.select_related("jurisdiction")}
    assert rules[("US", "fair_balance")].parameters["companion_kind"] == "isi"
    assert rules[("DE", "audience_limit")].parameters["audiences"] == ["hcp", "pharmacist"]
    assert all(r.active and r.rationale for r in rules.values())


def test_a_rule_with_malformed_parameters_is_refused_by_validation():
    rule = MarketRule(jurisdiction=Jurisdiction.objects.get(code="US"), kind="audience_limit",
                      parameters={"audiences": "hcp", "colour": "red"})
    with pytest.raises(ValidationError) as caught:
        rule.full_clean()
    text = str(caught.value)
    assert "colour" in text and "audiences must be a non-empty list" in text


def test_only_administrators_reach_market_rules_in_the_admin():
    brand = BrandFactory()
    author = UserFactory(username="rules-author", is_staff=True)
    grant_author_brand(author, brand)
    author.groups.add(Group.objects.get(name=AUTHORS_GROUP))
    author.user_permissions.add(*Permission.objects.filter(codename__endswith="marketrule"))
    rule = MarketRule.objects.get(jurisdiction__code="US")
    client = Client()
    client.force_login(author)
    for url in ("/admin/content/marketrule/", f"/admin/content/marketrule/{rule.pk}/change/",
                f"/admin/content/marketrule/{rule.pk}/delete/", "/admin/content/marketrule/add/"):
        assert client.get(url).status_code == 403, url
    assert client.post(f"/admin/content/marketrule/{rule.pk}/change/",
                       {"active": ""}).status_code == 403
    rule.refresh_from_db()
    assert rule.active
    admin = UserFactory(username="rules-admin", is_staff=True, is_superuser=True)
    client.force_login(admin)
    assert client.get(f"/admin/content/marketrule/{rule.pk}/change/").status_code == 200
    assert client.get(f"/admin/content/marketrule/{rule.pk}/history/").status_code == 200


# --- at submission ----------------------------------------------------------------------


def test_de_promotional_version_for_patients_is_refused_at_submission():
    version = draft(jurisdictions=["DE"], audience="patient")
    error = refusal(version)
    assert error.code == AUDIENCE_NOT_PERMITTED
    assert "DE" in error.message and "patient" in error.message
    assert AuditEntry.objects.filter(event="submission_refused",
                                     data__code=AUDIENCE_NOT_PERMITTED).exists()


def test_de_patient_support_and_hcp_promotion_and_the_footer_may_be_submitted():
    assert submitted(draft(purpose="patient_support", jurisdictions=["DE"], audience="patient"))
    assert submitted(draft(jurisdictions=["DE"], audience="hcp"))
    assert submitted(draft(purpose="promotional", jurisdictions=["US"], audience="patient"))


def test_us_promotional_claim_without_its_brands_isi_companion_is_refused_at_submission():
    claim = draft("claim")
    assert refusal(claim).code == FAIR_BALANCE_MISSING_ISI
    other_isi = ModuleFactory(kind="isi")  # another brand's ISI is no fair balance
    claim.requires.add(other_isi)
    assert refusal(claim).code == FAIR_BALANCE_MISSING_ISI
    claim.requires.add(ModuleFactory(kind="isi", brand=claim.module.brand))
    assert submitted(claim)


def test_a_version_breaking_rules_of_two_markets_names_every_violation():
    claim = draft("claim", jurisdictions=["US", "DE"], audience="patient")
    error = refusal(claim)
    assert {d.split(":")[0] for d in error.details} == {FAIR_BALANCE_MISSING_ISI,
                                                       AUDIENCE_NOT_PERMITTED}


def test_an_inactive_rule_does_not_refuse():
    set_rules_active(False)
    assert submitted(draft(jurisdictions=["DE"], audience="patient"))


def test_the_review_screen_answers_a_refused_submission_with_400_and_the_reason():
    version = draft(jurisdictions=["DE"], audience="patient")
    author = version.created_by
    grant_author_brand(author, version.module.brand)
    author.groups.add(Group.objects.get(name=AUTHORS_GROUP))
    client = Client()
    client.force_login(author)
    response = client.post(f"/review/v/{version.pk}/submit/")
    assert response.status_code == 400
    page = response.content.decode()
    assert f'data-code="{AUDIENCE_NOT_PERMITTED}"' in page and "may reach only" in page


# --- at assembly ------------------------------------------------------------------------


def unbalanced_claim(brand, code="CZN-EFF-009"):
    """An approved US promotional claim without the ISI among its companions (approved while
    the rules were switched off by an administrator, who switched them back on)."""
    set_rules_active(False)
    version = make_version(brand, code, kind="claim", body="<p>Better by 30%.</p>")
    set_rules_active(True)
    return version


def test_us_promotional_claim_without_the_isi_is_refused_at_assembly(journeys_world):  # noqa: F811
    world = journeys_world
    claim = unbalanced_claim(world["brand"])
    Slot.objects.filter(step=world["step"], module=world["versions"]["claim"].module).delete()
    Slot.objects.filter(step=world["step"], module=world["versions"]["isi"].module).delete()
    Slot.objects.create(step=world["step"], order=5, module=claim.module)
    result = assemble(world["step"], RECIPIENT, **assemble_kwargs())
    assert not result.ok
    assert [(e.code, e.module) for e in result.errors] == [(FAIR_BALANCE_MISSING_ISI, "CZN-EFF-009")]


def test_fair_balance_is_reported_with_every_other_failing_rule(journeys_world):  # noqa: F811
    world = journeys_world
    claim = unbalanced_claim(world["brand"])
    Slot.objects.filter(step=world["step"], module=world["versions"]["isi"].module).delete()
    Slot.objects.create(step=world["step"], order=5, module=claim.module)
    recipient = {**RECIPIENT, "last_name": "", "consent": {}}
    codes = set(assemble(world["step"], recipient, **assemble_kwargs()).error_codes)
    assert {FAIR_BALANCE_MISSING_ISI, "missing_companion", "missing_recipient_field",
            "no_consent"} <= codes


def test_another_brands_isi_does_not_balance_a_claim_at_assembly(journeys_world):  # noqa: F811
    world = journeys_world
    claim = unbalanced_claim(world["brand"])
    other_brand = BrandFactory(name="Otherbrand", slug="otherbrand")
    other_isi = make_version(other_brand, "OTH-ISI-US", kind="isi", body="<p>ISI</p>")
    Slot.objects.filter(step=world["step"]).delete()
    # bulk_create skips Slot.save's brand check: data a script could still write.
    Slot.objects.bulk_create([Slot(step=world["step"], order=0, module=claim.module),
                              Slot(step=world["step"], order=1, module=other_isi.module)])
    codes = set(assemble(world["step"], RECIPIENT, **assemble_kwargs()).error_codes)
    assert FAIR_BALANCE_MISSING_ISI in codes


def test_de_promotion_in_a_patient_assembly_is_refused(journeys_world):  # noqa: F811
    world = journeys_world
    de = Jurisdiction.objects.get(code="DE")
    patient_journey = world["journey"]
    set_rules_active(False)
    body = make_version(world["brand"], "CZN-PAT-DE-001", body="<p>Ask your doctor.</p>",
                        tags={"jurisdictions": ["DE"], "audience": "patient"})
    set_rules_active(True)
    patient_journey.audience = Audience.objects.get(code="patient")
    patient_journey.save()
    patient_journey.jurisdictions.add(de)
    Slot.objects.filter(step=world["step"]).delete()
    Slot.objects.create(step=world["step"], order=0, module=body.module)
    result = assemble(world["step"], RECIPIENT, **assemble_kwargs(jurisdiction="DE"))
    assert AUDIENCE_NOT_PERMITTED in result.error_codes
    assert [e.module for e in result.errors if e.code == AUDIENCE_NOT_PERMITTED] == ["CZN-PAT-DE-001"]


def test_the_balanced_step_still_assembles(journeys_world):  # noqa: F811
    # The world approved its claim through the workflow, with its ISI among its companions.
    result = assemble(journeys_world["step"], RECIPIENT, **assemble_kwargs())
    assert result.ok, result.errors
