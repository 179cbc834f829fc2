"""Demo content: two invented brands, their references and modules, users and groups.

Nothing here is a real medicine. **Cardiozen** (zenocardin tablets) is an invented
once-daily treatment for chronic heart failure with reduced ejection fraction (HFrEF);
**Respivane** (velorespin inhalation powder) an invented COPD maintenance inhaler. All trial
names, figures and citations are fictional.

`load(stdout)` is idempotent: users, references and modules are found by their natural
keys, and a module that already has a version is left alone (the approvals demo may have
moved it on). Every version is created as a **draft**; `TARGET_STATES` says which state
each module's latest version should reach, and `approvals.demo` drives them there through
the real workflow with signatures. The module codes are listed in docs/authoring.md.
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.db import transaction

from .models import (
    Asset,
    Audience,
    Brand,
    Channel,
    ContentModule,
    Jurisdiction,
    Locale,
    ModuleVersion,
    Reference,
    Specialty,
    Stage,
)
from .permissions import grant_author_brand
from .versioning import set_tags

# --- People -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    first_name: str
    last_name: str
    role: str
    groups: tuple[str, ...] = ()
    superuser: bool = False
    brands: tuple[str, ...] = ()  # slugs the user authors


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("admin", "tessera-admin", "Ada", "Admin", "superuser", superuser=True),
    DemoUser("author.cardiozen", "tessera-author", "Camille", "Durand",
             "author of Cardiozen", groups=("authors",), brands=("cardiozen",)),
    DemoUser("author.respivane", "tessera-author", "Ravi", "Mehta",
             "author of Respivane", groups=("authors",), brands=("respivane",)),
    DemoUser("medical", "tessera-medical", "Mira", "Keller", "MLR reviewer, medical",
             groups=("mlr-medical",)),
    DemoUser("legal", "tessera-legal", "Jonas", "Weber", "MLR reviewer, legal",
             groups=("mlr-legal",)),
    DemoUser("regulatory", "tessera-regulatory", "Priya", "Natarajan",
             "MLR reviewer, regulatory", groups=("mlr-regulatory",)),
)

# --- Brands and references ---------------------------------------------------------------

BRANDS = {
    "cardiozen": dict(
        name="Cardiozen", product_name="Cardiozen (zenocardin) tablets",
        indication="Chronic heart failure with reduced ejection fraction (HFrEF, LVEF ≤ 40%) "
                   "in adults, on top of standard therapy.",
        approval_validity_days=365),
    "respivane": dict(
        name="Respivane", product_name="Respivane (velorespin) inhalation powder",
        indication="Maintenance treatment of moderate to severe chronic obstructive "
                   "pulmonary disease (COPD) in adults.",
        approval_validity_days=730),
}

REFERENCES = {
    "cardiozen": [
        ("REF-ZENHF", "publication",
         "Halvorsen K, Okafor B, Lindqvist M, et al. Zenocardin in heart failure with reduced "
         "ejection fraction (ZEN-HF): a randomised, double-blind, placebo-controlled trial. "
         "J Fict Cardiol. 2025;12(3):101-114.", ""),
        ("REF-ZENHF-QOL", "publication",
         "Brandt S, Moreau P, Ito H, et al. Health status with zenocardin: Kansas City "
         "Cardiomyopathy Questionnaire outcomes in ZEN-HF. Fict Heart J. 2025;8(2):45-53.", ""),
        ("REF-PI-US", "label",
         "Cardiozen (zenocardin) tablets. US Prescribing Information. Tessera Demo Pharma, "
         "Inc.; 2025.", "14 Clinical Studies"),
        ("REF-SMPC-DE", "label",
         "Cardiozen Filmtabletten. Fachinformation (SmPC). Tessera Demo Pharma GmbH; 2025.",
         "5.1 Pharmakodynamische Eigenschaften"),
        ("REF-DOF-ADHERENCE", "data_on_file",
         "Data on file. CardioZen Companion adherence programme analysis. Tessera Demo "
         "Pharma; 2025.", ""),
    ],
    "respivane": [
        ("REF-BREATHE", "publication",
         "Sørensen A, Kaplan D, Mbeki T, et al. Velorespin once daily in moderate to severe "
         "COPD (BREATHE-1). Fict Resp Med. 2024;19(7):612-623.", ""),
        ("REF-PI-US", "label",
         "Respivane (velorespin) inhalation powder. US Prescribing Information. Tessera Demo "
         "Pharma, Inc.; 2025.", "14 Clinical Studies"),
    ],
}

# --- Modules ----------------------------------------------------------------------------

ALL = "*"  # every stage of the audience
MARKET_LOCALE = {"US": "en", "DE": "de"}


@dataclass(frozen=True)
class ModuleSpec:
    code: str
    brand: str
    kind: str
    title: str
    market: str
    audiences: dict[str, tuple[str, ...] | str]
    channels: tuple[str, ...]
    body: str = ""
    subject: str = ""
    purpose: str = "promotional"
    cites: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    fallbacks: dict[str, str] = field(default_factory=dict)
    specialties: tuple[str, ...] = ()
    state: str = "approved"
    image: bool = False


EMAIL_WEB = ("email", "portal")
PROMO_CHANNELS = ("email", "portal", "rep", "webinar", "congress")
HCP_GREETING = {"title": "Healthcare", "last_name": "Professional"}
ISI_US_BODY = (
    "<h3>Important Safety Information</h3>"
    "<p><strong>Contraindications:</strong> Cardiozen is contraindicated in patients with "
    "severe hepatic impairment, in pregnancy, and with strong CYP3A4 inhibitors.</p>"
    "<p><strong>Warnings and precautions:</strong> Hyperkalaemia and worsening renal function "
    "may occur; monitor serum potassium and eGFR before and during treatment. Symptomatic "
    "hypotension may occur, particularly in patients on high-dose diuretics.</p>"
    "<p><strong>Adverse reactions</strong> (≥ 5% and more often than placebo): dizziness, "
    "hypotension, hyperkalaemia and fatigue.</p>"
    "<p>Please see the full Prescribing Information.</p>"
)
ISI_DE_BODY = (
    "<h3>Wichtige Sicherheitsinformationen</h3>"
    "<p><strong>Gegenanzeigen:</strong> Schwere Leberfunktionsstörung, Schwangerschaft, "
    "gleichzeitige Anwendung starker CYP3A4-Inhibitoren.</p>"
    "<p><strong>Warnhinweise:</strong> Hyperkaliämie und Verschlechterung der Nierenfunktion "
    "sind möglich; Serumkalium und eGFR vor und während der Behandlung kontrollieren. "
    "Symptomatische Hypotonie, besonders bei hoch dosierten Diuretika.</p>"
    "<p><strong>Nebenwirkungen</strong> (≥ 5 %): Schwindel, Hypotonie, Hyperkaliämie, "
    "Müdigkeit.</p><p>Bitte beachten Sie die Fachinformation.</p>"
)


def _specs() -> list[ModuleSpec]:
    S = ModuleSpec
    hcp_pharm_patient = {"hcp": ALL, "patient": ALL, "pharmacist": ALL}
    return [
        # --- Shared per market: ISI, footers, reference list -----------------------------
        S("CZN-ISI-US", "cardiozen", "isi", "Important Safety Information (US)", "US",
          hcp_pharm_patient, PROMO_CHANNELS, ISI_US_BODY, purpose="promotional",
          cites=("REF-PI-US",)),
        S("CZN-ISI-DE", "cardiozen", "isi", "Wichtige Sicherheitsinformationen (DE)", "DE",
          {"hcp": ALL, "pharmacist": ALL}, PROMO_CHANNELS, ISI_DE_BODY,
          cites=("REF-SMPC-DE",)),
        S("CZN-FOOT-US", "cardiozen", "footer", "Email footer (US)", "US", hcp_pharm_patient,
          ("email", "portal"),
          "<p><small>Cardiozen and the Cardiozen logo are trademarks of Tessera Demo Pharma, "
          "Inc. This message was sent to {{ recipient.first_name }} {{ recipient.last_name }}. "
          "Intended for U.S. residents only.</small></p>",
          fallbacks={"first_name": "you", "last_name": ""}),
        S("CZN-FOOT-DE", "cardiozen", "footer", "E-Mail-Fußzeile (DE)", "DE",
          {"hcp": ALL, "patient": ALL, "pharmacist": ALL}, ("email", "portal"),
          "<p><small>Tessera Demo Pharma GmbH, Musterstraße 1, 10115 Berlin. Sie erhalten "
          "diese Nachricht, weil Sie dem Empfang zugestimmt haben.</small></p>"),
        S("CZN-REFS-US", "cardiozen", "reference_list", "Reference list (US HCP)", "US",
          {"hcp": ALL}, PROMO_CHANNELS,
          "<ol><li>Halvorsen K, et al. J Fict Cardiol. 2025;12(3):101-114.</li>"
          "<li>Brandt S, et al. Fict Heart J. 2025;8(2):45-53.</li>"
          "<li>Cardiozen US Prescribing Information, 2025.</li></ol>",
          cites=("REF-ZENHF", "REF-ZENHF-QOL", "REF-PI-US")),
        # --- US HCP ----------------------------------------------------------------------
        S("CZN-HCP-SUBJ-AWR-US", "cardiozen", "subject", "Subject: awareness email (US HCP)",
          "US", {"hcp": ("awareness",)}, ("email",),
          subject="{{ recipient.title }} {{ recipient.last_name }}, a new option for your HFrEF patients",
          fallbacks=HCP_GREETING),
        S("CZN-HCP-PRE-AWR-US", "cardiozen", "preheader", "Preheader: awareness email (US HCP)",
          "US", {"hcp": ("awareness",)}, ("email",),
          "<p>Once-daily Cardiozen (zenocardin): what it is and who it is for.</p>"),
        S("CZN-HCP-HEAD-AWR-US", "cardiozen", "headline", "Headline: greeting (US HCP)", "US",
          {"hcp": ("awareness", "interest", "trial")}, EMAIL_WEB,
          "<h1>Dear {{ recipient.title }} {{ recipient.last_name }},</h1>",
          fallbacks=HCP_GREETING),
        S("CZN-HCP-BODY-MOA-US", "cardiozen", "body", "Mechanism of action (US HCP)", "US",
          {"hcp": ("awareness", "interest")}, ("email", "portal", "rep"),
          "<p>Cardiozen (zenocardin) is a once-daily oral cardiac energetics modulator that "
          "improves the efficiency of the failing myocardium without raising heart rate.</p>",
          specialties=("cardiology", "internal_medicine")),
        S("CZN-IMG-MOA-US", "cardiozen", "image", "Image: mechanism diagram (US)", "US",
          {"hcp": ("awareness", "interest")}, ("email", "portal", "rep"),
          "<p><small>Illustration of the proposed mechanism.</small></p>", image=True),
        S("CZN-EFF-001-US", "cardiozen", "claim", "Efficacy: primary endpoint (US)", "US",
          {"hcp": ("interest", "trial")}, PROMO_CHANNELS,
          "<p>In ZEN-HF, Cardiozen reduced the risk of cardiovascular death or first heart "
          "failure hospitalization by <strong>26%</strong> versus placebo (17.2% vs 22.9%; "
          "HR 0.74) on top of standard therapy.<sup>1</sup></p>",
          cites=("REF-ZENHF", "REF-PI-US"), requires=("CZN-ISI-US",),
          specialties=("cardiology",)),
        S("CZN-EFF-002-US", "cardiozen", "claim", "Efficacy: quality of life (US)", "US",
          {"hcp": ("interest", "adoption")}, PROMO_CHANNELS,
          "<p>Patients on Cardiozen reported a 5.1-point greater improvement in KCCQ "
          "clinical summary score at 8 months than with placebo.<sup>2</sup></p>",
          cites=("REF-ZENHF-QOL",), requires=("CZN-ISI-US",)),
        S("CZN-EFF-003-US", "cardiozen", "claim", "Efficacy: total HF hospitalizations (US)",
          "US", {"hcp": ("ongoing_use",)}, ("email", "portal"),
          "<p>Cardiozen reduced total heart failure hospitalizations by 30% over a median of "
          "18 months.<sup>1</sup></p>",
          cites=("REF-ZENHF",), requires=("CZN-ISI-US",), state="in_review"),
        S("CZN-EFF-004-US", "cardiozen", "claim", "Efficacy: cross-trial comparison (US, withdrawn)",
          "US", {"hcp": ("interest",)}, ("email", "rep"),
          "<p>Cardiozen's risk reduction exceeded that reported for older therapies.<sup>1</sup></p>",
          cites=("REF-ZENHF",), requires=("CZN-ISI-US",), excludes=("CZN-EFF-001-US",),
          state="withdrawn"),
        S("CZN-DOSE-US", "cardiozen", "dosing", "Dosing table (US)", "US",
          {"hcp": ("trial", "adoption"), "pharmacist": ("learning",)}, PROMO_CHANNELS,
          "<table><thead><tr><th>Week</th><th>Dose</th><th>Check</th></tr></thead><tbody>"
          "<tr><td>1–2</td><td>5 mg once daily</td><td>Potassium, eGFR</td></tr>"
          "<tr><td>3 onward</td><td>10 mg once daily</td><td>Potassium, eGFR, blood pressure</td></tr>"
          "</tbody></table>",
          cites=("REF-PI-US",), requires=("CZN-ISI-US",)),
        S("CZN-HCP-SUBJ-INT-US", "cardiozen", "subject", "Subject: clinical data email (US HCP)",
          "US", {"hcp": ("interest",)}, ("email",),
          subject="ZEN-HF results for {{ recipient.specialty }} practices",
          fallbacks={"specialty": "cardiology"}),
        S("CZN-HCP-CTA-WEBINAR-US", "cardiozen", "cta", "CTA: register for the HFrEF webinar (US)",
          "US", {"hcp": ("awareness", "interest")}, ("email", "portal", "webinar"),
          '<p><a href="https://example.com/cardiozen/webinar">Register for the ZEN-HF '
          'webinar</a></p>'),
        S("CZN-HCP-CTA-SAMPLES-US", "cardiozen", "cta", "CTA: request samples (US)", "US",
          {"hcp": ("trial",)}, ("email", "portal", "rep"),
          '<p><a href="https://example.com/cardiozen/samples">Request Cardiozen samples</a></p>',
          excludes=("CZN-MED-001-US",)),
        S("CZN-HCP-CTA-CONGRESS-US", "cardiozen", "cta", "CTA: visit our booth at HFC 2025 (US)",
          "US", {"hcp": ("awareness",)}, ("email", "congress"),
          "<p>Meet the Cardiozen team at booth 42, Heart Failure Congress 2025.</p>",
          state="expired"),
        S("CZN-HCP-BODY-CASE-US", "cardiozen", "body", "Patient case: starting therapy (US)", "US",
          {"hcp": ("trial",)}, ("portal", "rep"),
          "<p>Case: a 64-year-old man with HFrEF (LVEF 30%) still symptomatic on standard "
          "therapy. See how his physician started Cardiozen 5 mg and titrated at week 3.</p>"),
        S("CZN-HCP-BODY-SUPPORT-US", "cardiozen", "body", "Patient materials and hotline (US)",
          "US", {"hcp": ("adoption",)}, EMAIL_WEB,
          "<p>Order free patient starter kits and reach the CardioZen Companion nurse "
          "hotline for your patients, Monday to Friday.</p>", purpose="patient_support"),
        S("CZN-HCP-BODY-MONITOR-US", "cardiozen", "body", "Monitoring guidance (US)", "US",
          {"hcp": ("ongoing_use",)}, EMAIL_WEB,
          "<p>Check serum potassium and eGFR at baseline, week 2 and every 3 months.</p>",
          cites=("REF-PI-US",), requires=("CZN-ISI-US",)),
        S("CZN-HCP-BODY-ADVOCACY-US", "cardiozen", "body", "Join the ZEN-REAL registry (US)",
          "US", {"hcp": ("advocacy",)}, EMAIL_WEB,
          "<p>{{ recipient.title }} {{ recipient.last_name }}, share your experience: join the "
          "ZEN-REAL real-world registry.</p>",
          fallbacks=HCP_GREETING, state="draft"),
        S("CZN-MED-001-US", "cardiozen", "body", "Scientific response: use in CKD (US, medical)",
          "US", {"hcp": ("interest", "ongoing_use")}, ("portal",),
          "<p>Medical information: in ZEN-HF, patients with eGFR 30–60 had outcomes consistent "
          "with the overall population. Submit a question to Medical Information.</p>",
          purpose="medical", cites=("REF-ZENHF",), specialties=("nephrology",)),
        # --- US patient ------------------------------------------------------------------
        S("CZN-PAT-SUBJ-AWR-US", "cardiozen", "subject", "Subject: awareness email (US patient)",
          "US", {"patient": ("awareness",)}, ("email",),
          subject="{{ recipient.first_name }}, still short of breath?",
          fallbacks={"first_name": "Hello"}),
        S("CZN-PAT-PRE-AWR-US", "cardiozen", "preheader", "Preheader: awareness email (US patient)",
          "US", {"patient": ("awareness",)}, ("email",),
          "<p>Heart failure symptoms you should not ignore.</p>"),
        S("CZN-PAT-HEAD-AWR-US", "cardiozen", "headline", "Headline: greeting (US patient)", "US",
          {"patient": ("awareness", "research", "use")}, EMAIL_WEB,
          "<h1>Hi {{ recipient.first_name }},</h1>", fallbacks={"first_name": "there"}),
        S("CZN-PAT-BODY-SYMPTOMS-US", "cardiozen", "body", "Heart failure symptoms (US patient)",
          "US", {"patient": ("awareness",)}, EMAIL_WEB,
          "<p>Breathlessness, swollen ankles and tiredness can be signs that heart failure "
          "needs attention. Talk to your doctor.</p>", purpose="patient_support"),
        S("CZN-PAT-BODY-HOW-US", "cardiozen", "body", "How Cardiozen works (US patient)", "US",
          {"patient": ("research",)}, EMAIL_WEB,
          "<p>Cardiozen is a tablet taken once a day that helps your heart pump more "
          "efficiently.</p>", requires=("CZN-ISI-US",)),
        S("CZN-PAT-EFF-001-US", "cardiozen", "claim", "Efficacy in plain words (US patient)", "US",
          {"patient": ("research", "comparison")}, EMAIL_WEB,
          "<p>In a large study, people taking Cardiozen were less likely to go to hospital "
          "for heart failure than people taking a placebo.<sup>1</sup></p>",
          cites=("REF-ZENHF",), requires=("CZN-ISI-US",)),
        S("CZN-PAT-BODY-COST-US", "cardiozen", "body", "Savings card (US patient)", "US",
          {"patient": ("comparison", "purchase")}, EMAIL_WEB,
          "<p>Eligible commercially insured patients may pay as little as $10 a month with "
          "the Cardiozen savings card.</p>", purpose="patient_support",
          requires=("CZN-ISI-US",)),
        S("CZN-PAT-CTA-PHARM-US", "cardiozen", "cta", "CTA: ask your pharmacist (US patient)",
          "US", {"patient": ("purchase",)}, ("email", "portal", "sms"),
          "<p>Ask your pharmacist about Cardiozen.</p>", requires=("CZN-ISI-US",)),
        S("CZN-PAT-SMS-REMIND-US", "cardiozen", "body", "SMS: daily dose reminder (US patient)",
          "US", {"patient": ("use",)}, ("sms",),
          "<p>Hi {{ recipient.first_name }}, time for today's Cardiozen tablet. Reply STOP to "
          "opt out.</p>", purpose="patient_support", fallbacks={"first_name": "there"}),
        S("CZN-PAT-BODY-TIPS-US", "cardiozen", "body", "Everyday tips (US patient)", "US",
          {"patient": ("use",)}, EMAIL_WEB,
          "<p>Take your tablet at the same time each day, weigh yourself every morning and "
          "tell your care team about sudden weight gain.</p>", purpose="patient_support"),
        S("CZN-PAT-BODY-REFILL-US", "cardiozen", "body", "Refill reminder (US patient)", "US",
          {"patient": ("loyalty",)}, ("email", "sms"),
          "<p>{{ recipient.first_name }}, your Cardiozen refill is due soon.</p>",
          purpose="patient_support", fallbacks={"first_name": "Hello"}, state="in_review"),
        # --- US pharmacist ---------------------------------------------------------------
        S("CZN-PHM-SUBJ-AWR-US", "cardiozen", "subject", "Subject: intro email (US pharmacist)",
          "US", {"pharmacist": ("awareness",)}, ("email",),
          subject="Cardiozen is coming to {{ recipient.practice_name }}",
          fallbacks={"practice_name": "your pharmacy"}),
        S("CZN-PHM-BODY-INTRO-US", "cardiozen", "body", "Product introduction (US pharmacist)",
          "US", {"pharmacist": ("awareness",)}, ("email", "portal", "rep"),
          "<p>Cardiozen (zenocardin) 5 mg and 10 mg tablets for adults with HFrEF, available "
          "through all major wholesalers.</p>", requires=("CZN-ISI-US",)),
        S("CZN-PHM-BODY-FAQ-US", "cardiozen", "body", "Pharmacist FAQ (US)", "US",
          {"pharmacist": ("learning",)}, EMAIL_WEB,
          "<p><strong>Can it be split?</strong> No, swallow whole. <strong>Interactions?</strong> "
          "Avoid strong CYP3A4 inhibitors.</p>", cites=("REF-PI-US",),
          requires=("CZN-ISI-US",)),
        S("CZN-PHM-BODY-TALK-US", "cardiozen", "body", "Talking points (US pharmacist)", "US",
          {"pharmacist": ("evaluation",)}, ("portal", "rep"),
          "<p>Three points for the counter: once daily, with or without food, and a "
          "potassium check at week 2.</p>", requires=("CZN-ISI-US",)),
        S("CZN-PHM-BODY-COUNTER-US", "cardiozen", "body", "Counter card (US pharmacist)", "US",
          {"pharmacist": ("recommendation",)}, ("portal", "rep"),
          "<p>Counter card: remind patients to weigh themselves daily and keep their "
          "potassium checks.</p>", purpose="patient_support"),
        S("CZN-PHM-BODY-FEEDBACK-US", "cardiozen", "body", "Feedback survey (US pharmacist)", "US",
          {"pharmacist": ("feedback",)}, ("email",),
          "<p>{{ recipient.title }} {{ recipient.last_name }}, tell us how your customers "
          "get on with Cardiozen: a 3-minute survey.</p>",
          fallbacks={"title": "Dear", "last_name": "pharmacist"}, state="draft"),
        S("CZN-PHM-BODY-TOOLKIT-US", "cardiozen", "body", "Pharmacy toolkit (US pharmacist)",
          "US", {"pharmacist": ("trusted_toolkit",)}, EMAIL_WEB,
          "<p>Download the Cardiozen pharmacy toolkit: counselling checklist, counter cards "
          "and the savings card explainer.</p>", purpose="patient_support"),
        S("CZN-PHM-CTA-OFFER-US", "cardiozen", "cta", "CTA: launch stocking offer (US, expired)",
          "US", {"pharmacist": ("evaluation",)}, ("email", "rep"),
          "<p>Launch offer for pharmacies stocking Cardiozen by 31 March 2025.</p>",
          state="expired"),
        # --- DE HCP ----------------------------------------------------------------------
        S("CZN-HCP-SUBJ-AWR-DE", "cardiozen", "subject", "Betreff: Awareness-Mail (DE HCP)", "DE",
          {"hcp": ("awareness",)}, ("email",),
          subject="{{ recipient.title }} {{ recipient.last_name }}, neue Option bei HFrEF",
          fallbacks={"title": "Sehr geehrte", "last_name": "Fachkreise"}),
        S("CZN-HCP-PRE-AWR-DE", "cardiozen", "preheader", "Preheader: Awareness-Mail (DE HCP)",
          "DE", {"hcp": ("awareness",)}, ("email",),
          "<p>Cardiozen (Zenocardin) einmal täglich: was es ist und für wen.</p>"),
        S("CZN-HCP-HEAD-AWR-DE", "cardiozen", "headline", "Überschrift: Anrede (DE HCP)", "DE",
          {"hcp": ("awareness", "interest", "trial")}, EMAIL_WEB,
          "<h1>Guten Tag {{ recipient.title }} {{ recipient.last_name }},</h1>",
          fallbacks={"title": "liebe", "last_name": "Kolleginnen und Kollegen"}),
        S("CZN-HCP-BODY-MOA-DE", "cardiozen", "body", "Wirkmechanismus (DE HCP)", "DE",
          {"hcp": ("awareness", "interest")}, ("email", "portal", "rep"),
          "<p>Cardiozen (Zenocardin) ist ein oraler Modulator des kardialen "
          "Energiestoffwechsels zur einmal täglichen Einnahme.</p>",
          cites=("REF-SMPC-DE",), requires=("CZN-ISI-DE",)),
        S("CZN-EFF-001-DE", "cardiozen", "claim", "Wirksamkeit: primärer Endpunkt (DE)", "DE",
          {"hcp": ("interest", "trial")}, PROMO_CHANNELS,
          "<p>In ZEN-HF senkte Cardiozen das Risiko für kardiovaskulären Tod oder erste "
          "Hospitalisierung wegen Herzinsuffizienz um <strong>26 %</strong> gegenüber "
          "Placebo.<sup>1</sup></p>",
          cites=("REF-ZENHF", "REF-SMPC-DE"), requires=("CZN-ISI-DE",),
          specialties=("cardiology",)),
        S("CZN-EFF-002-DE", "cardiozen", "claim", "Wirksamkeit: Lebensqualität (DE)", "DE",
          {"hcp": ("interest", "adoption")}, PROMO_CHANNELS,
          "<p>Unter Cardiozen verbesserte sich der KCCQ-Score nach 8 Monaten um 5,1 Punkte "
          "stärker als unter Placebo.<sup>2</sup></p>",
          cites=("REF-ZENHF-QOL",), requires=("CZN-ISI-DE",)),
        S("CZN-DOSE-DE", "cardiozen", "dosing", "Dosierung (DE)", "DE",
          {"hcp": ("trial", "adoption"), "pharmacist": ("learning",)}, PROMO_CHANNELS,
          "<table><thead><tr><th>Woche</th><th>Dosis</th></tr></thead><tbody>"
          "<tr><td>1–2</td><td>5 mg einmal täglich</td></tr>"
          "<tr><td>ab 3</td><td>10 mg einmal täglich</td></tr></tbody></table>",
          cites=("REF-SMPC-DE",), requires=("CZN-ISI-DE",)),
        S("CZN-HCP-CTA-WEBINAR-DE", "cardiozen", "cta", "CTA: Webinar-Anmeldung (DE)", "DE",
          {"hcp": ("awareness", "interest")}, ("email", "portal", "webinar"),
          '<p><a href="https://example.com/cardiozen/de/webinar">Jetzt zum ZEN-HF-Webinar '
          'anmelden</a></p>'),
        S("CZN-HCP-BODY-MONITOR-DE", "cardiozen", "body", "Verlaufskontrolle (DE HCP)", "DE",
          {"hcp": ("ongoing_use",)}, EMAIL_WEB,
          "<p>Serumkalium und eGFR zu Beginn, in Woche 2 und danach alle 3 Monate "
          "kontrollieren.</p>", cites=("REF-SMPC-DE",), requires=("CZN-ISI-DE",),
          state="in_review"),
        # --- DE patient (disease awareness only: no Rx promotion to the public in DE) ----
        S("CZN-PAT-SUBJ-AWR-DE", "cardiozen", "subject", "Betreff: Herzschwäche erkennen (DE Patient)",
          "DE", {"patient": ("awareness",)}, ("email",), purpose="patient_support",
          subject="{{ recipient.first_name }}, kennen Sie die Zeichen einer Herzschwäche?",
          fallbacks={"first_name": "Hallo"}),
        S("CZN-PAT-BODY-SYMPTOMS-DE", "cardiozen", "body", "Symptome der Herzschwäche (DE Patient)",
          "DE", {"patient": ("awareness", "research")}, EMAIL_WEB,
          "<p>Atemnot, geschwollene Knöchel und Müdigkeit können Zeichen einer Herzschwäche "
          "sein. Sprechen Sie mit Ihrer Ärztin oder Ihrem Arzt.</p>",
          purpose="patient_support"),
        # --- DE pharmacist ---------------------------------------------------------------
        S("CZN-PHM-BODY-FAQ-DE", "cardiozen", "body", "Apotheken-FAQ (DE)", "DE",
          {"pharmacist": ("learning",)}, EMAIL_WEB,
          "<p><strong>Teilbar?</strong> Nein, unzerkaut schlucken. <strong>Wechselwirkungen?"
          "</strong> Keine starken CYP3A4-Inhibitoren.</p>",
          cites=("REF-SMPC-DE",), requires=("CZN-ISI-DE",)),
        # --- Respivane (second brand, author.respivane) ----------------------------------
        S("RSP-ISI-US", "respivane", "isi", "Important Safety Information (US)", "US",
          {"hcp": ALL, "patient": ALL}, PROMO_CHANNELS,
          "<h3>Important Safety Information</h3><p>Respivane is not for acute bronchospasm. "
          "Paradoxical bronchospasm may occur. Most common adverse reactions: "
          "nasopharyngitis, headache and cough.</p>", cites=("REF-PI-US",)),
        S("RSP-HCP-SUBJ-AWR-US", "respivane", "subject", "Subject: awareness email (US HCP)", "US",
          {"hcp": ("awareness",)}, ("email",),
          subject="{{ recipient.title }} {{ recipient.last_name }}, once-daily maintenance for COPD",
          fallbacks=HCP_GREETING),
        S("RSP-HCP-HEAD-AWR-US", "respivane", "headline", "Headline: greeting (US HCP)", "US",
          {"hcp": ("awareness", "interest")}, EMAIL_WEB,
          "<h1>Dear {{ recipient.title }} {{ recipient.last_name }},</h1>",
          fallbacks=HCP_GREETING),
        S("RSP-EFF-001-US", "respivane", "claim", "Efficacy: FEV1 (US)", "US",
          {"hcp": ("interest",)}, PROMO_CHANNELS,
          "<p>Respivane improved trough FEV1 by 112 mL versus placebo at week 12.<sup>1</sup></p>",
          cites=("REF-BREATHE", "REF-PI-US"), requires=("RSP-ISI-US",)),
        S("RSP-CTA-SAMPLES-US", "respivane", "cta", "CTA: request samples (US)", "US",
          {"hcp": ("trial",)}, ("email", "rep"),
          '<p><a href="https://example.com/respivane/samples">Request Respivane samples</a></p>',
          state="draft"),
    ]


MODULE_SPECS: list[ModuleSpec] = _specs()
TARGET_STATES: dict[str, str] = {spec.code: spec.state for spec in MODULE_SPECS}
AUTHOR_OF_BRAND = {"cardiozen": "author.cardiozen", "respivane": "author.respivane"}
DEMO_IMAGE_TITLE = "Cardiozen mechanism diagram"


# --- Loading ----------------------------------------------------------------------------


def _ensure_taxonomy() -> None:
    """The default taxonomy of migration 0002 (get_or_create, so edits survive).

    Normally already there; a database flushed since migrating (e.g. by a transactional
    test) has lost it, and the demo should not depend on that.
    """
    from importlib import import_module

    from django.apps import apps

    import_module("content.migrations.0002_seed_taxonomy").seed(apps, None)


def _ensure_users(out) -> dict[str, object]:
    User = get_user_model()
    users = {}
    for spec in DEMO_USERS:
        user, created = User.objects.get_or_create(
            username=spec.username,
            defaults=dict(first_name=spec.first_name, last_name=spec.last_name,
                          email=f"{spec.username}@example.invalid", is_staff=True,
                          is_superuser=spec.superuser),
        )
        if created or not user.check_password(spec.password):
            user.set_password(spec.password)
            user.save()
        for name in spec.groups:
            user.groups.add(Group.objects.get_or_create(name=name)[0])
        users[spec.username] = user
    return users


def _ensure_brands(users) -> dict[str, Brand]:
    brands = {}
    for slug, fields in BRANDS.items():
        brand = Brand.objects.filter(slug=slug).first()
        if brand is None:
            brand = Brand(slug=slug, **fields)
            brand._history_user = users["admin"]
            brand.save()
        brands[slug] = brand
    for spec in DEMO_USERS:
        for slug in spec.brands:
            grant_author_brand(users[spec.username], brands[slug])
    return brands


def _ensure_references(brands, users) -> dict[tuple[str, str], Reference]:
    refs = {}
    for slug, rows in REFERENCES.items():
        for code, source, citation, section in rows:
            ref = Reference.objects.filter(brand=brands[slug], code=code).first()
            if ref is None:
                ref = Reference(brand=brands[slug], code=code, source=source,
                                citation=citation, label_section=section)
                ref._history_user = users[AUTHOR_OF_BRAND[slug]]
                ref.save()
            refs[(slug, code)] = ref
    return refs


def demo_image_bytes() -> bytes:
    """A 1200 × 600 PNG diagram drawn with Pillow (no binary files in the repository)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (1200, 600), (246, 248, 252))
    draw = ImageDraw.Draw(image)
    draw.ellipse((120, 120, 480, 480), fill=(200, 40, 60), outline=(120, 10, 30), width=8)
    draw.ellipse((200, 200, 400, 400), fill=(240, 120, 130))
    for i, x in enumerate((600, 760, 920)):
        draw.rounded_rectangle((x, 220, x + 130, 380), radius=20, fill=(40, 90 + 40 * i, 160))
        draw.line((x - 50, 300, x, 300), fill=(60, 60, 60), width=6)
    draw.text((600, 440), "Cardiozen: myocardial energetics (illustrative)", fill=(30, 30, 30))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _ensure_demo_asset(brand, user) -> Asset:
    from .assets import store_asset

    asset = Asset.objects.filter(brand=brand, title=DEMO_IMAGE_TITLE).first()
    if asset is None:
        asset = store_asset(
            brand=brand, title=DEMO_IMAGE_TITLE, uploaded_by=user,
            alt_text="Diagram: a heart with three boxes showing how zenocardin improves "
                     "the energy use of the heart muscle",
            upload=ContentFile(demo_image_bytes(), name="cardiozen-moa.png"),
        )
    return asset


def _stages_for(audience: Audience, wanted) -> list[Stage]:
    stages = list(audience.stages.all())
    if wanted == ALL:
        return stages
    by_code = {s.code: s for s in stages}
    return [by_code[code] for code in wanted]


def _create_first_version(spec: ModuleSpec, module, author, refs, brand_slug, asset) -> None:
    locale = Locale.objects.get(code=MARKET_LOCALE[spec.market])
    version = ModuleVersion(
        module=module, locale=locale, subject=spec.subject, body_html=spec.body,
        token_fallbacks=dict(spec.fallbacks), created_by=author,
        asset=asset if spec.image else None,
    )
    version._history_user = author
    version.save()
    audiences = [Audience.objects.get(code=code) for code in spec.audiences]
    stages = []
    for audience in audiences:
        stages += _stages_for(audience, spec.audiences[audience.code])
    set_tags(
        version,
        audiences=audiences,
        stages=stages,
        specialties=Specialty.objects.filter(audience__code="hcp", code__in=spec.specialties),
        jurisdictions=[Jurisdiction.objects.get(code=spec.market)],
        channels=Channel.objects.filter(code__in=spec.channels),
        citations=[refs[(brand_slug, code)] for code in spec.cites],
    )

@transaction.atomic
def load(stdout=None) -> None:
    """Create (or complete) the demo content; safe to run any number of times."""
    out = stdout or sys.stdout
    _ensure_taxonomy()
    users = _ensure_users(out)
    brands = _ensure_brands(users)
    refs = _ensure_references(brands, users)
    asset = _ensure_demo_asset(brands["cardiozen"], users["author.cardiozen"])
    modules: dict[str, ContentModule] = {}
    created = 0
    for spec in MODULE_SPECS:
        author = users[AUTHOR_OF_BRAND[spec.brand]]
        module = ContentModule.objects.filter(code=spec.code).first()
        if module is None:
            module = ContentModule(code=spec.code, brand=brands[spec.brand], kind=spec.kind,
                                   purpose=spec.purpose, title=spec.title, owner=author)
            module._history_user = author
            module.save()
        if not module.versions.exists():
            _create_first_version(spec, module, author, refs, spec.brand, asset)
            created += 1
        modules[spec.code] = module
    for spec in MODULE_SPECS:
        module = modules[spec.code]
        wanted_requires = [modules[c] for c in spec.requires]
        missing = [m for m in wanted_requires if not module.requires.filter(pk=m.pk).exists()]
        if missing:
            module.requires.add(*missing)
        for code in spec.excludes:
            if not module.excludes.filter(pk=modules[code].pk).exists():
                module.excludes.add(modules[code])
    out.write(f"content: {len(MODULE_SPECS)} demo modules ({created} new versions), "
              f"{len(refs)} references, {len(brands)} brands\n")


def print_logins(stdout=None) -> None:
    out = stdout or sys.stdout
    out.write("\nDemo logins (http://127.0.0.1:8000/admin/ and /review/):\n")
    for spec in DEMO_USERS:
        out.write(f"  {spec.username:<18} {spec.password:<20} {spec.role}\n")


__all__ = ["DEMO_USERS", "MODULE_SPECS", "TARGET_STATES", "load", "print_logins"]
