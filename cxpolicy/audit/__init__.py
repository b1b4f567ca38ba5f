"""Tamper-evident audit log of decisions, and the escalations they open (docs/audit.md).

Input: decisions and escalation events. Output: the public audit API (`open_sink`, stores, verification).

```python
from cxpolicy.audit import open_sink

sink = open_sink("sqlite:///var/audit.db")      # relative path var/audit.db; WAL mode
sink.record(request, decision)                   # returns once committed (group commit)
sink.get(decision.decision_id)                   # -> AuditRecord | None
sink.escalations(state="open")                   # -> list[Escalation]
sink.verify()                                    # -> VerifyResult (.ok, .problem, .broken)
sink.close()
```
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from cxpolicy.audit.base import AuditIntegrityError, AuditSink, DuplicateDecision, Query
from cxpolicy.audit.chain import ChainHead, VerifyResult
from cxpolicy.audit.escalations import (
    UNASSIGNED_QUEUE,
    Escalation,
    EscalationError,
    IllegalTransition,
    SlaPolicy,
    UnknownEscalation,
)
from cxpolicy.audit.masking import mask_request, mask_text
from cxpolicy.audit.records import AuditRecord, canonical_json
from cxpolicy.audit.retention import (
    KEY_ENV,
    MIN_KEY_BYTES,
    Checkpoint,
    MissingKey,
    RetentionPolicy,
    RetentionViolation,
    key_from_env,
)
from cxpolicy.audit.sink import ChainedSink
from cxpolicy.audit.writer import SinkClosed

__all__ = [
    "KEY_ENV",
    "UNASSIGNED_QUEUE",
    "AuditIntegrityError",
    "AuditRecord",
    "AuditSink",
    "ChainHead",
    "Checkpoint",
    "DuplicateDecision",
    "Escalation",
    "EscalationError",
    "IllegalTransition",
    "MissingKey",
    "Query",
    "RetentionPolicy",
    "RetentionViolation",
    "SinkClosed",
    "SlaPolicy",
    "UnknownEscalation",
    "VerifyResult",
    "canonical_json",
    "key_file_for",
    "key_from_env",
    "mask_request",
    "mask_text",
    "open_service_sink",
    "open_sink",
    "resolve_key",
    "sqlite_path",
    "witness_file_for",
]

_UNSET = b""


def sqlite_path(url: str) -> Path:
    """The file behind a `sqlite:` URL or a plain path.

    URLs follow SQLAlchemy's convention: `sqlite:///var/audit.db` is the relative path
    `var/audit.db`, `sqlite:////var/audit.db` (four slashes) the absolute `/var/audit.db`.
    """
    if "://" not in url:
        return Path(url)
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise ValueError(f"not a sqlite URL: {url!r}")
    if parts.netloc:
        raise ValueError(f"a sqlite URL has no host: use sqlite:///relative or sqlite:////abs ({url!r})")
    path = unquote(parts.path)
    path = path[1:] if path.startswith("/") else path
    if not path or path == ":memory:":
        raise ValueError("the audit log needs a file: an in-memory database would lose it")
    return Path(path)


def key_file_for(url: str) -> Path | None:
    """Where the key of the SQLite log at `url` lives when none is configured: beside it,
    as `<db>.key` (None for a PostgreSQL URL: there is no directory to put it in)."""
    scheme = urlsplit(url).scheme if "://" in url else ""
    if scheme not in ("", "sqlite"):
        return None
    path = sqlite_path(url.split("?", 1)[0] if scheme else url)
    return path.with_name(path.name + ".key")


def witness_file_for(url: str) -> Path | None:
    """The default witness of the SQLite log at `url`: `<db>.witness` beside it."""
    key_file = key_file_for(url)
    return key_file.with_suffix(".witness") if key_file is not None else None


def _read_key_file(path: Path) -> bytes:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise MissingKey(f"audit key file {path} is readable by others (mode {mode:o}); chmod 600 it")
    key = path.read_bytes().strip()
    if len(key) < MIN_KEY_BYTES:
        raise MissingKey(f"audit key file {path} holds fewer than {MIN_KEY_BYTES} bytes")
    return key


def _create_key_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


def resolve_key(url: str, *, create_key: bool = False) -> bytes | None:
    """The audit key for the log at `url`: `CXPOLICY_AUDIT_KEY`, else its key file, else
    (with `create_key`, as `cxpolicy serve` asks) a new random key written to that file with
    mode 0600. A PostgreSQL log with no configured key and `create_key` is refused: there is
    no safe place to invent one, and an unkeyed log can be rewritten by anyone who can write it.
    """
    key = key_from_env()
    if key is not None:
        return key
    key_file = key_file_for(url)
    if key_file is not None and key_file.exists():
        return _read_key_file(key_file)
    if not create_key:
        return None
    if key_file is None:
        raise MissingKey(
            f"set {KEY_ENV} (at least {MIN_KEY_BYTES} bytes) for the PostgreSQL audit log: "
            "without a key anyone with database access can rewrite its history"
        )
    return _create_key_file(key_file)


def open_sink(
    url: str,
    *,
    sla: SlaPolicy | None = None,
    key: bytes | None = _UNSET,
    create: bool = True,
    synchronous: str | None = None,
    max_batch: int = 512,
    create_key: bool = False,
    witness: str | None = None,
) -> AuditSink:
    """Open (creating when `create`) the audit log at `url`.

    `url` is a plain path or a `sqlite:` URL (see `sqlite_path`); a `?synchronous=normal`
    query trades power-loss durability for speed (a process crash still loses nothing).
    A `postgresql://` URL opens the PostgreSQL store (needs psycopg): one chain for several
    service replicas.
    `key` defaults to `resolve_key(url, create_key=create_key)`: `CXPOLICY_AUDIT_KEY`, else the
    key file beside a SQLite log. With a key every commit signs the chain head and the request
    digest is keyed; pass `key=None` to run unkeyed whatever the environment says.
    `witness` (`file:PATH`, `cmd:COMMAND` or a URL; see `cxpolicy.audit.witness`) receives the
    signed head after commits, so a rollback of the database can be proven later.
    """
    from cxpolicy.audit.sqlite import SQLiteStore
    from cxpolicy.audit.witness import open_witness

    scheme = urlsplit(url).scheme if "://" in url else ""
    use_key = resolve_key(url, create_key=create_key) if key == _UNSET else key
    seen_by = open_witness(witness) if witness else None
    if scheme in ("postgres", "postgresql"):
        from cxpolicy.audit.postgres import PostgresStore

        pg = PostgresStore(url, head_key=use_key, create=create)
        return ChainedSink(pg, sla=sla, key=use_key, max_batch=max_batch, witness=seen_by)
    if scheme not in ("", "sqlite"):
        raise ValueError(f"unknown audit URL scheme {scheme!r}: use sqlite:///path/to/audit.db")
    options = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()} if scheme else {}
    path = sqlite_path(url.split("?", 1)[0] if scheme else url)
    store = SQLiteStore(
        path,
        head_key=use_key,
        synchronous=synchronous or options.get("synchronous", "full"),
        create=create,
    )
    return ChainedSink(store, sla=sla, key=use_key, max_batch=max_batch, witness=seen_by)


WITNESS_ENV = "CXPOLICY_AUDIT_WITNESS"
SLA_ENV = "CXPOLICY_SLA"


def open_service_sink(url: str, *, witness: str | None = None, sla: SlaPolicy | None = None) -> AuditSink:
    """The audit log as the decision service opens it: keyed by default (a key file is made
    beside a new SQLite log; PostgreSQL needs `CXPOLICY_AUDIT_KEY`), and witnessed by
    `witness`, else `CXPOLICY_AUDIT_WITNESS`, else `<db>.witness` beside a SQLite log
    (`none` turns the witness off). Escalation SLAs come from `sla`, else `CXPOLICY_SLA`
    (`fraud-desk=30m,default=2h`), else 4 hours for every queue."""
    spec = witness if witness is not None else (os.environ.get(WITNESS_ENV) or None)
    if spec is None:
        default = witness_file_for(url)
        spec = f"file:{default}" if default is not None else None
    if spec is not None and spec.strip().lower() in ("none", "off"):
        spec = None
    if sla is None and os.environ.get(SLA_ENV):
        sla = SlaPolicy.parse(os.environ[SLA_ENV])
    return open_sink(url, create_key=True, witness=spec, sla=sla)
