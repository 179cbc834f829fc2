"""cms.lru.LRUCache: bounded, least recently used out first, counts hits and misses."""

import threading

import pytest

from cms.lru import LRUCache


def test_least_recently_used_entry_is_dropped_first():
    cache = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.put("c", 3)
    assert "b" not in cache
    assert cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2


def test_rewriting_a_key_makes_it_recent_and_does_not_grow():
    cache = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 10)
    cache.put("c", 3)
    assert "b" not in cache
    assert cache.get("a") == 10
    assert len(cache) == 2


def test_hits_and_misses_are_counted_and_reset_by_clear():
    cache = LRUCache(4, name="things")
    cache.put("a", [])
    assert cache.get("a") == []  # a falsy value is still a hit
    assert cache.get("x") is None
    stats = cache.stats()
    assert (stats.name, stats.size, stats.max_size, stats.hits, stats.misses) == (
        "things", 1, 4, 1, 1)
    cache.clear()
    assert cache.stats().hits == cache.stats().misses == len(cache) == 0


def test_none_and_non_positive_sizes_are_refused():
    with pytest.raises(ValueError):
        LRUCache(0)
    with pytest.raises(ValueError):
        LRUCache(1).put("a", None)


def test_concurrent_writers_never_exceed_the_bound():
    cache = LRUCache(50)

    def write(offset):
        for i in range(2_000):
            cache.put(offset + i, i)
            cache.get(offset + i // 2)

    threads = [threading.Thread(target=write, args=(n * 10_000,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 50
    assert cache.stats().hits + cache.stats().misses == 8_000
