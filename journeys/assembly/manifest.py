"""The manifest of an assembly: which versions, approved by whom, in which layout, and
hashes of the output and of the recipient data (never the data itself)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime

from .rendering import image_manifest

MANIFEST_VERSION = 1


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def build_manifest(ctx, all_picks: list) -> dict:
    """The manifest of one combination (`all_picks`: (slot, version or None) per slot) in
    the step context `ctx`, without the per-recipient hashes. The footer is listed like any
    module (slot null) and named in `footer` (reproduction pins it)."""
    used = [(slot.order, v) for slot, v in all_picks if v is not None]
    if ctx.footer is not None:
        used.append((None, ctx.footer))
    modules = [
        {
            "slot": order, "module": v.code, "kind": v.kind, "purpose": v.purpose,
            "version": v.number, "version_id": v.id, "sha256": v.sha256, "state": v.state,
            "locale": v.locale, "approved_at": iso(v.approved_at),
            "expires_at": iso(v.expires_at),
            "signatures": ctx.signatures.get(v.id, []),
        }
        for order, v in used
    ]
    return {
        "manifest_version": MANIFEST_VERSION,
        "journey": ctx.journey_slug, "step": ctx.step_key,
        "channel": ctx.channel, "jurisdiction": ctx.jurisdiction_code, "locale": ctx.locale,
        "layout": ctx.layout_info,
        "footer": ctx.footer.id if ctx.footer is not None else None,
        "modules": modules,
        # Every image file the message links, by URL, with its sha256 and its asset's.
        "images": image_manifest([v for _, v in used], ctx.layout),
        "slots": [v.id if v is not None else None for _, v in all_picks],
        "assembled_at": iso(ctx.now),
    }


def output_sha256(subject: str, html: str, text: str) -> str:
    """sha256 over subject, HTML and text, NUL-separated (what the manifest records)."""
    return hashlib.sha256(f"{subject}\0{html}\0{text}".encode()).hexdigest()


def recipient_sha256(recipient: Mapping) -> str:
    """sha256 of the canonical JSON of the recipient data: proof without the data."""
    canonical = json.dumps(recipient, sort_keys=True, ensure_ascii=False,
                           separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
