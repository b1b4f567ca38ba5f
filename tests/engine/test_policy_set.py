"""Engine: combining, redaction, queues, defaults, fail-safe, invalid requests, traces."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from cxpolicy import Effect, PolicySet, Style
from tests.conftest import base_request

Compile = Callable[..., PolicySet]

POLICY = """
package acme.cx
use core

cite PCI_CVV = "PCI DSS v4.0.1 Req 3.3.1.2"

rule prepare_ok {
  match   action = refund.prepare
  decide  allow
  because "Preparing a refund changes nothing."
}

rule cvv_hidden {
  match   data_class in [card_cvv, card_pin]
  decide  redact as full
  because "Card verification codes are never shown"
  cite    PCI_CVV
}

rule pan_last4 {
  match   data_class = card_pan
  decide  redact [card_pan, aadhaar] as last4
}

rule pan_token_for_ai {
  match   actor = ai
  decide  redact [card_pan] as token
}

rule big_refunds_to_desk {
  match   action = refund.execute, actor = ai
  unless  context.amount <= 500 && customer.risk_tier == "low"
  decide  escalate to "refunds-desk"
}

rule risky_to_fraud {
  match   risk_tier >= high
  decide  escalate to "fraud-desk"
}

rule reset_needs_otp {
  match   action = account.password_reset
  when    !context.otp_verified
  decide  require_otp
}

rule scored_allow {
  match   action = order.status
  when    context.score < 30
  decide  allow
}
"""


@pytest.fixture
def policy(compile_policy: Compile) -> PolicySet:
    return compile_policy(POLICY)


def test_most_restrictive_wins_and_reasons_are_strictest_first(policy: PolicySet) -> None:
    req = base_request(
        action="refund.execute",
        context={"amount": 12000},
        customer={"segment": "retail", "risk_tier": "high", "region": "IN"},
    )
    d = policy.decide(req)
    assert d.effect is Effect.ESCALATE
    assert [r.rule for r in d.reasons] == [
        "acme.cx.big_refunds_to_desk",
        "acme.cx.risky_to_fraud",
        "acme.cx.pan_token_for_ai",
    ]
    assert d.escalate_to == ("refunds-desk", "fraud-desk")
    # redact is reported whatever the final effect (pan_token_for_ai lists card_pan)
    assert [(r.data_class, r.style) for r in d.redact] == [("card_pan", Style.TOKEN)]


def test_unless_exempts_small_low_risk_refunds(policy: PolicySet) -> None:
    d = policy.decide(base_request(action="refund.execute", context={"amount": 499.5}))
    assert [r.rule for r in d.reasons] == ["acme.cx.pan_token_for_ai"]
    assert d.effect is Effect.REDACT


def test_redact_union_takes_the_strictest_style(policy: PolicySet) -> None:
    req = base_request(action="refund.prepare", data_classes=["card_pan", "card_cvv"])
    d = policy.decide(req)
    styles = {r.data_class: r.style for r in d.redact}
    # last4 (pan_last4) < token (pan_token_for_ai) for card_pan; implicit list for cvv
    assert styles == {"card_pan": Style.TOKEN, "aadhaar": Style.LAST4, "card_cvv": Style.FULL}
    assert d.effect is Effect.REDACT


def test_cites_and_because_travel_into_reasons(policy: PolicySet) -> None:
    d = policy.decide(base_request(action="refund.prepare", data_classes=["card_cvv"], actor={"kind": "human"}))
    (reason,) = [r for r in d.reasons if r.rule == "acme.cx.cvv_hidden"]
    assert reason.cite == ("PCI DSS v4.0.1 Req 3.3.1.2",)
    assert reason.cite_names == ("PCI_CVV",)
    assert reason.because == "Card verification codes are never shown"
    assert "cvv_hidden" in d.summary


def test_default_applies_when_nothing_matches(compile_policy: Compile) -> None:
    p = compile_policy(
        'package x\nuse core\ndefault escalate to "triage"\nrule r { match action = faq.answer\n decide allow }\n'
    )
    d = p.decide(base_request(actor={"kind": "human"}))
    assert d.effect is Effect.ESCALATE and d.default_applied and d.escalate_to == ("triage",)
    assert "no rule matched" in d.summary


def test_attribute_default_fills_missing_field(policy: PolicySet) -> None:
    d = policy.decide(base_request(action="account.password_reset", actor={"kind": "human"}))
    assert d.effect is Effect.REQUIRE_OTP and d.errors == ()
    ok = policy.decide(
        base_request(action="account.password_reset", actor={"kind": "human"}, context={"otp_verified": True})
    )
    assert ok.effect is Effect.ESCALATE and ok.default_applied  # nothing else matches a human reset


def test_condition_error_fails_safe(policy: PolicySet) -> None:
    # `allow` rule whose condition errs does not match -> default escalate, error names the rule
    d = policy.decide(base_request(action="order.status", actor={"kind": "human"}))
    assert d.effect is Effect.ESCALATE and d.default_applied
    assert d.errors and d.errors[0].kind == "condition" and d.errors[0].rule == "acme.cx.scored_allow"
    # a declared attribute of the wrong type is an invalid request, not a condition error
    bad = policy.decide(base_request(action="refund.execute", context={"amount": "lots"}))
    assert bad.errors[0].kind == "request" and bad.errors[0].field == "context.amount"


def test_condition_error_makes_a_stricter_rule_match(compile_policy: Compile) -> None:
    p = compile_policy("""package f
use core
default allow
rule fraud { match action = refund.execute
  when context.fraud_score > 70
  decide escalate to "fraud-desk" }
rule fine { match action = refund.execute
  when context.fraud_score > 70 && false
  decide escalate to "never" }
""")
    d = p.decide(base_request(context={"fraud_score": "high"}))
    assert [r.rule for r in d.reasons] == ["f.fraud"]  # `false` decides `fine` despite the error
    assert [e.rule for e in d.errors] == ["f.fraud"]
    assert d.escalate_to == ("fraud-desk",)


def test_decide_never_mutates_the_request(policy: PolicySet) -> None:
    req = base_request(action="account.password_reset")
    before = copy.deepcopy(req)
    policy.decide(req, explain=True)
    assert req == before


@pytest.mark.parametrize(
    ("request_value", "field"),
    [
        ([1, 2], None),
        ("card.block", None),
        (None, None),
        (base_request(channel=None), "channel"),
        ({k: v for k, v in base_request().items() if k != "channel"}, "channel"),
        (base_request(action="refund.execut"), "action"),
        (base_request(customer={"segment": "retail", "risk_tier": 3, "region": "IN"}), "customer.risk_tier"),
        (base_request(data_classes="card_pan"), "data_classes"),
        (base_request(data_classes=["card_pan", "pan_card"]), "data_classes"),
        (base_request(context={"otp_verified": "yes"}), "context.otp_verified"),
        (base_request(context={"amount": None}), "context.amount"),
        (base_request(action="x" * 1_000_000), "action"),
    ],
)
def test_invalid_requests_escalate_with_a_named_error(
    policy: PolicySet, request_value: object, field: str | None
) -> None:
    d = policy.decide(request_value)
    assert d.effect is Effect.ESCALATE
    assert d.reasons == ()
    assert d.errors and d.errors[0].kind == "request"
    if field is not None:
        assert any(e.field == field for e in d.errors)
    assert len(d.to_json()) < 5000  # a 1 MB value is not echoed back whole


def test_deeply_nested_context_is_handled(policy: PolicySet) -> None:
    deep: dict[str, object] = {}
    cur = deep
    for _ in range(5000):
        nxt: dict[str, object] = {}
        cur["x"] = nxt
        cur = nxt
    d = policy.decide(base_request(action="refund.prepare", context={"deep": deep}))
    assert d.effect in (Effect.ALLOW, Effect.REDACT)


def test_trace_shows_candidates_constraints_and_rendered_conditions(policy: PolicySet) -> None:
    d = policy.decide(base_request(action="refund.execute", context={"amount": 12000}), explain=True)
    assert d.trace is not None
    by_rule = {c.rule: c for c in d.trace.candidates}
    big = by_rule["acme.cx.big_refunds_to_desk"]
    assert big.matched
    assert [(k.text, k.holds) for k in big.constraints] == [("action = refund.execute", True), ("actor = ai", True)]
    (cond,) = big.conditions
    assert cond.kind == "unless" and cond.value is False
    assert "12000" in cond.rendered
    assert "most restrictive wins" in d.trace.combination
    assert "trace" in d.to_dict() and "trace" not in policy.decide(base_request()).to_dict()


def test_invalid_request_trace_says_no_rule_ran(policy: PolicySet) -> None:
    d = policy.decide([1], explain=True)
    assert d.trace is not None and d.trace.candidates == ()
    assert "no rule was evaluated" in d.trace.combination


def test_decision_ids_are_unique_uuid7_and_revision_is_stable(policy: PolicySet, compile_policy: Compile) -> None:
    ids = {policy.decide(base_request()).decision_id for _ in range(200)}
    assert len(ids) == 200
    assert all(i[14] == "7" for i in ids)
    assert policy.revision == compile_policy(POLICY).revision
    assert policy.revision != compile_policy(POLICY + "\n# changed\n").revision


def test_set_dimension_absent_is_empty(compile_policy: Compile) -> None:
    p = compile_policy("""package s
default allow
dimension d at data_classes: set {a, b}
rule no_a { match d != a
 decide escalate }
""")
    assert p.decide({}).effect is Effect.ESCALATE
    assert p.decide({"data_classes": ["a"]}).effect is Effect.ALLOW


def test_decision_ids_differ_across_a_fork() -> None:
    import os

    from cxpolicy.engine.decision import new_decision_id

    new_decision_id()  # fill this process's buffer
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report the next id it would hand out
        os.close(r)
        os.write(w, new_decision_id().encode())
        os._exit(0)
    os.close(w)
    child = os.read(r, 100).decode()
    os.waitpid(pid, 0)
    mine = new_decision_id()
    assert child[15:] != mine[15:]  # the random parts differ (a shared buffer would repeat them)
