"""The assembly service: every compliance rule refuses with its code, personal data is inert."""

import ast
import io
from datetime import timedelta
from html import escape
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from content.models import ContentModule
from journeys.assembly import ERROR_CODES, assemble, assemble_many, load_context
from journeys.models import Slot
from journeys.reproduce import reproduce
from tests.factories import record_approval_signatures
from tests.journeys.conftest import RECIPIENT, US_FOOTER, approve, assemble_kwargs, make_version

pytestmark = pytest.mark.django_db

CORPUS = Path("/work/shared/corpus")


def swap_headline(world, **kwargs):
    """Put a fresh headline module (built by make_version) in the headline's slot."""
    version = make_version(world["brand"], kwargs.pop("code", "CZN-HEAD-002"), kind="headline",
                           **kwargs)
    slot = Slot.objects.get(step=world["step"], module=world["versions"]["headline"].module)
    slot.module = version.module
    slot.save()
    return version


def codes(result):
    return sorted(set(result.error_codes))


def test_compliant_step_assembles_subject_html_text_and_manifest(world):
    result = assemble(world["step"], RECIPIENT, **assemble_kwargs())
    assert result.ok, result.errors
    assert result.subject == "News for Dr. Morgan"
    assert "Hello Dr. Morgan" in result.html and "Hello Dr. Morgan" in result.text
    assert 'style="' in result.html and "<style>p" not in result.html  # CSS inlined
    assert US_FOOTER in result.html and US_FOOTER in result.text
    manifest = result.manifest
    assert [m["module"] for m in manifest["modules"]] == [
        "CZN-SUBJ-001", "CZN-HEAD-001", "CZN-EFF-001", "CZN-ISI-US", "CZN-FOOT-US"]
    footer = manifest["modules"][-1]
    assert footer["slot"] is None and footer["kind"] == "footer"
    assert footer["sha256"] == world["footer"].sha256 and len(footer["signatures"]) == 3
    assert manifest["footer"] == world["footer"].pk
    assert manifest["modules"][1]["sha256"] == world["versions"]["headline"].sha256
    signatures = manifest["modules"][1]["signatures"]
    assert sorted(s["role"] for s in signatures) == ["legal", "medical", "regulatory"]
    assert all(s["meaning"] == "approve" and s["sha256"] == manifest["modules"][1]["sha256"]
               for s in signatures)
    assert manifest["layout"]["name"] == "email" and len(manifest["layout"]["sha256"]) == 64
    assert manifest["assembled_at"].endswith("Z")
    assert len(manifest["output_sha256"]) == 64 and len(manifest["recipient_sha256"]) == 64
    flat = repr(manifest)
    for value in ("Morgan", "Alex", "crm-0001", "unsubscribe/crm-0001"):
        assert value not in flat


def test_portal_layout_uses_the_same_modules(world):
    result = assemble(world["step"], RECIPIENT, **assemble_kwargs(), layout="portal")
    assert result.ok, result.errors
    assert '<section class="module kind-claim"' in result.html
    assert result.manifest["layout"]["name"] == "portal"


def test_every_error_code_has_a_case_here():
    """Each refusal code has a test that makes assembly refuse with it: here as
    `test_refuses_<code>`, or — for the rules with suites of their own (market rules, Form
    2253, integrity) — a refusal test in tests/integrity that names the code."""
    names = {name for name in globals() if name.startswith("test_refuses_")}
    elsewhere = refusal_tests_naming_codes(Path(__file__).resolve().parents[1] / "integrity")
    for code in ERROR_CODES:
        assert any(code in name for name in names) or elsewhere.get(code), code


def refusal_tests_naming_codes(folder: Path) -> dict[str, list[str]]:
    """code -> names of test functions in `folder` that assert it and are about a refusal."""
    found: dict[str, list[str]] = {}
    for path in folder.glob("test_*.py"):
        module = ast.parse(path.read_text())
        constants = {node.targets[0].id: node.value.value for node in module.body
                     if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                     and isinstance(node.targets[0], ast.Name)}
        imported = {alias.asname or alias.name for node in module.body
                    if isinstance(node, ast.ImportFrom) for alias in node.names}
        for function in module.body:
            if not (isinstance(function, ast.FunctionDef) and function.name.startswith("test_")
                    and "refus" in function.name):
                continue
            for node in ast.walk(function):
                code = None
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    code = node.value
                elif isinstance(node, ast.Name) and node.id in constants:
                    code = constants[node.id]
                elif isinstance(node, ast.Name) and node.id in imported and node.id.isupper():
                    code = node.id.lower()
                if code in ERROR_CODES:
                    found.setdefault(code, []).append(function.name)
    return found


def test_refuses_not_approved_draft(world):
    swap_headline(world, approved=False)
    assert codes(assemble(world["step"], RECIPIENT, **assemble_kwargs())) == ["not_approved"]


def test_refuses_expired_approval(world):
    version = world["versions"]["headline"]
    version.expires_at = timezone.now() - timedelta(minutes=1)
    version.save(update_fields=["expires_at"])
    result = assemble(world["step"], RECIPIENT, **assemble_kwargs())
    assert codes(result) == ["expired"]
    assert result.errors[0].module == "CZN-HEAD-001"


def test_refuses_withdrawn(world):
    version = world["versions"]["claim"]
    version.state = "withdrawn"
    version.withdrawn_at = timezone.now()
    version.save(update_fields=["state", "withdrawn_at"])
    assert codes(assemble(world["step"], RECIPIENT, **assemble_kwargs())) == ["withdrawn"]


def test_refuses_jurisdiction_not_covered(world):
    swap_headline(world, tags={"jurisdictions": ["DE"]})
    assert codes(assemble(world["step"], RECIPIENT, **assemble_kwargs())) == [
        "jurisdiction_not_covered"]


def test_refuses_audience_not_covered(world):
    swap_headline(world, tags={"audience": "patient"})
    assert codes(assemble(world["step"], RECIPIENT, **assemble_kwargs())) == [
        "audience_not_covered"]


def test_refuses_channel_not_covered(world):
    swap_headline(world, tags={"channels": ["portal"]})
    assert codes(assemble(world["step"], RECIPIENT, **assemble_kwargs())) == [
        "channel_not_covered"]


def test_refuses_locale_mismatch(world):
    swap_headline(world, locale="de", body="<h1>Hallo {{ recipient.last_name }}</h1>")
    assert codes(assemble(world["step"], RECIPIENT, **assemble_kwargs())) == ["locale_mismatch"]


def test_regional_locale_accepts_language_version(world):
    assert assemble(world["step"], RECIPIENT, **assemble_kwargs(locale="en-US")).ok


def test_refuses_missing_companion(world):
    Slot.objects.get(step=world["step"], module=world["versions"]["isi"].module).delete()
    result = assemble(world["step"], RECIPIENT, **assemble_kwargs())
    # The claim is promotional in the US: its market's fair-balance rule fails with it.
    assert codes(result) == ["fair_balance_missing_isi", "missing_companion"]
    assert "CZN-ISI-US" in next(e.detail for e in result.errors if e.code == "missing_companion")


def test_refuses_excluded_combination(world):
    headline = swap_headline(world, approved=False)
    headline.excludes.add(world["versions"]["claim"].module)  # signed with the headline
    approve(headline)
    result = assemble(world["step"], RECIPIENT, **assemble_kwargs())
    assert codes(result) == ["excluded_combination"]
    assert len(result.errors) == 1  # the pair is reported once


def test_refuses_purpose_mismatch(world):
    swap_headline(world, purpose="medical")
    assert codes(assemble(world["step"], RECIPIENT, **assemble_kwargs())) == ["purpose_mismatch"]


def test_refuses_unknown_token(world):
    # An approved version can carry a token the allowlist no longer knows (a field retired
    # after approval); model validation stops new ones, so write the row as old data would be.
    version = world["versions"]["claim"]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE content_moduleversion SET body_html = %s WHERE id = %s",
                       ["<p>Your ID {{ recipient.ssn }}</p>", version.pk])
    version.refresh_from_db()
    record_approval_signatures(version)  # old data: MLR signed it as it is
    result = assemble(world["step"], RECIPIENT, **assemble_kwargs())
    assert codes(result) == ["unknown_token"]
    assert "recipient.ssn" in result.errors[0].detail


def test_refuses_missing_recipient_field(world):
    recipient = {k: v for k, v in RECIPIENT.items() if k != "last_name"}
    result = assemble(world["step"], recipient, **assemble_kwargs())
    assert codes(result) == ["missing_recipient_field"]
    assert {e.module for e in result.errors} == {"CZN-SUBJ-001", "CZN-HEAD-001"}


def test_refuses_integrity_mismatch_of_content_changed_behind_the_application(world):
    version = world["versions"]["claim"]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE content_moduleversion SET body_html = %s WHERE id = %s",
                       ["<p>Cut hospitalisations by 90%.</p>", version.pk])
    result = assemble(world["step"], RECIPIENT, **assemble_kwargs())
    assert codes(result) == ["integrity_mismatch"]
    assert result.errors[0].module == "CZN-EFF-001"
    assert "90%" not in result.html


def test_refusal_names_every_failing_rule_recipient_fields_included(world):
    version = world["versions"]["claim"]
    version.state = "withdrawn"
    version.withdrawn_at = timezone.now()
    version.save(update_fields=["state", "withdrawn_at"])
    recipient = {k: v for k, v in RECIPIENT.items() if k != "last_name"}
    result = assemble(world["step"], recipient, **assemble_kwargs())
    assert codes(result) == ["missing_recipient_field", "withdrawn"]
    assert {e.module for e in result.errors if e.code == "missing_recipient_field"} == {
        "CZN-SUBJ-001", "CZN-HEAD-001"}


def test_module_fallback_fills_a_missing_field(world):
    swap_headline(world, body="<h1>Hello {{ recipient.first_name }}</h1>",
                  fallbacks={"first_name": "Doctor"})
    recipient = {k: v for k, v in RECIPIENT.items() if k != "first_name"}
    result = assemble(world["step"], recipient, **assemble_kwargs())
    assert result.ok, result.errors
    assert "Hello Doctor" in result.html


def test_refuses_no_consent(world):
    recipient = {**RECIPIENT, "consent": {"email": False, "portal": True}}
    assert codes(assemble(world["step"], recipient, **assemble_kwargs())) == ["no_consent"]
    recipient = {k: v for k, v in RECIPIENT.items() if k != "consent"}
    assert codes(assemble(world["step"], recipient, **assemble_kwargs())) == ["no_consent"]


def test_refuses_missing_footer_when_the_brand_has_none_for_the_market(world):
    footer = world["footer"]
    footer.state = "withdrawn"
    footer.withdrawn_at = timezone.now()
    footer.save(update_fields=["state", "withdrawn_at"])
    for layout in ("email", "portal"):
        result = assemble(world["step"], RECIPIENT, **assemble_kwargs(), layout=layout)
        assert codes(result) == ["missing_footer"]
        assert "Cardiozen" in result.errors[0].detail and "US / en" in result.errors[0].detail


def test_refuses_missing_footer_when_it_has_expired_and_says_so(world):
    footer = world["footer"]
    footer.expires_at = timezone.now() - timedelta(minutes=1)
    footer.save(update_fields=["expires_at"])
    result = assemble(world["step"], RECIPIENT, **assemble_kwargs())
    assert codes(result) == ["missing_footer"]
    assert "CZN-FOOT-US v1 expired" in result.errors[0].detail


def test_refuses_missing_unsubscribe_for_email_only(world):
    recipient = {k: v for k, v in RECIPIENT.items() if k != "unsubscribe_url"}
    result = assemble(world["step"], recipient, **assemble_kwargs())
    assert codes(result) == ["missing_unsubscribe"]
    for bad in ("http://example.test/u", "javascript:alert(1)", "https://user:pw@example.test/u",
                "https://example.test/u\r\nBcc: x@example.test", "https://e.test/" + "a" * 2000):
        refused = assemble(world["step"], {**RECIPIENT, "unsubscribe_url": bad}, **assemble_kwargs())
        assert codes(refused) == ["missing_unsubscribe"]
        assert bad not in refused.errors[0].detail  # recipient data is never echoed


def test_every_failing_rule_is_reported_together(world):
    swap_headline(world, tags={"jurisdictions": ["DE"], "channels": ["portal"]}, purpose="medical")
    recipient = {**RECIPIENT, "consent": {}}
    result = assemble(world["step"], recipient, **assemble_kwargs())
    assert codes(result) == sorted(
        ["channel_not_covered", "jurisdiction_not_covered", "no_consent", "purpose_mismatch"])
    assert all(e.detail for e in result.errors)


def payloads():
    lines = ["<script>alert(1)</script>", "{{ 7*7 }}", "{% load static %}",
             "{{ recipient.first_name }}", "\ue000first_name\ue001", "Robert'); DROP TABLE--"]
    for name in ("xss-vectors.txt", "template-injection.txt"):
        lines += [line for line in (CORPUS / name).read_text().splitlines() if line.strip()]
    return lines


@pytest.mark.parametrize("payload", payloads())
def test_recipient_field_payload_appears_as_inert_escaped_text(world, payload):
    recipient = {**RECIPIENT, "last_name": payload, "title": "Dr.\r\nBcc: x@example.test"}
    result = assemble(world["step"], recipient, **assemble_kwargs())
    assert result.ok, result.errors
    clean_payload = payload.replace("\ue000", "").replace("\ue001", "")
    assert escape(payload) in result.html or escape(clean_payload) in result.html
    if any(c in payload for c in "<>\"'&"):
        assert payload not in result.html
    assert "49" not in result.html.replace("1-800-FDA-1088", "")
    assert "\n" not in result.subject and "\r" not in result.subject
    assert "Alex" not in result.html  # a token in a value is never expanded


def test_withdrawal_stops_assembly_the_moment_it_commits(world):
    assert assemble(world["step"], RECIPIENT, **assemble_kwargs()).ok
    version = world["versions"]["isi"]
    version.state = "withdrawn"
    version.save(update_fields=["state"])
    assert codes(assemble(world["step"], RECIPIENT, **assemble_kwargs())) == ["withdrawn"]


def test_withdrawal_during_a_batch_stops_it_from_the_next_chunk(world):
    results = assemble_many(world["step"], [RECIPIENT] * 6, **assemble_kwargs(), chunk_size=2)
    first = [next(results), next(results)]
    version = world["versions"]["isi"]
    version.state = "withdrawn"
    version.save(update_fields=["state"])
    rest = list(results)
    assert all(r.ok for r in first)
    assert [codes(r) for r in rest] == [["withdrawn"]] * 4


def test_same_inputs_give_the_same_bytes_and_the_manifest_reproduces(world):
    now = timezone.now()
    one = assemble(world["step"], RECIPIENT, **assemble_kwargs(), now=now)
    two = assemble(world["step"], dict(RECIPIENT), **assemble_kwargs(), now=now)
    assert (one.subject, one.html, one.text) == (two.subject, two.html, two.text)
    assert one.manifest == two.manifest

    # Later the claim is withdrawn; the manifest still re-renders to the same bytes.
    claim = world["versions"]["claim"]
    claim.state = "withdrawn"
    claim.save(update_fields=["state"])
    reproduction = reproduce(one.manifest, RECIPIENT)
    assert reproduction.matches and not reproduction.problems, reproduction.problems
    assert reproduction.result.html == one.html

    other = reproduce(one.manifest, {**RECIPIENT, "last_name": "Other"})
    assert not other.matches
    assert "sha256" in other.describe()


def test_batch_output_equals_single_output_byte_for_byte(world):
    now = timezone.now()
    recipients = [{**RECIPIENT, "id": f"r{i}", "last_name": f"Name{i} <b>"} for i in range(5)]
    batch = list(assemble_many(world["step"], recipients, **assemble_kwargs(), now=now))
    for recipient, got in zip(recipients, batch, strict=True):
        single = assemble(world["step"], recipient, **assemble_kwargs(), now=now)
        assert (got.subject, got.html, got.text, got.manifest) == (
            single.subject, single.html, single.text, single.manifest)


def _queries_for(world, count):
    recipients = [{**RECIPIENT, "id": str(i), "last_name": f"N{i}"} for i in range(count)]
    with CaptureQueriesContext(connection) as captured:
        results = list(assemble_many(world["step"], recipients, **assemble_kwargs()))
    assert all(r.ok for r in results)
    return len(captured)


def test_queries_per_batch_do_not_grow_with_recipients(world, django_assert_num_queries):
    _queries_for(world, 1)  # warm the process-wide caches (signatures, rendered layouts)
    ten = _queries_for(world, 10)
    recipients = [{**RECIPIENT, "id": str(i), "last_name": f"N{i}"} for i in range(100)]
    with django_assert_num_queries(ten):
        results = list(assemble_many(world["step"], recipients, **assemble_kwargs()))
    assert len(results) == 100


def test_selector_picks_best_unseen_module_for_the_recipient(world):
    from content.models import Specialty

    hcp = world["journey"].audience
    cardio, _ = Specialty.objects.get_or_create(audience=hcp, code="cardiology",
                                                defaults={"name": "Cardiology"})
    general = make_version(world["brand"], "CZN-CASE-001", kind="body", body="<p>General case</p>")
    general.approved_at = timezone.now() - timedelta(days=3)
    general.save(update_fields=["approved_at"])
    cardiology = make_version(world["brand"], "CZN-CASE-002", kind="body", body="<p>Cardio case</p>",
                              approved=False)
    cardiology.specialties.add(cardio)
    from tests.journeys.conftest import approve

    approve(cardiology)
    Slot.objects.create(step=world["step"], order=9, selector_kind="body", priority=1)

    result = assemble(world["step"], RECIPIENT, **assemble_kwargs())
    assert result.ok and "Cardio case" in result.html
    result = assemble(world["step"], {**RECIPIENT, "specialty": "Nephrology"}, **assemble_kwargs())
    assert "General case" in result.html and "Cardio case" not in result.html
    result = assemble(world["step"], RECIPIENT, **assemble_kwargs(),
                      seen=[ContentModule.objects.get(code="CZN-CASE-002").pk])
    assert "General case" in result.html


def test_required_selector_with_nothing_to_pick_refuses(world):
    Slot.objects.create(step=world["step"], order=9, selector_kind="dosing", required=True)
    assert codes(assemble(world["step"], RECIPIENT, **assemble_kwargs())) == ["not_approved"]
    Slot.objects.filter(step=world["step"], selector_kind="dosing").update(required=False)
    assert assemble(world["step"], RECIPIENT, **assemble_kwargs()).ok


def test_context_prepares_each_combination_once(world):
    ctx = load_context(world["step"], **assemble_kwargs())
    assert ctx.is_current()  # nothing changed: a batch keeps its preparation
    for i in range(20):
        assert ctx.assemble({**RECIPIENT, "last_name": f"N{i}"}).ok
    assert len(ctx._prepared) == 1


def test_patient_support_content_may_travel_in_a_promotional_step_but_not_the_reverse(world):
    swap_headline(world, purpose="patient_support")
    assert assemble(world["step"], RECIPIENT, **assemble_kwargs()).ok
    step = world["step"]
    step.purpose = "patient_support"
    step.save()
    result = assemble(step, RECIPIENT, **assemble_kwargs())
    assert codes(result) == ["purpose_mismatch"]
    assert {e.module for e in result.errors} == {"CZN-SUBJ-001", "CZN-EFF-001", "CZN-ISI-US"}


@pytest.mark.parametrize("broken", [{}, {"journey": "hcp-new"}, "not a manifest"])
def test_reproducing_a_broken_manifest_says_what_is_missing(world, broken):
    reproduction = reproduce(broken, RECIPIENT)
    assert not reproduction.matches and "lacks" in reproduction.describe()


def test_reproduction_reports_a_changed_layout_or_other_recipient(world):
    result = assemble(world["step"], RECIPIENT, **assemble_kwargs())
    manifest = {**result.manifest, "layout": {**result.manifest["layout"], "sha256": "0" * 64}}
    reproduction = reproduce(manifest, RECIPIENT)
    assert "layout templates changed" in reproduction.describe()


def test_reproduce_command_confirms_or_refuses(world, tmp_path):
    import json

    from django.core.management import CommandError, call_command

    result = assemble(world["step"], RECIPIENT, **assemble_kwargs())
    (tmp_path / "m.json").write_text(json.dumps(result.manifest))
    (tmp_path / "r.json").write_text(json.dumps(RECIPIENT))
    (tmp_path / "other.json").write_text(json.dumps({**RECIPIENT, "last_name": "Else"}))
    out = io.StringIO()
    call_command("reproduce_assembly", manifest=str(tmp_path / "m.json"),
                 recipient=str(tmp_path / "r.json"), stdout=out)
    assert "matches the manifest" in out.getvalue()
    with pytest.raises(CommandError, match="differs"):
        call_command("reproduce_assembly", manifest=str(tmp_path / "m.json"),
                     recipient=str(tmp_path / "other.json"), stdout=io.StringIO())
    with pytest.raises(CommandError, match="does not exist"):
        call_command("reproduce_assembly", manifest=str(tmp_path / "none.json"),
                     recipient=str(tmp_path / "r.json"))
