"""Step previews as the reader will get them: per channel and per audience.

Every preview is an assembly (`journeys.assembly`): the same rules, refusals and manifest
as delivery. This module only decides how to *show* the result:

- **Presentation per channel.** SMS: the assembled plain text with its character count and
  segments (`sms_count`); rep visit / CLM detail: the portal page at tablet size;
  congress: the portal page as a printable handout with a PDF (`handout_pdf`); email: the
  email in a frame sized to its content, subject and preheader above; other channels
  (portal, webinar): the step's own layout.
- **A sample reader of the journey's audience** (`samples_for`): a physician for HCP
  journeys, a patient for patient journeys, a pharmacist for pharmacist journeys: never
  "Dr. Alex Morgan, Cardiology" on a patient journey. The reader consents to every
  channel and has a sample unsubscribe link, so what is refused is the content, not the
  sample.
- **Refusals that say what fixes them** (`fixes_for`): each reason links to the module in
  the content admin and to its newest version's review page (or to the step's slots
  and the footer modules when no module is named).
- **The manifest as a table** (`manifest_rows`): module, version, state, signers, sha256.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse

from content.assets import addressed_file
from content.models import Channel, ContentModule, ModuleVersion

from .assembly import AssemblyResult, load_context
from .models import Layout, Step

# --- Sample readers -------------------------------------------------------------------

UNSUBSCRIBE_SAMPLE = "https://unsubscribe.example.com/sample-recipient"


@dataclass(frozen=True)
class Sample:
    key: str
    label: str
    audience: str
    fields: dict = field(default_factory=dict)


SAMPLES: dict[str, tuple[Sample, ...]] = {
    "hcp": (
        Sample("hcp-cardiology", "Dr. Alex Morgan — cardiologist, Riverside Heart Clinic", "hcp",
               {"title": "Dr.", "first_name": "Alex", "last_name": "Morgan",
                "specialty": "Cardiology", "practice_name": "Riverside Heart Clinic",
                "city": "Springfield"}),
        Sample("hcp-general-practice", "Dr. Priya Shah — general practitioner, Elm Street Practice",
               "hcp",
               {"title": "Dr.", "first_name": "Priya", "last_name": "Shah",
                "specialty": "General practice", "practice_name": "Elm Street Practice",
                "city": "Riverton"}),
    ),
    "patient": (
        Sample("patient-adult", "Sam Rivera — adult patient, newly prescribed", "patient",
               {"title": "", "first_name": "Sam", "last_name": "Rivera", "specialty": "",
                "practice_name": "", "city": "Springfield"}),
        Sample("patient-caregiver", "Maria Lopez — caregiver of a patient", "patient",
               {"title": "", "first_name": "Maria", "last_name": "Lopez", "specialty": "",
                "practice_name": "", "city": "Lakeside"}),
    ),
    "pharmacist": (
        Sample("pharmacist-community", "Jordan Lee — community pharmacist, Main Street Pharmacy",
               "pharmacist",
               {"title": "", "first_name": "Jordan", "last_name": "Lee",
                "specialty": "Community pharmacy", "practice_name": "Main Street Pharmacy",
                "city": "Springfield"}),
        Sample("pharmacist-hospital", "Chris Novak — hospital pharmacist, St. Anne's Hospital",
               "pharmacist",
               {"title": "", "first_name": "Chris", "last_name": "Novak",
                "specialty": "Hospital pharmacy", "practice_name": "St. Anne's Hospital",
                "city": "Riverton"}),
    ),
}
# An audience the list does not know (a custom taxonomy term): a reader with no title,
# specialty or practice, so nothing professional is assumed.
GENERIC = (Sample("reader", "Alex Taylor — sample reader", "", {
    "title": "", "first_name": "Alex", "last_name": "Taylor", "specialty": "",
    "practice_name": "", "city": "Springfield"}),)


def samples_for(audience_code: str) -> tuple[Sample, ...]:
    """The sample readers offered for a journey of this audience (the first is the default)."""
    return SAMPLES.get(audience_code, GENERIC)


def pick_sample(audience_code: str, key: str | None) -> Sample:
    """The sample asked for when it belongs to the audience, else the audience's first."""
    options = samples_for(audience_code)
    return next((s for s in options if s.key == key), options[0])


def recipient(sample: Sample) -> dict:
    """The recipient dict assembly takes: consenting to every channel of the taxonomy."""
    return {"id": f"sample-{sample.key}", **sample.fields,
            "consent": dict.fromkeys(Channel.objects.values_list("code", flat=True), True),
            "unsubscribe_url": UNSUBSCRIBE_SAMPLE}


# --- Presentation per channel ---------------------------------------------------------

SMS, TABLET, HANDOUT, EMAIL, PAGE = "sms", "tablet", "handout", "email", "page"
CHANNEL_PRESENTATION = {"sms": SMS, "rep": TABLET, "congress": HANDOUT, "email": EMAIL}
PRESENTATION_TITLES = {
    SMS: "SMS text", TABLET: "Rep visit / CLM detail (tablet, 1024 × 768)",
    HANDOUT: "Congress handout (printable)", EMAIL: "Email", PAGE: "Portal page",
}


def presentation(step: Step) -> str:
    """How the step's channel shows a message; other channels by the step's layout."""
    found = CHANNEL_PRESENTATION.get(step.channel.code)
    if found:
        return found
    return EMAIL if step.layout == Layout.EMAIL else PAGE


def assembly_layout(step: Step, shown: str) -> str:
    """The layout assembled for a presentation: SMS takes the plain text of the step's own
    layout; tablet and handout are the responsive portal page; email is the email."""
    if shown == SMS:
        return step.layout
    if shown == EMAIL:
        return Layout.EMAIL
    return Layout.PORTAL


@dataclass
class Preview:
    step: Step
    shown: str
    layout: str
    sample: Sample
    jurisdiction: str
    locale: str
    result: AssemblyResult

    @property
    def title(self) -> str:
        return PRESENTATION_TITLES[self.shown]

    @property
    def sms(self) -> SmsCount | None:
        return sms_count(sms_text(self.result.text)) if self.shown == SMS and self.result.ok else None


def build_preview(step: Step, *, jurisdiction: str, locale: str, sample: Sample) -> Preview:
    shown = presentation(step)
    layout = assembly_layout(step, shown)
    ctx = load_context(step, channel=step.channel.code, jurisdiction=jurisdiction,
                       locale=locale, layout=layout)
    return Preview(step=step, shown=shown, layout=layout, sample=sample,
                   jurisdiction=jurisdiction, locale=locale,
                   result=ctx.assemble(recipient(sample)))


def handout_pdf(preview: Preview) -> bytes:
    """The assembled page as a PDF (WeasyPrint). Only the page's own approved images are
    fetched, read from storage by their content address (hash-checked); nothing else."""
    from weasyprint import HTML  # imported on use: it loads Pango, which takes a moment

    return HTML(string=preview.result.html, base_url=settings.TESSERA_PUBLIC_BASE_URL + "/",
                url_fetcher=_addressed_images_only()).write_pdf()


def _addressed_images_only():
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    prefix = settings.TESSERA_PUBLIC_BASE_URL + "/media/a/"

    class AddressedImagesOnly(URLFetcher):
        def fetch(self, url, headers=None):
            parts = url[len(prefix):].split("/") if url.startswith(prefix) else []
            found = addressed_file(*parts) if len(parts) == 2 else None
            if found is None:
                raise ValueError(f"not fetched into a handout: {url}")
            return URLFetcherResponse(url, body=found.data)

    return AddressedImagesOnly()


# --- SMS: characters and segments -----------------------------------------------------

# GSM 03.38 default alphabet and its extension table (an escape + one septet each).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")
GSM7_SINGLE, GSM7_PART = 160, 153   # septets; a part loses 7 to the concatenation header
UCS2_SINGLE, UCS2_PART = 70, 67     # UTF-16 code units


@dataclass(frozen=True)
class SmsCount:
    characters: int      # what a reader counts (code points)
    encoding: str        # "GSM-7" or "UCS-2"
    units: int           # septets (GSM-7, extension characters count 2) or UTF-16 units
    segments: int
    per_segment: int     # the limit that applied: 160/153 or 70/67
    non_gsm: tuple[str, ...] = ()  # the characters that forced UCS-2, in order of appearance

    @property
    def remaining(self) -> int:
        """Units left in the last segment before another one is needed."""
        if self.segments <= 1:
            return self.per_segment - self.units
        return self.segments * self.per_segment - self.units


def sms_text(assembled_text: str) -> str:
    """The message as sent: the assembled plain text without its closing newline."""
    return assembled_text.rstrip("\n")


def sms_count(text: str) -> SmsCount:
    """Characters, encoding and segments of an SMS. GSM-7 when every character is in the
    GSM 03.38 alphabet (extension characters such as € [ ] { } cost two septets): 160 in
    one message, 153 per part when concatenated. Otherwise UCS-2: 70, or 67 per part
    (characters outside the BMP, e.g. emoji, take two units). A character's units are
    never split across parts."""
    non_gsm = tuple(dict.fromkeys(c for c in text if c not in GSM7_BASIC and c not in GSM7_EXTENDED))
    if non_gsm:
        weights = [2 if ord(c) > 0xFFFF else 1 for c in text]
        encoding, single, part = "UCS-2", UCS2_SINGLE, UCS2_PART
    else:
        weights = [2 if c in GSM7_EXTENDED else 1 for c in text]
        encoding, single, part = "GSM-7", GSM7_SINGLE, GSM7_PART
    units = sum(weights)
    if units == 0:
        segments = 0
    elif units <= single:
        segments = 1
    else:
        segments, used = 1, 0
        for weight in weights:
            if used + weight > part:
                segments, used = segments + 1, 0
            used += weight
        segments = max(segments, math.ceil(units / part))
    return SmsCount(characters=len(text), encoding=encoding, units=units, segments=segments,
                    per_segment=single if segments <= 1 else part, non_gsm=non_gsm)


# --- Refusals that link to their fix, and the manifest as rows ------------------------

@dataclass(frozen=True)
class Fix:
    label: str
    url: str


@dataclass
class Reason:
    code: str
    detail: str
    module: str | None
    fixes: list[Fix]


def reasons(preview: Preview, *, staff: bool = True) -> list[Reason]:
    """Each refusal of the preview with the links that fix it (admin links for staff only:
    a reviewer gets the review page and the history)."""
    errors = preview.result.errors
    codes = {e.module for e in errors if e.module}
    modules = {m.code: m for m in ContentModule.objects.filter(
        code__in=codes, brand=preview.step.journey.brand_id)}
    latest = {}
    for version in (ModuleVersion.objects.filter(module__in=modules.values())
                    .order_by("module_id", "-number").only("id", "module_id", "number", "state")):
        latest.setdefault(version.module_id, version)
    return [Reason(e.code, e.detail, e.module,
                   fixes_for(e.code, modules.get(e.module), latest, preview.step, staff=staff))
            for e in errors]


def fixes_for(code: str, module: ContentModule | None, latest: dict, step: Step, *,
              staff: bool = True) -> list[Fix]:
    fixes = []
    if module is not None:
        if staff:
            fixes.append(Fix(f"Edit {module.code} in Content",
                             reverse("admin:content_contentmodule_change", args=[module.pk])))
        version = latest.get(module.pk)
        if version is not None:
            fixes.append(Fix(f"Review v{version.number} ({version.get_state_display().lower()})",
                             reverse("approvals:review", args=[version.pk])))
        fixes.append(Fix("History", reverse("approvals:history", args=[module.code])))
    elif code == "missing_footer" and staff:
        query = urlencode({"brand__id__exact": step.journey.brand_id, "kind__exact": "footer"})
        fixes.append(Fix("The brand's footer modules",
                         reverse("admin:content_contentmodule_changelist") + "?" + query))
    if staff and (module is None or code in {"not_approved", "missing_companion",
                                             "excluded_combination"}):
        fixes.append(Fix("Edit the step's slots", reverse("admin:journeys_step_change", args=[step.pk])))
    return fixes


@dataclass
class ManifestRow:
    slot: object
    module: str
    kind: str
    version: int
    state: str
    locale: str
    expires_at: str
    signers: list[str]
    sha256: str


def manifest_rows(manifest: dict) -> list[ManifestRow]:
    rows = []
    for m in manifest.get("modules", []):
        signers = [f"{str(s.get('role', '')).capitalize()}: {s.get('printed_name', '')}, "
                   f"{str(s.get('signed_at', ''))[:10]}" for s in m.get("signatures", [])]
        rows.append(ManifestRow(
            slot=m.get("slot") if m.get("slot") is not None else "footer", module=m.get("module", ""),
            kind=m.get("kind", ""), version=m.get("version"), state=m.get("state", ""),
            locale=m.get("locale", ""), expires_at=(m.get("expires_at") or "")[:10],
            signers=signers, sha256=m.get("sha256", "")))
    return rows
