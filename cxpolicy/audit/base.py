"""The audit sink: its public interface, and the chain logic shared by every storage backend.

Input: decisions to record. Output: the `AuditSink` interface and the chain hashing every store shares.

Three layers, so a PostgreSQL sink is a new `Store` and nothing else:

- `AuditSink` — what the service and the CLI call (`record`, `get`, `query`, escalations,
  `verify`, `prune`). Implemented once, by `ChainedSink`.
- `ChainedSink` — masking, drafts, the hash chain, escalation transitions, pruning; every
  write goes through one `GroupCommitWriter`, in a `StoreTx` that holds the chain head.
- `Store` / `StoreTx` — storage primitives (SQL). A transaction reads the chain head *under
  the write lock*, so several processes (the service and `cxpolicy escalations assign`, or
  several replicas on PostgreSQL) extend one chain without forking it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cxpolicy.audit.chain import ChainHead, VerifyResult
from cxpolicy.audit.escalations import Escalation, escalation_values
from cxpolicy.audit.records import AuditRecord, RecordDraft, seal
from cxpolicy.audit.retention import Checkpoint, RetentionPolicy
from cxpolicy.audit.witness import Sighting
from cxpolicy.audit.writer import WriterStats

__all__ = ["AuditIntegrityError", "AuditSink", "DuplicateDecision", "Query", "Store", "StoreTx"]


ESCALATION_INDEX_COLUMNS = "id, decision_id, queue, state, assigned_to, open_seq, last_seq"
"""What `Store.escalation_index` returns per row, in this order."""


class DuplicateDecision(ValueError):
    """A decision id that is already in the log: each decision is recorded exactly once."""


class AuditIntegrityError(RuntimeError):
    """The chain does not verify; raised by operations that must not build on a broken log."""


@dataclass(frozen=True, slots=True)
class Query:
    """Filters of `AuditSink.query` (all optional, combined with AND)."""

    since: datetime | None = None
    until: datetime | None = None
    effect: str | None = None
    rule: str | None = None
    action: str | None = None
    kind: str | None = None
    decision_id: str | None = None
    limit: int | None = None
    newest_first: bool = False


class StoreTx(ABC):
    """One write transaction. `head` was read under the write lock when it began; `append`
    seals drafts onto it, and the store writes the final head back before committing."""

    def __init__(self, head: ChainHead) -> None:
        self.head = head
        self.appended = 0

    def append(self, draft: RecordDraft) -> AuditRecord:
        record = seal(draft, self.head.seq + 1, self.head.hash)
        self.insert_record(record)
        self.head = ChainHead(record.seq, record.hash)
        self.appended += 1
        return record

    @abstractmethod
    def insert_record(self, record: AuditRecord) -> None:
        """Insert one sealed record; raise `DuplicateDecision` for a repeated decision id."""

    @abstractmethod
    def insert_escalation(self, esc: Escalation, seq: int) -> None: ...

    def spent_grants(self, jtis: Sequence[str]) -> set[str]:
        """The grant ids among `jtis` already consumed (read under the write lock)."""
        raise NotImplementedError(f"{type(self).__name__} cannot consume grants")

    def insert_grant_use(self, row: tuple[Any, ...]) -> None:
        """Consume one grant: the values of `GRANT_USES_COLUMNS`; a repeated id must raise."""
        raise NotImplementedError(f"{type(self).__name__} cannot consume grants")

    @abstractmethod
    def get_escalation(self, escalation_id: str) -> Escalation | None: ...

    @abstractmethod
    def update_escalation(self, esc: Escalation, seq: int) -> None: ...

    @abstractmethod
    def checkpoints(self) -> list[Checkpoint]: ...

    @abstractmethod
    def prune_limit(self, cutoff: str, after_seq: int) -> int:
        """The largest seq N such that every record in (after_seq, N] is older than `cutoff`
        and none opened an escalation that is still unresolved (after_seq when none)."""

    @abstractmethod
    def record_at(self, seq: int) -> AuditRecord | None: ...

    @abstractmethod
    def insert_checkpoint(self, cp: Checkpoint) -> None: ...

    @abstractmethod
    def delete_through(self, seq: int) -> int:
        """Delete records with seq <= `seq` (allowed only behind a checkpoint), and resolved
        escalations opened there; return the number of records deleted."""


class BufferedTx(StoreTx):
    """A transaction that buffers its inserts and writes each table in one statement (see the
    stores' `flush`): one round trip per batch instead of one per record keeps group commit
    fast. Rows wait in `_records` and `_escalations` (the `ESC_COLUMNS` values, then the
    opening and last seq)."""

    def __init__(self, head: ChainHead) -> None:
        super().__init__(head)
        self._records: list[AuditRecord] = []
        self._escalations: list[tuple[Any, ...]] = []

    def insert_record(self, record: AuditRecord) -> None:
        self._records.append(record)

    def insert_escalation(self, esc: Escalation, seq: int) -> None:
        self._escalations.append((*escalation_values(esc), seq, seq))


class Store(ABC):
    """Storage primitives of one backend; reads see committed data only."""

    url: str

    @abstractmethod
    def transaction(self) -> AbstractContextManager[StoreTx]:
        """Begin a write transaction holding the write lock; commit (writing the head, signed
        with `head_key` when set) on a clean exit, roll back on an exception."""

    @abstractmethod
    def get(self, decision_id: str) -> AuditRecord | None: ...

    @abstractmethod
    def query(self, q: Query) -> list[AuditRecord]: ...

    @abstractmethod
    def iter_records(self, q: Query) -> Iterator[AuditRecord]:
        """Like `query` but streamed (export of a large log)."""

    @abstractmethod
    def escalations(self, state: str | None, queue: str | None, decision_id: str | None) -> list[Escalation]: ...

    @abstractmethod
    def get_escalation(self, escalation_id: str) -> Escalation | None: ...

    @abstractmethod
    def overdue(self, now: str) -> list[Escalation]: ...

    @abstractmethod
    def overdue_count(self, now: str) -> int: ...

    @abstractmethod
    def snapshot(
        self,
    ) -> AbstractContextManager[tuple[list[Checkpoint], ChainHead | None, Iterator[AuditRecord]]]:
        """One consistent read view for `verify`: checkpoints, head, and records in seq order."""

    def escalation_index(self) -> list[tuple[Any, ...]] | None:
        """Every escalation row as (ESCALATION_INDEX_COLUMNS), for `verify` to replay the
        chain against; None when the store cannot list them (the check is then skipped)."""
        return None

    def head_seq(self) -> int:
        """The committed chain head's seq right now (outside any snapshot)."""
        raise NotImplementedError

    def ever_keyed(self) -> bool:
        """Whether a sink with an audit key ever opened this log (its head is signed since)."""
        return False

    @abstractmethod
    def close(self) -> None: ...


class AuditSink(ABC):
    """What the decision service and the CLI call. Every write returns only once committed."""

    @abstractmethod
    def record(self, request: Mapping[str, Any], decision: Any) -> None:
        """Append the decision (and the escalations an `escalate` opens); return once durable.

        Raises `DuplicateDecision` when the decision id is already in the log, and whatever
        the storage raised when the commit failed: never a silent drop.
        """

    @abstractmethod
    async def arecord(self, request: Mapping[str, Any], decision: Any) -> None:
        """`record` for asyncio callers (the ASGI service): awaits without holding a thread."""

    @abstractmethod
    def get(self, decision_id: str) -> AuditRecord | None:
        """The decision record (`GET /v1/decisions/{id}`)."""

    @abstractmethod
    def history(self, decision_id: str) -> list[AuditRecord]:
        """The decision record and every escalation event that refers to it, in chain order."""

    @abstractmethod
    def query(self, q: Query | None = None, **filters: Any) -> list[AuditRecord]: ...

    @abstractmethod
    def iter_records(self, q: Query | None = None, **filters: Any) -> Iterator[AuditRecord]: ...

    @abstractmethod
    def escalations(
        self, *, state: str | None = None, queue: str | None = None, decision_id: str | None = None
    ) -> list[Escalation]:
        """`GET /v1/escalations?state=open`."""

    @abstractmethod
    def get_escalation(self, escalation_id: str) -> Escalation | None: ...

    @abstractmethod
    def assign(self, escalation_id: str, *, to: str, by: str, now: datetime | None = None) -> Escalation:
        """`POST /v1/escalations/{id}/assign`; raises `UnknownEscalation`/`IllegalTransition`."""

    @abstractmethod
    def resolve(
        self, escalation_id: str, *, by: str, note: str | None = None, now: datetime | None = None
    ) -> Escalation:
        """`POST /v1/escalations/{id}/resolve`; the note is masked like a request."""

    def decide_outcome(
        self,
        escalation_id: str,
        outcome: str,
        *,
        by: str,
        why: str,
        grant: Any = None,
        now: datetime | None = None,
    ) -> Escalation:
        """`approve` (with the grant it issued) or `deny` an escalation (LANGUAGE.md §9)."""
        raise NotImplementedError(f"{type(self).__name__} has no escalation outcomes")

    def record_grant_issue(self, grant: Any, *, by: str, now: datetime | None = None) -> None:
        """Chain the `issue` record of a grant made outside an escalation."""
        raise NotImplementedError(f"{type(self).__name__} does not record grants")

    def grant_use(self, jti: str) -> dict[str, Any] | None:
        """Which decision used grant `jti`, if any."""
        raise NotImplementedError(f"{type(self).__name__} does not record grants")

    @abstractmethod
    def overdue(self, now: datetime | None = None) -> list[Escalation]: ...

    @abstractmethod
    def overdue_count(self, now: datetime | None = None) -> int:
        """For a metrics gauge (`cxpolicy_escalations_overdue`)."""

    @abstractmethod
    def verify(
        self, *, key: bytes | None = None, strict: bool = False, witness: Sequence[Sighting] | None = None
    ) -> VerifyResult: ...

    @abstractmethod
    def prune(
        self,
        before: datetime,
        *,
        key: bytes | None = None,
        keep: RetentionPolicy | None = None,
        now: datetime | None = None,
    ) -> Checkpoint | None:
        """Delete records older than `before` from the old end behind a signed checkpoint."""

    @property
    @abstractmethod
    def stats(self) -> WriterStats:
        """Commits and records written so far (ops / batches is the group-commit factor)."""

    @abstractmethod
    def close(self) -> None:
        """Commit what is queued, stop the writer, release the database."""

    def __enter__(self) -> AuditSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def utc_now() -> datetime:
    return datetime.now(UTC)


def merge_query(q: Query | None, filters: Mapping[str, Any]) -> Query:
    """`query(Query(...))` and `query(effect="escalate")` both work."""
    if q is not None and filters:
        raise TypeError("pass a Query or keyword filters, not both")
    return q if q is not None else Query(**filters)


def dedupe(items: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
