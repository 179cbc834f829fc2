"""A bounded, thread-safe least-recently-used cache with hit and miss counters.

The one process cache class of the project (assembly today; delivery and content may
reuse it). `functools.lru_cache` memoises a function and cannot be filled from a batch
read or keyed independently of its arguments; `cachetools.LRUCache` would still need the
lock and the counters around it, so the standard library's `OrderedDict` is used directly.
Values must not be `None`: `get` returns `None` for a miss.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CacheStats:
    name: str
    size: int
    max_size: int
    hits: int
    misses: int


class LRUCache:
    """At most `max_size` entries; reading or writing an entry makes it the most recent,
    and the least recently used entry is dropped when a new one does not fit."""

    def __init__(self, max_size: int, *, name: str = ""):
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self.name = name
        self.max_size = max_size
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: Any) -> None:
        if value is None:
            raise ValueError("LRUCache cannot hold None (it means a miss)")
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        """Drop every entry and reset the counters."""
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:  # does not count as a hit or a miss
        return key in self._items

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self.name, len(self._items), self.max_size, self.hits, self.misses)
