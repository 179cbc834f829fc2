"""The default taxonomy of DOMAIN.md (audiences and their stages, HCP specialties, markets,
channels, locales) and the role groups.

Migration 0002 seeds it; the demo loader re-seeds it after a flush. Every row is created
with get_or_create on its natural key, so seeding again duplicates nothing and keeps names
an editor changed in the admin.
"""

from .permissions import AUTHORS_GROUP, REVIEWER_GROUPS

AUDIENCES = {
    "hcp": ("Physician / specialist (HCP)", [
        ("awareness", "Awareness", "First hears of the drug: portal, newsletter, congress booth."),
        ("interest", "Interest", "Visits the site, reviews clinical data, asks questions."),
        ("trial", "Trial", "Tries it with a few patients: samples, cases, rep support."),
        ("adoption", "Adoption", "Prescribes regularly: patient materials, tracking tools, hotline."),
        ("ongoing_use", "Ongoing use", "Monitoring and clinical updates."),
        ("advocacy", "Advocacy", "Shares with peers, joins research."),
    ]),
    "patient": ("Patient", [
        ("awareness", "Awareness", "Symptoms, advertising, packaging."),
        ("research", "Research", "How does it work, is it safe?"),
        ("comparison", "Comparison", "Ingredients, price, pharmacist advice."),
        ("purchase", "Purchase", "Fills the prescription."),
        ("use", "Use", "Reminders, usage tips, support."),
        ("loyalty", "Loyalty", "Repurchase, reviews, referral."),
    ]),
    "pharmacist": ("Pharmacist", [
        ("awareness", "Awareness", "Rep visit, chain newsletter."),
        ("learning", "Learning", "Short training, FAQ."),
        ("evaluation", "Evaluation", "Talking points, incentives."),
        ("recommendation", "Recommendation", "Counter prompts, cards."),
        ("feedback", "Feedback", "Did it work for customers?"),
        ("trusted_toolkit", "Trusted toolkit", "Materials used again and again."),
    ]),
    "payer": ("Hospital buyer / payer / access", [
        ("awareness", "Awareness", "First contact with the product's value story."),
        ("evidence_review", "Evidence review", "Clinical and economic evidence."),
        ("access_planning", "Access planning", "Formulary, contracts, reimbursement."),
        ("onboarding", "Onboarding", "Enrollment, coverage checks, training."),
        ("long_term_engagement", "Long-term engagement", "Outcomes and contract reviews."),
    ]),
}

HCP_SPECIALTIES = [
    ("cardiology", "Cardiology"),
    ("general_practice", "General practice"),
    ("nephrology", "Nephrology"),
    ("internal_medicine", "Internal medicine"),
    ("endocrinology", "Endocrinology"),
]

# Markets. Their legal text is each brand's approved footer module, not seeded here.
JURISDICTIONS = [
    ("US", "United States"),
    ("DE", "Germany"),
    ("GB", "United Kingdom"),
    ("FR", "France"),
]

CHANNELS = [
    ("email", "Email"),
    ("portal", "Portal page"),
    ("rep", "Rep visit / CLM detail"),
    ("sms", "SMS"),
    ("webinar", "Webinar"),
    ("congress", "Congress"),
]

LOCALES = [
    ("en", "English"),
    ("de", "German"),
    ("en-US", "English (United States)"),
    ("de-DE", "German (Germany)"),
]

GROUPS = [AUTHORS_GROUP, *REVIEWER_GROUPS]

# Market rules of the demo markets (content.market_rules says what each kind means):
# (jurisdiction, kind, parameters, rationale). Pharmacists are health professionals
# ("Fachkreise", HWG § 2) to whom prescription-only medicines may be promoted.
MARKET_RULES = [
    ("US", "fair_balance",
     {"claim_kinds": ["claim"], "purposes": ["promotional"], "companion_kind": "isi"},
     "21 CFR 202.1(e): promotional claims carry fair balance (the ISI)."),
    ("DE", "audience_limit",
     {"purposes": ["promotional"], "audiences": ["hcp", "pharmacist"], "exempt_kinds": ["footer"]},
     "HWG § 10: prescription-only medicines are promoted to health professionals only."),
    ("FR", "audience_limit",
     {"purposes": ["promotional"], "audiences": ["hcp", "pharmacist"], "exempt_kinds": ["footer"]},
     "Directive 2001/83/EC art. 88, CSP L.5122-6: no promotion of prescription-only "
     "medicines to the public."),
    ("GB", "audience_limit",
     {"purposes": ["promotional"], "audiences": ["hcp", "pharmacist"], "exempt_kinds": ["footer"]},
     "Human Medicines Regulations 2012 reg. 284: no promotion of prescription-only "
     "medicines to the public."),
]


def seed_market_rules(apps) -> None:
    """Create the missing market rules of MARKET_RULES (an administrator's later change of
    a rule is kept: get_or_create on jurisdiction and kind)."""
    Jurisdiction = apps.get_model("content", "Jurisdiction")
    MarketRule = apps.get_model("content", "MarketRule")
    for code, kind, parameters, rationale in MARKET_RULES:
        jurisdiction = Jurisdiction.objects.filter(code=code).first()
        if jurisdiction is not None:
            MarketRule.objects.get_or_create(
                jurisdiction=jurisdiction, kind=kind,
                defaults={"parameters": parameters, "rationale": rationale})


def seed_default_taxonomy(apps) -> None:
    """Create whatever of the default taxonomy and role groups is missing.

    `apps` is an app registry: the migration's historical one, or `django.apps.apps` for a
    database flushed since migrating (the demo loader, tests).
    """
    Audience = apps.get_model("content", "Audience")
    Specialty = apps.get_model("content", "Specialty")
    Stage = apps.get_model("content", "Stage")
    Jurisdiction = apps.get_model("content", "Jurisdiction")
    Channel = apps.get_model("content", "Channel")
    Locale = apps.get_model("content", "Locale")
    Group = apps.get_model("auth", "Group")

    for audience_code, (audience_name, stages) in AUDIENCES.items():
        audience, _ = Audience.objects.get_or_create(code=audience_code, defaults={"name": audience_name})
        for order, (code, name, description) in enumerate(stages, start=1):
            Stage.objects.get_or_create(
                audience=audience, code=code,
                defaults={"name": name, "order": order, "description": description},
            )
    hcp = Audience.objects.get(code="hcp")
    for code, name in HCP_SPECIALTIES:
        Specialty.objects.get_or_create(audience=hcp, code=code, defaults={"name": name})
    for code, name in JURISDICTIONS:
        Jurisdiction.objects.get_or_create(code=code, defaults={"name": name})
    for code, name in CHANNELS:
        Channel.objects.get_or_create(code=code, defaults={"name": name})
    for code, name in LOCALES:
        Locale.objects.get_or_create(code=code, defaults={"name": name})
    for name in GROUPS:
        Group.objects.get_or_create(name=name)
    try:  # the market rules exist from migration 0006 on; 0002 seeds the rest before them
        apps.get_model("content", "MarketRule")
    except LookupError:
        return
    seed_market_rules(apps)
