"""Tampering with the log file directly (triggers dropped, raw sqlite3) is always detected,
and `verify` names the first broken record."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_audit_support import KEY, make_decision, make_request, raw

from cxpolicy.audit import VerifyResult, open_sink
from cxpolicy.audit.records import AuditRecord, parse_time, seal
from cxpolicy.audit.sink import decision_draft
from cxpolicy.audit.sqlite import RECORD_COLUMNS
from cxpolicy.kinds import Effect


def build(path: Path, n: int = 10, key: bytes | None = None) -> list[str]:
    ids = []
    with open_sink(str(path), key=key) as sink:
        for i in range(n):
            d = make_decision(Effect.REDACT if i % 2 else Effect.ALLOW)
            sink.record(make_request(i), d)
            ids.append(d.decision_id)
        assert sink.verify().ok
    return ids


def verify(path: Path, key: bytes | None = None, strict: bool = False) -> VerifyResult:
    with open_sink(str(path), key=key, create=False) as sink:
        return sink.verify(strict=strict)


def load(conn: sqlite3.Connection, seq: int) -> AuditRecord:
    row = conn.execute(f"SELECT {RECORD_COLUMNS} FROM records WHERE seq = ?", (seq,)).fetchone()
    return AuditRecord.from_row(row)


def insert(conn: sqlite3.Connection, rec: AuditRecord) -> None:
    marks = ", ".join("?" * len(rec.row()))
    conn.execute(f"INSERT INTO records ({RECORD_COLUMNS}) VALUES ({marks})", rec.row())


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


def test_triggers_reject_update_and_delete(db: Path) -> None:
    build(db, 3)
    conn = sqlite3.connect(db, isolation_level=None)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE records SET effect = 'allow' WHERE seq = 2")
    with pytest.raises(sqlite3.IntegrityError, match="pruning"):
        conn.execute("DELETE FROM records WHERE seq = 1")
    conn.close()
    assert verify(db).ok


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("effect", "allow"),
        ("rules", '["bank.something_else"]'),
        ("request", '{"action":"refund.prepare"}'),
        ("time", "2020-01-01T00:00:00.000000Z"),
        ("actor_id", "someone-else"),
    ],
)
def test_edited_field_is_the_first_broken_record(db: Path, column: str, value: str) -> None:
    ids = build(db)
    conn = raw(db)
    conn.execute(f"UPDATE records SET {column} = ? WHERE seq = 4", (value,))
    conn.close()
    result = verify(db)
    assert not result.ok
    assert result.broken is not None
    assert result.broken.seq == 4
    assert result.broken.decision_id == ids[3]
    assert result.problem is not None
    assert "edited" in result.problem


def test_edit_with_recomputed_hash_breaks_the_next_link(db: Path) -> None:
    build(db)
    conn = raw(db)
    forged = replace(load(conn, 4), effect="allow")
    forged = replace(forged, hash=forged.computed_hash())
    conn.execute("UPDATE records SET effect = ?, hash = ? WHERE seq = 4", ("allow", forged.hash))
    conn.close()
    result = verify(db)
    assert not result.ok
    assert result.broken is not None
    assert result.broken.seq == 5
    assert result.problem is not None
    assert "prev_hash" in result.problem


def test_deleted_record(db: Path) -> None:
    build(db)
    conn = raw(db)
    conn.execute("DELETE FROM records WHERE seq = 6")
    conn.close()
    result = verify(db)
    assert not result.ok
    assert result.broken is not None
    assert result.broken.seq == 7
    assert result.problem is not None
    assert "seq 6 missing" in result.problem


def test_deleted_and_renumbered(db: Path) -> None:
    """Deleting a record and closing the gap still breaks the chain at the same place."""
    build(db)
    conn = raw(db)
    conn.execute("DELETE FROM records WHERE seq = 6")
    conn.execute("UPDATE records SET seq = seq - 1 WHERE seq > 6")
    conn.execute("UPDATE head SET seq = seq - 1")
    conn.close()
    result = verify(db)
    assert not result.ok
    assert result.broken is not None
    assert result.broken.seq == 6


def test_inserted_forged_record(db: Path) -> None:
    """A well-formed forgery spliced in after seq 3: its own hash is right, the link after it
    is not."""
    build(db)
    conn = raw(db)
    after = load(conn, 3)
    draft = decision_draft(make_request(99), make_decision(Effect.ALLOW), parse_time(after.time))
    conn.execute("UPDATE records SET seq = seq + 1000 WHERE seq > 3")
    conn.execute("UPDATE records SET seq = seq - 999 WHERE seq > 1000")
    insert(conn, seal(draft, 4, after.hash))
    conn.execute("UPDATE head SET seq = seq + 1")
    conn.close()
    result = verify(db)
    assert not result.ok
    assert result.broken is not None
    assert result.broken.seq == 5


def test_reordered_records(db: Path) -> None:
    ids = build(db)
    conn = raw(db)
    conn.execute("UPDATE records SET seq = -1 WHERE seq = 4")
    conn.execute("UPDATE records SET seq = 4 WHERE seq = 5")
    conn.execute("UPDATE records SET seq = 5 WHERE seq = -1")
    conn.close()
    result = verify(db)
    assert not result.ok
    assert result.broken is not None
    assert result.broken.seq == 4
    assert result.broken.decision_id == ids[4]


def test_records_cut_off_the_end(db: Path) -> None:
    build(db)
    conn = raw(db)
    conn.execute("DELETE FROM records WHERE seq > 8")
    conn.close()
    result = verify(db)
    assert not result.ok
    assert result.problem is not None
    assert "cut off the end" in result.problem


def test_end_cut_and_head_rewound_is_caught_by_the_signed_head(db: Path) -> None:
    build(db, key=KEY)
    conn = raw(db)
    last = load(conn, 8)
    conn.execute("DELETE FROM records WHERE seq > 8")
    conn.execute("UPDATE head SET seq = 8, hash = ?", (last.hash,))
    conn.close()
    result = verify(db, key=KEY)
    assert not result.ok
    assert result.problem is not None
    assert "signature is invalid" in result.problem


def test_forged_append_without_head_update(db: Path) -> None:
    build(db)
    conn = raw(db)
    last = load(conn, 10)
    draft = decision_draft(make_request(99), make_decision(), parse_time(last.time))
    insert(conn, seal(draft, 11, last.hash))
    conn.close()
    result = verify(db)
    assert not result.ok
    assert result.problem is not None
    assert "appended outside the sink" in result.problem


def test_with_a_key_an_unsigned_head_fails(db: Path) -> None:
    build(db, key=None)
    result = verify(db, key=KEY)
    assert not result.ok and result.problem is not None and "not signed" in result.problem


def test_sink_keeps_working_after_reopen(db: Path) -> None:
    build(db, 3, key=KEY)
    build(db, 3, key=KEY)
    result = verify(db, key=KEY, strict=True)
    assert result.ok and result.checked == 6


# -- property: any single change to an in-memory chain is caught (no database involved) -----

_FIELDS = ["kind", "decision_id", "time", "effect", "actor_id", "request", "detail", "prev_hash"]


def _chain(n: int) -> list[AuditRecord]:
    from cxpolicy.audit.records import GENESIS_HASH

    out: list[AuditRecord] = []
    prev = GENESIS_HASH
    for i in range(n):
        draft = decision_draft(make_request(i), make_decision(), parse_time("2024-01-01"))
        rec = seal(draft, i + 1, prev)
        out.append(rec)
        prev = rec.hash
    return out


CHAIN = _chain(12)


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["edit", "rehash", "delete", "swap", "duplicate"]),
    i=st.integers(0, 11),
    j=st.integers(0, 11),
    field=st.sampled_from(_FIELDS),
    junk=st.text(min_size=1, max_size=5),
)
def test_any_single_tampering_is_detected(kind: str, i: int, j: int, field: str, junk: str) -> None:
    from cxpolicy.audit.chain import ChainHead, verify_chain

    records = list(CHAIN)
    head = ChainHead(records[-1].seq, records[-1].hash)
    if kind in ("edit", "rehash"):
        changed = replace(records[i], **{field: str(getattr(records[i], field)) + junk})
        if kind == "rehash":
            changed = replace(changed, hash=changed.computed_hash())
        records[i] = changed
    elif kind == "delete":
        del records[i]
    elif kind == "swap":
        if i == j:
            return
        records[i], records[j] = records[j], records[i]
    else:
        records.insert(j, records[i])
    result = verify_chain(iter(records), head=head)
    if kind == "rehash" and i == len(CHAIN) - 1 and field != "prev_hash":
        # The last record re-hashed: only the head (or, with a key, its MAC) can tell.
        # (A changed prev_hash breaks the link to the record before it, caught first.)
        assert not result.ok and result.problem is not None and "head" in result.problem
        return
    assert not result.ok
