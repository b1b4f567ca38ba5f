"""Grants in the audit log: one-use consumption and the issue / use / refusal records.

Input: a decision that used or refused grants (its `grant_checks`), or a grant just issued.
Output: the chain records (`kind = grant`, keyed by the decision that *asked*, i.e. the
grant's `decision` claim, with the decision that used or refused it in `detail`) and the rows
of the `grant_uses` table, whose primary key is the grant id.

Why a table and not only records: one-use must hold across replicas. A grant is consumed in
the same write transaction as the record of the decision that used it, and every store's
write transaction holds the chain's write lock (SQLite `BEGIN IMMEDIATE`, PostgreSQL
`SELECT … FOR UPDATE` on the head), so "is it spent?" and "spend it" cannot interleave; the
primary key is the second line of defence. A second use raises `GrantAlreadyUsed` inside the
transaction, which then commits nothing for that decision; the service decides again with
the grant marked spent and records that decision instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cxpolicy.audit.records import RecordDraft, canonical_json

__all__ = [
    "GRANT_USES_COLUMNS",
    "GrantAlreadyUsed",
    "grant_draft",
    "grants_refused",
    "grants_used",
]

GRANT_USES_COLUMNS = "jti, kind, used_by, asked_by, used_at, seq"
GRANT_USES_SQL = (
    "CREATE TABLE IF NOT EXISTS grant_uses (jti TEXT PRIMARY KEY, kind TEXT NOT NULL, "
    "used_by TEXT NOT NULL, asked_by TEXT NOT NULL, used_at TEXT NOT NULL, seq BIGINT NOT NULL)"
)


class GrantAlreadyUsed(Exception):
    """Raised inside the write transaction: these grant ids were already consumed."""

    def __init__(self, jtis: Iterable[str]) -> None:
        self.jtis = frozenset(jtis)
        super().__init__(f"grant(s) already used: {', '.join(sorted(self.jtis))}")


def grants_used(decision: Any) -> list[Any]:
    """The verified `Grant`s a decision used (from its grant checks)."""
    used = set(getattr(decision, "grants_used", ()) or ())
    if not used:
        return []
    out = []
    for c in getattr(decision, "grant_checks", ()) or ():
        g = c.grant
        if g is not None and c.valid and g.jti in used:
            out.append(g)
    return out


def grants_refused(decision: Any) -> list[tuple[Any, str]]:
    """Grants whose signature verified but that lifted nothing (expired, other request,
    already used, wrong rules): worth a record under the decision that asked for them.
    A grant with a bad signature proves nothing about who asked, so it stays in `errors`."""
    out = []
    for c in getattr(decision, "grant_checks", ()) or ():
        if not c.valid and c.grant is not None and c.problem:
            out.append((c.grant, c.problem))
    return out


def grant_draft(
    grant: Any,
    action: str,
    *,
    at: str,
    by: str | None = None,
    decision_id: str | None = None,
    problem: str | None = None,
) -> RecordDraft:
    """The chain record of one grant event: `issue`, `use` or `refuse`."""
    detail: dict[str, Any] = {
        "grant": grant.jti,
        "grant_kind": grant.kind,
        "event": action,
        "rules": list(grant.rules),
        "asked_by": grant.decision,
        "iss": grant.iss,
        "approved_by": grant.by,
        "exp": grant.exp,
    }
    if action == "use":
        detail["used_by"] = decision_id
    if action == "refuse":
        detail["refused_in"] = decision_id
        detail["problem"] = problem
    return RecordDraft(
        kind="grant",
        decision_id=grant.decision,
        time=at,
        policy_revision=None,
        effect=None,
        rules=tuple(grant.rules),
        cites=(),
        escalate_to=(),
        actor_kind="human" if grant.kind == "approval" else "system",
        actor_id=by or grant.by or grant.iss,
        channel=None,
        region=None,
        action=f"grant.{action}",
        request_sha256=grant.digest,
        request="null",
        detail=canonical_json(detail).decode(),
    )
