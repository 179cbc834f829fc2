"""Proof that a delivered message is the content MLR approved (`manage.py verify_delivery`).

An inspector holds a message as a reader received it (an RFC 5322 `.eml` with an HTML and
a plain-text part) and the manifest Tessera returned with it. Nothing in either is taken
on trust; every hash is derived again from the append-only records:

1. the manifest's signatures are the signature records of each version, every signature
   is on the version's sha256, and the version's content as stored still hashes to it
   (assembly's verify-on-read, `journeys.assembly.snapshot`);
2. the signed versions are rendered again in the manifest's layout at its time
   (`load_context(pinned=…)`), and the message must be that rendering with only the
   reader's values in the places tokens take them. Each module is rendered inside an
   element marked `data-module="<code>"`, so a difference is located in its module (the
   first one is named), or in the layout around the modules;
3. every image the message links is a file the manifest lists, whose asset is the one
   signed with the version, whose bytes (embedded in the message, or stored under its
   content address) hash to the listed sha256, and which is derived from the signed
   original (renditions are made again and compared);
4. the subject, HTML and text hash to the manifest's `output_sha256`.

Bad input (not an `.eml`, a manifest that is not JSON or not a Tessera manifest, or the
manifest of another message) raises `VerificationInputError`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.mime.image import MIMEImage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid
from html import unescape
from urllib.parse import urlsplit

from approvals.selectors import approval_signatures_for_versions
from content import assets as content_assets
from content.models import ModuleVersion
from content.tokens import TOKEN_RE, CompiledText
from journeys.assembly import load_context
from journeys.assembly.manifest import output_sha256
from journeys.assembly.snapshot import as_datetime, read_versions_by_id
from journeys.models import Step

MANIFEST_KEYS = ("manifest_version", "journey", "step", "channel", "jurisdiction", "locale",
                 "layout", "modules", "slots", "assembled_at", "output_sha256")
MARKER_RE = re.compile(r'data-module="([^"]*)"')
IMG_RE = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
ATTR_RE = re.compile(r'\b(src|srcset)="([^"]*)"', re.IGNORECASE)


class VerificationInputError(Exception):
    """A file that cannot be verified at all (the message says which and why)."""


@dataclass(frozen=True)
class DeliveredMessage:
    subject: str
    html: str
    text: str
    embedded: dict[str, bytes] = field(default_factory=dict)  # Content-Location → bytes


@dataclass
class Report:
    """What was checked, and every difference found (the first differing module first)."""

    checked: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return not self.differences

    def differs(self, what: str) -> None:
        self.differences.append(what)


# The message ----------------------------------------------------------------------------

def message_from_assembly(assembly: dict, *, sender: str, to: str,
                          message_id: str | None = None,
                          embedded: dict[str, bytes] | None = None) -> Message:
    """The message a channel sends for an assembly response (`subject`, `html`, `text`,
    `headers`): multipart/alternative, text first, each part base64 so every character and
    line end is kept as assembled. `embedded` (URL → bytes) puts images in the message,
    in a multipart/related with the HTML, each with its URL as Content-Location.
    For tests and the docs' example; `bytes(message)` is the .eml."""
    message = MIMEMultipart("alternative")
    message["Subject"] = assembly["subject"]
    message["From"] = sender
    message["To"] = to
    message["Message-ID"] = message_id or make_msgid(domain="tessera.invalid")
    manifest = assembly.get("manifest") or {}
    if manifest.get("assembled_at"):
        message["Date"] = format_datetime(as_datetime(manifest["assembled_at"]))
    for name, value in (assembly.get("headers") or {}).items():
        message[name] = value
    message.attach(MIMEText(assembly["text"], "plain", "utf-8"))
    html = MIMEText(assembly["html"], "html", "utf-8")
    if embedded:
        related = MIMEMultipart("related")
        related.attach(html)
        for url, data in embedded.items():
            image = MIMEImage(data)
            image["Content-Location"] = url
            related.attach(image)
        html = related
    message.attach(html)
    return message


def read_message(data: bytes) -> DeliveredMessage:
    """Subject, HTML and text of an `.eml` (and any embedded images by Content-Location)."""
    try:
        message = BytesParser(policy=policy.default).parsebytes(data)
    except Exception as exc:  # the parser's errors have no common base
        raise VerificationInputError(f"The message is not a readable .eml file ({exc}).")
    if message.defects or message["Subject"] is None:
        raise VerificationInputError(
            "The message is not an RFC 5322 .eml file with a Subject header.")
    html = message.get_body(("html",))
    text = message.get_body(("plain",))
    if html is None or text is None:
        raise VerificationInputError(
            "The message has no "
            + " and no ".join(n for n, p in (("HTML part", html), ("text part", text)) if p is None)
            + "; Tessera's emails have both.")
    embedded = {}
    for part in message.walk():
        location = part.get("Content-Location")
        if location and part.get_content_maintype() == "image":
            embedded[location.strip()] = part.get_content()
    return DeliveredMessage(subject=str(message["Subject"]), html=_lf(html.get_content()),
                            text=_lf(text.get_content()), embedded=embedded)


def _lf(value: str) -> str:
    # Transport may turn line ends into CRLF; assembly writes LF only.
    return value.replace("\r\n", "\n")


def read_manifest(data: bytes) -> dict:
    try:
        manifest = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise VerificationInputError(f"The manifest is not JSON ({exc}).")
    if not isinstance(manifest, dict):
        raise VerificationInputError("The manifest is not a JSON object.")
    missing = [k for k in MANIFEST_KEYS if k not in manifest]
    if missing:
        raise VerificationInputError(
            f"The manifest is not a Tessera assembly manifest: it lacks {', '.join(missing)}.")
    if not isinstance(manifest["modules"], list) or not isinstance(manifest["slots"], list):
        raise VerificationInputError("The manifest's modules and slots must be lists.")
    return manifest


# The proof ------------------------------------------------------------------------------

def verify(message: DeliveredMessage, manifest: dict) -> Report:
    """Every check of the module docstring; the report lists every difference."""
    report = Report()
    codes = [m.get("module") for m in manifest["modules"]]
    found = MARKER_RE.findall(message.html)
    if found and not set(found) & set(codes):
        raise VerificationInputError(
            f"The manifest is of another message: it lists modules {', '.join(map(str, codes))}; "
            f"the message carries {', '.join(dict.fromkeys(found))}.")
    _check_signatures(manifest, report)
    _check_rendering(message, manifest, report)
    _check_images(message, manifest, report)
    if output_sha256(message.subject, message.html, message.text) == manifest["output_sha256"]:
        report.checked.append(f"output sha256 {manifest['output_sha256']}")
    else:
        report.differs("the message's subject, HTML and text do not hash to the manifest's "
                       "output_sha256 (the reader's values, or the message, are not the "
                       "ones assembled)")
    return report


def _check_signatures(manifest: dict, report: Report) -> None:
    entries = {m.get("version_id"): m for m in manifest["modules"]}
    if not all(isinstance(i, int) for i in entries):
        raise VerificationInputError("The manifest's modules lack their version_id.")
    records = approval_signatures_for_versions(list(entries))
    stored = {v.id: v for v in read_versions_by_id(list(entries))} if entries else {}
    for vid, entry in entries.items():
        label = f"{entry.get('module')} v{entry.get('version')}"
        signed = _as_json(records.get(vid, []))
        if _as_json(entry.get("signatures")) != signed:
            raise VerificationInputError(
                f"The manifest's signatures of {label} are not the signature records "
                "(altered or of another approval): refused.")
        shas = {s.get("sha256") for s in signed}
        if not signed or shas != {entry.get("sha256")}:
            raise VerificationInputError(
                f"{label}: the manifest's sha256 is not the one its signatures carry.")
        version = stored.get(vid)
        if version is None or version.code != entry.get("module"):
            raise VerificationInputError(f"{label}: no such version in this database.")
        if version.integrity_problem:
            report.differs(f"module {version.code}: {version.integrity_problem}")
        else:
            roles = ", ".join(sorted(str(s.get("role", "")) for s in signed))
            report.checked.append(f"module {label}: sha256 {entry['sha256'][:12]}… signed by "
                                  f"{roles}, content re-hashed")


def _as_json(value):
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def _check_rendering(message: DeliveredMessage, manifest: dict, report: Report) -> None:
    step = Step.objects.filter(journey__slug=manifest["journey"], key=manifest["step"]).first()
    if step is None:
        raise VerificationInputError(
            f"The manifest's step {manifest['journey']}/{manifest['step']} does not exist.")
    layout = manifest["layout"].get("name") if isinstance(manifest["layout"], dict) else None
    ctx = load_context(step, channel=manifest["channel"], jurisdiction=manifest["jurisdiction"],
                       locale=manifest["locale"], layout=layout,
                       now=as_datetime(manifest["assembled_at"]), pinned=manifest["slots"],
                       pinned_footer=manifest.get("footer"))
    if ctx.layout_info["sha256"] != manifest["layout"].get("sha256"):
        report.differs(f"layout {layout}: its templates changed since the assembly; the "
                       "message cannot be compared module by module")
        return
    picks, _ = ctx.select({})
    prep = ctx.prepared(picks)
    if prep.html is None:
        for error in prep.errors:
            report.differs(f"module {error.module or '?'}: {error.detail}")
        return
    versions = [v for _, v in picks if v is not None] + ([ctx.footer] if ctx.footer else [])
    if not _matches(prep.subject, message.subject):
        subject = next((v.code for v in versions if v.kind == "subject"), "the layout")
        report.differs(f"module {subject}: the subject differs")
    _locate_html(prep.html, message.html, report)
    if not _matches(prep.text, message.text):
        report.differs(_locate_text(versions, message.text))
    if not report.differences:
        report.checked.append(f"subject, HTML and text are the signed modules rendered in "
                              f"layout {layout} ({len(versions)} modules)")


def _pattern(parts: tuple[str, ...] | list[str]) -> re.Pattern:
    """Literal parts as they are; a reader's value (odd parts) anything."""
    return re.compile("".join(re.escape(p) if i % 2 == 0 else "(.*?)"
                              for i, p in enumerate(parts)), re.DOTALL)


def _matches(compiled: CompiledText, value: str) -> bool:
    return _pattern(compiled.parts).fullmatch(value) is not None


def _segments(parts: tuple[str, ...]) -> list[tuple[str | None, list[str]]]:
    """Compiled parts cut where each module's marker begins: (code, or None for the layout
    before the first module; its parts, alternating literal and reader's value)."""
    segments: list[tuple[str | None, list[str]]] = [(None, [""])]
    for i, part in enumerate(parts):
        if i % 2:  # a reader's value, then the literal after it
            segments[-1][1].extend((part, ""))
            continue
        start = 0
        for match in MARKER_RE.finditer(part):
            segments[-1][1][-1] += part[start:match.start()]
            segments.append((match.group(1), [""]))
            start = match.start()
        segments[-1][1][-1] += part[start:]
    return segments


def _split_delivered(html: str) -> list[tuple[str | None, str]]:
    cuts = list(MARKER_RE.finditer(html))
    pieces = [(None, html[:cuts[0].start()] if cuts else html)]
    for i, match in enumerate(cuts):
        end = cuts[i + 1].start() if i + 1 < len(cuts) else len(html)
        pieces.append((match.group(1), html[match.start():end]))
    return pieces


def _locate_html(compiled: CompiledText, html: str, report: Report) -> None:
    if _matches(compiled, html):
        return
    expected = _segments(compiled.parts)
    delivered = _split_delivered(html)
    expected_codes = [c for c, _ in expected[1:]]
    delivered_codes = [c for c, _ in delivered[1:]]
    if expected_codes != delivered_codes:
        missing = [c for c in expected_codes if c not in delivered_codes]
        extra = [c for c in delivered_codes if c not in expected_codes]
        first = (missing or extra or expected_codes)[0]
        report.differs(f"module {first}: the HTML's modules are {', '.join(delivered_codes)}; "
                       f"the signed ones are {', '.join(expected_codes)}")
        return
    # The layout before the first module is compared last: a module is the likelier story.
    for (code, parts), (_, piece) in [*zip(expected[1:], delivered[1:], strict=True),
                                      (expected[0], delivered[0])]:
        if _pattern(parts).fullmatch(piece) is None:
            where = f"module {code}" if code else "the layout before the first module"
            report.differs(f"{where}: the HTML differs from the signed content "
                           f"({_first_difference(parts, piece)})")
            return


def _first_difference(parts: list[str], piece: str) -> str:
    """The signed and the delivered text where they part, for the inspector's eye: the
    longest prefix of the signed parts (values free) the delivered piece begins with."""
    def prefix(k: int, n: int) -> re.Match | None:  # parts before k, then k's first n chars
        return _pattern([*parts[:k], parts[k][:n]]).match(piece)

    k = 0
    while k + 2 < len(parts) and prefix(k + 2, 0) and prefix(k, len(parts[k])):
        k += 2
    low, high = 0, len(parts[k])  # binary search: the longest matching prefix of literal k
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if prefix(k, mid) else (low, mid - 1)
    found = prefix(k, low)
    at = found.end() if found else 0
    return f"signed: {unescape(parts[k][low:low + 40])!r}, delivered: {unescape(piece[at:at + 40])!r}"


def _locate_text(versions, text: str) -> str:
    for v in versions:
        body = (v.body_text or "").strip()
        if not body or v.kind in ("subject", "preheader"):
            continue
        pieces = TOKEN_RE.split(body)  # literal, token name, literal, …
        if _pattern(pieces).search(text) is None:
            return f"module {v.code}: the text part differs from the signed text"
    return "the text part differs outside the modules (layout or footer lines)"


def _check_images(message: DeliveredMessage, manifest: dict, report: Report) -> None:
    listed = {}
    for image in manifest.get("images") or []:
        for file in image.get("files") or []:
            listed[file.get("url")] = (image, file)
    linked = []
    for tag in IMG_RE.findall(message.html):
        for name, value in ATTR_RE.findall(tag):
            urls = [c.strip().split(" ")[0] for c in unescape(value).split(",")] \
                if name.lower() == "srcset" else [unescape(value)]
            linked += [u for u in urls if u]
    signed_assets = dict(ModuleVersion.objects.filter(
        id__in=[i.get("version_id") for i in manifest.get("images") or []],
        asset__isnull=False).values_list("id", "asset__content_sha256"))
    for url in dict.fromkeys(linked):
        if url not in listed:
            report.differs(f"image {url}: not an image the manifest lists")
            continue
        image, file = listed[url]
        module = image.get("module")
        if signed_assets.get(image.get("version_id")) != image.get("asset_sha256"):
            report.differs(f"module {module}: image asset {str(image.get('asset_sha256'))[:12]}… "
                           "is not the asset signed with the version")
            continue
        file_name = urlsplit(url).path.rsplit("/", 1)[-1]
        data = message.embedded.get(url)
        if data is None:
            data = content_assets.stored_bytes(image["asset_sha256"], file_name)
        if data is None:
            report.differs(f"module {module}: image {url} is not stored any more")
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest != file.get("sha256") or not file_name.startswith(digest):
            report.differs(f"module {module}: the image bytes of {url} (sha256 {digest[:12]}…) "
                           f"are not the approved image (sha256 {str(file.get('sha256'))[:12]}…)")
            continue
        rendition = file.get("rendition")
        if rendition != content_assets.ORIGINAL:
            extension = file_name.rsplit(".", 1)[-1]
            derived = content_assets.derived_rendition_sha256(image["asset_sha256"], extension,
                                                              rendition)
            if derived != digest:
                report.differs(f"module {module}: image {url} is not the {rendition} rendition "
                               "of the signed original")
                continue
        report.checked.append(f"module {module}: image {rendition} sha256 {digest[:12]}… "
                              f"of asset {image['asset_sha256'][:12]}…")
