"""The challenge of a stopped decision: what a client needs to resume it with a grant.

Input: a decision that stopped (require_otp or escalate) and the request it decided. Output:
the decision id, the request's digest a grant must bind, the kinds of grant and the rules
each would lift, and until when a grant may still be issued for it. One definition, used by
the service's answers (`/v1/decide`) and by `cxpolicy.guard.Guard`'s outcomes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cxpolicy.grants import DigestError, liftable_rules, request_digest
from cxpolicy.kinds import Effect

if TYPE_CHECKING:
    from cxpolicy.engine.decision import Decision

__all__ = ["CHALLENGE_TTL", "challenge_for", "decision_time"]

CHALLENGE_TTL = 24 * 3600
"""Seconds after a stopped decision during which a grant may still be issued for it."""


def decision_time(decision_id: str) -> float | None:
    """Seconds since the epoch from a UUIDv7 decision id (its first 48 bits are milliseconds)."""
    try:
        return int(decision_id.replace("-", "")[:12], 16) / 1000.0
    except ValueError:
        return None


def challenge_for(decision: Decision, request: Any) -> dict[str, Any] | None:
    """The challenge of `decision`, or None when no grant could lift anything in it."""
    wanted = [
        {"kind": kind, "rules": rules}
        for kind in ("otp", "approval")
        if (rules := liftable_rules(decision, kind))
    ]
    if not wanted:
        return None
    try:
        digest: str | None = request_digest(request) if isinstance(request, Mapping) else None
    except DigestError:
        digest = None
    kind = "approval" if decision.effect is Effect.ESCALATE and any(w["kind"] == "approval" for w in wanted) else "otp"
    born = decision_time(decision.decision_id) or time.time()
    return {
        "decision_id": decision.decision_id,
        "digest": digest,
        "kind": kind,
        "wanted": wanted,
        "expires_at": int(born + CHALLENGE_TTL),
    }
