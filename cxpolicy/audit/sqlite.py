"""SQLite storage for the audit log: one file, WAL mode, append-only by trigger.

Input: audit records. Output: rows in one SQLite file.

WAL lets readers (`cxpolicy audit query`, `GET /v1/decisions/{id}`) run while the writer
commits; `synchronous=FULL` (the default here) makes a commit survive power loss, not just a
process crash, and group commit amortises its fsync over every record of the batch. Writes
begin with `BEGIN IMMEDIATE`, which takes SQLite's single write lock before the chain head
is read, so another process appending to the same file (an operator's `cxpolicy escalations
assign` while the service runs) extends the same chain instead of forking it.

Triggers reject UPDATE and DELETE on `records`; the only deletion they let through is of
records at or behind the newest checkpoint, which is how pruning works (sink.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, closing, contextmanager
from pathlib import Path
from typing import Any

from cxpolicy.audit.base import ESCALATION_INDEX_COLUMNS, BufferedTx, DuplicateDecision, Query, Store, StoreTx
from cxpolicy.audit.chain import ChainHead
from cxpolicy.audit.escalations import (
    ESC_COLUMNS,
    Escalation,
    escalation_from_row,
    select_escalations,
)
from cxpolicy.audit.grants import GRANT_USES_COLUMNS, GRANT_USES_SQL, GrantAlreadyUsed
from cxpolicy.audit.records import (
    GENESIS_HASH,
    RECORD_COLUMNS,
    AuditRecord,
    select_records,
)
from cxpolicy.audit.retention import CHECKPOINT_COLUMNS, Checkpoint, head_mac

__all__ = ["SCHEMA", "SCHEMA_VERSION", "SQLiteStore"]

SCHEMA_VERSION = "1"

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('decision', 'escalation', 'grant')),
    decision_id TEXT NOT NULL,
    time TEXT NOT NULL,
    policy_revision TEXT,
    effect TEXT,
    rules TEXT NOT NULL,
    cites TEXT NOT NULL,
    escalate_to TEXT NOT NULL,
    actor_kind TEXT,
    actor_id TEXT,
    channel TEXT,
    region TEXT,
    action TEXT,
    request_sha256 TEXT,
    request TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS records_decision
    ON records (decision_id) WHERE kind = 'decision';
CREATE INDEX IF NOT EXISTS records_decision_any ON records (decision_id);
CREATE INDEX IF NOT EXISTS records_time ON records (time);
CREATE TABLE IF NOT EXISTS head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    mac TEXT
);
INSERT OR IGNORE INTO head (id, seq, hash, mac) VALUES (1, 0, '{GENESIS_HASH}', NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    cutoff TEXT NOT NULL,
    through_seq INTEGER NOT NULL,
    through_hash TEXT NOT NULL,
    through_time TEXT NOT NULL,
    pruned INTEGER NOT NULL,
    prev_mac TEXT,
    mac TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS escalations (
    id TEXT PRIMARY KEY,
    decision_id TEXT NOT NULL,
    queue TEXT NOT NULL,
    reasons TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    due_at TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'assigned', 'resolved')),
    assigned_to TEXT,
    assigned_by TEXT,
    assigned_at TEXT,
    resolved_by TEXT,
    resolved_at TEXT,
    note TEXT,
    open_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS escalations_state_due ON escalations (state, due_at);
CREATE INDEX IF NOT EXISTS escalations_decision ON escalations (decision_id);
{GRANT_USES_SQL};
CREATE TRIGGER IF NOT EXISTS records_append_only_update BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'cxpolicy audit: records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_append_only_delete BEFORE DELETE ON records
WHEN OLD.seq > COALESCE((SELECT MAX(through_seq) FROM checkpoints), 0)
BEGIN SELECT RAISE(ABORT, 'cxpolicy audit: records are deleted only by pruning'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_append_only_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'cxpolicy audit: checkpoints are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_append_only_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'cxpolicy audit: checkpoints are append-only'); END;
"""

SYNCHRONOUS = ("off", "normal", "full", "extra")
_ROWS_PER_INSERT = 500  # 19 columns each: well under SQLite's 32766 bound parameters


def _insert_sql(table: str, columns: str, rows: int) -> str:
    one = "(" + ", ".join("?" * (columns.count(",") + 1)) + ")"
    return f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([one] * rows)


def _checkpoints(conn: sqlite3.Connection) -> list[Checkpoint]:
    rows = conn.execute(f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY id").fetchall()
    return [Checkpoint(*row) for row in rows]


class _SQLiteTx(BufferedTx):
    """Inserts are buffered and written as one multi-row INSERT per table when the
    transaction reads or commits. Why: the sqlite3 module releases the GIL around every
    statement, and getting it back from busy caller threads can take a whole switch interval
    (5 ms); one statement per batch instead of one per record keeps group commit fast."""

    def __init__(self, conn: sqlite3.Connection, head: ChainHead) -> None:
        super().__init__(head)
        self.conn = conn

    def flush(self) -> None:
        for start in range(0, len(self._records), _ROWS_PER_INSERT):
            chunk = self._records[start : start + _ROWS_PER_INSERT]
            args = [value for record in chunk for value in record.row()]
            try:
                self.conn.execute(_insert_sql("records", RECORD_COLUMNS, len(chunk)), args)
            except sqlite3.IntegrityError as exc:
                if "decision_id" not in str(exc):
                    raise
                ids = [r.decision_id for r in chunk if r.kind == "decision"]
                # In a batch the writer retries each operation alone, so the caller that
                # repeated a decision id gets this with its own id.
                which = ids[0] if len(ids) == 1 else "of this batch"
                raise DuplicateDecision(f"decision {which} is already in the audit log") from exc
        self._records.clear()
        columns = f"{ESC_COLUMNS}, open_seq, last_seq"
        for start in range(0, len(self._escalations), _ROWS_PER_INSERT):
            rows = self._escalations[start : start + _ROWS_PER_INSERT]
            args = [value for row in rows for value in row]
            self.conn.execute(_insert_sql("escalations", columns, len(rows)), args)
        self._escalations.clear()

    def spent_grants(self, jtis: Sequence[str]) -> set[str]:
        marks = ", ".join("?" * len(jtis))
        rows = self.conn.execute(f"SELECT jti FROM grant_uses WHERE jti IN ({marks})", list(jtis)).fetchall()
        return {str(r[0]) for r in rows}

    def insert_grant_use(self, row: tuple[Any, ...]) -> None:
        try:
            self.conn.execute(f"INSERT INTO grant_uses ({GRANT_USES_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", row)
        except sqlite3.IntegrityError as exc:
            raise GrantAlreadyUsed([str(row[0])]) from exc

    def get_escalation(self, escalation_id: str) -> Escalation | None:
        self.flush()
        row = self.conn.execute(f"SELECT {ESC_COLUMNS} FROM escalations WHERE id = ?", (escalation_id,)).fetchone()
        return escalation_from_row(row) if row else None

    def update_escalation(self, esc: Escalation, seq: int) -> None:
        self.flush()
        self.conn.execute(
            "UPDATE escalations SET state = ?, assigned_to = ?, assigned_by = ?, assigned_at = ?,"
            " resolved_by = ?, resolved_at = ?, note = ?, last_seq = ? WHERE id = ?",
            (
                esc.state,
                esc.assigned_to,
                esc.assigned_by,
                esc.assigned_at,
                esc.resolved_by,
                esc.resolved_at,
                esc.note,
                seq,
                esc.id,
            ),
        )

    def checkpoints(self) -> list[Checkpoint]:
        self.flush()
        return _checkpoints(self.conn)

    def prune_limit(self, cutoff: str, after_seq: int) -> int:
        self.flush()
        (young,) = self.conn.execute(
            "SELECT MIN(seq) FROM records WHERE seq > ? AND time >= ?", (after_seq, cutoff)
        ).fetchone()
        # The decision record of an unresolved escalation stays, with everything after it.
        (open_from,) = self.conn.execute(
            "SELECT MIN(r.seq) FROM escalations e JOIN records r ON r.decision_id = e.decision_id"
            " WHERE e.state != 'resolved' AND r.seq > ?",
            (after_seq,),
        ).fetchone()
        if young is None:
            (young,) = self.conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM records").fetchone()
        stop = min(int(young), int(open_from) if open_from is not None else int(young))
        return max(after_seq, stop - 1)

    def record_at(self, seq: int) -> AuditRecord | None:
        self.flush()
        row = self.conn.execute(f"SELECT {RECORD_COLUMNS} FROM records WHERE seq = ?", (seq,)).fetchone()
        return AuditRecord.from_row(row) if row else None

    def insert_checkpoint(self, cp: Checkpoint) -> None:
        self.conn.execute(
            f"INSERT INTO checkpoints ({CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            cp.row(),
        )

    def delete_through(self, seq: int) -> int:
        self.flush()
        cur = self.conn.execute("DELETE FROM records WHERE seq <= ?", (seq,))
        self.conn.execute("DELETE FROM escalations WHERE state = 'resolved' AND open_seq <= ?", (seq,))
        return cur.rowcount


class SQLiteStore(Store):
    """An audit database in one SQLite file. Reads open their own short-lived connection, so
    they never wait for the writer and are safe from any thread."""

    def __init__(
        self,
        path: str | Path,
        *,
        head_key: bytes | None = None,
        synchronous: str = "full",
        create: bool = True,
        busy_timeout_ms: int = 30_000,
    ) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        if synchronous.lower() not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}")
        if not create and not self.path.exists():
            raise FileNotFoundError(f"no audit database at {self.path}")
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._head_key = head_key
        self._synchronous = synchronous.upper()
        self._busy = busy_timeout_ms
        self._conn = self._connect()
        if not create and not self._has_records_table():
            self._conn.close()
            raise FileNotFoundError(f"{self.path} is not a cxpolicy audit database")
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._init_schema()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=self._busy / 1000)
        conn.execute(f"PRAGMA busy_timeout={self._busy}")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        return conn

    def _has_records_table(self) -> bool:
        row = self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'records'").fetchone()
        return row is not None

    def _init_schema(self) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(SCHEMA):
                conn.execute(statement)
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                conn.execute("INSERT INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))
                if self._head_key is not None:  # a new keyed log: even its empty head is signed
                    genesis = head_mac(self._head_key, 0, GENESIS_HASH)
                    conn.execute("UPDATE head SET mac = ? WHERE id = 1 AND seq = 0", (genesis,))
            elif row[0] != SCHEMA_VERSION:
                raise RuntimeError(f"audit database {self.path} has schema {row[0]}; this build reads {SCHEMA_VERSION}")
            if self._head_key is not None:  # from now on the head is always signed
                conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('keyed', '1')")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- writing -----------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[StoreTx]:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            seq, hash_, mac = conn.execute("SELECT seq, hash, mac FROM head WHERE id = 1").fetchone()
            tx = _SQLiteTx(conn, ChainHead(seq, hash_, mac))
            yield tx
            tx.flush()
            if tx.appended:
                head = tx.head
                new_mac = head_mac(self._head_key, head.seq, head.hash) if self._head_key else None
                conn.execute(
                    "UPDATE head SET seq = ?, hash = ?, mac = ? WHERE id = 1",
                    (head.seq, head.hash, new_mac),
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def transaction(self) -> AbstractContextManager[StoreTx]:
        return self._transaction()

    # -- reading -----------------------------------------------------------------------

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        conn = self._connect()
        conn.execute("PRAGMA query_only=ON")
        with closing(conn):
            yield conn

    def get(self, decision_id: str) -> AuditRecord | None:
        with self._reader() as conn:
            row = conn.execute(
                f"SELECT {RECORD_COLUMNS} FROM records WHERE kind = 'decision' AND decision_id = ?",
                (decision_id,),
            ).fetchone()
        return AuditRecord.from_row(row) if row else None

    def _select(self, q: Query) -> tuple[str, list[Any]]:
        member = "EXISTS (SELECT 1 FROM json_each(records.rules) WHERE value = ?)"
        return select_records(q, placeholder="?", rule_member=member)

    def query(self, q: Query) -> list[AuditRecord]:
        return list(self.iter_records(q))

    def iter_records(self, q: Query) -> Iterator[AuditRecord]:
        sql, args = self._select(q)
        with self._reader() as conn:
            for row in conn.execute(sql, args):
                yield AuditRecord.from_row(row)

    def escalations(self, state: str | None, queue: str | None, decision_id: str | None) -> list[Escalation]:
        sql, args = select_escalations(state, queue, decision_id, placeholder="?")
        with self._reader() as conn:
            return [escalation_from_row(r) for r in conn.execute(sql, args)]

    def get_escalation(self, escalation_id: str) -> Escalation | None:
        with self._reader() as conn:
            row = conn.execute(f"SELECT {ESC_COLUMNS} FROM escalations WHERE id = ?", (escalation_id,)).fetchone()
        return escalation_from_row(row) if row else None

    def overdue(self, now: str) -> list[Escalation]:
        with self._reader() as conn:
            rows = conn.execute(
                f"SELECT {ESC_COLUMNS} FROM escalations WHERE state != 'resolved' AND due_at < ? ORDER BY due_at, id",
                (now,),
            )
            return [escalation_from_row(r) for r in rows]

    def overdue_count(self, now: str) -> int:
        with self._reader() as conn:
            (n,) = conn.execute(
                "SELECT COUNT(*) FROM escalations WHERE state != 'resolved' AND due_at < ?", (now,)
            ).fetchone()
        return int(n)

    @contextmanager
    def _snapshot(
        self,
    ) -> Iterator[tuple[list[Checkpoint], ChainHead | None, Iterator[AuditRecord]]]:
        with self._reader() as conn:
            conn.execute("BEGIN")  # one WAL snapshot for every read below
            try:
                checkpoints = _checkpoints(conn)
                row = conn.execute("SELECT seq, hash, mac FROM head WHERE id = 1").fetchone()
                head = ChainHead(*row) if row else None
                records = (
                    AuditRecord.from_row(r) for r in conn.execute(f"SELECT {RECORD_COLUMNS} FROM records ORDER BY seq")
                )
                yield checkpoints, head, records
            finally:
                conn.execute("COMMIT")

    def snapshot(
        self,
    ) -> AbstractContextManager[tuple[list[Checkpoint], ChainHead | None, Iterator[AuditRecord]]]:
        return self._snapshot()

    def escalation_index(self) -> list[tuple[Any, ...]]:
        with self._reader() as conn:
            return list(conn.execute(f"SELECT {ESCALATION_INDEX_COLUMNS} FROM escalations"))

    def head_seq(self) -> int:
        with self._reader() as conn:
            return int(conn.execute("SELECT seq FROM head WHERE id = 1").fetchone()[0])

    def ever_keyed(self) -> bool:
        with self._reader() as conn:
            return conn.execute("SELECT 1 FROM meta WHERE key = 'keyed'").fetchone() is not None

    def close(self) -> None:
        self._conn.close()


def _statements(script: str) -> list[str]:
    """Split SCHEMA into statements (triggers contain `;` inside BEGIN ... END)."""
    out: list[str] = []
    buf = ""
    for line in script.strip().splitlines():
        buf += line + "\n"
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
