"""The shipped packs work through grants: their OTP and approval rules are lifted by grants,
and a caller's `context.otp_verified` lifts nothing once grant keys are configured."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

import cxpolicy
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.grants import GrantKeys, GrantSigner, issue_for, liftable_rules
from cxpolicy.kinds import Effect
from tests.grants.support import SECRET, token, with_grants

KEYS = GrantKeys.from_secret(SECRET)
SIGNER = GrantSigner.hs256(SECRET)
PACKS = ("bfsi_rbi", "hipaa", "gdpr")


def _pack(name: str) -> PolicySet:
    return cxpolicy.load([], packs=[name], grant_keys=KEYS)


BFSI = _pack("bfsi_rbi")
CUSTOMER = {"segment": "retail", "risk_tier": "low", "region": "IN"}
PAYMENT = {"action": "payment.initiate", "channel": "app", "actor": {"kind": "ai"}, "customer": CUSTOMER,
           "context": {"amount": 500, "currency": "INR"}}  # fmt: skip
REFUND = {"action": "refund.execute", "channel": "chat", "actor": {"kind": "ai"}, "customer": CUSTOMER,
          "context": {"amount": 3000, "currency": "INR"}}  # fmt: skip


def _lifted(d: Any) -> dict[str, str]:
    return {r.rule: r.lifted_by for r in d.reasons if r.lifted_by is not None}


def test_no_grant_stops() -> None:
    assert BFSI.decide(PAYMENT).effect is Effect.REQUIRE_OTP
    assert BFSI.decide(REFUND).effect is Effect.ESCALATE


def test_caller_flag_is_not_an_otp() -> None:
    claimed = copy.deepcopy(PAYMENT)
    claimed["context"]["otp_verified"] = True
    assert BFSI.decide(claimed).effect is Effect.REQUIRE_OTP


def test_valid_grants_allow_with_lifted_by() -> None:
    stopped = BFSI.decide(PAYMENT)
    otp = issue_for(PAYMENT, stopped, SIGNER, kind="otp", jti="otp-1")
    d = BFSI.decide(with_grants(PAYMENT, otp))
    assert d.effect is Effect.ALLOW and d.grants_used == ("otp-1",) and not d.errors
    # payment_needs_otp reads `unless context.otp_verified`: the grant proves it, so it does not match.
    assert "bfsi_rbi.payments.payment_needs_otp" not in {r.rule for r in d.reasons}
    stopped = BFSI.decide(REFUND)
    approval = issue_for(REFUND, stopped, SIGNER, kind="approval", by="asha", jti="ap-1")
    d = BFSI.decide(with_grants(REFUND, approval))
    assert d.effect is Effect.ALLOW, d.to_dict()
    assert _lifted(d) == {"bfsi_rbi.payments.ai_never_executes_refunds": "ap-1"}


def test_grant_for_other_arguments_stops() -> None:
    approved = copy.deepcopy(REFUND)
    approved["context"]["amount"] = 300
    tok = issue_for(approved, BFSI.decide(approved), SIGNER, kind="approval", by="asha")
    d = BFSI.decide(with_grants(REFUND, tok))  # 3000 requested
    assert d.effect is Effect.ESCALATE and not _lifted(d)
    assert any("digest differs" in e.message for e in d.errors)


def test_expired_grant_stops() -> None:
    tok = token(REFUND, "approval", ["bfsi_rbi.payments.ai_never_executes_refunds"], ttl=5, now=time.time() - 60)
    d = BFSI.decide(with_grants(REFUND, tok))
    assert d.effect is Effect.ESCALATE and any("expired" in e.message for e in d.errors)


def test_approval_grant_does_not_lift_an_otp_rule() -> None:
    tok = token(PAYMENT, "approval", ["bfsi_rbi.payments.payment_needs_otp"])
    d = BFSI.decide(with_grants(PAYMENT, tok))
    assert d.effect is Effect.REQUIRE_OTP and any("lifts only `escalate`" in e.message for e in d.errors)


def _pack_requests(ps: PolicySet, pack: str) -> list[tuple[str, dict[str, Any]]]:
    files = {s.path for s in ps.sources if s.pack == pack}
    return [(t.name, t.block.requests[0]) for t in ps.tests if t.file in files and t.block.requests]


@pytest.mark.parametrize("pack", PACKS)
def test_no_pack_rule_trusts_the_callers_otp_flag(pack: str) -> None:
    ps = _pack(pack)
    checked = 0
    for name, req in _pack_requests(ps, pack):
        ctx = req.get("context")
        if not isinstance(ctx, dict) or ctx.get("otp_verified") is not True:
            continue
        without = {**req, "context": {k: v for k, v in ctx.items() if k != "otp_verified"}}
        assert ps.decide(req).effect is ps.decide(without).effect, name
        checked += 1
    assert checked or pack != "bfsi_rbi"


@pytest.mark.parametrize("pack", PACKS)
def test_every_stopping_pack_rule_is_lifted_by_grants(pack: str) -> None:
    """For every pack test that stops, an otp grant and an approval grant for that request
    leave no stopping rule unlifted: every OTP and approval rule works through grants. (A
    default is not a rule: no grant lifts it.)"""
    ps = _pack(pack)
    stopped = 0
    for name, req in _pack_requests(ps, pack):
        d = ps.decide(req)
        if d.effect.severity < 2 or d.default_applied or any(e.kind == "request" for e in d.errors):
            continue
        stopped += 1
        grants = [issue_for(req, d, SIGNER, kind=k, by="asha") for k in ("otp", "approval") if liftable_rules(d, k)]
        after = ps.decide(with_grants(req, *grants))
        left = [r.rule for r in after.reasons if r.effect.severity >= 2 and r.lifted_by is None]
        assert not left, (name, left)
        assert after.effect.severity <= 1, name
    assert stopped > 0
