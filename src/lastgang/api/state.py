"""What the application holds while it runs: the store connections, the accounts, the job
worker, the login limiter and the templates."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastapi.templating import Jinja2Templates

from lastgang.api.accounts import Accounts
from lastgang.api.auth import LoginLimiter
from lastgang.api.jobs import JobRunner
from lastgang.store import Store, open_store

__all__ = ["AppState", "StorePool"]


class StorePool:
    """Read connections to the store, one per request at a time. DuckDB lets one process hold
    several connections to a database; a reader sees the last committed state, so pages keep
    loading while the worker imports."""

    def __init__(self, path: Path, first: Store) -> None:
        self._path = path
        self._idle: queue.SimpleQueue[Store] = queue.SimpleQueue()
        self._idle.put(first)
        self._all: list[Store] = [first]
        self._lock = threading.Lock()

    def new(self) -> Store:
        store = open_store(self._path)
        with self._lock:
            self._all.append(store)
        return store

    @contextmanager
    def store(self) -> Iterator[Store]:
        try:
            store = self._idle.get_nowait()
        except queue.Empty:
            store = self.new()
        try:
            yield store
        finally:
            self._idle.put(store)

    def close(self) -> None:
        with self._lock:
            for store in self._all:
                store.close()
            self._all.clear()


@dataclass
class AppState:
    path: Path
    pool: StorePool
    accounts: Accounts
    jobs: JobRunner
    templates: Jinja2Templates
    limiter: LoginLimiter
    #: seconds a JSON push of readings waits for its import before answering 202
    push_wait: float = 30.0
    #: ``None``: Secure cookies when the request came over https
    secure_cookies: bool | None = None
    closed: bool = field(default=False)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.jobs.stop()
        self.pool.close()
        self.accounts.close()
