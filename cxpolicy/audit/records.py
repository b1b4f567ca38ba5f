"""Audit records: what one entry of the log holds, and how it is encoded and hashed.

Input: a decision and its request. Output: the record, its canonical encoding and hash.

The chain is only as trustworthy as its encoding is unambiguous, so every hashed byte comes
from one function, `canonical_json`, and the hashed object is written down in `HASHED_FIELDS`
(docs/audit.md repeats both). Nothing here touches a database: a sink turns a `RecordDraft`
into an `AuditRecord` with `seal` inside its write transaction, and `cxpolicy.audit.chain`
re-computes the same hashes when it verifies. A PostgreSQL sink reuses all of it.

Canonical encoding (version 1): JSON as orjson writes it with sorted keys — UTF-8, no
insignificant whitespace, non-ASCII characters unescaped, object keys sorted by code point,
integers in decimal, floats in the shortest form that round-trips. The record hash is
SHA-256 over the canonical JSON of the object `{"v": 1, <every field of HASHED_FIELDS>}`;
the masked request and the detail object enter it as their canonical JSON *strings*, exactly
as stored, so verifying never depends on re-parsing floats.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = [
    "GENESIS_HASH",
    "HASHED_FIELDS",
    "RECORD_VERSION",
    "AuditRecord",
    "RecordDraft",
    "canonical_json",
    "format_time",
    "parse_time",
    "record_hash",
    "request_digest",
    "seal",
]

RECORD_VERSION = 1
GENESIS_HASH = "0" * 64
"""`prev_hash` of the very first record: there is nothing before it."""

HASHED_FIELDS = (
    "seq",
    "kind",
    "decision_id",
    "time",
    "policy_revision",
    "effect",
    "rules",
    "cites",
    "escalate_to",
    "actor_kind",
    "actor_id",
    "channel",
    "region",
    "action",
    "request_sha256",
    "request",
    "detail",
    "prev_hash",
)
"""Every field but `hash` itself, in the order of the database columns."""

KINDS = ("decision", "escalation", "grant")


def canonical_json(value: Any) -> bytes:
    """The one byte encoding that hashes are computed over (see the module docstring).

    Raises `ValueError` for anything JSON cannot say exactly (NaN, integers beyond 64 bits,
    non-string keys): a value that could be encoded two ways must not be hashed at all.
    """
    try:
        out = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError as exc:  # orjson.JSONEncodeError subclasses TypeError
        raise ValueError(f"not canonical JSON: {exc}") from exc
    # orjson writes NaN and infinities as null; look for them only when a null was written.
    if b"null" in out and _has_non_finite(value):
        raise ValueError("not canonical JSON: NaN or infinity")
    return out


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, Mapping):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_non_finite(v) for v in value)
    return False


def request_digest(request: Mapping[str, Any], key: bytes | None = None) -> str:
    """Digest of the full, unmasked request, so a caller holding it can prove what was asked.

    Unkeyed it is `sha256:<hex>`. With a key it is `hmac-sha256:<hex>`: a request whose only
    unknown is a card number is otherwise open to brute force (about 10^9 candidates once the
    issuer prefix is known), which is why PCI DSS 4.0 (3.5.1.1) wants hashes of PAN keyed.
    """
    body = canonical_json(request)
    if key is None:
        return "sha256:" + hashlib.sha256(body).hexdigest()
    return "hmac-sha256:" + hmac.new(key, body, hashlib.sha256).hexdigest()


def format_time(t: datetime) -> str:
    """UTC, ISO-8601, fixed width (`2026-05-09T07:35:25.123456Z`): sorts as text, so SQL range
    queries on the column need no date functions."""
    if t.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """Parse an ISO-8601 date or date-time from a user or the log; naive values mean UTC."""
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        t = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"not an ISO-8601 date or time: {text!r}") from exc
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class RecordDraft:
    """A record before it has a place in the chain: everything but seq, prev_hash and hash.

    Built in the caller's thread (masking and encoding are the expensive part), sealed in the
    writer's transaction, where the chain head is known.
    """

    kind: str
    decision_id: str
    time: str
    policy_revision: str | None
    effect: str | None
    rules: tuple[str, ...]
    cites: tuple[str, ...]
    escalate_to: tuple[str, ...]
    actor_kind: str | None
    actor_id: str | None
    channel: str | None
    region: str | None
    action: str | None
    request_sha256: str | None
    request: str  # canonical JSON text of the masked request ("null" for escalation events)
    detail: str  # canonical JSON text of the kind-specific detail object


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One committed entry of the log, as stored (`request` and `detail` are JSON text)."""

    seq: int
    kind: str
    decision_id: str
    time: str
    policy_revision: str | None
    effect: str | None
    rules: tuple[str, ...]
    cites: tuple[str, ...]
    escalate_to: tuple[str, ...]
    actor_kind: str | None
    actor_id: str | None
    channel: str | None
    region: str | None
    action: str | None
    request_sha256: str | None
    request: str
    detail: str
    prev_hash: str
    hash: str

    def hashed_object(self) -> dict[str, Any]:
        """The object whose canonical JSON is hashed: version tag plus HASHED_FIELDS."""
        out: dict[str, Any] = {"v": RECORD_VERSION}
        for name in HASHED_FIELDS:
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, tuple) else value
        return out

    def computed_hash(self) -> str:
        """What `hash` must be if nothing in the record was changed."""
        return hashlib.sha256(canonical_json(self.hashed_object())).hexdigest()

    def request_object(self) -> Any:
        return orjson.loads(self.request)

    def detail_object(self) -> Any:
        return orjson.loads(self.detail)

    def to_dict(self) -> dict[str, Any]:
        """JSON shape for `cxpolicy audit query --format json` and `GET /v1/decisions/{id}`."""
        return {
            "seq": self.seq,
            "kind": self.kind,
            "decision_id": self.decision_id,
            "time": self.time,
            "policy_revision": self.policy_revision,
            "effect": self.effect,
            "rules": list(self.rules),
            "cites": list(self.cites),
            "escalate_to": list(self.escalate_to),
            "actor": {"kind": self.actor_kind, "id": self.actor_id},
            "channel": self.channel,
            "region": self.region,
            "action": self.action,
            "request_sha256": self.request_sha256,
            "request": self.request_object(),
            "detail": self.detail_object(),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }

    def row(self) -> tuple[Any, ...]:
        """Column values in HASHED_FIELDS order plus `hash`, lists as canonical JSON text."""
        values: list[Any] = []
        for name in (*HASHED_FIELDS, "hash"):
            value = getattr(self, name)
            if isinstance(value, tuple):
                value = canonical_json(list(value)).decode()
            values.append(value)
        return tuple(values)

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> AuditRecord:
        """Inverse of `row()`: a database row in HASHED_FIELDS + hash order."""
        names = (*HASHED_FIELDS, "hash")
        if len(row) != len(names):
            raise ValueError(f"expected {len(names)} columns, got {len(row)}")
        values = dict(zip(names, row, strict=True))
        for name in ("rules", "cites", "escalate_to"):
            values[name] = _string_tuple(values[name])
        return cls(**values)


def _string_tuple(text: Any) -> tuple[str, ...]:
    """A stored JSON list of strings; anything else is kept verbatim-ish so the hash breaks
    loudly in `verify` instead of failing to load."""
    try:
        value = orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError):
        return (str(text),)
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return (str(value),)


def seal(draft: RecordDraft, seq: int, prev_hash: str) -> AuditRecord:
    """Give a draft its place in the chain and its hash."""
    record = AuditRecord(
        seq=seq,
        kind=draft.kind,
        decision_id=draft.decision_id,
        time=draft.time,
        policy_revision=draft.policy_revision,
        effect=draft.effect,
        rules=draft.rules,
        cites=draft.cites,
        escalate_to=draft.escalate_to,
        actor_kind=draft.actor_kind,
        actor_id=draft.actor_id,
        channel=draft.channel,
        region=draft.region,
        action=draft.action,
        request_sha256=draft.request_sha256,
        request=draft.request,
        detail=draft.detail,
        prev_hash=prev_hash,
        hash="",
    )
    return replace(record, hash=record.computed_hash())


def record_hash(record: AuditRecord) -> str:
    """Public alias of `AuditRecord.computed_hash`, for tools that forge records in tests."""
    return record.computed_hash()


def now_utc() -> datetime:
    return datetime.now(UTC)


RECORD_COLUMNS = ", ".join((*HASHED_FIELDS, "hash"))


def select_records(q: Any, *, placeholder: str, rule_member: str) -> tuple[str, list[Any]]:
    """The SELECT for an `audit.base.Query`, in the store's SQL dialect.

    `placeholder` is the driver's parameter marker (`?` for sqlite3, `%s` for psycopg);
    `rule_member` is the dialect's test that the JSON `rules` array holds one id.
    """
    where: list[str] = []
    args: list[Any] = []
    if q.since is not None:
        where.append(f"time >= {placeholder}")
        args.append(q.since if isinstance(q.since, str) else format_time(q.since))
    if q.until is not None:
        where.append(f"time < {placeholder}")
        args.append(q.until if isinstance(q.until, str) else format_time(q.until))
    for column, value in (("effect", q.effect), ("action", q.action), ("kind", q.kind), ("decision_id", q.decision_id)):
        if value is not None:
            where.append(f"{column} = {placeholder}")
            args.append(value)
    if q.rule is not None:
        where.append(rule_member)
        args.append(q.rule)
    sql = f"SELECT {RECORD_COLUMNS} FROM records"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY seq DESC" if q.newest_first else " ORDER BY seq"
    if q.limit is not None:
        sql += f" LIMIT {placeholder}"
        args.append(int(q.limit))
    return sql, args
