"""The group-commit writer on its own, with a fake transaction: batching, error ownership,
and that nobody is woken before their batch committed."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from cxpolicy.audit.writer import GroupCommitWriter, SinkClosed


class FakeStore:
    """Transactions that record what committed; the first one can be held open."""

    def __init__(self) -> None:
        self.committed: list[list[Any]] = []
        self.begins = 0
        self.hold = threading.Event()
        self.held = threading.Event()
        self.fail_commit: BaseException | None = None

    @contextmanager
    def begin(self) -> Iterator[list[Any]]:
        self.begins += 1
        if self.begins == 1:
            self.held.set()
            self.hold.wait(10)
        tx: list[Any] = []
        yield tx
        if self.fail_commit is not None:
            raise self.fail_commit
        self.committed.append(tx)


def op(value: Any, fail: BaseException | None = None) -> Any:
    def run(tx: list[Any]) -> Any:
        if fail is not None:
            raise fail
        tx.append(value)
        return value

    return run


def submit_in_threads(writer: GroupCommitWriter[list[Any]], ops: list[Any]) -> list[Any]:
    results: list[Any] = [None] * len(ops)

    def call(i: int) -> None:
        try:
            results[i] = writer.submit(ops[i])
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(ops))]
    for t in threads:
        t.start()
    return [threads, results]


def wait_queued(writer: GroupCommitWriter[list[Any]], n: int) -> None:
    for _ in range(10_000):  # bounded: the threads only have to reach put()
        if writer._queue.qsize() >= n:
            return
        time.sleep(0.001)
    raise AssertionError("operations were not queued")


def test_concurrent_callers_share_one_commit() -> None:
    store = FakeStore()
    writer = GroupCommitWriter(store.begin)
    first = threading.Thread(target=writer.submit, args=(op("first"),))
    first.start()
    assert store.held.wait(10)  # the writer is inside the first transaction
    threads, results = submit_in_threads(writer, [op(i) for i in range(5)])
    wait_queued(writer, 5)
    assert all(r is None for r in results)  # nobody answered before their commit
    store.hold.set()
    for t in [first, *threads]:
        t.join()
    assert results == [0, 1, 2, 3, 4]
    assert store.committed == [["first"], [0, 1, 2, 3, 4]]
    assert writer.stats.batches == 2 and writer.stats.largest_batch == 5
    writer.close()


def test_failing_operation_fails_alone() -> None:
    store = FakeStore()
    writer = GroupCommitWriter(store.begin)
    first = threading.Thread(target=writer.submit, args=(op("first"),))
    first.start()
    assert store.held.wait(10)
    ops = [op(0), op(1, ValueError("illegal")), op(2), op(3)]
    threads, results = submit_in_threads(writer, ops)
    wait_queued(writer, 4)
    store.hold.set()
    for t in [first, *threads]:
        t.join()
    assert results[0] == 0 and results[2:] == [2, 3]
    assert isinstance(results[1], ValueError)
    assert store.committed[-1] == [0, 2, 3]
    writer.close()


def test_storage_failure_reaches_every_caller_without_retries() -> None:
    store = FakeStore()
    writer = GroupCommitWriter(store.begin)
    first_threads, _ = submit_in_threads(writer, [op("first")])
    (first,) = first_threads
    assert store.held.wait(10)
    store.fail_commit = sqlite3.OperationalError("database is locked")
    threads, results = submit_in_threads(writer, [op(i) for i in range(4)])
    wait_queued(writer, 4)
    store.hold.set()
    for t in [first, *threads]:
        t.join()
    assert all(isinstance(r, sqlite3.OperationalError) for r in results)
    assert store.begins == 2  # the held one (which failed too), then one for the batch of 4
    assert store.committed == []
    writer.close()


def test_other_commit_failure_is_retried_per_operation() -> None:
    """A failure at commit that may belong to any operation (a duplicate id found at insert):
    each operation is retried alone, so only the one it belongs to fails."""
    committed: list[list[Any]] = []

    @contextmanager
    def begin() -> Iterator[list[Any]]:
        tx: list[Any] = []
        yield tx
        if "dup" in tx:
            raise sqlite3.IntegrityError("UNIQUE constraint failed")
        committed.append(tx)

    gate, running = threading.Event(), threading.Event()

    def hold(tx: list[Any]) -> None:
        running.set()
        gate.wait(10)

    writer = GroupCommitWriter(begin)
    blocker = threading.Thread(target=writer.submit, args=(hold,))
    blocker.start()
    assert running.wait(10)  # the writer is inside the first transaction
    threads, results = submit_in_threads(writer, [op("a"), op("dup"), op("b")])
    wait_queued(writer, 3)
    gate.set()
    for t in [blocker, *threads]:
        t.join()
    assert results[0] == "a" and results[2] == "b"
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert ["a"] in committed and ["b"] in committed
    writer.close()


def test_async_submit_and_close() -> None:
    store = FakeStore()
    store.hold.set()
    writer = GroupCommitWriter(store.begin)

    async def main() -> list[Any]:
        return list(await asyncio.gather(*(writer.asubmit(op(i)) for i in range(20))))

    assert asyncio.run(main()) == list(range(20))

    async def failing() -> None:
        await writer.asubmit(op(0, KeyError("x")))

    with pytest.raises(KeyError):
        asyncio.run(failing())
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(SinkClosed):
        writer.submit(op(1))
    with pytest.raises(ValueError):
        GroupCommitWriter(store.begin, max_batch=0)
