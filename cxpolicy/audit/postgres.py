"""PostgreSQL storage for the audit log: one chain shared by several service replicas.

Input: audit records. Output: rows in PostgreSQL, one chain across replicas.

Same records, same hashes, same chain logic as SQLite (`sink.py` does not know which store it
talks to); only the locking differs. SQLite has one write lock per file; here every write
transaction begins with `SELECT … FROM head WHERE id = 1 FOR UPDATE`, so writers on every
replica queue on that one row, read the head under the lock, and extend the same chain. Each
replica still group-commits its own callers, so the row lock is taken once per batch, not once
per record. Commits are durable with PostgreSQL's default `synchronous_commit = on`.

Requires `psycopg` 3 (`pip install "psycopg[binary]"`); imported only when a `postgresql://`
URL is opened. Append-only is enforced by triggers as in SQLite.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
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
    HASHED_FIELDS,
    RECORD_COLUMNS,
    AuditRecord,
    select_records,
)
from cxpolicy.audit.retention import CHECKPOINT_COLUMNS, Checkpoint, head_mac


def _load_psycopg() -> tuple[Any, Any]:
    """psycopg and its errors module, or (None, None). Imported by name so that neither mypy
    nor `import cxpolicy.audit` needs psycopg where no PostgreSQL sink is used."""
    try:
        return importlib.import_module("psycopg"), importlib.import_module("psycopg.errors")
    except ImportError:
        return None, None


psycopg, pg_errors = _load_psycopg()

__all__ = ["SCHEMA_VERSION", "PostgresStore"]

SCHEMA_VERSION = "1"
_LOCK_KEY = 0x637870_61756474  # advisory lock serialising schema creation ("cxp" "audt")

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS records (
        seq BIGINT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('decision', 'escalation', 'grant')),
        decision_id TEXT NOT NULL, time TEXT NOT NULL, policy_revision TEXT, effect TEXT,
        rules TEXT NOT NULL, cites TEXT NOT NULL, escalate_to TEXT NOT NULL,
        actor_kind TEXT, actor_id TEXT, channel TEXT, region TEXT, action TEXT,
        request_sha256 TEXT, request TEXT NOT NULL, detail TEXT NOT NULL,
        prev_hash TEXT NOT NULL, hash TEXT NOT NULL)""",
    "CREATE UNIQUE INDEX IF NOT EXISTS records_decision ON records (decision_id) WHERE kind = 'decision'",
    "CREATE INDEX IF NOT EXISTS records_decision_any ON records (decision_id)",
    "CREATE INDEX IF NOT EXISTS records_time ON records (time)",
    """CREATE TABLE IF NOT EXISTS head (
        id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, hash TEXT NOT NULL, mac TEXT)""",
    f"INSERT INTO head (id, seq, hash, mac) VALUES (1, 0, '{GENESIS_HASH}', NULL) ON CONFLICT (id) DO NOTHING",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, cutoff TEXT NOT NULL,
        through_seq BIGINT NOT NULL, through_hash TEXT NOT NULL, through_time TEXT NOT NULL,
        pruned BIGINT NOT NULL, prev_mac TEXT, mac TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS escalations (
        id TEXT PRIMARY KEY, decision_id TEXT NOT NULL, queue TEXT NOT NULL, reasons TEXT NOT NULL,
        opened_at TEXT NOT NULL, due_at TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('open', 'assigned', 'resolved')),
        assigned_to TEXT, assigned_by TEXT, assigned_at TEXT, resolved_by TEXT, resolved_at TEXT,
        note TEXT, open_seq BIGINT NOT NULL, last_seq BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS escalations_state_due ON escalations (state, due_at)",
    "CREATE INDEX IF NOT EXISTS escalations_decision ON escalations (decision_id)",
    GRANT_USES_SQL,
    """CREATE OR REPLACE FUNCTION cxpolicy_audit_append_only() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'records' AND OLD.seq <= COALESCE(
            (SELECT MAX(through_seq) FROM checkpoints), 0) THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'cxpolicy audit: % on % is not allowed (append-only; pruning only)',
            TG_OP, TG_TABLE_NAME;
    END $$ LANGUAGE plpgsql""",
    "CREATE OR REPLACE TRIGGER records_append_only BEFORE UPDATE OR DELETE ON records"
    " FOR EACH ROW EXECUTE FUNCTION cxpolicy_audit_append_only()",
    "CREATE OR REPLACE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON checkpoints"
    " FOR EACH ROW EXECUTE FUNCTION cxpolicy_audit_append_only()",
]


class _PgTx(BufferedTx):
    """Like the SQLite transaction: inserts buffered, written with one `executemany` (which
    psycopg pipelines) per table when the transaction reads or commits."""

    def __init__(self, cur: Any, head: ChainHead) -> None:
        super().__init__(head)
        self.cur = cur

    def flush(self) -> None:
        if self._records:
            marks = ", ".join(["%s"] * (len(HASHED_FIELDS) + 1))
            try:
                self.cur.executemany(
                    f"INSERT INTO records ({RECORD_COLUMNS}) VALUES ({marks})",
                    [r.row() for r in self._records],
                )
            except pg_errors.UniqueViolation as exc:
                ids = [r.decision_id for r in self._records if r.kind == "decision"]
                which = ids[0] if len(ids) == 1 else "of this batch"
                raise DuplicateDecision(f"decision {which} is already in the audit log") from exc
            self._records.clear()
        if self._escalations:
            self.cur.executemany(
                f"INSERT INTO escalations ({ESC_COLUMNS}, open_seq, last_seq) VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                self._escalations,
            )
            self._escalations.clear()

    def spent_grants(self, jtis: Sequence[str]) -> set[str]:
        self.cur.execute("SELECT jti FROM grant_uses WHERE jti = ANY(%s)", (list(jtis),))
        return {str(r[0]) for r in self.cur.fetchall()}

    def insert_grant_use(self, row: tuple[Any, ...]) -> None:
        try:
            self.cur.execute(f"INSERT INTO grant_uses ({GRANT_USES_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)", row)
        except pg_errors.UniqueViolation as exc:
            raise GrantAlreadyUsed([str(row[0])]) from exc

    def get_escalation(self, escalation_id: str) -> Escalation | None:
        self.flush()
        self.cur.execute(f"SELECT {ESC_COLUMNS} FROM escalations WHERE id = %s FOR UPDATE", (escalation_id,))
        row = self.cur.fetchone()
        return escalation_from_row(row) if row else None

    def update_escalation(self, esc: Escalation, seq: int) -> None:
        self.flush()
        self.cur.execute(
            "UPDATE escalations SET state = %s, assigned_to = %s, assigned_by = %s,"
            " assigned_at = %s, resolved_by = %s, resolved_at = %s, note = %s, last_seq = %s"
            " WHERE id = %s",
            (esc.state, esc.assigned_to, esc.assigned_by, esc.assigned_at, esc.resolved_by,
             esc.resolved_at, esc.note, seq, esc.id),
        )  # fmt: skip

    def checkpoints(self) -> list[Checkpoint]:
        self.flush()
        self.cur.execute(f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY id")
        return [Checkpoint(*row) for row in self.cur.fetchall()]

    def prune_limit(self, cutoff: str, after_seq: int) -> int:
        self.flush()
        self.cur.execute("SELECT MIN(seq) FROM records WHERE seq > %s AND time >= %s", (after_seq, cutoff))
        (young,) = self.cur.fetchone()
        self.cur.execute(
            "SELECT MIN(r.seq) FROM escalations e JOIN records r ON r.decision_id = e.decision_id"
            " WHERE e.state != 'resolved' AND r.seq > %s",
            (after_seq,),
        )
        (open_from,) = self.cur.fetchone()
        if young is None:
            self.cur.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM records")
            (young,) = self.cur.fetchone()
        stop = min(int(young), int(open_from) if open_from is not None else int(young))
        return max(after_seq, stop - 1)

    def record_at(self, seq: int) -> AuditRecord | None:
        self.flush()
        self.cur.execute(f"SELECT {RECORD_COLUMNS} FROM records WHERE seq = %s", (seq,))
        row = self.cur.fetchone()
        return AuditRecord.from_row(row) if row else None

    def insert_checkpoint(self, cp: Checkpoint) -> None:
        self.flush()
        self.cur.execute(
            f"INSERT INTO checkpoints ({CHECKPOINT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            cp.row(),
        )

    def delete_through(self, seq: int) -> int:
        self.flush()
        self.cur.execute("DELETE FROM records WHERE seq <= %s", (seq,))
        deleted = int(self.cur.rowcount)
        self.cur.execute("DELETE FROM escalations WHERE state = 'resolved' AND open_seq <= %s", (seq,))
        return deleted


class PostgresStore(Store):
    """The audit log in a PostgreSQL database (`postgresql://user@host/db`)."""

    def __init__(self, dsn: str, *, head_key: bytes | None = None, create: bool = True) -> None:
        if psycopg is None:
            raise RuntimeError('the PostgreSQL audit sink needs psycopg: pip install "psycopg[binary]"')
        self.url = dsn
        self._dsn = dsn
        self._head_key = head_key
        self._conn = psycopg.connect(dsn)  # the writer's; used by the writer thread only
        self._read = psycopg.connect(dsn, autocommit=True)
        self._read_lock = threading.Lock()
        try:
            self._init_schema(create)
        except BaseException:
            self.close()
            raise

    def _init_schema(self, create: bool) -> None:
        with self._conn.cursor() as cur:
            cur.execute("SELECT to_regclass('records') IS NOT NULL")
            row = cur.fetchone()
            exists = bool(row and row[0])
            if not exists and not create:
                self._conn.rollback()
                raise FileNotFoundError(f"no cxpolicy audit tables in {self._dsn}")
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            for statement in SCHEMA:
                cur.execute(statement)
            cur.execute("SELECT value FROM meta WHERE key = 'schema'")
            row = cur.fetchone()
            if row is None:
                cur.execute("INSERT INTO meta (key, value) VALUES ('schema', %s)", (SCHEMA_VERSION,))
                if self._head_key is not None:  # a new keyed log: even its empty head is signed
                    genesis = head_mac(self._head_key, 0, GENESIS_HASH)
                    cur.execute("UPDATE head SET mac = %s WHERE id = 1 AND seq = 0", (genesis,))
            elif row[0] != SCHEMA_VERSION:
                self._conn.rollback()
                raise RuntimeError(f"audit schema {row[0]}; this build reads {SCHEMA_VERSION}")
            if self._head_key is not None:  # from now on the head is always signed
                cur.execute("INSERT INTO meta (key, value) VALUES ('keyed', '1') ON CONFLICT (key) DO NOTHING")
        self._conn.commit()

    @contextmanager
    def _transaction(self) -> Iterator[StoreTx]:
        conn = self._conn
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT seq, hash, mac FROM head WHERE id = 1 FOR UPDATE")
                seq, hash_, mac = cur.fetchone()
                tx = _PgTx(cur, ChainHead(int(seq), hash_, mac))
                yield tx
                tx.flush()
                if tx.appended:
                    head = tx.head
                    new_mac = head_mac(self._head_key, head.seq, head.hash) if self._head_key else None
                    cur.execute(
                        "UPDATE head SET seq = %s, hash = %s, mac = %s WHERE id = 1",
                        (head.seq, head.hash, new_mac),
                    )
            conn.commit()
        except BaseException:
            conn.rollback()
            raise

    def transaction(self) -> AbstractContextManager[StoreTx]:
        return self._transaction()

    def escalation_index(self) -> list[tuple[Any, ...]]:
        return self._fetch(f"SELECT {ESCALATION_INDEX_COLUMNS} FROM escalations")

    def head_seq(self) -> int:
        return int(self._fetch("SELECT seq FROM head WHERE id = 1")[0][0])

    def ever_keyed(self) -> bool:
        return bool(self._fetch("SELECT 1 FROM meta WHERE key = 'keyed'"))

    def _fetch(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        with self._read_lock, self._read.cursor() as cur:
            cur.execute(sql, args)
            rows: list[tuple[Any, ...]] = cur.fetchall()
            return rows

    def get(self, decision_id: str) -> AuditRecord | None:
        rows = self._fetch(
            f"SELECT {RECORD_COLUMNS} FROM records WHERE kind = 'decision' AND decision_id = %s",
            (decision_id,),
        )
        return AuditRecord.from_row(rows[0]) if rows else None

    def _select(self, q: Query) -> tuple[str, list[Any]]:
        return select_records(q, placeholder="%s", rule_member='rules::jsonb ? %s')

    def query(self, q: Query) -> list[AuditRecord]:
        sql, args = self._select(q)
        return [AuditRecord.from_row(r) for r in self._fetch(sql, args)]

    def iter_records(self, q: Query) -> Iterator[AuditRecord]:
        sql, args = self._select(q)
        with psycopg.connect(self._dsn) as conn, conn.cursor(name="cxpolicy_audit_export") as cur:
            cur.execute(sql, args)
            for row in cur:
                yield AuditRecord.from_row(row)

    def escalations(self, state: str | None, queue: str | None, decision_id: str | None) -> list[Escalation]:
        sql, args = select_escalations(state, queue, decision_id, placeholder="%s")
        return [escalation_from_row(r) for r in self._fetch(sql, args)]

    def get_escalation(self, escalation_id: str) -> Escalation | None:
        rows = self._fetch(f"SELECT {ESC_COLUMNS} FROM escalations WHERE id = %s", (escalation_id,))
        return escalation_from_row(rows[0]) if rows else None

    def overdue(self, now: str) -> list[Escalation]:
        rows = self._fetch(
            f"SELECT {ESC_COLUMNS} FROM escalations WHERE state != 'resolved' AND due_at < %s ORDER BY due_at, id",
            (now,),
        )
        return [escalation_from_row(r) for r in rows]

    def overdue_count(self, now: str) -> int:
        rows = self._fetch("SELECT COUNT(*) FROM escalations WHERE state != 'resolved' AND due_at < %s", (now,))
        return int(rows[0][0])

    @contextmanager
    def _snapshot(
        self,
    ) -> Iterator[tuple[list[Checkpoint], ChainHead | None, Iterator[AuditRecord]]]:
        with psycopg.connect(self._dsn) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            with conn.cursor() as cur:
                cur.execute(f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY id")
                checkpoints = [Checkpoint(*row) for row in cur.fetchall()]
                cur.execute("SELECT seq, hash, mac FROM head WHERE id = 1")
                row = cur.fetchone()
                head = ChainHead(int(row[0]), row[1], row[2]) if row else None
            with conn.cursor(name="cxpolicy_audit_verify") as stream:
                stream.execute(f"SELECT {RECORD_COLUMNS} FROM records ORDER BY seq")
                yield checkpoints, head, (AuditRecord.from_row(r) for r in stream)

    def snapshot(
        self,
    ) -> AbstractContextManager[tuple[list[Checkpoint], ChainHead | None, Iterator[AuditRecord]]]:
        return self._snapshot()

    def close(self) -> None:
        self._conn.close()
        self._read.close()
