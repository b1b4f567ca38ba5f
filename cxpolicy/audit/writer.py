"""Group commit: one writer thread, one transaction for the records of many concurrent callers.

Input: records from many threads. Output: batched transactions on one writer thread.

The service may answer a decision only once its record is durable, and a durable commit costs
an fsync (milliseconds). Committing each record alone caps throughput at one record per
fsync; here every caller enqueues an operation and blocks, the writer drains whatever has
queued up while the previous commit was syncing, runs all of it in one transaction, and wakes
each caller once that transaction has committed. Under load a batch grows by itself; with a
single caller it is one record per commit and no added delay (there is no timer).

Errors are never dropped: a failed batch is rolled back, the operation that failed (an
illegal escalation move, a duplicate decision id) fails alone and the others are retried
without it, and a storage failure (a locked database, a full disk) reaches every caller of the
batch. Nothing here knows SQL or the chain: `begin()` supplies the transaction, the operations
do the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["GroupCommitWriter", "SinkClosed", "WriterStats"]

T = TypeVar("T")  # the transaction type
R = TypeVar("R")


class SinkClosed(RuntimeError):
    """The sink was closed; nothing submitted after that is written."""


@dataclass(slots=True)
class WriterStats:
    """Counters for metrics and the benchmark: ops per batch is the group-commit factor."""

    batches: int = 0
    ops: int = 0
    failures: int = 0
    largest_batch: int = 0


class _Pending:
    __slots__ = ("error", "event", "future", "loop", "op", "result")

    def __init__(self, op: Callable[[Any], Any]) -> None:
        self.op = op
        self.result: Any = None
        self.error: BaseException | None = None
        self.event: threading.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.future: asyncio.Future[Any] | None = None

    def finish(self) -> None:
        if self.event is not None:
            self.event.set()
            return
        if self.loop is not None and self.future is not None:
            # RuntimeError: the caller's loop is gone, so nobody is waiting.
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(_settle, self.future, self.result, self.error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class GroupCommitWriter(Generic[T]):
    """Runs submitted operations on one thread, many per transaction.

    `begin()` returns a context manager that opens a write transaction, yields it, commits
    on a clean exit and rolls back when the block raises.
    """

    def __init__(
        self,
        begin: Callable[[], AbstractContextManager[T]],
        *,
        max_batch: int = 512,
        name: str = "cxpolicy-audit-writer",
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._begin = begin
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self.stats = WriterStats()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, op: Callable[[T], R]) -> R:
        """Run `op` in a write transaction; return its result once that transaction committed,
        or raise what it (or the commit) raised."""
        pending = _Pending(op)
        pending.event = threading.Event()
        self._enqueue(pending)
        pending.event.wait()
        if pending.error is not None:
            raise pending.error
        return pending.result  # type: ignore[no-any-return]

    async def asubmit(self, op: Callable[[T], R]) -> R:
        """`submit` for an asyncio caller: awaits the commit without holding a thread."""
        loop = asyncio.get_running_loop()
        pending = _Pending(op)
        pending.loop = loop
        pending.future = loop.create_future()
        self._enqueue(pending)
        return await pending.future  # type: ignore[no-any-return]

    def _enqueue(self, pending: _Pending) -> None:
        with self._lock:
            if self._closed:
                raise SinkClosed("the audit sink is closed")
            self._queue.put(pending)

    def close(self) -> None:
        """Finish everything already submitted, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()

    @property
    def closed(self) -> bool:
        return self._closed

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)

    def _commit(self, batch: list[_Pending]) -> None:
        """Commit `batch` in one transaction; on failure, find whom the failure belongs to.

        An operation that raised fails alone and the rest of the batch is retried without it.
        A failure of the storage itself (a locked database, a full disk) fails the whole batch
        at once: retrying each operation would multiply the wait. Anything else raised while
        writing or committing (a duplicate decision id found at insert) may belong to any
        operation, so each is retried on its own.
        """
        while batch:
            culprit: _Pending | None = None
            try:
                with self._begin() as tx:
                    for pending in batch:
                        culprit = pending
                        pending.result = pending.op(tx)
                    culprit = None
            except BaseException as exc:  # rolled back: nothing of this batch is durable
                self.stats.failures += 1
                for pending in batch:
                    pending.result = None
                if culprit is not None:
                    culprit.error = exc
                    culprit.finish()
                    batch = [p for p in batch if p is not culprit]
                    continue
                if len(batch) > 1 and not _storage_failure(exc):
                    for pending in batch:
                        self._commit([pending])
                    return
                for pending in batch:
                    pending.error = exc
                    pending.finish()
                return
            self.stats.batches += 1
            self.stats.ops += len(batch)
            self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
            for pending in batch:
                pending.finish()
            return


def _storage_failure(exc: BaseException) -> bool:
    """The database itself failed (sqlite3 and psycopg both call it OperationalError)."""
    return isinstance(exc, OSError) or type(exc).__name__ == "OperationalError"
