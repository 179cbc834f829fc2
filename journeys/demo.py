"""Demo journeys for Cardiozen, built from the content demo's module codes.

Three journeys (physician new to therapy, patient, pharmacist) in the US market, with the
adaptive paths of DOMAIN.md. Called by `load_demo` after the content and approvals demos;
idempotent: journeys, stages, steps and transitions are matched on their natural keys, and
a step's slots are created only when it has none (so admin edits survive a reload).
"""

from __future__ import annotations

import sys

from django.db import transaction

from content.models import Audience, Brand, Channel, ContentModule, Jurisdiction, Locale
from content.models import Stage as AudienceStage

from .models import Journey, Slot, Stage, Step, Transition

# Stage insights: (needs, emotions, pain points, opportunities).
HCP_STAGES = {
    "awareness": ("A quick sense of what is new for HFrEF and whether it matters to my patients.",
                  "Curious but sceptical; little time.",
                  "Too many launches; promotional noise; no time for long reads.",
                  "Short mechanism story at congress and in a crisp email."),
    "interest": ("Hard outcomes data, subgroups like mine, dosing.",
                 "Interested, cautious about safety.",
                 "Data scattered across papers; unclear how it compares.",
                 "Efficacy email with references; portal micro-content for busy readers."),
    "trial": ("Practical start: which patients, titration, samples, support.",
              "Hopeful, wary of the first side effects.",
              "Rep visits at bad times; little peer experience.",
              "Rep detail with dosing, or on-demand video case studies."),
    "adoption": ("Patient materials, support programme, reimbursement help.",
                 "Growing confidence.",
                 "Admin burden; patients' questions about cost.",
                 "Patient-support email with hotline and materials."),
    "ongoing_use": ("Monitoring guidance (potassium, eGFR) and clinical updates.",
                    "Routine; alert to safety signals.",
                    "Keeping up with label updates.",
                    "Monitoring updates; medical information on request."),
    "advocacy": ("Ways to share experience and join research.",
                 "Pride, professional reputation.",
                 "Few platforms that are not promotional.",
                 "Invitations to advisory boards and registries."),
}
PATIENT_STAGES = {
    "awareness": ("Understand symptoms: breathlessness, swelling, fatigue.",
                  "Worried, confused.", "Medical jargon; fear of the diagnosis.",
                  "Plain-language symptom guide."),
    "research": ("How does the medicine work, is it safe?", "Anxious, hopeful.",
                 "Contradictory information online.", "Portal page on how it works, with safety."),
    "comparison": ("Cost, coverage, what the pharmacist says.", "Price-sensitive.",
                   "Unclear coverage; co-pay surprises.", "Savings card and coverage explainer."),
    "purchase": ("Fill the prescription without hassle.", "Relieved once started.",
                 "Pharmacy runs out; forgets to refill.", "SMS reminder to pick up."),
    "use": ("Daily tips, side-effect advice, support line.", "Settling in; occasional doubt.",
            "Dizziness at first; remembering doses.", "Usage tips email; refill reminders."),
    "loyalty": ("Keep going; share with others.", "Confident.", "Refill fatigue.",
                "Support programme milestones."),
}
PHARMACIST_STAGES = {
    "awareness": ("Know the new product exists and who it is for.", "Busy, neutral.",
                  "Crowded counter; reps with little time.", "Rep visit or chain newsletter."),
    "learning": ("Short training and an FAQ.", "Wants to feel competent.",
                 "No time for long modules.", "FAQ email."),
    "evaluation": ("Talking points and what's in it for the pharmacy.", "Pragmatic.",
                   "Conflicting priorities from chains.", "Portal talking points."),
    "recommendation": ("Counter prompts and patient cards.", "Helpful.",
                       "Patients ask about cost and side effects.", "Counter card on the portal."),
    "feedback": ("Tell the brand what patients say.", "Engaged when heard.",
                 "Feedback goes nowhere.", "Feedback request email."),
    "trusted_toolkit": ("Materials to reuse.", "Loyal.", "Outdated leaflets.",
                        "A toolkit email kept current."),
}


def _steps_hcp():
    # key, stage, name, channel, owner, purpose, layout, timing, decision, modules
    return [
        ("awareness-email", "awareness", "Welcome email: how zenocardin works", "email",
         "marketing", "promotional", "email", "Day 0, after opt-in at the congress booth",
         "Is this new option worth a look?",
         ["CZN-HCP-SUBJ-AWR-US", "CZN-HCP-PRE-AWR-US", "CZN-HCP-HEAD-AWR-US",
          "CZN-IMG-MOA-US", "CZN-HCP-BODY-MOA-US", "CZN-ISI-US"]),
        ("congress-booth", "awareness", "Congress booth handout", "congress", "marketing",
         "promotional", "portal", "At the ESC/HFSA congress", "Stop at the booth?",
         ["CZN-HCP-CTA-CONGRESS-US", "CZN-ISI-US"]),
        ("efficacy-email", "interest", "Efficacy data email after deep MoA reading", "email",
         "marketing", "promotional", "email", "2 days after the MoA deep-dive",
         "Is the evidence strong enough for my patients?",
         ["CZN-HCP-SUBJ-INT-US", "CZN-EFF-001-US", "CZN-EFF-002-US", "CZN-DOSE-US",
          "CZN-HCP-CTA-WEBINAR-US", "CZN-ISI-US", "CZN-REFS-US"]),
        ("portal-micro", "interest", "Portal micro-content: one key result", "portal",
         "marketing", "promotional", "portal", "When two emails were ignored",
         "Can I get the point in 30 seconds?",
         [("claim", 1), "CZN-ISI-US", "CZN-REFS-US"]),
        ("rep-visit", "trial", "Rep detail: starting and titrating", "rep", "sales",
         "promotional", "portal", "Week 3", "Which patients do I start first?",
         ["CZN-EFF-002-US", "CZN-DOSE-US", "CZN-HCP-CTA-SAMPLES-US", "CZN-ISI-US"]),
        ("video-cases", "trial", "On-demand video case studies", "portal", "medical_affairs",
         "promotional", "portal", "After two declined rep visits",
         "How did it go for patients like mine?",
         ["CZN-HCP-BODY-CASE-US", "CZN-ISI-US"]),
        ("patient-support-email", "adoption", "Patient support programme email", "email",
         "patient_support", "promotional", "email", "After the first prescriptions",
         "Can my patients get help with cost and questions?",
         ["CZN-HCP-SUBJ-INT-US", "CZN-HCP-BODY-SUPPORT-US", "CZN-ISI-US"]),
        ("monitoring-update", "ongoing_use", "Monitoring update: potassium and eGFR", "email",
         "medical_affairs", "promotional", "email", "Quarterly",
         "What do I check and when?",
         ["CZN-HCP-SUBJ-INT-US", "CZN-HCP-BODY-MONITOR-US", "CZN-ISI-US", "CZN-REFS-US"]),
        ("medical-info", "ongoing_use", "Medical information: renal subgroup", "portal",
         "medical_affairs", "medical", "portal", "On request", "Is it safe in CKD stage 3?",
         ["CZN-MED-001-US"]),
        ("advocacy-invite", "advocacy", "Invitation to the HF registry", "email", "marketing",
         "promotional", "email", "After 12 months of use", "Do I want to share my experience?",
         ["CZN-HCP-BODY-ADVOCACY-US", "CZN-ISI-US"]),
    ]


def _transitions_hcp():
    # from, event, threshold, days, to (None = pause), label
    return [
        ("awareness-email", "clicked", 1, None, "efficacy-email", "read the MoA in depth"),
        ("awareness-email", "ignored", 2, None, "portal-micro", "ignored 2 emails"),
        ("efficacy-email", "ignored", 2, None, "portal-micro", "ignored 2 emails"),
        ("efficacy-email", "clicked", 1, None, "rep-visit", "asked for a visit"),
        ("portal-micro", "clicked", 1, None, "rep-visit", "wants to know more"),
        ("rep-visit", "declined", 2, None, "video-cases", "declined 2 rep visits"),
        ("rep-visit", "attended", 1, None, "patient-support-email", "attended"),
        ("video-cases", "clicked", 1, None, "patient-support-email", "watched a case"),
        ("patient-support-email", "opened", 1, None, "monitoring-update", "opened"),
        ("monitoring-update", "downloaded", 1, None, "medical-info", "downloaded the guide"),
        ("monitoring-update", "opened", 3, None, "advocacy-invite", "opened 3 updates"),
        ("awareness-email", "no_engagement_for", 1, 30, None, "no engagement for 30 days"),
        ("efficacy-email", "no_engagement_for", 1, 30, None, "no engagement for 30 days"),
        ("portal-micro", "no_engagement_for", 1, 30, None, "no engagement for 30 days"),
    ]


def _steps_patient():
    return [
        ("symptoms-email", "awareness", "Symptoms explained email", "email", "marketing",
         "promotional", "email", "Day 0 after sign-up", "Should I talk to my doctor?",
         ["CZN-PAT-SUBJ-AWR-US", "CZN-PAT-PRE-AWR-US", "CZN-PAT-HEAD-AWR-US",
          "CZN-PAT-BODY-SYMPTOMS-US", "CZN-ISI-US"]),
        ("how-it-works", "research", "How Cardiozen works (portal)", "portal", "marketing",
         "promotional", "portal", "When the email is clicked or ignored twice",
         "Is it safe for me?",
         ["CZN-PAT-BODY-HOW-US", "CZN-PAT-EFF-001-US", "CZN-ISI-US"]),
        ("cost-portal", "comparison", "Cost and savings card page", "portal", "patient_support",
         "promotional", "portal", "After reading how it works", "Can I afford it?",
         ["CZN-PAT-BODY-COST-US", "CZN-PAT-CTA-PHARM-US", "CZN-ISI-US"]),
        ("pickup-sms", "purchase", "Pick-up reminder SMS", "sms", "patient_support",
         "patient_support", "portal", "When the savings card is downloaded",
         "Pick it up today?", ["CZN-PAT-SMS-REMIND-US"]),
        ("tips-email", "use", "Daily-use tips email", "email", "patient_support",
         "patient_support", "email", "Week 1 of treatment", "Keep taking it?",
         ["CZN-PAT-BODY-TIPS-US"]),
        ("refill-reminder", "loyalty", "Refill reminder", "email", "patient_support",
         "patient_support", "email", "Every 28 days", "Refill on time?",
         ["CZN-PAT-BODY-REFILL-US"]),
    ]


def _transitions_patient():
    return [
        ("symptoms-email", "clicked", 1, None, "how-it-works", "read more"),
        ("symptoms-email", "ignored", 2, None, "how-it-works", "ignored 2 emails"),
        ("how-it-works", "clicked", 1, None, "cost-portal", "asked about cost"),
        ("cost-portal", "downloaded", 1, None, "pickup-sms", "downloaded savings card"),
        ("pickup-sms", "opened", 1, None, "tips-email", "picked up"),
        ("tips-email", "opened", 2, None, "refill-reminder", "opened 2 tips"),
        ("tips-email", "no_engagement_for", 1, 30, None, "no engagement for 30 days"),
    ]


def _steps_pharmacist():
    return [
        ("rep-intro", "awareness", "Rep introduction at the pharmacy", "rep", "sales",
         "promotional", "portal", "Launch month", "Stock it?",
         ["CZN-PHM-BODY-INTRO-US", "CZN-ISI-US"]),
        ("intro-email", "awareness", "Chain newsletter feature", "email", "marketing",
         "promotional", "email", "Launch month", "Read about it?",
         ["CZN-PHM-SUBJ-AWR-US", "CZN-PHM-BODY-INTRO-US", "CZN-ISI-US"]),
        ("faq-email", "learning", "Pharmacist FAQ email", "email", "medical_affairs",
         "promotional", "email", "One week later", "Can I answer patients' questions?",
         ["CZN-PHM-SUBJ-AWR-US", "CZN-PHM-BODY-FAQ-US", "CZN-ISI-US"]),
        ("talking-points", "evaluation", "Counselling talking points (portal)", "portal",
         "sales", "promotional", "portal", "After the FAQ", "Recommend it at the counter?",
         ["CZN-PHM-BODY-TALK-US", "CZN-ISI-US"]),
        ("offer-email", "evaluation", "Launch offer email", "email", "sales", "promotional",
         "email", "Launch quarter only", "Order now?",
         ["CZN-PHM-SUBJ-AWR-US", "CZN-PHM-CTA-OFFER-US", "CZN-ISI-US"]),
        ("counter-card", "recommendation", "Counter card for patients", "portal",
         "patient_support", "patient_support", "portal", "Ongoing",
         "What do I hand the patient?", ["CZN-PHM-BODY-COUNTER-US"]),
        ("feedback-email", "feedback", "What do your customers say?", "email", "marketing",
         "promotional", "email", "After 3 months", "Share feedback?",
         ["CZN-PHM-BODY-FEEDBACK-US"]),
        ("toolkit-email", "trusted_toolkit", "Pharmacist toolkit", "email", "patient_support",
         "patient_support", "email", "Every 6 months", "Keep using our materials?",
         ["CZN-PHM-BODY-TOOLKIT-US"]),
    ]


def _transitions_pharmacist():
    return [
        ("rep-intro", "declined", 2, None, "faq-email", "declined 2 rep visits"),
        ("intro-email", "ignored", 2, None, "talking-points", "ignored 2 emails"),
        ("intro-email", "clicked", 1, None, "faq-email", "read the feature"),
        ("faq-email", "clicked", 1, None, "talking-points", "wants talking points"),
        ("talking-points", "opened", 1, None, "counter-card", "used the talking points"),
        ("counter-card", "downloaded", 1, None, "feedback-email", "downloaded cards"),
        ("feedback-email", "clicked", 1, None, "toolkit-email", "gave feedback"),
        ("faq-email", "no_engagement_for", 1, 30, None, "no engagement for 30 days"),
    ]


JOURNEYS = [
    {"slug": "cardiozen-hcp-new-to-therapy", "name": "Cardiozen: physician new to therapy",
     "audience": "hcp", "stages": HCP_STAGES, "steps": _steps_hcp, "transitions": _transitions_hcp,
     "description": "A cardiologist meets zenocardin at a congress and, step by step, starts, "
                    "adopts and advocates it. Adaptive paths follow what they read and ignore."},
    {"slug": "cardiozen-patient", "name": "Cardiozen: patient with heart failure",
     "audience": "patient", "stages": PATIENT_STAGES, "steps": _steps_patient,
     "transitions": _transitions_patient,
     "description": "From first symptoms to the routine of daily treatment and refills."},
    {"slug": "cardiozen-pharmacist", "name": "Cardiozen: community pharmacist",
     "audience": "pharmacist", "stages": PHARMACIST_STAGES, "steps": _steps_pharmacist,
     "transitions": _transitions_pharmacist,
     "description": "From the rep's first visit to a trusted counter toolkit."},
]


def _say(stdout, message):
    (stdout or sys.stdout).write(message + "\n")


@transaction.atomic
def load(stdout=None) -> None:
    """Create or complete the three demo journeys (idempotent)."""
    brand = Brand.objects.filter(slug="cardiozen").first()
    if brand is None:
        _say(stdout, "journeys demo: skipped (the content demo's Cardiozen brand is missing)")
        return
    us = Jurisdiction.objects.get(code="US")
    en = Locale.objects.get(code="en")
    channels = {c.code: c for c in Channel.objects.all()}
    modules = {m.code: m for m in ContentModule.objects.filter(brand=brand)}
    for spec in JOURNEYS:
        audience = Audience.objects.get(code=spec["audience"])
        journey, created = Journey.objects.get_or_create(
            slug=spec["slug"],
            defaults={"name": spec["name"], "brand": brand, "audience": audience, "locale": en,
                      "description": spec["description"]})
        if created:
            journey.jurisdictions.set([us])
        stages = {}
        for order, (code, insight) in enumerate(spec["stages"].items(), start=1):
            audience_stage = AudienceStage.objects.get(audience=audience, code=code)
            stage, _ = Stage.objects.get_or_create(
                journey=journey, audience_stage=audience_stage,
                defaults={"order": order, "needs": insight[0], "emotions": insight[1],
                          "pain_points": insight[2], "opportunities": insight[3]})
            stages[code] = stage
        steps = {}
        per_stage: dict[str, int] = {}
        missing = []
        for (key, stage_code, name, channel, owner, purpose, layout, timing, decision,
             slot_specs) in spec["steps"]():
            per_stage[stage_code] = per_stage.get(stage_code, 0) + 1
            step, _ = Step.objects.get_or_create(
                journey=journey, key=key,
                defaults={"stage": stages[stage_code], "name": name, "channel": channels[channel],
                          "owner_function": owner, "purpose": purpose, "layout": layout,
                          "timing": timing, "decision_moment": decision,
                          "order": per_stage[stage_code],
                          "delay_days": 0})
            steps[key] = step
            if not step.slots.exists():
                for order, item in enumerate(slot_specs):
                    if isinstance(item, tuple):
                        kind, priority = item
                        Slot.objects.create(step=step, order=order, selector_kind=kind,
                                            priority=priority)
                    elif item in modules:
                        Slot.objects.create(step=step, order=order, module=modules[item])
                    else:
                        missing.append(item)
        for from_key, event, threshold, days, to_key, label in spec["transitions"]():
            Transition.objects.get_or_create(
                from_step=steps[from_key], event_type=event, threshold=threshold, days=days,
                to_step=steps[to_key] if to_key else None, pause=to_key is None,
                defaults={"label": label})
        note = f" (modules not found: {', '.join(sorted(set(missing)))})" if missing else ""
        _say(stdout, f"journeys demo: {journey.slug} with {len(steps)} steps{note}")
