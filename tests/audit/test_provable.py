"""The attacks of issue 19, each as a test: an attacker with write access to the database
file rewrites history, wipes it, rolls it back, or edits escalation state — and verify fails."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import orjson
import pytest
from test_audit_support import KEY, make_decision, make_request, raw

from cxpolicy.audit import open_sink
from cxpolicy.audit.records import GENESIS_HASH, AuditRecord, seal
from cxpolicy.audit.sink import ChainedSink, decision_draft
from cxpolicy.audit.sqlite import RECORD_COLUMNS, SQLiteStore
from cxpolicy.audit.witness import FileWitness, Sighting, read_sightings
from cxpolicy.kinds import Effect


def _sink(path: Path, witness: Path | None = None) -> ChainedSink:
    store = SQLiteStore(path, head_key=KEY)
    return ChainedSink(
        store, key=KEY, witness=FileWitness(witness) if witness else None, witness_interval=0.0
    )


def _fill(sink: ChainedSink, n: int, start: int = 0, effect: Effect = Effect.ALLOW) -> None:
    for i in range(start, start + n):
        sink.record(make_request(i), make_decision(effect, escalate_to=("fraud",) if effect is Effect.ESCALATE else ()))


def _verify(path: Path, witness: Path | None = None) -> tuple[bool, str]:
    with _sink(path) as sink:
        sightings = list(read_sightings(witness)) if witness else None
        r = sink.verify(witness=sightings)
    return r.ok, r.problem or ""


def _records(conn: sqlite3.Connection) -> list[AuditRecord]:
    return [AuditRecord.from_row(row) for row in conn.execute(f"SELECT {RECORD_COLUMNS} FROM records ORDER BY seq")]


def test_rewritten_chain_with_an_unsigned_head_fails(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    with _sink(db) as sink:
        _fill(sink, 7)
    conn = raw(db)
    kept = [r for r in _records(conn) if r.seq % 2]  # drop the "refund" records, keep the rest
    conn.execute("DELETE FROM records")
    prev = GENESIS_HASH
    for seq, rec in enumerate(kept, 1):  # recompute the whole chain, perfectly
        draft = decision_draft(rec.request_object(), make_decision(), _time(rec))
        new = seal(draft, seq, prev)
        conn.execute(f"INSERT INTO records ({RECORD_COLUMNS}) VALUES ({', '.join('?' * 19)})", new.row())
        prev = new.hash
    conn.execute("UPDATE head SET seq = ?, hash = ?, mac = NULL", (len(kept), prev))
    conn.close()
    ok, problem = _verify(db)
    assert not ok and "not signed" in problem


def _time(rec: AuditRecord):  # type: ignore[no-untyped-def]
    from cxpolicy.audit.records import parse_time

    return parse_time(rec.time)


def test_wiping_every_record_fails(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    with _sink(db) as sink:
        _fill(sink, 5)
    conn = raw(db)
    conn.execute("DELETE FROM records")
    conn.execute("DELETE FROM escalations")
    conn.execute("UPDATE head SET seq = 0, hash = ?, mac = NULL", (GENESIS_HASH,))
    conn.close()
    ok, problem = _verify(db)
    assert not ok and "not signed" in problem
    conn = raw(db)
    conn.execute("DELETE FROM head")
    conn.close()
    assert not _verify(db)[0]


def test_a_fresh_keyed_log_verifies_and_its_key_is_required(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    with _sink(db) as sink:
        assert sink.verify().ok
    with open_sink(str(db), key=None, create=False) as unkeyed:
        r = unkeyed.verify()
    assert not r.ok and "audit key" in (r.problem or "")


def test_rollback_to_an_older_copy_is_caught_by_the_witness(tmp_path: Path) -> None:
    db, witness = tmp_path / "audit.db", tmp_path / "witness" / "audit.witness"
    with _sink(db, witness) as sink:
        _fill(sink, 3)
    old = tmp_path / "old"
    old.mkdir()
    for f in tmp_path.glob("audit.db*"):
        shutil.copy(f, old / f.name)
    with _sink(db, witness) as sink:
        _fill(sink, 4, start=3)
    assert _verify(db, witness) == (True, "")
    for f in tmp_path.glob("audit.db*"):
        f.unlink()
    for f in old.iterdir():
        shutil.copy(f, tmp_path / f.name)
    assert _verify(db)[0], "without the witness a rollback is consistent: that is why it exists"
    ok, problem = _verify(db, witness)
    assert not ok and "rolled back" in problem


def test_a_rolled_back_log_that_grew_again_diverges_from_the_witness(tmp_path: Path) -> None:
    db, witness = tmp_path / "audit.db", tmp_path / "audit.witness"
    with _sink(db, witness) as sink:
        _fill(sink, 2)
    snapshot = db.read_bytes()
    with _sink(db, witness) as sink:
        _fill(sink, 3, start=2)
    for f in tmp_path.glob("audit.db-*"):
        f.unlink()
    db.write_bytes(snapshot)
    with _sink(db) as sink:  # the attacker's replacement history, without the witness
        _fill(sink, 5, start=100)
    ok, problem = _verify(db, witness)
    assert not ok and "diverges" in problem


def test_a_forged_sighting_is_refused_and_a_torn_last_line_is_not(tmp_path: Path) -> None:
    db, witness = tmp_path / "audit.db", tmp_path / "audit.witness"
    with _sink(db, witness) as sink:
        _fill(sink, 2)
    good = witness.read_bytes()
    witness.write_bytes(good + b'{"seq": 9')  # a crash halfway through a line
    assert _verify(db, witness) == (True, "")
    witness.write_bytes(good + Sighting(50, "ab" * 32, "2026-01-01T00:00:00.000000Z").to_line())
    ok, problem = _verify(db, witness)
    assert not ok and "forged" in problem


def test_the_witness_is_never_ahead_of_the_database(tmp_path: Path) -> None:
    db, witness = tmp_path / "audit.db", tmp_path / "audit.witness"
    with _sink(db, witness) as sink:
        _fill(sink, 6)
        head = sink.verify().last_seq
    sightings = list(read_sightings(witness))
    assert sightings and max(s.seq for s in sightings) == head
    assert all(s.valid(KEY) for s in sightings)


@pytest.mark.parametrize(
    "attack",
    [
        "UPDATE escalations SET state = 'resolved', resolved_by = 'mallory'",
        "UPDATE escalations SET assigned_to = 'mallory', state = 'assigned'",
        "DELETE FROM escalations",
        "UPDATE escalations SET last_seq = 999999",
    ],
)
def test_escalation_state_is_checked_against_the_chain(tmp_path: Path, attack: str) -> None:
    db = tmp_path / "audit.db"
    with _sink(db) as sink:
        _fill(sink, 2, effect=Effect.ESCALATE)
        assert sink.verify().ok
    conn = raw(db)
    conn.execute(attack)
    conn.close()
    ok, problem = _verify(db)
    assert not ok and "escalation" in problem


def test_an_escalation_inserted_outside_the_sink_is_caught(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    with _sink(db) as sink:
        _fill(sink, 1, effect=Effect.ESCALATE)
    conn = raw(db)
    row = conn.execute("SELECT * FROM escalations").fetchone()
    conn.execute(
        f"INSERT INTO escalations VALUES ({', '.join('?' * len(row))})", ("forged-id", *row[1:])
    )
    conn.close()
    ok, problem = _verify(db)
    assert not ok and "outside the sink" in problem


def test_legitimate_transitions_replay_cleanly(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    with _sink(db) as sink:
        _fill(sink, 2, effect=Effect.ESCALATE)
        first, second = sink.escalations()
        sink.assign(first.id, to="alice", by="lead")
        sink.resolve(first.id, by="alice", note="called the customer")
        sink.assign(second.id, to="bob", by="lead")
        r = sink.verify()
    assert r.ok, r.problem
    detail = orjson.loads(sink.history(first.decision_id)[-1].detail)
    assert detail["to"] == "resolved"


@pytest.mark.parametrize(
    "request_",
    [
        {"action": "4111 1111 1111 1111"},
        {"action": 4111111111111111},
        {"channel": "4111-1111-1111-1111"},
        {"customer": {"id": "C-1", "region": "234123412346", "segment": "retail", "risk_tier": "low"}},
    ],
)
def test_a_value_outside_the_vocabulary_is_never_stored_or_echoed(tmp_path: Path, request_: dict) -> None:  # type: ignore[type-arg]
    from test_audit_support import db_bytes

    from cxpolicy.engine.loader import load

    policy = load(["rulesets/bank"])
    req = {**make_request(1), **request_}
    decision = policy.decide(req)
    assert decision.effect is Effect.ESCALATE and decision.errors
    raw_value = str(next(iter(request_.values())) if "customer" not in request_ else "234123412346")
    digits = raw_value.replace(" ", "").replace("-", "")
    for err in decision.errors:
        assert digits not in err.message.replace(" ", "").replace("-", "")
    db = tmp_path / "audit.db"
    with _sink(db) as sink:
        sink.record(req, decision)
    blob = db_bytes(db)
    assert raw_value.encode() not in blob and digits.encode() not in blob
    with _sink(db) as sink:
        (rec,) = sink.query(kind="decision")
    assert "<unknown value:" in rec.request and sink.verify().ok


def test_a_misspelt_action_is_still_named_in_the_error() -> None:
    from cxpolicy.engine.loader import load

    decision = load(["rulesets/bank"]).decide({**make_request(1), "action": "refund.exectue"})
    assert any("refund.exectue" in e.message and "did you mean" in e.message for e in decision.errors)
