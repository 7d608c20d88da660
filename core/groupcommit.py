"""Group commit: many requests' transactions written with one commit (one fsync).

One writer thread takes every job waiting in its queue, runs each inside its own
SAVEPOINT of a single transaction, and commits once. A job that raises is rolled
back to its savepoint alone; the others still commit. No job's future resolves
before the commit that makes it durable, so a caller is never told "done" for
something a crash could lose. While one batch is being committed, the next one
collects, so batches grow with load and stay at one job when idle.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

log = logging.getLogger(__name__)

Job = Callable[[Session], Any]


@dataclass
class _Pending:
    fn: Job
    future: concurrent.futures.Future[Any] = field(default_factory=concurrent.futures.Future)
    result: Any = None
    error: BaseException | None = None


class GroupWriter:
    """A single writer thread committing queued jobs in batches."""

    def __init__(self, session_factory: Callable[[], Session], *, max_batch: int = 256) -> None:
        self._session_factory = session_factory
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0
        self.jobs = 0

    def submit(self, fn: Job) -> concurrent.futures.Future[Any]:
        """Queue fn(session); the future resolves once its batch has committed."""
        self._ensure_started()
        pending = _Pending(fn)
        self._queue.put(pending)
        return pending.future

    def stop(self) -> None:
        """Finish queued work and stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="db-group-writer", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stopping = False
            while len(batch) < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            self._commit(batch)
            if stopping:
                return

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            with self._session_factory() as session, session.begin():
                for job in batch:
                    savepoint = session.begin_nested()
                    try:
                        job.result = job.fn(session)
                        savepoint.commit()
                    except BaseException as exc:  # the job's own failure: only it is undone
                        savepoint.rollback()
                        # session.info holds per-transaction caches (the audit head);
                        # what the rolled-back job put there is no longer true.
                        session.info.clear()
                        job.error = exc
        except BaseException as exc:  # the commit itself failed: nothing in the batch is durable
            log.error("group commit of %d jobs failed: %s", len(batch), type(exc).__name__)
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(job.error or exc)
            return
        self.batches += 1
        self.jobs += len(batch)
        for job in batch:
            if job.error is not None:
                job.future.set_exception(job.error)
            else:
                job.future.set_result(job.result)
