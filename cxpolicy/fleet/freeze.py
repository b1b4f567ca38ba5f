"""Freezes: an operator's "stop this now" in, escalated decisions on every replica out.

Input: freeze and unfreeze commands (kind, value, who, why) written to a shared store;
requests and the decisions the engine made for them. Output: the active freezes each replica
holds (`FreezeSet`), and decisions turned into `escalate` with a reason naming the freeze.

A freeze matches one field of a request:

    action   `action`            tool     `context.tool` (or a top-level `tool`)
    agent    `actor.id`          channel  `channel`           region   `customer.region`

Why it is shaped this way:

- **A store every replica reads, a snapshot each replica matches against.** Writers (the
  CLI, `POST /v1/freezes`, an anomaly auto-freeze) commit a row and bump one version
  counter in the same transaction. Each replica's `FreezeWatcher` notices the new version —
  PostgreSQL tells it at once with LISTEN/NOTIFY (the NOTIFY is sent by that transaction, so
  a listener never hears of a freeze it cannot yet read); SQLite (one machine) is polled
  every 100 ms — reads the active freezes and swaps in a new immutable `FreezeSet`. The
  decide path reads one attribute and, with no freeze active, does nothing else.
- **Append-only history.** Every freeze and unfreeze is also an event row (who, why, when);
  freezes are lifted by writing `lifted_*` columns, never deleted, so `history()` is the
  audit of every intervention.
- **A freeze can only make a decision stricter.** A matched request is escalated whatever
  the policy said, with a `Reason` (`cxpolicy.freeze.<id>`, its `because` naming who froze
  it and why) first in the decision's reasons, so the decision and its audit record show it.
- **Failing safe.** If the store cannot be read, the replica keeps the freezes it last saw
  (it never silently drops one) and reports the error in `/v1/status`.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cxpolicy.engine.decision import Decision, Reason
from cxpolicy.kinds import Effect

__all__ = [
    "FREEZE_KINDS",
    "Freeze",
    "FreezeError",
    "FreezeSet",
    "FreezeStore",
    "FreezeWatcher",
    "PostgresFreezeStore",
    "SQLiteFreezeStore",
    "apply_freezes",
    "open_freeze_store",
]

log = logging.getLogger("cxpolicy.fleet.freeze")

# kind → the request paths it reads (the first one present counts)
FREEZE_KINDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "action": (("action",),),
    "tool": (("context", "tool"), ("tool",)),
    "agent": (("actor", "id"),),
    "channel": (("channel",),),
    "region": (("customer", "region"),),
}
CHANNEL = "cxpolicy_freeze"  # the PostgreSQL NOTIFY channel
MAX_VALUE = 200
MAX_REASON = 2000


class FreezeError(ValueError):
    """A freeze command that cannot be carried out (unknown kind, no reason, unknown id)."""


def _iso(t: datetime | None) -> str | None:
    return t.isoformat().replace("+00:00", "Z") if t is not None else None


def _parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


@dataclass(frozen=True, slots=True)
class Freeze:
    id: str
    kind: str
    value: str
    reason: str
    created_by: str
    created_at: datetime
    source: str = "operator"  # or "anomaly" (an automatic freeze)
    lifted_by: str | None = None
    lifted_at: datetime | None = None
    lift_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.lifted_at is None

    def reason_entry(self) -> Reason:
        """The `Reason` a frozen decision carries."""
        when = self.created_at.strftime("%Y-%m-%d %H:%M:%SZ")
        because = f"{self.kind} `{self.value}` frozen by {self.created_by} at {when}: {self.reason}"
        return Reason(f"cxpolicy.freeze.{self.id}", Effect.ESCALATE, because, ())

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "value": self.value,
            "reason": self.reason,
            "created_by": self.created_by,
            "created_at": _iso(self.created_at),
            "source": self.source,
            "active": self.active,
            "lifted_by": self.lifted_by,
            "lifted_at": _iso(self.lifted_at),
            "lift_reason": self.lift_reason,
        }


def _field(request: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    cur: Any = request
    for part in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


class FreezeSet:
    """The active freezes at one store version, indexed for the decide path (immutable)."""

    __slots__ = ("_by_kind", "freezes", "version")

    def __init__(self, version: int = 0, freezes: Iterable[Freeze] = ()) -> None:
        self.version = version
        self.freezes: tuple[Freeze, ...] = tuple(f for f in freezes if f.active)
        by_kind: dict[str, dict[str, list[tuple[Freeze, Reason]]]] = {}
        for f in self.freezes:
            by_kind.setdefault(f.kind, {}).setdefault(f.value, []).append((f, f.reason_entry()))
        self._by_kind = {k: {v: tuple(lst) for v, lst in d.items()} for k, d in by_kind.items()}

    def __bool__(self) -> bool:
        return bool(self.freezes)

    def match(self, request: Any) -> tuple[tuple[Freeze, Reason], ...]:
        """Every active freeze this request falls under (never raises)."""
        if not self._by_kind or not isinstance(request, Mapping):
            return ()
        out: list[tuple[Freeze, Reason]] = []
        for kind, values in self._by_kind.items():
            for path in FREEZE_KINDS[kind]:
                value = _field(request, path)
                if value is None:
                    continue
                if isinstance(value, str) and value in values:
                    out.extend(values[value])
                break
        return tuple(out)

    def ids(self) -> list[str]:
        return sorted(f.id for f in self.freezes)


def apply_freezes(decision: Decision, matched: Sequence[tuple[Freeze, Reason]]) -> Decision:
    """The decision escalated by `matched` freezes: their reasons first, the rest kept."""
    if not matched:
        return decision
    reasons = tuple(r for _, r in matched) + decision.reasons
    return replace(decision, effect=Effect.ESCALATE, reasons=reasons, default_applied=False)


# ---------------------------------------------------------------------- stores
def _new_id() -> str:
    return "frz-" + secrets.token_hex(6)


def _validate(kind: str, value: str, reason: str, by: str) -> None:
    if kind not in FREEZE_KINDS:
        raise FreezeError(f"unknown freeze kind {kind!r}; one of {', '.join(FREEZE_KINDS)}")
    if not value or len(value) > MAX_VALUE:
        raise FreezeError(f"a freeze needs a value of 1 to {MAX_VALUE} characters")
    if not reason.strip() or len(reason) > MAX_REASON:
        raise FreezeError(f"a freeze needs a reason (why, for the audit), at most {MAX_REASON} characters")
    if not by.strip():
        raise FreezeError("a freeze needs to say who made it")


_COLUMNS = "id, kind, value, reason, created_by, created_at, source, lifted_by, lifted_at, lift_reason"


def _row(row: Sequence[Any]) -> Freeze:
    return Freeze(
        id=row[0], kind=row[1], value=row[2], reason=row[3], created_by=row[4],
        created_at=_parse_time(row[5]) or datetime.now(UTC), source=row[6], lifted_by=row[7],
        lifted_at=_parse_time(row[8]), lift_reason=row[9],
    )  # fmt: skip


class FreezeStore(ABC):
    """Where freezes live for a fleet. Thread-safe; every write bumps `version()`."""

    url: str

    @abstractmethod
    def _tx(self, fn: Callable[[Any], Any]) -> Any: ...

    @abstractmethod
    def _mark(self) -> str:
        """The SQL parameter marker (`?` or `%s`)."""

    @abstractmethod
    def _bump(self, cur: Any) -> int: ...

    def create(self, kind: str, value: str, reason: str, by: str, *, source: str = "operator") -> Freeze:
        _validate(kind, value, reason, by)
        f = Freeze(_new_id(), kind, value, reason.strip(), by.strip(), datetime.now(UTC), source)
        m = self._mark()

        def write(cur: Any) -> None:
            cur.execute(
                f"INSERT INTO cxp_freezes ({_COLUMNS}) VALUES ({', '.join([m] * 10)})",
                (f.id, f.kind, f.value, f.reason, f.created_by, _iso(f.created_at), f.source, None, None, None),
            )
            self._event(cur, f, "freeze", f.created_by, f.reason)
            self._bump(cur)

        self._tx(write)
        return f

    def lift(
        self, *, by: str, reason: str, freeze_id: str | None = None, kind: str | None = None, value: str | None = None
    ) -> list[Freeze]:
        """Unfreeze one freeze by id, or every active freeze of `kind` `value`."""
        if not by.strip() or not reason.strip():
            raise FreezeError("an unfreeze needs to say who and why")
        m = self._mark()
        now = datetime.now(UTC)

        def write(cur: Any) -> list[Freeze]:
            if freeze_id is not None:
                cur.execute(f"SELECT {_COLUMNS} FROM cxp_freezes WHERE id = {m} AND lifted_at IS NULL", (freeze_id,))
            else:
                cur.execute(
                    f"SELECT {_COLUMNS} FROM cxp_freezes WHERE kind = {m} AND value = {m} AND lifted_at IS NULL",
                    (kind, value),
                )
            found = [_row(r) for r in cur.fetchall()]
            for f in found:
                cur.execute(
                    f"UPDATE cxp_freezes SET lifted_by = {m}, lifted_at = {m}, lift_reason = {m} WHERE id = {m}",
                    (by.strip(), _iso(now), reason.strip(), f.id),
                )
                self._event(cur, f, "unfreeze", by.strip(), reason.strip())
            if found:
                self._bump(cur)
            return [replace(f, lifted_by=by.strip(), lifted_at=now, lift_reason=reason.strip()) for f in found]

        lifted: list[Freeze] = self._tx(write)
        if not lifted:
            what = freeze_id if freeze_id is not None else f"{kind} {value!r}"
            raise FreezeError(f"no active freeze {what}")
        return lifted

    def _event(self, cur: Any, f: Freeze, event: str, actor: str, reason: str) -> None:
        m = self._mark()
        cur.execute(
            f"INSERT INTO cxp_freeze_events (freeze_id, event, kind, value, actor, reason, at) "
            f"VALUES ({m}, {m}, {m}, {m}, {m}, {m}, {m})",
            (f.id, event, f.kind, f.value, actor, reason, _iso(datetime.now(UTC))),
        )

    def snapshot(self) -> FreezeSet:
        """The active freezes and the version they belong to, read in one transaction."""

        def read(cur: Any) -> FreezeSet:
            cur.execute("SELECT version FROM cxp_freeze_version")
            version = int(cur.fetchone()[0])
            cur.execute(f"SELECT {_COLUMNS} FROM cxp_freezes WHERE lifted_at IS NULL ORDER BY created_at, id")
            return FreezeSet(version, [_row(r) for r in cur.fetchall()])

        result: FreezeSet = self._tx(read)
        return result

    def version(self) -> int:
        def read(cur: Any) -> int:
            cur.execute("SELECT version FROM cxp_freeze_version")
            return int(cur.fetchone()[0])

        result: int = self._tx(read)
        return result

    def history(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Every freeze and unfreeze, newest first: who, why, when."""
        m = self._mark()

        def read(cur: Any) -> list[dict[str, Any]]:
            cur.execute(
                "SELECT seq, freeze_id, event, kind, value, actor, reason, at FROM cxp_freeze_events "
                f"ORDER BY seq DESC LIMIT {m}",
                (limit,),
            )
            keys = ("seq", "freeze_id", "event", "kind", "value", "by", "reason", "at")
            return [dict(zip(keys, r, strict=True)) for r in cur.fetchall()]

        result: list[dict[str, Any]] = self._tx(read)
        return result

    def wait(self, version: int, timeout: float) -> None:
        """Return when the version may have moved past `version`, or after `timeout`."""
        time.sleep(timeout)

    def close(self) -> None:
        return None

    def __enter__(self) -> FreezeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS cxp_freezes (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, value TEXT NOT NULL, reason TEXT NOT NULL,
  created_by TEXT NOT NULL, created_at TEXT NOT NULL, source TEXT NOT NULL,
  lifted_by TEXT, lifted_at TEXT, lift_reason TEXT);
CREATE TABLE IF NOT EXISTS cxp_freeze_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, freeze_id TEXT NOT NULL, event TEXT NOT NULL,
  kind TEXT NOT NULL, value TEXT NOT NULL, actor TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cxp_freeze_version (one INTEGER PRIMARY KEY CHECK (one = 1), version INTEGER NOT NULL);
INSERT OR IGNORE INTO cxp_freeze_version (one, version) VALUES (1, 0);
CREATE TRIGGER IF NOT EXISTS cxp_freeze_events_append_only BEFORE UPDATE ON cxp_freeze_events
  BEGIN SELECT RAISE(ABORT, 'freeze events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS cxp_freeze_events_no_delete BEFORE DELETE ON cxp_freeze_events
  BEGIN SELECT RAISE(ABORT, 'freeze events are append-only'); END;
"""


class SQLiteFreezeStore(FreezeStore):
    """Freezes in a SQLite file: the replicas of one machine share it; polled every 100 ms."""

    poll_seconds = 0.1

    def __init__(self, path: str | Path) -> None:
        self.url = f"sqlite:///{path}"
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), timeout=10, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SQLITE_SCHEMA)

    def _mark(self) -> str:
        return "?"

    def _tx(self, fn: Callable[[Any], Any]) -> Any:
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                out = fn(cur)
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")
            return out

    def _bump(self, cur: Any) -> int:
        cur.execute("UPDATE cxp_freeze_version SET version = version + 1 RETURNING version")
        return int(cur.fetchone()[0])

    def wait(self, version: int, timeout: float) -> None:
        time.sleep(min(timeout, self.poll_seconds))

    def close(self) -> None:
        with self._lock:
            self._conn.close()


_PG_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS cxp_freezes (
      id TEXT PRIMARY KEY, kind TEXT NOT NULL, value TEXT NOT NULL, reason TEXT NOT NULL,
      created_by TEXT NOT NULL, created_at TEXT NOT NULL, source TEXT NOT NULL,
      lifted_by TEXT, lifted_at TEXT, lift_reason TEXT)""",
    """CREATE TABLE IF NOT EXISTS cxp_freeze_events (
      seq BIGSERIAL PRIMARY KEY, freeze_id TEXT NOT NULL, event TEXT NOT NULL, kind TEXT NOT NULL,
      value TEXT NOT NULL, actor TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS cxp_freeze_version (
      one INTEGER PRIMARY KEY CHECK (one = 1), version BIGINT NOT NULL)""",
    "INSERT INTO cxp_freeze_version (one, version) VALUES (1, 0) ON CONFLICT DO NOTHING",
    """CREATE OR REPLACE FUNCTION cxp_freeze_events_append_only() RETURNS trigger AS $$
      BEGIN RAISE EXCEPTION 'freeze events are append-only'; END; $$ LANGUAGE plpgsql""",
    """DO $$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'cxp_freeze_events_append_only') THEN
        CREATE TRIGGER cxp_freeze_events_append_only BEFORE UPDATE OR DELETE ON cxp_freeze_events
          FOR EACH ROW EXECUTE FUNCTION cxp_freeze_events_append_only();
      END IF; END $$""",
)


class PostgresFreezeStore(FreezeStore):
    """Freezes in PostgreSQL for a fleet; each change is NOTIFYed on `cxpolicy_freeze`."""

    def __init__(self, dsn: str) -> None:
        import psycopg

        self.url = dsn
        self._psycopg = psycopg
        self._lock = threading.Lock()
        self._conn = psycopg.connect(dsn)
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(827361)")  # replicas starting together
            for stmt in _PG_SCHEMA:
                cur.execute(stmt)
        self._listen: Any = None

    def _mark(self) -> str:
        return "%s"

    def _tx(self, fn: Callable[[Any], Any]) -> Any:
        with self._lock:
            if self._conn.closed:
                self._conn = self._psycopg.connect(self.url)
            try:
                with self._conn.transaction(), self._conn.cursor() as cur:
                    return fn(cur)
            except self._psycopg.OperationalError:
                self._conn.close()  # reconnect on the next call
                raise

    def _bump(self, cur: Any) -> int:
        cur.execute("UPDATE cxp_freeze_version SET version = version + 1 RETURNING version")
        version = int(cur.fetchone()[0])
        cur.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(version)))  # delivered at commit
        return version

    def wait(self, version: int, timeout: float) -> None:
        """Block until a NOTIFY arrives (or `timeout`); a dedicated autocommit connection."""
        try:
            if self._listen is None or self._listen.closed:
                self._listen = self._psycopg.connect(self.url, autocommit=True)
                self._listen.execute(f"LISTEN {CHANNEL}")
                return  # something may have changed before we listened: the caller re-reads
            for _ in self._listen.notifies(timeout=timeout, stop_after=1):
                pass
        except self._psycopg.Error:
            if self._listen is not None:
                self._listen.close()
            self._listen = None
            time.sleep(min(timeout, 0.5))

    def close(self) -> None:
        with self._lock:
            self._conn.close()
        if self._listen is not None:
            self._listen.close()


def open_freeze_store(url: str) -> FreezeStore:
    """`postgresql://…` → PostgreSQL (a fleet); `sqlite:///path` or a path → SQLite (one machine)."""
    if url.startswith(("postgres://", "postgresql://")):
        return PostgresFreezeStore(url)
    from cxpolicy.audit import sqlite_path

    return SQLiteFreezeStore(sqlite_path(url))


# ---------------------------------------------------------------------- watcher
class FreezeWatcher:
    """Keeps `current` equal to the store's active freezes, from a background thread.

    `fallback` bounds how long a lost notification can go unnoticed: the store is re-read at
    least that often whatever `wait` says. `observed` maps each version seen to the wall
    time it was first seen here (what the propagation measurement reads).
    """

    def __init__(
        self,
        store: FreezeStore,
        *,
        fallback: float = 2.0,
        on_change: Callable[[FreezeSet], None] | None = None,
    ) -> None:
        self.store = store
        self.fallback = fallback
        self.on_change = on_change
        self.current = FreezeSet()
        self.last_sync: datetime | None = None
        self.last_error: str | None = None
        self.observed_at: datetime | None = None
        self._stop = threading.Event()
        self.refresh()
        self._thread = threading.Thread(target=self._loop, name="cxpolicy-freeze-watch", daemon=True)
        self._thread.start()

    def refresh(self) -> None:
        try:
            snap = self.store.snapshot()
        except Exception as exc:  # keep the freezes we have: never drop one silently
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("freeze store unreadable; keeping %d freezes: %s", len(self.current.freezes), exc)
            time.sleep(0.2)
            return
        self.last_error = None
        self.last_sync = datetime.now(UTC)
        if snap.version != self.current.version:
            self.current = snap  # the swap the decide path sees
            self.observed_at = self.last_sync
            log.info("freezes at version %d: %s", snap.version, ", ".join(snap.ids()) or "none")
            if self.on_change is not None:
                try:
                    self.on_change(snap)
                except Exception:
                    log.exception("freeze listener failed")

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.store.wait(self.current.version, self.fallback)
            if self._stop.is_set():
                return
            self.refresh()

    def status(self) -> dict[str, Any]:
        return {
            "store": _redact_url(self.store.url),
            "version": self.current.version,
            "active": [f.to_dict() for f in self.current.freezes],
            "observed_at": _iso(self.observed_at),
            "last_sync": _iso(self.last_sync),
            "last_error": self.last_error,
        }

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.fallback + 5)
        self.store.close()


def _redact_url(url: str) -> str:
    """A DSN without its password, for status pages."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        host = parts.hostname or ""
        netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
