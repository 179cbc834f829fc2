"""Reads of the review workflow for other apps and the reviewer screens."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from .models import Signature


def signatures_for_versions(version_ids: Iterable[int]) -> dict[int, list[dict]]:
    """Signatures of each version, oldest first, in one query.

    Each dict: signer_id, printed_name, role, meaning, signed_at (ISO 8601 UTC, "Z"),
    sha256, round. Versions without signatures map to an empty list.
    """
    ids = list(dict.fromkeys(int(i) for i in version_ids))
    result: dict[int, list[dict]] = {i: [] for i in ids}
    if not ids:
        return result
    for signature in Signature.objects.filter(version_id__in=ids).order_by(
        "version_id", "round", "signed_at", "id"
    ):
        result[signature.version_id].append(signature.manifest_dict())
    return result


def approval_signatures_for_versions(version_ids: Iterable[int]) -> dict[int, list[dict]]:
    """Only the approving signatures of each version's approving round (what a manifest cites)."""
    grouped: dict[int, list[dict]] = defaultdict(list)
    for version_id, signatures in signatures_for_versions(version_ids).items():
        approving = [s for s in signatures if s["meaning"] == "approve"]
        last_round = max((s["round"] for s in approving), default=None)
        grouped[version_id] = [s for s in approving if s["round"] == last_round]
    return dict(grouped)
