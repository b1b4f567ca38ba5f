"""One-use grants in the audit store: 16 threads race to use one grant; exactly one decision
uses it, the others are decided again with it `already used`; the log links all of them."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cxpolicy.audit import open_sink
from cxpolicy.audit.base import AuditSink
from cxpolicy.audit.grants import GrantAlreadyUsed
from cxpolicy.engine.decision import Decision
from cxpolicy.grants.consume import SpentInMemory, decide_once
from cxpolicy.kinds import Effect
from tests.grants.support import REFUND, policy, token, with_grants

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # test_audit_postgres imports siblings
from tests.audit.test_postgres import dsn, server  # noqa: F401  (PostgreSQL fixtures)

PS = policy()
THREADS = 16


def _race(sinks: list[AuditSink]) -> list[Decision]:
    tok = token(REFUND, "approval", ["t.g.ai_refund_needs_person"], jti="the-one", decision="asked-1")
    req = with_grants(REFUND, tok)
    barrier = threading.Barrier(THREADS)
    out: list[Decision] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        sink = sinks[i % len(sinks)]
        first = PS.decide(req)  # every thread sees a valid grant before anyone records
        assert first.grants_used == ("the-one",)
        barrier.wait()
        d = decide_once(PS, req, sink.record, first=first)
        with lock:
            out.append(d)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(out) == THREADS
    return out


def _check(decisions: list[Decision], sink: AuditSink) -> None:
    winners = [d for d in decisions if d.grants_used]
    assert len(winners) == 1 and winners[0].effect is Effect.ALLOW
    losers = [d for d in decisions if not d.grants_used]
    assert len(losers) == THREADS - 1
    for d in losers:
        assert d.effect is Effect.ESCALATE
        assert any("already used" in e.message for e in d.errors if e.kind == "grant")
    records = sink.query(kind="grant")
    uses = [r for r in records if r.action == "grant.use"]
    refusals = [r for r in records if r.action == "grant.refuse"]
    assert len(uses) == 1 and len(refusals) == THREADS - 1
    assert uses[0].decision_id == "asked-1"  # linked to the decision that asked
    assert uses[0].detail_object()["used_by"] == winners[0].decision_id
    assert {r.detail_object()["refused_in"] for r in refusals} == {d.decision_id for d in losers}
    stored = sink.get(winners[0].decision_id)
    assert stored is not None and "the-one" in stored.request and tok_not_stored(stored.request)
    assert sink.verify(strict=True).ok


def tok_not_stored(text: str) -> bool:
    return "eyJ" not in text  # the bearer token itself never reaches the log


def test_sixteen_threads_two_sqlite_replicas_one_use(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    sinks = [open_sink(url, key=None), open_sink(url, key=None)]
    try:
        decisions = _race(sinks)
        _check(decisions, sinks[0])
    finally:
        for s in sinks:
            s.close()


def test_sixteen_threads_two_postgres_replicas_one_use(dsn: str) -> None:  # noqa: F811
    sinks = [open_sink(dsn, key=None), open_sink(dsn, key=None)]
    try:
        decisions = _race(sinks)
        _check(decisions, sinks[0])
    finally:
        for s in sinks:
            s.close()


def test_second_use_later_is_already_used(tmp_path: Path) -> None:
    with open_sink(f"sqlite:///{tmp_path / 'a.db'}", key=None) as sink:
        req = with_grants(REFUND, token(REFUND, "approval", ["t.g.ai_refund_needs_person"], jti="j2"))
        assert decide_once(PS, req, sink.record).effect is Effect.ALLOW
        again = decide_once(PS, req, sink.record)
        assert again.effect is Effect.ESCALATE and not again.grants_used
        with pytest.raises(GrantAlreadyUsed):  # recording the stale allow is refused outright
            sink.record(req, PS.decide(req))


def test_in_memory_one_use_without_an_audit_store() -> None:
    spent = SpentInMemory()
    req = with_grants(REFUND, token(REFUND, "approval", ["t.g.ai_refund_needs_person"]))
    record: Callable[[Any, Decision], None] = spent.record
    assert decide_once(PS, req, record).effect is Effect.ALLOW
    assert decide_once(PS, req, record).effect is Effect.ESCALATE
