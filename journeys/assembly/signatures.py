"""Approval signatures of the versions in a manifest, cached while a version stays
approved as it was."""

from __future__ import annotations

from approvals.selectors import approval_signatures_for_versions
from content.models import LOCKED_STATES

from . import cache


def read_signatures(versions) -> dict[int, list[dict]]:
    """Approval signatures per locked version (drafts and reviews have no approval).

    `versions`: anything with `id`, `state` and `approved_at` (a datetime), e.g.
    `snapshot.VersionSnapshot`; the snapshot reads them before trusting any content.

    The signatures of an approval round never change; a withdrawal or a new round changes
    the state or approved_at, which are part of the key, so nothing stale is ever served.
    One query for the versions not cached, none when all are.
    """
    keys = {v.id: (v.id, v.state, v.approved_at) for v in versions if v.state in LOCKED_STATES}
    found, missing = {}, []
    for vid, key in keys.items():
        signatures = cache.SIGNATURES.get(key)
        if signatures is None:
            missing.append(vid)
        else:
            found[vid] = signatures
    if missing:
        fresh = approval_signatures_for_versions(missing)
        for vid in missing:
            found[vid] = fresh.get(vid, [])
            if keys[vid][2] is not None:  # without approved_at the key cannot tell rounds apart
                cache.SIGNATURES.put(keys[vid], found[vid])
    return found
