"""The inspection package of one module version: a PDF an inspector can read on its own.

It holds the version as the reader sees it (the reviewer preview's rendering), its tags,
references, companions and exclusions, every signature with printed name, UTC time,
meaning and the sha256 it bound, the review rounds with their comments, and the
version's segment of the audit chain with each entry's hashes re-checked. Rendered from
templates/review/inspection.html by WeasyPrint, which fetches nothing from the network:
only stored media files are read (`_media_fetcher`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.files.storage import default_storage
from django.template.loader import render_to_string
from django.utils import timezone

from content.models import ContentModule, ModuleVersion
from content.preview import render_module_html, render_module_text, render_subject
from content.rules import compute_sha256

from .audit import compute_hash
from .models import AuditEntry, Comment, ReviewRound, Signature

# WeasyPrint resolves the preview's relative media URLs against this made-up origin; the
# fetcher serves them from storage and refuses every other address.
BASE_URL = "https://inspection.invalid/"


def filename(version: ModuleVersion) -> str:
    return f"{version.module.code}-v{version.number}-inspection.pdf"


def utc(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


@dataclass(frozen=True)
class AuditRow:
    entry: AuditEntry
    hash_ok: bool  # the entry's content still hashes to its recorded hash


@dataclass(frozen=True)
class RoundRow:
    round: ReviewRound | None  # None: comments made outside a review round
    number: int
    signatures: list[Signature]
    comments: list[Comment]


def _codes(manager, attr: str = "code") -> str:
    return ", ".join(sorted(str(getattr(o, attr)) for o in manager.all())) or "-"


def context(version: ModuleVersion) -> dict:
    """Everything the package shows, read now (a handful of queries)."""
    version = (ModuleVersion.objects.select_related("module__brand", "locale", "created_by",
                                                    "asset")
               .prefetch_related("audiences", "specialties", "stages", "jurisdictions",
                                 "channels", "citations", "requires", "excludes")
               .get(pk=version.pk))
    signatures = list(Signature.objects.filter(version=version).select_related("signer"))
    comments = list(Comment.objects.filter(version=version).select_related("author"))
    rounds = list(ReviewRound.objects.filter(version=version).select_related("submitted_by"))
    numbers = sorted({r.number for r in rounds} | {c.round for c in comments}
                     | {s.round for s in signatures})
    by_number = {r.number: r for r in rounds}
    round_rows = [RoundRow(by_number.get(n), n, [s for s in signatures if s.round == n],
                           [c for c in comments if c.round == n]) for n in numbers]
    entries = AuditEntry.objects.filter(target_type=ModuleVersion._meta.label,
                                        target_id=str(version.pk)).order_by("seq")
    as_read = compute_sha256(version)
    return {
        "version": version, "module": version.module, "brand": version.module.brand,
        "subject": render_subject(version), "html": render_module_html(version),
        "text": render_module_text(version),
        "tags": [("Audiences", _codes(version.audiences)),
                 ("Specialties", _codes(version.specialties)),
                 ("Stages", _codes(version.stages)),
                 ("Jurisdictions", _codes(version.jurisdictions)),
                 ("Channels", _codes(version.channels))],
        "references": list(version.citations.all()),
        "companions": _modules(version.requires.all()),
        "exclusions": _modules(version.excludes.all()),
        "signatures": signatures, "rounds": round_rows,
        "audit": [AuditRow(e, compute_hash(e) == e.hash) for e in entries],
        "sha256_as_read": as_read, "sha256_matches": as_read == version.sha256,
        "generated_at": timezone.now(),
    }


def _modules(queryset) -> list[ContentModule]:
    return sorted(queryset, key=lambda m: m.code)


def render_html(version: ModuleVersion) -> str:
    return render_to_string("review/inspection.html", context(version))


def _media_fetcher():
    """A WeasyPrint fetcher of stored media files only: no network, no other local file."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class MediaOnly(URLFetcher):
        def fetch(self, url, headers=None):
            parts = urlsplit(url)
            media = "/" + settings.MEDIA_URL.lstrip("/")
            if f"{parts.scheme}://{parts.netloc}/" != BASE_URL or not parts.path.startswith(media):
                raise ValueError(f"not fetched in an inspection package: {url}")
            name = unquote(parts.path[len(media):])
            if ".." in name.split("/") or not default_storage.exists(name):
                raise ValueError(f"no stored file {name}")
            with default_storage.open(name, "rb") as handle:
                return URLFetcherResponse(url, body=handle.read())

    return MediaOnly()


def render_pdf(version: ModuleVersion) -> bytes:
    from weasyprint import HTML  # imported on use: it loads Pango, which takes a moment

    return HTML(string=render_html(version), base_url=BASE_URL,
                url_fetcher=_media_fetcher()).write_pdf()
