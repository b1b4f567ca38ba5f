"""Property tests of grants (issue 14): a grant lifts only when everything matches, any single
mutation makes it lift nothing, and grants never make a decision stricter, nor looser than the
strictest matched rule that no valid grant lifts."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxpolicy.grants import GrantSigner
from cxpolicy.kinds import Effect
from tests.grants.support import OTHER_SECRET, policy, token, with_grants

PS = policy()
STOPPING = {"t.g.pay_needs_otp": "otp", "t.g.pay_static_otp": "otp", "t.g.ai_refund_needs_person": "approval",
            "t.g.big_refund_fraud": "approval"}  # fmt: skip
FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

requests = st.fixed_dictionaries(
    {
        "action": st.sampled_from(["pay", "refund", "view"]),
        "actor": st.fixed_dictionaries({"kind": st.sampled_from(["ai", "human"])}),
        "context": st.fixed_dictionaries({"amount": st.integers(0, 300000)}),
        "data_classes": st.lists(st.sampled_from(["card_pan", "email"]), unique=True, max_size=2),
    }
)


def _stopping_rules(request: dict[str, Any], kind: str) -> list[str]:
    d = PS.decide(request)
    return [r.rule for r in d.reasons if STOPPING.get(r.rule) == kind]


@st.composite
def stopped_with_grant(draw: st.DrawFn) -> tuple[dict[str, Any], str, str]:
    """A request that a static rule stops, and a valid grant lifting exactly that rule."""
    kind = draw(st.sampled_from(["otp", "approval"]))
    if kind == "otp":
        req = {"action": "pay", "actor": {"kind": "ai"}, "context": {"amount": draw(st.integers(5001, 10**6))}}
        rule = "t.g.pay_static_otp"
    else:
        req = {"action": "refund", "actor": {"kind": "ai"}, "context": {"amount": draw(st.integers(501, 100000))}}
        rule = "t.g.ai_refund_needs_person"
    return req, token(req, kind, [rule], jti=f"j-{draw(st.integers(0, 10**9))}"), rule


def _lifted(d: Any) -> list[str]:
    return [r.rule for r in d.reasons if r.lifted_by is not None]


@FAST
@given(stopped_with_grant())
def test_a_matching_grant_lifts(case: tuple[dict[str, Any], str, str]) -> None:
    req, tok, rule = case
    assert PS.decide(req).effect in (Effect.REQUIRE_OTP, Effect.ESCALATE)
    d = PS.decide(with_grants(req, tok))
    assert _lifted(d) == [rule] and len(d.grants_used) == 1 and d.effect is Effect.ALLOW


@FAST
@given(stopped_with_grant(), st.data())
def test_any_single_token_mutation_lifts_nothing(case: tuple[dict[str, Any], str, str], data: st.DataObject) -> None:
    req, tok, _ = case
    i = data.draw(st.integers(0, len(tok) - 1))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    c = data.draw(st.sampled_from(alphabet).filter(lambda ch: ch != tok[i]))
    mutated = tok[:i] + c + tok[i + 1 :]
    d = PS.decide(with_grants(req, mutated))
    assert not _lifted(d) and not d.grants_used
    assert d.effect is PS.decide(req).effect
    assert any(e.kind == "grant" for e in d.errors)


@FAST
@given(stopped_with_grant(), st.sampled_from(["digest", "kind", "exp", "rules", "key", "decision_other_key"]))
def test_a_changed_claim_without_the_key_lifts_nothing(case: tuple[dict[str, Any], str, str], what: str) -> None:
    import base64

    import orjson

    req, tok, rule = case
    head, body, sig = tok.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    if what == "key" or what == "decision_other_key":
        forged = token(
            req, "otp" if rule.endswith("otp") else "approval", [rule], signer=GrantSigner.hs256(OTHER_SECRET)
        )
    else:
        claims[what] = {"digest": "sha256:" + "0" * 64, "kind": "root", "exp": 1, "rules": ["t.g.big_refund_fraud"]}[
            what
        ]
        new_body = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
        forged = f"{head}.{new_body}.{sig}"
    d = PS.decide(with_grants(req, forged))
    assert not _lifted(d) and not d.grants_used and d.effect is PS.decide(req).effect


@FAST
@given(stopped_with_grant(), st.sampled_from(["amount", "action", "actor", "extra", "nested"]))
def test_a_changed_request_field_lifts_nothing(case: tuple[dict[str, Any], str, str], what: str) -> None:
    req, tok, _ = case
    other = copy.deepcopy(req)
    if what == "amount":
        other["context"]["amount"] += 1
    elif what == "action":
        other["action"] = "refund" if req["action"] == "pay" else "pay"
    elif what == "actor":
        other["actor"]["kind"] = "human"
    elif what == "extra":
        other["channel"] = "chat"
    else:
        other["context"]["note"] = "x"
    d = PS.decide(with_grants(other, tok))
    assert not _lifted(d) and not d.grants_used


@FAST
@given(requests, st.data())
def test_grants_never_stricter_nor_looser_than_what_they_do_not_lift(req: dict[str, Any], data: st.DataObject) -> None:
    tokens: list[Any] = []
    valid_names: dict[str, set[str]] = {"otp": set(), "approval": set()}
    for kind in ("otp", "approval"):
        rules = _stopping_rules(req, kind)
        if rules and data.draw(st.booleans()):
            named = data.draw(st.lists(st.sampled_from(rules), min_size=1, unique=True))
            tokens.append(token(req, kind, named))
            valid_names[kind].update(named)
    for _ in range(data.draw(st.integers(0, 2))):  # noise: grants that must lift nothing
        tokens.append(
            data.draw(
                st.sampled_from(
                    [
                        token({**req, "channel": "x"}, "approval", ["t.g.ai_refund_needs_person"]),
                        token(req, "otp", ["t.g.pay_static_otp"], signer=GrantSigner.hs256(OTHER_SECRET)),
                        "not-a-token",
                    ]
                )
            )
        )
    without = PS.decide(req)
    with_ = PS.decide(with_grants(req, *tokens))
    assert with_.effect.severity <= without.effect.severity
    unlifted = [r.effect.severity for r in with_.reasons if r.lifted_by is None]
    floor = max(unlifted) if unlifted else 0
    if with_.default_applied:
        floor = PS.default.severity
    assert with_.effect.severity == floor
    for r in with_.reasons:
        if r.lifted_by is not None:
            kind = STOPPING[r.rule]
            assert r.rule in valid_names[kind]
    assert [(x.data_class, x.style) for x in with_.redact] == [(x.data_class, x.style) for x in without.redact]
