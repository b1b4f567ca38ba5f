"""Grants in `PolicySet.decide`: exactly the named, matched rules of the right effect are lifted."""

from __future__ import annotations

import time
from typing import Any

from cxpolicy.grants import GrantKeys, GrantSigner
from cxpolicy.grants.apply import decide_with_grants
from cxpolicy.kinds import Effect
from tests.grants.support import OTHER_SECRET, PAY, REFUND, policy, token, with_grants

PS = policy()


def _errors(d: Any, kind: str = "grant") -> list[str]:
    return [e.message for e in d.errors if e.kind == kind]


def test_no_grant_stops() -> None:
    assert PS.decide(PAY).effect is Effect.REQUIRE_OTP
    assert PS.decide(REFUND).effect is Effect.ESCALATE


def test_valid_otp_grant_sets_otp_verified_and_is_used() -> None:
    tok = token(PAY, "otp", ["t.g.pay_needs_otp"], jti="g1")
    d = PS.decide(with_grants(PAY, tok))
    assert d.effect is Effect.ALLOW, d.to_dict()
    assert d.grants_used == ("g1",) and not d.errors
    # pay_needs_otp has `when !context.otp_verified`: the proven flag makes it not match at all.
    assert [r.rule for r in d.reasons] == ["t.g.ok"]


def test_otp_grant_lifts_a_static_otp_rule_with_lifted_by() -> None:
    big = {**PAY, "context": {"amount": 9000}}
    tok = token(big, "otp", ["t.g.pay_static_otp"], jti="g2")
    d = PS.decide(with_grants(big, tok))
    assert d.effect is Effect.ALLOW
    lifted = {r.rule: r.lifted_by for r in d.reasons}
    assert lifted == {"t.g.pay_static_otp": "g2", "t.g.ok": None}
    assert d.to_dict()["reasons"][0]["lifted_by"] == "g2" and d.to_dict()["grants_used"] == ["g2"]


def test_approval_lifts_only_the_named_escalation_and_recomputes_queues() -> None:
    huge = {**REFUND, "context": {"amount": 200000}}
    tok = token(huge, "approval", ["t.g.ai_refund_needs_person"], jti="a1")
    d = PS.decide(with_grants(huge, tok))
    assert d.effect is Effect.ESCALATE  # big_refund_fraud is not named: it still stops
    assert d.escalate_to == ("fraud-desk",)
    assert {r.rule: r.lifted_by for r in d.reasons}["t.g.ai_refund_needs_person"] == "a1"
    assert d.grants_used == ("a1",)


def test_grant_for_other_arguments_stops() -> None:
    approved = {**REFUND, "context": {"amount": 300}}
    asked = {**REFUND, "context": {"amount": 3000}}
    tok = token(approved, "approval", ["t.g.ai_refund_needs_person"])
    d = PS.decide(with_grants(asked, tok))
    assert d.effect is Effect.ESCALATE and not d.grants_used
    assert any("digest differs" in m for m in _errors(d))


def test_expired_grant_stops() -> None:
    tok = token(REFUND, "approval", ["t.g.ai_refund_needs_person"], ttl=10, now=time.time() - 60)
    d = PS.decide(with_grants(REFUND, tok))
    assert d.effect is Effect.ESCALATE and any("expired" in m for m in _errors(d))


def test_approval_grant_does_not_lift_an_otp_rule_and_otp_does_not_lift_escalate() -> None:
    big = {**PAY, "context": {"amount": 9000}}
    d = PS.decide(with_grants(big, token(big, "approval", ["t.g.pay_static_otp"])))
    assert d.effect is Effect.REQUIRE_OTP and any("lifts only `escalate`" in m for m in _errors(d))
    d = PS.decide(with_grants(REFUND, token(REFUND, "otp", ["t.g.ai_refund_needs_person"])))
    assert d.effect is Effect.ESCALATE and any("lifts only `require_otp`" in m for m in _errors(d))


def test_unknown_rule_and_other_key_lift_nothing() -> None:
    d = PS.decide(with_grants(REFUND, token(REFUND, "approval", ["t.g.ai_refund_needs_person", "t.g.gone"])))
    assert d.effect is Effect.ESCALATE and any("does not have" in m for m in _errors(d))
    other = GrantSigner.hs256(OTHER_SECRET)
    d = PS.decide(with_grants(REFUND, token(REFUND, "approval", ["t.g.ai_refund_needs_person"], signer=other)))
    assert d.effect is Effect.ESCALATE and any("bad signature" in m for m in _errors(d))


def test_caller_otp_flag_is_ignored_and_reported_when_keys_are_configured() -> None:
    claimed = {**PAY, "context": {"amount": 100, "otp_verified": True}}
    d = PS.decide(claimed)
    assert d.effect is Effect.REQUIRE_OTP
    assert [e.field for e in d.errors if e.kind == "grant"] == ["context.otp_verified"]
    # Without grant keys nothing could prove it, and the flag is read as sent (see docs/grants.md).
    legacy = policy(GrantKeys())
    legacy.grant_keys = None
    assert legacy.decide(claimed).effect is Effect.ALLOW


def test_without_keys_every_grant_is_invalid() -> None:
    ps = policy()
    ps.grant_keys = None
    d = ps.decide(with_grants(PAY, token(PAY, "otp", ["t.g.pay_needs_otp"])))
    assert d.effect is Effect.REQUIRE_OTP and any("no grant key" in m for m in _errors(d))


def test_redact_is_never_touched() -> None:
    req = {**PAY, "data_classes": ["card_pan"], "context": {"amount": 9000}}
    d = PS.decide(with_grants(req, token(req, "otp", ["t.g.pay_static_otp"])))
    assert d.effect is Effect.REDACT
    assert [(r.data_class, r.style.value) for r in d.redact] == [("card_pan", "last4")]


def test_spent_grant_is_already_used_and_duplicates_count_once() -> None:
    tok = token(REFUND, "approval", ["t.g.ai_refund_needs_person"], jti="once")
    d = decide_with_grants(PS, with_grants(REFUND, tok), spent={"once"})
    assert d.effect is Effect.ESCALATE and any("already used" in m for m in _errors(d))
    d = PS.decide(with_grants(REFUND, tok, tok))
    assert d.effect is Effect.ALLOW and d.grants_used == ("once",)
    assert any("listed twice" in m for m in _errors(d))


def test_invalid_request_with_a_grant_escalates_and_uses_nothing() -> None:
    bad = {"action": "nope", "context": {"amount": 3000}}
    d = PS.decide(with_grants(bad, token(bad, "approval", ["t.g.ai_refund_needs_person"])))
    assert d.effect is Effect.ESCALATE and not d.grants_used
    assert any(e.kind == "request" for e in d.errors)


def test_malformed_grants_field() -> None:
    for value in ("a-token", {"x": 1}, None, [1, None, {"a": 1}], ["x"] * 17):
        d = PS.decide({**REFUND, "grants": value})
        assert d.effect is Effect.ESCALATE and not d.grants_used
        assert _errors(d), value


def test_explain_trace_shows_each_grant() -> None:
    good = token(REFUND, "approval", ["t.g.ai_refund_needs_person"], jti="a9")
    d = PS.decide(with_grants(REFUND, good, "garbage"), explain=True)
    assert d.trace is not None
    notes = {g["position"]: g for g in d.trace.to_dict()["grants"]}
    assert notes[0]["valid"] and notes[0]["lifted"] == ["t.g.ai_refund_needs_person"] and notes[0]["by"] == "asha"
    assert not notes[1]["valid"] and "lifts nothing" in notes[1]["note"]
    assert "grants lifted 1 rule(s)" in d.trace.combination


def test_requests_without_grants_do_not_take_the_grant_path(monkeypatch: Any) -> None:
    import cxpolicy.engine.policy_set as mod

    def boom(*a: Any, **k: Any) -> Any:
        raise AssertionError("grant path taken")

    monkeypatch.setattr(mod, "decide_with_grants", boom)
    assert PS.decide(PAY).effect is Effect.REQUIRE_OTP
    assert not PS.decide(PAY).errors
