"""Group commit: many requests' transactions written with one commit (one fsync).

One writer thread takes every job waiting in its queue, runs them in a single
transaction and commits once. When a job raises, the transaction is rolled back and
the other jobs are run again, each in its own SAVEPOINT of a new transaction, so
that the failed job is undone alone and the others still commit: a job may run more
than once, so it must do its writes, and any work it keeps, inside the call (a job
never sees its own earlier attempt's writes). No job's future resolves
before the commit that makes it durable, so a caller is never told "done" for
something a crash could lose. While one batch is being committed, the next one
collects, so batches grow with load and stay at one job when idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

log = logging.getLogger(__name__)

Job = Callable[[Session], Any]

_HOOKS = "opsroom.before_commit"


def before_commit(session: Session, key: str, fn: Callable[[Session], None]) -> bool:
    """Run fn(session) once, just before the group writer commits the batch this session is writing.

    For work that can be done once per batch rather than once per job (the audit chain's signature
    over its new head). The first registration of a key wins. False when the session is not a group
    writer's: the caller does the work itself.
    """
    hooks = session.info.get(_HOOKS)
    if hooks is None:
        return False
    if key not in hooks:
        session.info[_HOOKS] = {**hooks, key: fn}  # a new dict: savepoint() restores the old one
    return True


@contextlib.contextmanager
def savepoint(session: Session) -> Iterator[None]:
    """A SAVEPOINT; when the block raises, its writes are rolled back and session.info (per-transaction
    caches such as the audit head, and before-commit hooks) is put back as it was when it began."""
    before = dict(session.info)
    nested = session.begin_nested()
    try:
        yield
    except BaseException:
        nested.rollback()
        session.info.clear()
        session.info.update(before)
        raise
    nested.commit()


@dataclass
class _Pending:
    fn: Job
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
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

    def submit(self, fn: Job) -> asyncio.Future[Any]:
        """Queue fn(session); the future (of the running loop) resolves once its batch has committed."""
        self._ensure_started()
        loop = asyncio.get_running_loop()
        pending = _Pending(fn, loop, loop.create_future())
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
        if not self._run(batch, alone=False):  # a job failed: the batch is undone; the others one at a time
            self._run([job for job in batch if job.error is None], alone=True)
        # One wake-up per event loop for the whole batch, not one per job.
        loops: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}
        for job in batch:
            loops.setdefault(job.loop, []).append(job)
        for loop, jobs in loops.items():
            with contextlib.suppress(RuntimeError):  # that loop has closed: nobody is waiting any more
                loop.call_soon_threadsafe(_settle, jobs)

    def _run(self, batch: list[_Pending], *, alone: bool) -> bool:
        """Run the jobs in one transaction and commit it.

        Together (alone=False), without a savepoint each (a SAVEPOINT and its RELEASE cost a request
        more than its own statements): the first job that raises undoes the whole batch, and False says
        so (that job has its error; the others are to be run again). Alone: each job in its own
        savepoint, so one that raises is rolled back alone and the others still commit.
        """
        if not batch:
            return True
        try:
            with self._session_factory() as session, session.begin():
                session.info[_HOOKS] = {}
                for job in batch:
                    try:
                        if alone:
                            with savepoint(session):
                                job.result = job.fn(session)
                        else:
                            job.result = job.fn(session)
                    except BaseException as exc:  # the job's own failure
                        job.error = exc
                        if not alone:
                            raise _Undo from exc
                for hook in session.info.pop(_HOOKS).values():
                    hook(session)
        except _Undo:
            for job in batch:
                job.result = None
            return False
        except BaseException as exc:  # the commit itself failed: nothing in the batch is durable
            log.error("group commit of %d jobs failed: %s", len(batch), type(exc).__name__)
            for job in batch:
                job.error = job.error or exc
                job.result = None
        else:
            self.batches += 1
            self.jobs += len(batch)
        return True


class _Undo(Exception):
    """A job of a batch run together raised: the whole transaction is rolled back."""


def _settle(jobs: list[_Pending]) -> None:
    """Resolve a batch's futures, on their own loop."""
    for job in jobs:
        if job.future.done():  # the caller gave up waiting (cancelled)
            continue
        if job.error is not None:
            job.future.set_exception(job.error)
        else:
            job.future.set_result(job.result)
