"""The assembly's process caches, all `cms.lru.LRUCache` (bounded, with hit/miss counters).

Each key holds everything its value depends on, so an entry is never stale, only unused:

- `LOCKED_CONTENT`: text, tags, citations, companions and exclusions of a locked
  (approved, expired, withdrawn) version, by (id, created_at, the version row's signed
  fields and sha256, its asset's sha256, the sha256 its approval signatures carry). Only
  content whose hash as read equals the signed sha256 is ever put here
  (`snapshot.verified_problem`): content changed behind the application is read again,
  fails the check and is never cached. States and validity are read every time.
- `ASSET_BYTES`: image files whose bytes hashed to their asset's recorded sha256, by
  (asset id, file name, sha256, file size / mtime / inode): a changed file is hashed again.
- `SIGNATURES`: approval signatures of a version, by (id, state, approved_at): a withdrawal
  or a new approval round changes the key.
- `LAYOUT_FINGERPRINTS`: name and sha256 of a layout's templates, by layout and the
  templates' modification times.
- `RENDERED`: a prepared combination (layout rendered, CSS inlined, tokens compiled), by
  every input of the rendering (versions with their sha256, layout sha256, footer, brand,
  locale, year). Compliance is still checked on every assembly from freshly read states.
"""

from __future__ import annotations

from cms.lru import CacheStats, LRUCache

LOCKED_CONTENT = LRUCache(20_000, name="assembly.locked_content")
SIGNATURES = LRUCache(20_000, name="assembly.signatures")
ASSET_BYTES = LRUCache(4_096, name="assembly.asset_bytes")
LAYOUT_FINGERPRINTS = LRUCache(64, name="assembly.layout_fingerprints")
RENDERED = LRUCache(512, name="assembly.rendered")

ALL = (LOCKED_CONTENT, SIGNATURES, ASSET_BYTES, LAYOUT_FINGERPRINTS, RENDERED)


def stats() -> list[CacheStats]:
    return [cache.stats() for cache in ALL]


def clear() -> None:
    """Empty every assembly cache (tests, or after restoring a database)."""
    for cache in ALL:
        cache.clear()
