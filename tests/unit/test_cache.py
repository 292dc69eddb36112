"""The size-bounded cache that keeps parsed site configurations and run JSON."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lastgang.cache import SizedCache


def test_the_least_recently_used_entry_is_dropped_first() -> None:
    cache: SizedCache[str, int] = SizedCache(10)
    cache.put("a", 1, 4)
    cache.put("b", 2, 4)
    assert cache.get("a") == 1  # now the most recently used
    cache.put("c", 3, 4)  # 12 > 10: "b" goes
    assert cache.keys_by_use() == ["a", "c"]
    assert cache.get("b") is None
    assert cache.held == 8 and len(cache) == 2


def test_a_value_larger_than_the_budget_is_not_kept_and_drops_nothing() -> None:
    cache: SizedCache[str, str] = SizedCache(10)
    cache.put("a", "x", 10)
    cache.put("big", "y", 11)
    assert cache.keys_by_use() == ["a"] and cache.get("big") is None


def test_putting_a_key_again_replaces_its_value_and_size() -> None:
    cache: SizedCache[str, str] = SizedCache(10)
    cache.put("a", "old", 6)
    cache.put("b", "b", 3)
    cache.put("a", "new", 2)
    assert cache.get("a") == "new" and cache.held == 5
    assert cache.keys_by_use() == ["b", "a"]
    cache.clear()
    assert len(cache) == 0 and cache.held == 0


def test_a_budget_below_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="0 or more"):
        SizedCache(-1)


@given(
    budget=st.integers(0, 50),
    steps=st.lists(st.tuples(st.booleans(), st.integers(0, 6), st.integers(0, 20)), max_size=60),
)
def test_the_cache_behaves_like_a_list_in_order_of_use(
    budget: int, steps: list[tuple[bool, int, int]]
) -> None:
    """Against a naive model: a list of (key, size) in order of use, the oldest dropped while
    the sizes exceed the budget."""
    cache: SizedCache[int, int] = SizedCache(budget)
    model: list[tuple[int, int]] = []
    for is_put, key, size in steps:
        if is_put:
            if size > budget:
                continue
            model = [(k, s) for k, s in model if k != key] + [(key, size)]
            while sum(s for _, s in model) > budget:
                model.pop(0)
            cache.put(key, key * 100 + size, size)
        else:
            found = [(k, s) for k, s in model if k == key]
            if found:
                model = [(k, s) for k, s in model if k != key] + found
                assert cache.get(key) == key * 100 + found[0][1]
            else:
                assert cache.get(key) is None
        assert cache.keys_by_use() == [k for k, _ in model]
        assert cache.held == sum(s for _, s in model) <= budget


def test_threads_never_leave_the_cache_over_its_budget() -> None:
    cache: SizedCache[int, int] = SizedCache(100)

    def work(offset: int) -> None:
        for k in range(2000):
            cache.put((k * 7 + offset) % 50, k, k % 13)
            cache.get(k % 50)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 0 < cache.held <= 100
    # the sizes were counted consistently: a value of the whole budget leaves only itself
    cache.put(-1, -1, 100)
    assert cache.keys_by_use() == [-1] and cache.held == 100


def test_a_value_is_made_once_however_many_threads_ask_for_it_at_once() -> None:
    cache: SizedCache[str, list[int]] = SizedCache(1000)
    made: list[int] = []
    asking = threading.Barrier(6)

    def make() -> list[int]:
        time.sleep(0.2)  # every other thread asks while this one makes it
        made.append(1)
        return [42]

    got: list[list[int]] = []

    def ask() -> None:
        asking.wait(5)
        got.append(cache.get_or_make("chart", make, len))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert made == [1]
    assert len(got) == 6 and all(g is got[0] for g in got) and got[0] == [42]
    assert cache.held == 1


def test_a_value_that_fails_to_be_made_is_not_kept() -> None:
    cache: SizedCache[str, int] = SizedCache(10)

    def fail() -> int:
        raise RuntimeError("store gone")

    with pytest.raises(RuntimeError, match="store gone"):
        cache.get_or_make("k", fail, lambda _: 1)
    assert len(cache) == 0
    assert cache.get_or_make("k", lambda: 7, lambda _: 1) == 7
    assert cache.get_or_make("k", fail, lambda _: 1) == 7  # kept: not made again
    # a value too large for the budget is given but not kept
    assert cache.get_or_make("big", lambda: 8, lambda _: 11) == 8 and cache.get("big") is None


def test_a_value_without_a_key_is_made_each_time_and_never_kept() -> None:
    cache: SizedCache[str, int] = SizedCache(10)
    made: list[int] = []

    def make() -> int:
        made.append(1)
        return len(made)

    assert cache.get_or_make(None, make, lambda _: 1) == 1
    assert cache.get_or_make(None, make, lambda _: 1) == 2
    assert len(cache) == 0 and cache.held == 0
