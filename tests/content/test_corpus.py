"""Every payload of /work/shared/corpus through the author admin: cleaned or refused, never run."""

from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.urls import reverse

from content.models import ContentModule, ModuleVersion
from content.rules import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, URL_SCHEMES
from tests.content.helpers import version_form_data

pytestmark = pytest.mark.django_db

CORPUS = Path("/work/shared/corpus")
PAYLOADS = [
    pytest.param(line, id=f"{path.stem}-{n}")
    for path in sorted(CORPUS.glob("*.txt")) if path.exists()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
    if line.strip()
]


class MarkupAudit(HTMLParser):
    """Collects anything in stored HTML that the allowlist should have removed."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems = []

    def handle_starttag(self, tag, attrs):
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"<{tag}>")
        allowed = ALLOWED_ATTRIBUTES.get(tag, set()) | ALLOWED_ATTRIBUTES["*"]
        if tag == "a":
            allowed = allowed | {"rel"}  # the sanitiser adds rel="noopener noreferrer"
        for name, value in attrs:
            if name not in allowed or name.startswith("on"):
                self.problems.append(f"{name}= on <{tag}>")
            if name in {"href", "src"} and value and ":" in value.split("/")[0]:
                if value.split(":", 1)[0].strip().lower() not in URL_SCHEMES:
                    self.problems.append(f"{value[:20]} in {name}")


def audit(html):
    parser = MarkupAudit()
    parser.feed(html)
    parser.close()
    return parser.problems


def test_the_corpus_is_there():
    assert len(PAYLOADS) >= 40


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_in_a_version_is_cleaned_or_refused(client_a, version_a, payload):
    url = reverse("admin:content_moduleversion_change", args=[version_a.pk])
    before = ModuleVersion.objects.get(pk=version_a.pk)
    response = client_a.post(url, version_form_data(
        version_a, body_html=f"<p>Intro</p>{payload}", body_text="", subject=payload[:200]))
    assert response.status_code in (200, 302)
    stored = ModuleVersion.objects.get(pk=version_a.pk)
    if response.status_code == 200:  # refused: a form error says why, nothing changed
        assert response.context["adminform"].form.errors
        assert (stored.body_html, stored.subject, stored.sha256) == (
            before.body_html, before.subject, before.sha256)
        return
    assert audit(stored.body_html) == []
    preview = client_a.get(reverse("admin:content_moduleversion_preview", args=[stored.pk]))
    assert preview.status_code == 200
    frames = preview.content.decode().split('class="tessera-preview-frame"')[1:]
    for frame in frames:
        assert audit(frame.split("</section>")[0]) == []
    if "7*7" in payload:  # template syntax is never evaluated
        assert all("49" not in frame for frame in frames)
        assert "49" not in preview.context["subject"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_as_module_title_is_stored_as_text_and_shown_escaped(client_a, brand_a, payload):
    response = client_a.post(reverse("admin:content_contentmodule_add"), {
        "code": "ALP-CORPUS-001", "brand": brand_a.pk, "kind": "body", "purpose": "promotional",
        "title": payload[:200], "versions-TOTAL_FORMS": 0, "versions-INITIAL_FORMS": 0,
        "versions-MIN_NUM_FORMS": 0, "versions-MAX_NUM_FORMS": 1000,
    })
    assert response.status_code == 302
    assert ContentModule.objects.get(code="ALP-CORPUS-001").title == payload[:200].strip()
    page = client_a.get(reverse("admin:content_contentmodule_changelist")).content.decode()
    if "<" in payload:
        assert payload not in page


def test_payloads_in_reference_citations_and_asset_alt_text_stay_text(client_a, brand_a):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from content.models import Asset, Reference
    from tests.content.helpers import image_bytes

    png = image_bytes(size=(20, 20))
    for n, param in enumerate(PAYLOADS):
        payload = param.values[0][:250]
        response = client_a.post(reverse("admin:content_reference_add"), {
            "brand": brand_a.pk, "code": f"ref-{n}", "source": "publication", "citation": payload})
        assert response.status_code == 302, payload
        assert Reference.objects.get(code=f"ref-{n}").citation == payload.strip()
        response = client_a.post(reverse("admin:content_asset_add"), {
            "brand": brand_a.pk, "title": f"Asset {n}", "alt_text": payload,
            "upload": SimpleUploadedFile("a.png", png)})
        assert response.status_code == 302, payload
    for url in (reverse("admin:content_reference_changelist"),
                reverse("admin:content_asset_changelist")):
        page = client_a.get(url).content.decode()
        for param in PAYLOADS:
            if "<" in param.values[0]:
                assert param.values[0][:250] not in page
    assert Asset.objects.count() == len(PAYLOADS)


# --- every change the sanitiser makes is reported to the author ----------------------------

EXTRA_VECTORS = Path(__file__).resolve().parents[1] / "security" / "sanitiser-vectors.txt"
SANITISER_PAYLOADS = PAYLOADS + [
    pytest.param(line, id=f"sanitiser-vectors-{n}")
    for n, line in enumerate(EXTRA_VECTORS.read_text(encoding="utf-8").splitlines(), start=1)
    if line.strip()
]


class _Reading(HTMLParser):
    """What a reader gets from HTML: the elements with their attributes, and the text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, sorted((n, v or "") for n, v in attrs if n != "rel")))

    def handle_data(self, data):
        self.text.append(data)


def reading(html):
    parser = _Reading()
    parser.feed(html)
    parser.close()
    return parser.elements, " ".join("".join(parser.text).split())


@pytest.mark.parametrize("payload", SANITISER_PAYLOADS)
def test_every_change_the_sanitiser_makes_is_reported(payload):
    from content.rules import sanitise_html

    raw = f"<p>Intro</p>{payload}"
    report = sanitise_html(raw)
    if reading(report.html) != reading(raw):
        assert report.changed, (payload, report.html)
        assert report.message().startswith("Removed from the HTML for safety: ")


def test_the_cdata_vector_is_named_in_the_authors_notice():
    from content.rules import sanitise_html

    report = sanitise_html("<p>a<![CDATA[<script>alert(1)</script>]]>b</p>")
    assert "<script" not in report.html
    assert "CDATA section" in report.message()
