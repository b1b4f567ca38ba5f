"""Approving an escalation: the grant a reviewer's approval becomes (LANGUAGE.md §9).

Input: an audit sink, an escalation id, who approves and why, a signer, and optionally the
policy set (to name only the rules of that escalation's queue). Output: the token and the
closed escalation. The token exists for the caller only after the approval, the grant's
`issue` record and the escalation's closing committed in one audit transaction; if that
fails (already resolved, unknown id), the token is dropped and never handed out.

Shared by `cxpolicy escalations approve` and `POST /v1/escalations/{id}/approve`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from cxpolicy.grants.tokens import Grant, GrantSigner, inspect, issue

__all__ = ["APPROVAL_TTL", "Approval", "ApprovalError", "approve_escalation"]

APPROVAL_TTL = 15 * 60
"""Seconds an approval grant stays usable once issued (the agent retries right away)."""


class ApprovalError(Exception):
    """Nothing to approve into a grant (no digest recorded, no rule to lift)."""


@dataclass(frozen=True, slots=True)
class Approval:
    token: str
    grant: Grant
    escalation: Any  # cxpolicy.audit.escalations.Escalation

    def to_dict(self) -> dict[str, Any]:
        return {
            "grant": self.token,
            "grant_id": self.grant.jti,
            "escalation": self.escalation.to_dict(),
            "outcome": "approved",
            "expires_at": self.grant.exp,
            "rules": list(self.grant.rules),
        }


def approve_escalation(
    sink: Any,
    escalation_id: str,
    *,
    signer: GrantSigner,
    by: str,
    why: str,
    policy: Any = None,
    ttl: int = APPROVAL_TTL,
) -> Approval:
    """Close the escalation approved and return the grant; raises `UnknownEscalation`,
    `IllegalTransition` or `ApprovalError`."""
    from cxpolicy.audit import UnknownEscalation
    from cxpolicy.audit.escalations import UNASSIGNED_QUEUE

    esc = sink.get_escalation(escalation_id)
    if esc is None:
        raise UnknownEscalation(escalation_id)
    rec = sink.get(esc.decision_id)
    detail = rec.detail_object() if rec is not None else None
    digest = detail.get("grant_digest") if isinstance(detail, dict) else None
    if not digest:
        raise ApprovalError(f"decision {esc.decision_id} has no request digest to bind a grant to")
    named = [str(r["rule"]) for r in esc.reasons if r.get("rule")]

    def queue_of(rule_id: str) -> str:
        r = policy.rule(rule_id) if policy is not None else None
        return (r.queue if r is not None else None) or UNASSIGNED_QUEUE

    rules = [r for r in named if queue_of(r) == esc.queue] if policy is not None else named
    rules = rules or named
    if not rules:
        raise ApprovalError("this escalation was opened by a default or an error, not a rule: nothing to lift")
    now = time.time()
    token = issue(
        signer, kind="approval", decision=esc.decision_id, digest=digest, rules=rules, ttl=ttl, by=by, now=now
    )
    jti = str(inspect(token)["claims"]["jti"])
    grant = Grant(jti, "approval", esc.decision_id, digest, tuple(rules), int(now), int(now) + ttl, signer.iss, by)
    closed = sink.decide_outcome(escalation_id, "approve", by=by, why=why, grant=grant)
    return Approval(token, grant, closed)
