"""The assembly's process caches, all `cms.lru.LRUCache` (bounded, with hit/miss counters).

Each key holds everything its value depends on, so an entry is never stale, only unused:

- `LOCKED_CONTENT`: text and tags of a locked (approved, expired, withdrawn) version, by
  (id, sha256, created_at). Locked content never changes (model and signal guards; the
  sha256 covers it). States, validity, companions and exclusions are read every time.
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
LAYOUT_FINGERPRINTS = LRUCache(64, name="assembly.layout_fingerprints")
RENDERED = LRUCache(512, name="assembly.rendered")

ALL = (LOCKED_CONTENT, SIGNATURES, LAYOUT_FINGERPRINTS, RENDERED)


def stats() -> list[CacheStats]:
    return [cache.stats() for cache in ALL]


def clear() -> None:
    """Empty every assembly cache (tests, or after restoring a database)."""
    for cache in ALL:
        cache.clear()
