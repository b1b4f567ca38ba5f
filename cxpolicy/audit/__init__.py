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
    "key_from_env",
    "mask_request",
    "mask_text",
    "open_sink",
    "sqlite_path",
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


def open_sink(
    url: str,
    *,
    sla: SlaPolicy | None = None,
    key: bytes | None = _UNSET,
    create: bool = True,
    synchronous: str | None = None,
    max_batch: int = 512,
) -> AuditSink:
    """Open (creating when `create`) the audit log at `url`.

    `url` is a plain path or a `sqlite:` URL (see `sqlite_path`); a `?synchronous=normal`
    query trades power-loss durability for speed (a process crash still loses nothing).
    A `postgresql://` URL opens the PostgreSQL store (needs psycopg): one chain for several
    service replicas.
    `key` defaults to `CXPOLICY_AUDIT_KEY`: with it every commit signs the chain head and the
    request digest is keyed; pass `key=None` to run unkeyed whatever the environment says.
    """
    from cxpolicy.audit.sqlite import SQLiteStore

    scheme = urlsplit(url).scheme if "://" in url else ""
    use_key = key_from_env() if key == _UNSET else key
    if scheme in ("postgres", "postgresql"):
        from cxpolicy.audit.postgres import PostgresStore

        pg = PostgresStore(url, head_key=use_key, create=create)
        return ChainedSink(pg, sla=sla, key=use_key, max_batch=max_batch)
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
    return ChainedSink(store, sla=sla, key=use_key, max_batch=max_batch)
