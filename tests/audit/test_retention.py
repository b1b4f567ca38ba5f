"""Retention: pruning from the old end behind a signed checkpoint, and `verify` after it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_audit_support import KEY, Clock, make_decision, make_request, raw

from cxpolicy.audit import (
    AuditIntegrityError,
    MissingKey,
    RetentionPolicy,
    RetentionViolation,
    key_from_env,
)
from cxpolicy.audit.retention import subtract_months
from cxpolicy.audit.sink import ChainedSink
from cxpolicy.audit.sqlite import SQLiteStore
from cxpolicy.kinds import Effect

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def fill(path: Path, key: bytes | None = KEY) -> tuple[ChainedSink, Clock]:
    """Two records a month from January 2024 to May 2026."""
    clock = Clock(datetime(2024, 1, 1, tzinfo=UTC))
    sink = ChainedSink(SQLiteStore(path, head_key=key), key=key, clock=clock)
    while clock.now < datetime(2026, 6, 1, tzinfo=UTC):
        sink.record(make_request(), make_decision())
        clock.advance(days=15)
    clock.now = NOW
    return sink, clock


def test_presets_and_parsing() -> None:
    assert RetentionPolicy.parse("pci").months == 12
    assert RetentionPolicy.parse("hipaa").months == 72
    assert RetentionPolicy.parse("ai-act").months == 6
    assert RetentionPolicy.parse("pci,hipaa").name == "hipaa"
    assert RetentionPolicy.parse("18m").months == 18
    assert RetentionPolicy.parse("7y").months == 84
    with pytest.raises(ValueError):
        RetentionPolicy.parse("forever")
    assert subtract_months(datetime(2026, 3, 31, tzinfo=UTC), 1) == datetime(
        2026, 2, 28, tzinfo=UTC
    )
    assert subtract_months(datetime(2026, 1, 15, tzinfo=UTC), 12) == datetime(
        2025, 1, 15, tzinfo=UTC
    )


def test_key_from_env() -> None:
    assert key_from_env({}) is None
    assert key_from_env({"CXPOLICY_AUDIT_KEY": "x" * 16}) == b"x" * 16
    with pytest.raises(MissingKey):
        key_from_env({"CXPOLICY_AUDIT_KEY": "short"})


def test_prune_refuses_without_key(tmp_path: Path) -> None:
    sink, _ = fill(tmp_path / "a.db", key=None)
    with pytest.raises(MissingKey):
        sink.prune(datetime(2025, 1, 1, tzinfo=UTC), keep=RetentionPolicy.parse("pci"))
    sink.close()


def test_prune_refuses_inside_retention(tmp_path: Path) -> None:
    sink, _ = fill(tmp_path / "a.db")
    with pytest.raises(RetentionViolation):
        sink.prune(datetime(2025, 7, 1, tzinfo=UTC), keep=RetentionPolicy.parse("pci"))
    with pytest.raises(RetentionViolation):  # default floor: 6 months (AI Act)
        sink.prune(datetime(2026, 1, 1, tzinfo=UTC))
    sink.close()


def test_prune_then_verify_then_append(tmp_path: Path) -> None:
    sink, clock = fill(tmp_path / "a.db")
    total = len(sink.query())
    keep = RetentionPolicy.parse("pci")
    cp = sink.prune(keep.earliest_cutoff(clock.now), keep=keep)
    assert cp is not None
    remaining = sink.query()
    assert remaining[0].time >= "2025-06-01"
    assert cp.through_time < "2025-06-01" <= remaining[0].time
    assert cp.pruned == total - len(remaining)
    assert remaining[0].seq == cp.through_seq + 1
    assert remaining[0].prev_hash == cp.through_hash
    result = sink.verify(strict=True)
    assert result.ok, result.problem
    assert result.first_seq == cp.through_seq + 1

    # Pruning again with nothing older is a no-op; the chain keeps growing after it.
    assert sink.prune(keep.earliest_cutoff(clock.now), keep=keep) is None
    sink.record(make_request(), make_decision())
    clock.advance(days=400)
    cp2 = sink.prune(keep.earliest_cutoff(clock.now), keep=keep)
    assert cp2 is not None and cp2.prev_mac == cp.mac
    assert sink.verify(strict=True).ok
    assert len(sink.query()) == 0  # everything was older than a year by then
    sink.record(make_request(), make_decision())
    assert sink.verify(strict=True).ok
    sink.close()


def test_checkpoint_tampering_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    sink, clock = fill(path)
    keep = RetentionPolicy.parse("pci")
    cp = sink.prune(keep.earliest_cutoff(clock.now), keep=keep)
    assert cp is not None

    conn = raw(path)
    conn.execute("UPDATE checkpoints SET through_seq = through_seq + 1")
    result = sink.verify()
    assert not result.ok and result.problem is not None
    assert "invalid signature" in result.problem
    conn.execute("UPDATE checkpoints SET through_seq = through_seq - 1")
    assert sink.verify().ok

    # Without the key, a keyed log's checkpoints and head cannot be trusted: verify refuses.
    unkeyed = ChainedSink(SQLiteStore(path), key=None)
    loose = unkeyed.verify()
    assert not loose.ok and loose.problem is not None and "CXPOLICY_AUDIT_KEY" in loose.problem
    unkeyed.close()

    # Deleting more old records behind a forged checkpoint needs the key to sign it.
    conn = raw(path)  # (opening the sink above put the triggers back)
    conn.execute("DELETE FROM records WHERE seq = ?", (cp.through_seq + 1,))
    result = sink.verify()
    assert not result.ok and result.broken is not None
    assert result.broken.seq == cp.through_seq + 2
    conn.close()
    sink.close()


def test_deleting_the_checkpoint_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    sink, clock = fill(path)
    keep = RetentionPolicy.parse("pci")
    assert sink.prune(keep.earliest_cutoff(clock.now), keep=keep) is not None
    conn = raw(path)
    conn.execute("DELETE FROM checkpoints")
    conn.close()
    result = sink.verify()
    assert not result.ok and result.broken is not None
    sink.close()


def test_open_escalation_stops_pruning(tmp_path: Path) -> None:
    clock = Clock(datetime(2024, 1, 1, tzinfo=UTC))
    sink = ChainedSink(SQLiteStore(tmp_path / "a.db", head_key=KEY), key=KEY, clock=clock)
    for i in range(30):  # from January 2024, every 15 days; the 10th one escalates
        effect = Effect.ESCALATE if i == 10 else Effect.ALLOW
        sink.record(make_request(i), make_decision(effect, escalate_to=("q1", "q2")))
        clock.advance(days=15)
    keep = RetentionPolicy.parse("pci")
    cp = sink.prune(keep.earliest_cutoff(NOW), keep=keep, now=NOW)
    assert cp is not None and cp.through_seq == 10
    assert len(sink.escalations()) == 2
    decision = sink.query(kind="decision")[0]
    assert decision.effect == "escalate"  # the oldest kept record is the open escalation's
    assert [r.action for r in sink.history(decision.decision_id)] == [
        "refund.execute",
        "escalation.open",
        "escalation.open",
    ]
    assert sink.verify(strict=True).ok
    # Once both are resolved, the next prune may take them, and drops their rows.
    for esc in sink.escalations():
        sink.assign(esc.id, to="alice", by="lead")
        sink.resolve(esc.id, by="alice")
    cp2 = sink.prune(keep.earliest_cutoff(NOW), keep=keep, now=NOW)
    assert cp2 is not None and cp2.through_seq > 13
    assert sink.escalations() == []
    assert sink.verify(strict=True).ok
    sink.close()


def test_prune_refuses_a_broken_chain(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    sink, clock = fill(path)
    conn = raw(path)
    conn.execute("UPDATE records SET effect = 'escalate' WHERE seq = 3")
    conn.close()
    keep = RetentionPolicy.parse("pci")
    with pytest.raises(AuditIntegrityError):
        sink.prune(keep.earliest_cutoff(clock.now), keep=keep)
    sink.close()
