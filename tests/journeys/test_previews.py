"""Step previews per channel and audience (journeys.previews), through the page a designer
opens: SMS segments, a patient sample on a patient journey, the handout's PDF rendered by
pdftoppm, refusals that link to their fix, the manifest as a table."""

import shutil
import subprocess

import pytest
from django.contrib.auth.models import Group

from content.models import Audience, Channel
from content.models import Stage as AudienceStage
from content.permissions import AUTHORS_GROUP, grant_author_brand
from journeys import previews
from journeys.models import Journey, Layout, Slot, Stage, Step
from journeys.previews import sms_count
from tests.factories import UserFactory, term
from tests.journeys.conftest import make_version

# --- SMS segments: GSM-7 160/153, UCS-2 70/67 -----------------------------------------


@pytest.mark.parametrize(("text", "encoding", "units", "segments"), [
    ("", "GSM-7", 0, 0),
    ("a" * 160, "GSM-7", 160, 1),
    ("a" * 161, "GSM-7", 161, 2),
    ("a" * 306, "GSM-7", 306, 2),
    ("a" * 307, "GSM-7", 307, 3),
    ("€" * 80, "GSM-7", 160, 1),        # extension characters cost two septets
    ("€" * 81, "GSM-7", 162, 2),
    ("Grüße, Ärztin! @£$¥ èéùì", "GSM-7", 24, 1),
    ("ş" * 70, "UCS-2", 70, 1),          # one character outside GSM-7 makes it all UCS-2
    ("a" * 69 + "ş", "UCS-2", 70, 1),
    ("a" * 70 + "ş", "UCS-2", 71, 2),
    ("a" * 133 + "ş", "UCS-2", 134, 2),
    ("a" * 134 + "ş", "UCS-2", 135, 3),
    ("💊" * 35, "UCS-2", 70, 1),         # outside the BMP: two UTF-16 units each
    ("💊" * 36, "UCS-2", 72, 2),
])
def test_sms_count_follows_the_gsm7_and_ucs2_segment_rules(text, encoding, units, segments):
    count = sms_count(text)
    assert (count.encoding, count.units, count.segments) == (encoding, units, segments)
    assert count.characters == len(text)


def test_sms_count_never_splits_an_extension_character_across_parts():
    # 152 septets then "€" (2): the escape pair does not fit part one's 153, so it moves.
    count = sms_count("a" * 152 + "€" + "a" * 152)
    assert count.units == 306 and count.segments == 3
    assert sms_count("a" * 151 + "€" + "a" * 153).segments == 2


def test_sms_count_names_what_forced_ucs2_and_what_is_left():
    count = sms_count("Take 1 tablet 💊 daily – ok?")
    assert count.encoding == "UCS-2" and count.non_gsm == ("💊", "–")
    assert count.per_segment == 70 and count.remaining == 70 - count.units
    assert sms_count("a" * 200).remaining == 2 * 153 - 200


# --- Samples per audience -------------------------------------------------------------


def test_each_audience_has_its_own_samples_and_a_foreign_one_is_not_taken():
    assert {s.audience for s in previews.samples_for("patient")} == {"patient"}
    assert all(not s.fields["title"] for s in previews.samples_for("patient"))
    assert previews.pick_sample("patient", "hcp-cardiology").audience == "patient"
    assert previews.pick_sample("hcp", "hcp-general-practice").key == "hcp-general-practice"
    assert previews.pick_sample("pharmacist", None).fields["practice_name"]
    assert previews.samples_for("unknown-audience")[0].fields["title"] == ""


# --- Pages ----------------------------------------------------------------------------

@pytest.fixture
def designer(client, world):
    user = UserFactory(username="preview-designer", is_staff=True)
    user.groups.add(Group.objects.get(name=AUTHORS_GROUP))  # the content admin's pages
    grant_author_brand(user, world["brand"])
    client.force_login(user)
    return client


def _journey(world, *, slug, audience, stage_code, step_key, channel, purpose, layout=Layout.EMAIL):
    audience_term = term(Audience, audience)
    audience_stage, _ = AudienceStage.objects.get_or_create(
        audience=audience_term, code=stage_code, defaults={"name": stage_code.title()})
    journey = Journey.objects.create(slug=slug, name=f"{slug} journey", brand=world["brand"],
                                     audience=audience_term, locale=world["journey"].locale)
    journey.jurisdictions.set([world["us"]])
    column = Stage.objects.create(journey=journey, audience_stage=audience_stage, order=1)
    return Step.objects.create(journey=journey, stage=column, key=step_key, name=step_key.title(),
                               channel=term(Channel, channel), purpose=purpose, layout=layout)


@pytest.fixture
def patient_sms(world):
    step = _journey(world, slug="patient-start", audience="patient", stage_code="diagnosis",
                    step_key="dose-reminder", channel="sms", purpose="patient_support")
    reminder = make_version(
        world["brand"], "CZN-PAT-SMS-001", kind="body", purpose="patient_support",
        body="<p>Hi {{ recipient.first_name }}, time for your evening dose.</p>",
        tags={"audience": "patient", "channels": ["sms"]})
    Slot.objects.create(step=step, order=0, module=reminder.module)
    return step


@pytest.fixture
def congress_handout(world):
    step = _journey(world, slug="hcp-congress", audience="hcp", stage_code="awareness",
                    step_key="booth", channel="congress", purpose="promotional",
                    layout=Layout.PORTAL)
    headline = make_version(world["brand"], "CZN-CONG-HEAD", kind="headline",
                            body="<h1>Meet Cardiozen at booth 12</h1><p>Data from the CZN-3 trial.</p>",
                            tags={"channels": ["congress"]})
    Slot.objects.create(step=step, order=0, module=headline.module)
    return step


@pytest.mark.django_db
def test_a_patient_journey_previews_with_a_patient_sample_as_sms_text_with_segments(designer, patient_sms):
    response = designer.get("/journeys/patient-start/steps/dose-reminder/preview/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Hi Sam, time for your evening dose." in page          # the patient sample
    assert "Dr. Alex Morgan" not in page and "Morgan" not in page
    assert "<iframe" not in page and 'id="sms-text"' in page       # text, not an HTML email
    assert "Subject" not in page
    count = response.context["sms"]
    assert count.segments >= 1 and count.encoding == "GSM-7"
    assert f'<dd id="sms-segments">{count.segments}</dd>' in page
    assert count.characters == len(response.context["sms_text"])
    # The select offers the patient samples only; choosing the other one renders it.
    assert 'value="patient-caregiver"' in page and 'value="hcp-cardiology"' not in page
    page = designer.get("/journeys/patient-start/steps/dose-reminder/preview/",
                        {"sample": "patient-caregiver"}).content.decode()
    assert "Hi Maria, time for your evening dose." in page
    page = designer.get("/journeys/patient-start/steps/dose-reminder/preview/",
                        {"sample": "hcp-cardiology"}).content.decode()
    assert "Hi Sam," in page  # a sample of another audience is never used


@pytest.mark.django_db
def test_the_email_step_shows_a_fitted_frame_and_the_manifest_as_a_table(designer, world):
    page = designer.get("/journeys/hcp-new/steps/welcome/preview/").content.decode()
    assert 'data-fit-content' in page and "tessera/preview.js" in page
    assert "News for Dr. Morgan" in page  # the HCP sample
    assert '<table class="pv-manifest">' in page
    assert "CZN-EFF-001" in page and "Legal: Legal Reviewer" in page  # signers: role, name
    assert world["versions"]["claim"].sha256[:12] in page
    assert "<details><summary>Manifest JSON</summary>" in page


@pytest.mark.django_db
def test_the_handout_downloads_as_a_pdf_that_pdftoppm_renders(designer, congress_handout, tmp_path):
    page = designer.get("/journeys/hcp-congress/steps/booth/preview/").content.decode()
    assert "Congress handout" in page and 'id="handout-pdf"' in page
    response = designer.get("/journeys/hcp-congress/steps/booth/preview.pdf",
                            {"jurisdiction": "US", "locale": "en"})
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert 'attachment; filename="hcp-congress-booth-us-en.pdf"' == response["Content-Disposition"]
    pdf = tmp_path / "handout.pdf"
    pdf.write_bytes(response.content)
    assert shutil.which("pdftoppm"), "pdftoppm (poppler-utils) is needed to check the PDF"
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")],
                   check=True, timeout=60)
    pngs = list(tmp_path.glob("page*.png"))
    assert pngs and pngs[0].stat().st_size > 1000
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, timeout=60)
    if text.returncode == 0:
        assert "booth 12" in text.stdout


@pytest.mark.django_db
def test_only_handouts_print_and_a_refused_handout_is_422_not_a_pdf(designer, world, congress_handout):
    assert designer.get("/journeys/hcp-new/steps/welcome/preview.pdf").status_code == 404
    draft = make_version(world["brand"], "CZN-CONG-DRAFT", kind="body", approved=False,
                         tags={"channels": ["congress"]})
    Slot.objects.create(step=congress_handout, order=1, module=draft.module)
    response = designer.get("/journeys/hcp-congress/steps/booth/preview.pdf")
    assert response.status_code == 422 and b"not_approved" in response.content


@pytest.mark.django_db
def test_a_rep_detail_is_a_tablet_page(designer, world):
    step = _journey(world, slug="hcp-rep", audience="hcp", stage_code="awareness",
                    step_key="detail", channel="rep", purpose="promotional")
    version = make_version(world["brand"], "CZN-REP-1", kind="headline", body="<h1>Detail aid</h1>",
                           tags={"channels": ["rep"]})
    Slot.objects.create(step=step, order=0, module=version.module)
    page = designer.get("/journeys/hcp-rep/steps/detail/preview/").content.decode()
    assert "tablet, 1024 × 768" in page and 'class="pv-frame tablet"' in page
    assert 'width="1024" height="768"' in page


@pytest.mark.django_db
def test_refusal_reasons_link_to_what_fixes_them(designer, world):
    draft = make_version(world["brand"], "CZN-DRAFT-7", kind="body", approved=False)
    Slot.objects.create(step=world["step"], order=9, module=draft.module)
    response = designer.get("/journeys/hcp-new/steps/welcome/preview/")
    page = response.content.decode()
    assert "cannot be assembled compliantly" in page and "not_approved" in page
    assert f'href="/admin/content/contentmodule/{draft.module.pk}/change/"' in page
    assert f'href="/review/v/{draft.pk}/"' in page
    assert f'href="/admin/journeys/step/{world["step"].pk}/change/"' in page
    # The linked pages open for this designer.
    assert designer.get(f"/admin/content/contentmodule/{draft.module.pk}/change/").status_code == 200


@pytest.mark.django_db
def test_a_reviewer_is_sent_to_the_review_not_to_the_admin(client, world):
    from approvals.roles import role_group

    reviewer = UserFactory(username="preview-reviewer")
    reviewer.groups.add(role_group("legal"))
    client.force_login(reviewer)
    draft = make_version(world["brand"], "CZN-DRAFT-8", kind="body", approved=False)
    Slot.objects.create(step=world["step"], order=9, module=draft.module)
    page = client.get("/journeys/hcp-new/steps/welcome/preview/").content.decode()
    assert f'href="/review/v/{draft.pk}/"' in page
    assert "/admin/" not in page.split('id="refusals"')[1].split("</div>")[0]
