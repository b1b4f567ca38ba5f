"""Shared fixtures for the grant tests: a small policy with one rule of each stopping effect."""

from __future__ import annotations

from typing import Any

from cxpolicy.engine.loader import load_text
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.grants import GrantKeys, GrantSigner, issue, request_digest

SECRET = b"test-grant-key-0123456789abcdef-0123456789"
OTHER_SECRET = b"another-grant-key-0123456789abcdef-012345"

POLICY = """
dimension t_action at action: {pay, refund, view}
dimension t_actor at actor.kind: {ai, human}
dimension data_class at data_classes: set {card_pan, email}
attribute context.amount: number
attribute context.otp_verified: bool = false

package t.g

rule pay_needs_otp {
  match   t_action = pay
  when    !context.otp_verified
  decide  require_otp
}

rule pay_static_otp {
  match   t_action = pay
  when    context.amount > 5000
  decide  require_otp
}

rule ai_refund_needs_person {
  match   t_action = refund, t_actor = ai
  when    context.amount > 500
  decide  escalate to "refunds-desk"
}

rule big_refund_fraud {
  match   t_action = refund
  when    context.amount > 100000
  decide  escalate to "fraud-desk"
}

rule mask_pan {
  match   data_class = card_pan
  decide  redact [card_pan] as last4
}

rule ok {
  match   t_action in [pay, refund, view]
  decide  allow
}
"""

PAY: dict[str, Any] = {"action": "pay", "actor": {"kind": "ai"}, "context": {"amount": 100}}
REFUND: dict[str, Any] = {"action": "refund", "actor": {"kind": "ai"}, "context": {"amount": 3000}}


def policy(keys: GrantKeys | None = None) -> PolicySet:
    ps = load_text(POLICY)
    ps.grant_keys = keys if keys is not None else GrantKeys.from_secret(SECRET)
    return ps


SIGNER = GrantSigner.hs256(SECRET, iss="tests")


def token(
    request: dict[str, Any],
    kind: str,
    rules: list[str],
    *,
    signer: GrantSigner = SIGNER,
    ttl: int = 300,
    jti: str | None = None,
    now: float | None = None,
    **over: Any,
) -> str:
    """A grant for `request`; `over` replaces claims (digest=..., decision=...)."""
    return issue(
        signer,
        kind=kind,
        decision=over.get("decision", "d-1"),
        digest=over.get("digest", request_digest(request)),
        rules=rules,
        ttl=ttl,
        by=over.get("by", "asha" if kind == "approval" else None),
        jti=jti,
        now=now,
    )


def with_grants(request: dict[str, Any], *tokens: Any) -> dict[str, Any]:
    return {**request, "grants": list(tokens)}
