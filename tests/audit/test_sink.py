"""The SQLite sink: recording, reading, group commit under concurrency, crashes, masking."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from test_audit_support import (
    AADHAAR,
    AADHAAR_SPACED,
    CVV,
    KEY,
    PAN,
    PAN_SPACED,
    Clock,
    db_bytes,
    make_decision,
    make_request,
    sensitive_request,
)

import cxpolicy
from cxpolicy.audit import (
    AuditSink,
    DuplicateDecision,
    Query,
    SinkClosed,
    open_sink,
    sqlite_path,
)
from cxpolicy.audit.sink import ChainedSink
from cxpolicy.audit.sqlite import SQLiteStore
from cxpolicy.engine.decision import DecisionError
from cxpolicy.kinds import Effect


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


def test_record_then_get_returns_every_field(db: Path) -> None:
    clock = Clock()
    sink = ChainedSink(SQLiteStore(db), clock=clock)
    decision = make_decision(Effect.ESCALATE, escalate_to=("refunds-desk",), rules=("a", "b"))
    sink.record(make_request(3), decision)
    rec = sink.get(decision.decision_id)
    sink.close()
    assert rec is not None
    assert rec.kind == "decision"
    assert rec.time == "2024-01-01T09:00:00.000000Z"
    assert rec.effect == "escalate"
    assert rec.rules == ("a", "b")
    assert rec.cites == ("CITE-0", "CITE-1")
    assert rec.escalate_to == ("refunds-desk",)
    assert (rec.actor_kind, rec.actor_id) == ("ai", "agent-3")
    assert (rec.channel, rec.region, rec.action) == ("chat", "IN", "refund.execute")
    assert rec.policy_revision == decision.policy_revision
    assert rec.request_sha256 is not None and rec.request_sha256.startswith("sha256:")
    assert rec.request_object()["customer"]["id"] == "C-3"
    assert rec.prev_hash == "0" * 64
    assert rec.hash == rec.computed_hash()


def test_open_sink_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert sqlite_path("sqlite:///var/audit.db") == Path("var/audit.db")
    assert sqlite_path("sqlite:////abs/audit.db") == Path("/abs/audit.db")
    assert sqlite_path("plain/audit.db") == Path("plain/audit.db")
    with pytest.raises(ValueError):
        sqlite_path("sqlite:///:memory:")
    with pytest.raises(ValueError, match="scheme"):
        open_sink("mysql://localhost/audit")
    with open_sink("sqlite:///var/audit.db?synchronous=normal", key=None) as sink:
        sink.record(make_request(), make_decision())
    assert (tmp_path / "var" / "audit.db").exists()
    with pytest.raises(FileNotFoundError):
        open_sink(str(tmp_path / "missing.db"), create=False)


def test_duplicate_decision_fails_only_its_caller(db: Path) -> None:
    with open_sink(str(db), key=None) as sink:
        d = make_decision()
        sink.record(make_request(), d)
        with pytest.raises(DuplicateDecision):
            sink.record(make_request(), d)
        sink.record(make_request(), make_decision())
        assert len(sink.query(kind="decision")) == 2
        assert sink.verify().ok


def test_unserialisable_request_raises_in_caller(db: Path) -> None:
    with open_sink(str(db), key=None) as sink:
        with pytest.raises(ValueError):
            sink.record({"action": "x", "context": {"n": 2**80}}, make_decision())
        with pytest.raises(TypeError):
            sink.record(make_request(), {"effect": "allow"})
        assert sink.query() == []


def test_closed_sink_refuses(db: Path) -> None:
    sink = open_sink(str(db), key=None)
    sink.close()
    with pytest.raises(SinkClosed):
        sink.record(make_request(), make_decision())


def test_storage_error_reaches_every_caller(db: Path) -> None:
    """A commit that fails is reported to the callers it affected, never dropped."""
    sink = ChainedSink(SQLiteStore(db))
    store = sink.store
    assert isinstance(store, SQLiteStore)
    blocker = __import__("sqlite3").connect(db, isolation_level=None, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")  # holds the write lock
    store._conn.execute("PRAGMA busy_timeout=50")
    try:
        with pytest.raises(Exception, match="locked"):
            sink.record(make_request(), make_decision())
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    sink.record(make_request(), make_decision())
    assert len(sink.query()) == 1
    sink.close()


def test_query_filters(db: Path) -> None:
    clock = Clock()
    with ChainedSink(SQLiteStore(db), clock=clock) as sink:
        sink.record(make_request(0), make_decision(Effect.ALLOW, rules=("r.allow",)))
        clock.advance(days=1)
        sink.record(
            make_request(1, action="card.reveal_pan"),
            make_decision(Effect.REDACT, rules=("r.redact", "r.other")),
        )
        clock.advance(days=1)
        esc = make_decision(Effect.ESCALATE, rules=("r.esc",), escalate_to=("q1", "q2"))
        sink.record(make_request(2), esc)
        assert isinstance(sink, AuditSink)
        assert [r.effect for r in sink.query(kind="decision")] == ["allow", "redact", "escalate"]
        assert len(sink.query(effect="redact")) == 1
        assert len(sink.query(rule="r.other")) == 1
        assert len(sink.query(action="card.reveal_pan")) == 1
        since = sink.query(Query(since=clock.now, kind="decision"))
        assert [r.decision_id for r in since] == [esc.decision_id]
        newest = sink.query(limit=1, newest_first=True)
        assert newest[0].kind == "escalation"
        history = sink.history(esc.decision_id)
        assert [r.action for r in history] == [
            "refund.execute",
            "escalation.open",
            "escalation.open",
        ]


def test_decision_errors_are_recorded_masked(db: Path) -> None:
    err = DecisionError(
        "request", f"context.amount: expected number, got '{PAN}'", "context.amount"
    )
    with open_sink(str(db), key=None) as sink:
        d = make_decision(Effect.ESCALATE, errors=(err,))
        sink.record(make_request(), d)
        rec = sink.get(d.decision_id)
    assert rec is not None
    detail = rec.detail_object()
    assert detail["errors"][0]["field"] == "context.amount"
    assert PAN not in detail["errors"][0]["message"]
    assert PAN.encode() not in db_bytes(db)


def test_no_raw_sensitive_value_in_database_bytes(db: Path) -> None:
    with open_sink(str(db), key=KEY) as sink:
        for _ in range(3):
            d = make_decision(Effect.ESCALATE, escalate_to=("fraud-desk",))
            sink.record(sensitive_request(), d)
        (esc, *_) = sink.escalations(state="open")
        sink.assign(esc.id, to="alice", by="lead")
        sink.resolve(esc.id, by="alice", note=f"verified card {PAN_SPACED} with cvv {CVV}")
        stored = sink.get(d.decision_id)
        assert stored is not None
        text = stored.request
        assert sink.verify().ok
    data = db_bytes(db)
    for raw_value in (PAN, PAN_SPACED, AADHAAR, AADHAAR_SPACED, "type 2 diabetes", "MRN-99812"):
        assert raw_value.encode() not in data, raw_value
    assert f"cvv {CVV}".encode() not in data
    assert b'"cvv":737' not in data
    # ...while what is needed to replay and audit survives.
    assert '"otp_verified":true' in text
    assert '"amount":12000' in text
    assert "[MASKED:" in text


def test_concurrent_threads_each_decision_exactly_once(db: Path) -> None:
    threads, per_thread = 16, 200
    sink = open_sink(str(db), key=KEY)
    ids: list[list[str]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(per_thread):
                effect = Effect.ESCALATE if i % 10 == 0 else Effect.ALLOW
                d = make_decision(effect, escalate_to=("q",) if i % 20 == 0 else ())
                sink.record(make_request(t * per_thread + i), d)
                ids[t].append(d.decision_id)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    recorded = [r.decision_id for r in sink.iter_records(kind="decision")]
    expected = [i for chunk in ids for i in chunk]
    assert len(recorded) == len(expected) == threads * per_thread
    assert sorted(recorded) == sorted(expected)
    escalations = sink.escalations()
    assert len(escalations) == threads * (per_thread // 10)
    assert {e.queue for e in escalations} == {"q", "unassigned-queue"}
    result = sink.verify()
    assert result.ok, result.problem
    assert result.checked == threads * per_thread + len(escalations)
    assert sink.stats.ops == threads * per_thread
    sink.close()


def test_async_record(db: Path) -> None:
    sink = open_sink(str(db), key=None)

    async def main() -> list[str]:
        decisions = [make_decision() for _ in range(50)]
        await asyncio.gather(*(sink.arecord(make_request(i), d) for i, d in enumerate(decisions)))
        return [d.decision_id for d in decisions]

    ids = asyncio.run(main())
    assert sorted(r.decision_id for r in sink.query(kind="decision")) == sorted(ids)
    assert sink.verify().ok

    async def dup() -> None:
        d = make_decision()
        await sink.arecord(make_request(), d)
        await sink.arecord(make_request(), d)

    with pytest.raises(DuplicateDecision):
        asyncio.run(dup())
    sink.close()


CHILD = textwrap.dedent(
    """
    import sys, threading
    from cxpolicy.audit import open_sink
    from cxpolicy.engine.decision import Decision, Reason, new_decision_id
    from cxpolicy.kinds import Effect

    sink = open_sink(sys.argv[1], key=None)
    lock = threading.Lock()

    def work(t):
        i = 0
        while True:
            effect = Effect.ESCALATE if i % 5 == 0 else Effect.ALLOW
            d = Decision(new_decision_id(), effect, (), (), (Reason("r", effect, None, ()),),
                         (), "sha256:x")
            sink.record({"action": "refund.execute", "n": i, "t": t}, d)
            with lock:  # answered: the record is committed
                sys.stdout.write(d.decision_id + "\\n")
                sys.stdout.flush()
            i += 1

    for t in range(8):
        threading.Thread(target=work, args=(t,), daemon=True).start()
    threading.Event().wait()
    """
)


def test_kill_9_loses_nothing_answered(db: Path) -> None:
    root = str(Path(cxpolicy.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, *(p for p in sys.path if p)])}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db)],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
        cwd=db.parent,
    )
    answered: list[str] = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            answered.append(line.strip())
            if len(answered) >= 400:
                break
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        # Whatever was printed after the 400th (still in the pipe) was answered too.
        answered.extend(line.strip() for line in child.stdout if line.strip())
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    assert len(answered) >= 400
    with open_sink(str(db), key=None, create=False) as sink:
        recorded = {r.decision_id for r in sink.iter_records(kind="decision")}
        result = sink.verify()
    assert result.ok, result.problem
    missing = [d for d in answered if d not in recorded]
    assert missing == []
