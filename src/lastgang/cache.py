"""A small thread-safe cache bounded by the size of what it holds, the least recently used
entry dropped first. For values that are slow to make and never change once made: a parsed
site configuration (by its JSON text), a parsed run JSON (by its run and fingerprint), the
data of a chart (by the site's change stamp and the view)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["SizedCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: locks a cache makes its values under (a key takes the one of its hash)
_MAKING_LOCKS = 16


class SizedCache(Generic[K, V]):
    """At most ``budget`` units of size in all (the caller says what a value's size is,
    usually the length of the text it was parsed from). A value larger than the whole budget is
    not kept."""

    def __init__(self, budget: int) -> None:
        if budget < 0:
            raise ValueError("a cache's budget is 0 or more")
        self.budget = budget
        self._entries: OrderedDict[K, tuple[int, V]] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()
        # held while a value is made (by the key's hash): one key is made once at a time
        self._making = [threading.Lock() for _ in range(_MAKING_LOCKS)]

    def get(self, key: K) -> V | None:
        """The value kept for ``key`` (now the most recently used), or ``None``."""
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
            return found[1]

    def put(self, key: K, value: V, size: int) -> None:
        """Keep ``value`` for ``key`` unless it is larger than the budget, dropping the least
        recently used entries until everything fits."""
        if size > self.budget:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._held -= old[0]
            self._entries[key] = (size, value)
            self._held += size
            while self._held > self.budget:
                _, (dropped, _) = self._entries.popitem(last=False)
                self._held -= dropped

    def get_or_make(self, key: K | None, make: Callable[[], V], size: Callable[[V], int]) -> V:
        """The value kept for ``key``, else ``make()``, kept with the size ``size`` gives it.
        Threads that ask for the same key while it is made wait for it and get the same value
        instead of making it again (keys of the same hash bucket wait for each other too).
        Without a key (nothing to tell the value by) it is made and not kept."""
        if key is None:
            return make()
        found = self.get(key)
        if found is not None:
            return found
        with self._making[hash(key) % len(self._making)]:
            found = self.get(key)
            if found is None:
                found = make()
                self.put(key, found, size(found))
        return found

    @property
    def held(self) -> int:
        """The size of everything kept."""
        with self._lock:
            return self._held

    def keys_by_use(self) -> list[K]:
        """The keys kept, the least recently used first."""
        with self._lock:
            return list(self._entries)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._held = 0
