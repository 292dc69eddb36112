"""Background jobs: imports, configuration versions and billing runs run one after another in a
worker thread, so the server keeps answering while a year of data is imported.

Every job is recorded (``web_jobs``) with what it needs to run before the caller is told it was
accepted; a job the process did not finish (a crash, a kill) is queued again at the next start.
Each job's work is one store transaction (see :mod:`lastgang.services`): it happens completely
or not at all, and running a job a second time is harmless (an archived input is recognised by
its SHA-256 and skipped).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lastgang.api.accounts import Accounts, JobRecord
from lastgang.api.problems import problem_for_error
from lastgang.errors import LastgangError
from lastgang.store import Store

__all__ = ["JobContext", "JobHandler", "JobRunner", "Progress"]

log = logging.getLogger("lastgang.api.jobs")


@dataclass
class Progress:
    what: str = "queued"
    done: int = 0
    total: int = 0


@dataclass
class JobContext:
    """What a job handler gets: the worker's own store, the accounts (audit log), the job and a
    progress callback."""

    store: Store
    accounts: Accounts
    job: JobRecord
    payload: bytes | None
    progress: Callable[[str, int, int], None]


JobHandler = Callable[[JobContext], dict[str, Any]]


class JobRunner:
    """One worker thread that runs queued jobs in order with its own store connection."""

    def __init__(self, store_factory: Callable[[], Store], accounts: Accounts) -> None:
        self._factory = store_factory
        self._accounts = accounts
        self._handlers: dict[str, JobHandler] = {}
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._progress: dict[int, Progress] = {}
        self._done: dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def register(self, kind: str, handler: JobHandler) -> None:
        self._handlers[kind] = handler

    def start(self) -> None:
        """Queue again what an earlier process left unfinished, then start the worker."""
        if self._thread is not None:
            return
        for job in reversed(self._accounts.jobs(states=("queued", "running"), limit=10_000)):
            if job.state == "running":
                self._accounts.set_job_state(job.id, "queued")
            self._enqueue(job.id)
        self._thread = threading.Thread(target=self._run, name="lastgang-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        self._thread = None

    def _enqueue(self, job_id: int) -> None:
        with self._lock:
            self._progress[job_id] = Progress()
            self._done[job_id] = threading.Event()
        self._queue.put(job_id)

    def submit(
        self,
        kind: str,
        site_id: str,
        actor: str,
        params: dict[str, Any],
        payload: bytes | None = None,
    ) -> JobRecord:
        """Record a job and queue it; returns the record (state ``queued``)."""
        if kind not in self._handlers:
            raise KeyError(f"no handler for jobs of kind {kind!r}")
        job = self._accounts.add_job(kind, site_id, actor, params, payload)
        self._enqueue(job.id)
        return job

    def wait(self, job_id: int, timeout: float) -> JobRecord | None:
        """The finished job, or ``None`` if it has not finished within ``timeout`` seconds."""
        with self._lock:
            event = self._done.get(job_id)
        if event is not None and not event.wait(timeout):
            return None
        return self._accounts.job(job_id)

    def progress(self, job_id: int) -> Progress | None:
        with self._lock:
            p = self._progress.get(job_id)
            return None if p is None else Progress(p.what, p.done, p.total)

    def pending(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        store = self._factory()
        try:
            while True:
                job_id = self._queue.get()
                if job_id is None:
                    return
                self._run_one(store, job_id)
        finally:
            store.close()

    def _run_one(self, store: Store, job_id: int) -> None:
        job = self._accounts.job(job_id)
        if job is None or job.state not in ("queued", "running"):
            self._finish(job_id)
            return
        self._accounts.set_job_state(job_id, "running")

        def progress(what: str, done: int, total: int) -> None:
            with self._lock:
                self._progress[job_id] = Progress(what, done, total)

        handler = self._handlers[job.kind]
        try:
            result = handler(
                JobContext(store, self._accounts, job, self._accounts.job_payload(job_id), progress)
            )
        except LastgangError as exc:
            doc = problem_for_error(exc).document(f"/api/v1/jobs/{job_id}")
            self._accounts.set_job_state(job_id, "failed", {"problem": doc.model_dump()})
        except Exception as exc:  # the job fails, the worker goes on
            log.exception("job %s (%s) failed", job_id, job.kind)
            doc = problem_for_error(
                LastgangError(f"the job stopped on an internal error ({type(exc).__name__})")
            ).document(f"/api/v1/jobs/{job_id}")
            doc.status, doc.type, doc.title = 500, "urn:lastgang:problem:internal", "Internal"
            self._accounts.set_job_state(job_id, "failed", {"problem": doc.model_dump()})
        else:
            self._accounts.set_job_state(job_id, "done", result)
        self._finish(job_id)

    def _finish(self, job_id: int) -> None:
        with self._lock:
            p = self._progress.get(job_id)
            if p is not None:
                p.what = "finished"
                p.done = p.total
            event = self._done.get(job_id)
        if event is not None:
            event.set()
