"""The content of module versions as assembly reads it, verified against what MLR signed.

Verify on read: the content of every locked version (text, tags, citations, companions,
exclusions, image bytes) is hashed as read, by the one rule in `content.signing_hash`, and
compared with the sha256 its append-only approval signatures carry. A version that does
not match gets an integrity problem (assembly refuses it: `integrity_mismatch`), is
reported once (`integrity.report`) and never enters a process cache: `LOCKED_CONTENT` and
`ASSET_BYTES` only ever hold content that passed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection

from content.models import LOCKED_STATES, Asset
from content.signing_hash import SignedTags, canonical_sha256

from . import cache, integrity, queries
from .queries import placeholders
from .signatures import read_signatures


@dataclass(frozen=True)
class VersionContent:
    """Text and tags of a version (cached per process once the version is locked)."""

    locale: str
    subject: str
    body_html: str
    body_text: str
    token_fallbacks: dict
    audiences: frozenset = frozenset()
    jurisdictions: frozenset = frozenset()
    channels: frozenset = frozenset()
    stage_ids: frozenset = frozenset()
    specialties: frozenset = frozenset()  # lower-case codes and names
    requires: tuple = ()  # (module_id, code) pairs, sorted
    excludes: tuple = ()
    signed_tags: SignedTags | None = None  # the tags as the signed hash covers them


@dataclass(frozen=True)
class AssetRead:
    """A version's image as read: (url, alt text, width at most 600), its recorded sha256,
    and what is wrong with its bytes ("" when they hash to that sha256)."""

    image: tuple[str, str, int]
    sha256: str
    bytes_problem: str = ""


def as_datetime(value) -> datetime | None:
    """A datetime from a raw row: SQLite gives naive UTC text, PostgreSQL aware values."""
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def read_content(ids: list[int]) -> dict[int, VersionContent]:
    """Text, tags, citations, companions and exclusions of the versions `ids`: two queries."""
    texts: dict[int, tuple] = {}
    tags: dict[str, dict[int, list]] = {name: defaultdict(list) for name in queries.TAG_FIELDS}
    with connection.cursor() as cursor:
        cursor.execute(queries.content_sql(len(ids)), ids)
        for vid, locale, subject, body_html, body_text, fallbacks in cursor.fetchall():
            if isinstance(fallbacks, str):
                fallbacks = json.loads(fallbacks or "{}")
            texts[vid] = (locale, subject or "", body_html or "", body_text or "", fallbacks or {})
        cursor.execute(queries.tags_sql().format(versions=placeholders(ids)),
                       ids * len(queries.TAG_FIELDS))
        for owner, tag, value, extra in cursor.fetchall():
            tags[tag][owner].append((value, extra))
    return {vid: _content(text, {name: rows[vid] for name, rows in tags.items()})
            for vid, text in texts.items()}


def _content(text: tuple, tags: dict[str, list]) -> VersionContent:
    """A VersionContent from its text row and its tag rows ((value, extra) per tag)."""
    def codes(name):
        return [value for value, _ in tags[name]]

    def related(name):
        return tuple(sorted((int(value), code) for value, code in tags[name]))

    requires, excludes = related("requires"), related("excludes")
    return VersionContent(
        *text, audiences=frozenset(codes("audiences")),
        jurisdictions=frozenset(codes("jurisdictions")), channels=frozenset(codes("channels")),
        stage_ids=frozenset(int(value) for value in codes("stages")),
        specialties=frozenset(v.lower() for pair in tags["specialties"] for v in pair),
        requires=requires, excludes=excludes,
        signed_tags=SignedTags(
            audiences=codes("audiences"), specialties=codes("specialties"),
            stages=[key for _, key in tags["stages"]], jurisdictions=codes("jurisdictions"),
            channels=codes("channels"),
            citations=[f"{code}:{citation}" for code, citation in tags["citations"]],
            requires=[code for _, code in requires], excludes=[code for _, code in excludes]))


def hash_as_read(row, content: VersionContent, asset_sha256: str | None) -> str:
    """The canonical sha256 of a version from the values read (`content.signing_hash`)."""
    return canonical_sha256(
        module=row.code, number=row.number, locale=content.locale, subject=content.subject,
        body_html=content.body_html, body_text=content.body_text, asset=asset_sha256,
        token_fallbacks=content.token_fallbacks, valid_from=as_datetime(row.valid_from),
        tags=content.signed_tags)


@dataclass(frozen=True)
class _SignatureKey:
    id: int
    state: str
    approved_at: datetime | None


def signed_sha256s(rows: list) -> dict[int, str | None]:
    """The sha256 the approval signatures of each locked version carry (None: no approval
    signature, or signatures that disagree)."""
    signatures = read_signatures([_SignatureKey(r.id, r.state, as_datetime(r.approved_at))
                                  for r in rows if r.state in LOCKED_STATES])
    signed = {}
    for vid, found in signatures.items():
        shas = {s["sha256"] for s in found}
        signed[vid] = shas.pop() if len(shas) == 1 else None
    return signed


def verified_problem(row, read_sha256: str, signed: str | None) -> str:
    """Why the content read of a locked version is not what MLR signed ("" when it is)."""
    label = f"{row.code} v{row.number}"
    if signed is None:
        return f"{label} is {row.state} but has no approval signatures to verify it against."
    if read_sha256 != signed or row.sha256 != signed:
        return (f"{label}: the content read (sha256 {read_sha256[:12]}…) is not the content "
                f"MLR signed (sha256 {signed[:12]}…); it was changed outside the application "
                "and is not served.")
    return ""


def verified_contents(rows: list, assets: dict[int, AssetRead]
                       ) -> tuple[dict[int, VersionContent], dict[int, str]]:
    """Content of every row, and the integrity problem of each locked row that has one.

    Locked content comes from the cache when it passed the check under the same key;
    otherwise it is read, hashed and compared with the signatures, and cached only when
    it matches. Drafts and versions in review are read, not verified: their state already
    keeps them from delivery."""
    signed = signed_sha256s(rows)
    by_id = {r.id: r for r in rows}
    keys = {}
    for r in rows:
        if r.state in LOCKED_STATES:
            asset = assets.get(r.asset_id)
            keys[r.id] = (r.id, str(r.created_at), r.sha256, r.code, r.number, str(r.valid_from),
                          r.asset_id, asset.sha256 if asset else None, signed.get(r.id))
    contents: dict[int, VersionContent] = {}
    problems: dict[int, str] = {}
    missing = []
    for r in rows:
        found = cache.LOCKED_CONTENT.get(keys[r.id]) if r.id in keys else None
        if found is None:
            missing.append(r.id)
        else:
            contents[r.id] = found
    if missing:
        fresh = read_content(missing)
        contents.update(fresh)
        for vid, content in fresh.items():
            if vid not in keys:
                continue
            r = by_id[vid]
            asset = assets.get(r.asset_id)
            read_sha256 = hash_as_read(r, content, asset.sha256 if asset else None)
            problem = verified_problem(r, read_sha256, signed.get(vid))
            if problem:
                problems[vid] = problem
                integrity.report(vid, detail=problem, read_sha256=read_sha256,
                                 signed_sha256=signed.get(vid) or "")
            else:
                cache.LOCKED_CONTENT.put(keys[vid], content)
    for vid in keys:
        asset = assets.get(by_id[vid].asset_id)
        if asset is not None and asset.bytes_problem and vid not in problems:
            problems[vid] = f"{by_id[vid].code} v{by_id[vid].number}: {asset.bytes_problem}"
            integrity.report(vid, detail=problems[vid], read_sha256=asset.bytes_problem,
                             signed_sha256=asset.sha256)
    return contents, problems


def read_assets(asset_ids: set[int]) -> dict[int, AssetRead]:
    """The versions' images: (url, alt text, width at most 600), recorded sha256, and
    whether the stored bytes still hash to it."""
    if not asset_ids:
        return {}
    return {asset.pk: AssetRead(
                image=(asset.image.url, asset.alt_text, min(asset.width or 600, 600)),
                sha256=asset.content_sha256, bytes_problem=_asset_bytes_problem(asset))
            for asset in Asset.objects.filter(pk__in=asset_ids).only(
                "image", "alt_text", "width", "content_sha256")}


def _asset_bytes_problem(asset: Asset) -> str:
    """What is wrong with the image file ("" when its bytes hash to the asset's recorded
    sha256). Hashed again whenever the file's size, modification time or inode changes,
    and on every read for a storage without local paths."""
    storage, name = asset.image.storage, asset.image.name
    try:
        status = os.stat(storage.path(name))
        stamp = (status.st_size, status.st_mtime_ns, status.st_ino)
    except NotImplementedError:
        stamp = None
    except OSError:
        return f"the image file of asset {asset.pk} is missing."
    key = (asset.pk, name, asset.content_sha256, stamp)
    if stamp is not None and cache.ASSET_BYTES.get(key):
        return ""
    try:
        with storage.open(name, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return f"the image file of asset {asset.pk} cannot be read."
    if digest != asset.content_sha256:
        return (f"the image bytes of asset {asset.pk} (sha256 {digest[:12]}…) are not the "
                f"approved image (sha256 {asset.content_sha256[:12]}…).")
    if stamp is not None:
        cache.ASSET_BYTES.put(key, True)
    return ""
