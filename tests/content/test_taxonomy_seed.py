"""The taxonomy seeded by migration 0002: what DOMAIN.md names, re-runnable, editable."""

from importlib import import_module

import pytest
from django.apps import apps
from django.contrib.auth.models import Group

from content.models import Audience, Channel, Jurisdiction, Locale, Specialty, Stage

pytestmark = pytest.mark.django_db
seed_migration = import_module("content.migrations.0002_seed_taxonomy")


def stage_codes(audience):
    return list(Stage.objects.filter(audience__code=audience).order_by("order")
                .values_list("code", flat=True))


def test_audiences_and_their_stages_in_order():
    assert stage_codes("hcp") == ["awareness", "interest", "trial", "adoption", "ongoing_use", "advocacy"]
    assert stage_codes("patient") == ["awareness", "research", "comparison", "purchase", "use", "loyalty"]
    assert stage_codes("pharmacist") == ["awareness", "learning", "evaluation", "recommendation",
                                         "feedback", "trusted_toolkit"]
    assert stage_codes("payer") == ["awareness", "evidence_review", "access_planning", "onboarding",
                                    "long_term_engagement"]
    assert {"cardiology", "general_practice", "nephrology", "internal_medicine"} <= set(
        Specialty.objects.filter(audience__code="hcp").values_list("code", flat=True))


def test_markets_channels_locales_and_groups():
    names = dict(Jurisdiction.objects.values_list("code", "name"))
    assert {"US", "DE", "GB", "FR"} <= set(names)
    assert all(names[code] for code in ("US", "DE", "GB", "FR"))
    # Legal text is each brand's approved footer module, never free text on the market.
    assert "legal_footer" not in {f.name for f in Jurisdiction._meta.get_fields()}
    assert {"email", "portal", "rep", "sms", "webinar", "congress"} <= set(
        Channel.objects.values_list("code", flat=True))
    assert {"en", "de", "en-US", "de-DE"} <= set(Locale.objects.values_list("code", flat=True))
    assert {"authors", "mlr-medical", "mlr-legal", "mlr-regulatory"} <= set(
        Group.objects.values_list("name", flat=True))


def test_groups_get_the_admin_permissions_they_need():
    authors = set(Group.objects.get(name="authors").permissions.values_list("codename", flat=True))
    assert {"add_contentmodule", "change_moduleversion", "add_asset", "view_brand"} <= authors
    medical = set(Group.objects.get(name="mlr-medical").permissions.values_list("codename", flat=True))
    assert "view_moduleversion" in medical and "change_moduleversion" not in medical


def test_seed_runs_again_without_duplicates_or_overwriting_edits():
    de = Jurisdiction.objects.get(code="DE")
    de.name = "Edited by an administrator"
    de.save()
    counts = [m.objects.count() for m in (Audience, Stage, Specialty, Jurisdiction, Channel, Locale, Group)]
    seed_migration.seed(apps, None)
    assert [m.objects.count() for m in (Audience, Stage, Specialty, Jurisdiction, Channel, Locale, Group)] == counts
    assert Jurisdiction.objects.get(code="DE").name == "Edited by an administrator"


def test_jurisdiction_codes_must_be_iso_alpha2(client, superuser):
    from django.urls import reverse

    client.force_login(superuser)
    response = client.post(reverse("admin:content_jurisdiction_add"),
                           {"code": "D1", "name": "Nowhere"})
    assert response.status_code == 200
    assert "ISO 3166-1 alpha-2" in str(response.context["adminform"].form.errors)
    assert not Jurisdiction.objects.filter(code="D1").exists()
