"""The canonical sha256 of a module version: what MLR signs, stated once.

Computed from plain values, so the model (when a version is saved and signed) and the
assembly (when it reads a version to deliver it) hash exactly the same thing: a version is
delivered only if the hash of what was read equals the sha256 its signatures carry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class SignedTags:
    """The tag sets of a version as the hash covers them (codes, not ids)."""

    audiences: Iterable[str]
    specialties: Iterable[str]
    stages: Iterable[str]  # "audience code:stage code"
    jurisdictions: Iterable[str]
    channels: Iterable[str]
    citations: Iterable[str]  # "reference code:citation"
    requires: Iterable[str] = ()  # companion module codes
    excludes: Iterable[str] = ()  # excluded module codes


def canonical_sha256(*, module: str | None, number: int | None, locale: str | None,
                     subject: str, body_html: str, body_text: str, asset: str | None,
                     token_fallbacks: dict | None, valid_from: datetime | None,
                     tags: SignedTags | None) -> str:
    """sha256 over a canonical JSON of everything a reviewer signs for.

    `asset` is the image's content sha256 (its bytes), `tags` None for a version not saved
    yet (it has none). Companions and exclusions enter only when there are some, so the
    hash of a version without any is the one it had before they were signed content.
    """
    payload: dict = {
        "module": module,
        "number": number,
        "locale": locale,
        "subject": subject,
        "body_html": body_html,
        "body_text": body_text,
        "asset": asset,
        "token_fallbacks": token_fallbacks or {},
        "valid_from": valid_from.astimezone(UTC).isoformat() if valid_from else None,
    }
    if tags is not None:
        payload.update(
            audiences=sorted(tags.audiences), specialties=sorted(tags.specialties),
            stages=sorted(tags.stages), jurisdictions=sorted(tags.jurisdictions),
            channels=sorted(tags.channels), citations=sorted(tags.citations),
        )
        if tags.requires:
            payload["requires"] = sorted(tags.requires)
        if tags.excludes:
            payload["excludes"] = sorted(tags.excludes)
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
