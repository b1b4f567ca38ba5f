"""Grants: signed, one-use proof that an OTP step-up or a human approval happened (LANGUAGE.md §9).

For embedders who run their own OTP check or approval UI:

    >>> from cxpolicy import grants
    >>> signer = grants.GrantSigner.hs256(secret)                      # ≥ 32 bytes
    >>> policy = cxpolicy.load(paths, grant_keys=grants.GrantKeys.from_secret(secret))
    >>> stopped = policy.decide(request)                                # require_otp
    >>> token = grants.issue_for(request, stopped, signer, kind="otp")
    >>> policy.decide({**request, "grants": [token]}).effect            # allow

Input: requests, decisions and keys. Output: tokens (`issue`, `issue_for`), `Verification`s
(`verify`), unverified claims (`inspect`), request digests (`request_digest`). PyJWT and
`cryptography` load on first use, so importing this module costs nothing measurable.
One-use is enforced where there is an audit store (the service); `PolicySet.decide` alone
cannot remember what it has seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cxpolicy.grants.digest import ENGINE_ONLY, DigestError, canonical_request, request_digest, strip_request
from cxpolicy.grants.tokens import (
    KINDS,
    Grant,
    GrantKeyError,
    GrantKeys,
    GrantSigner,
    Verification,
    inspect,
    issue,
    verify,
)

if TYPE_CHECKING:
    from cxpolicy.engine.decision import Decision

__all__ = [
    "ENGINE_ONLY",
    "KINDS",
    "DigestError",
    "Grant",
    "GrantKeyError",
    "GrantKeys",
    "GrantSigner",
    "NothingToLift",
    "Verification",
    "canonical_request",
    "inspect",
    "issue",
    "issue_for",
    "liftable_rules",
    "request_digest",
    "strip_request",
    "verify",
]


class NothingToLift(ValueError):
    """The decision has no matched rule of the effect this grant kind lifts."""


def liftable_rules(decision: Decision, kind: str) -> list[str]:
    """The matched rules of `decision` a grant of `kind` would lift (not already lifted)."""
    if kind not in KINDS:
        raise ValueError(f"unknown grant kind {kind!r}: expected otp or approval")
    wanted = KINDS[kind]
    return [r.rule for r in decision.reasons if r.effect.value == wanted and r.lifted_by is None]


def issue_for(
    request: Mapping[str, Any],
    decision: Decision,
    signer: GrantSigner,
    *,
    kind: str,
    ttl: int = 300,
    by: str | None = None,
    jti: str | None = None,
) -> str:
    """A grant that lifts the rules of `kind`'s effect that stopped `request` in `decision`.

    Raises `NothingToLift` when there are none, `DigestError` when the request cannot be
    canonicalised.
    """
    rules = liftable_rules(decision, kind)
    if not rules:
        raise NothingToLift(f"decision {decision.decision_id} has no matched `{KINDS[kind]}` rule to lift")
    return issue(
        signer,
        kind=kind,
        decision=decision.decision_id,
        digest=request_digest(request),
        rules=rules,
        ttl=ttl,
        by=by,
        jti=jti,
    )
