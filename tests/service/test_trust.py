"""Bound fields (LANGUAGE.md §10): bound values override the body; a contradicting body
value escalates with an `untrusted` error naming the field, and is never less strict than
the bound value itself (property test over generated requests and bindings)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cxpolicy
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.kinds import Effect
from cxpolicy.service.trust import apply_bound, decide_trusted, merge_bound


@cache
def packs() -> PolicySet:
    return cxpolicy.load([], packs=["bfsi_rbi", "hipaa", "gdpr"])


def _req(**over: Any) -> dict[str, Any]:
    req: dict[str, Any] = {
        "action": "refund.execute",
        "channel": "chat",
        "actor": {"kind": "human", "id": "a-1"},
        "customer": {"id": "C-1", "segment": "retail", "risk_tier": "low", "region": "IN"},
        "context": {"amount": 100, "currency": "INR"},
    }
    req.update(over)
    return req


def test_a_bound_value_overrides_and_a_contradiction_is_untrusted() -> None:
    # Issue 15: in IN, `actor.kind = "human"` allowed refund.execute for an AI agent.
    body = _req()
    assert packs().decide(body).effect is Effect.ALLOW  # what the body alone would get
    d = decide_trusted(packs().decide, body, {"actor.kind": "ai"})
    assert d.effect is Effect.ESCALATE
    errs = [e for e in d.errors if e.kind == "untrusted"]
    assert [e.field for e in errs] == ["actor.kind"]
    assert body["actor"]["kind"] == "human"  # the caller's object is not mutated


def test_agreeing_or_absent_fields_are_not_errors() -> None:
    body = _req(actor={"kind": "ai"})
    out, errs = apply_bound(body, {"actor.kind": "ai", "channel": "chat"})
    assert errs == [] and out["actor"]["kind"] == "ai"
    body2 = _req()
    del body2["channel"]
    out2, errs2 = apply_bound(body2, {"channel": "voice"})
    assert errs2 == [] and out2["channel"] == "voice"


def test_true_is_not_one_and_a_non_object_is_left_to_the_engine() -> None:
    _, errs = apply_bound({"context": {"identity_verified": 1}}, {"context.identity_verified": True})
    assert [e.field for e in errs] == ["context.identity_verified"]
    assert apply_bound([1, 2], {"actor.kind": "ai"}) == ([1, 2], [])


def test_trusted_sources_that_disagree_are_reported() -> None:
    bound, errs = merge_bound({"customer.region": "IN"}, {"customer.region": "EU", "customer.id": "C"})
    assert bound == {"customer.region": "IN", "customer.id": "C"}
    assert [e.field for e in errs] == ["customer.region"]


# -------------------------------------------------------------------------- property
FIELDS: dict[str, list[Any]] = {
    "actor.kind": ["ai", "human"],
    "channel": ["chat", "voice", "email", "app"],
    "customer.region": ["IN", "EU", "US", "UK", "GLOBAL"],
    "customer.segment": ["retail", "priority", "minor", "patient"],
    "customer.risk_tier": ["low", "medium", "high", "critical"],
    "context.identity_verified": [True, False],
    "context.consents": [[], ["marketing"], ["support", "profiling"]],
}
ACTIONS = ["refund.execute", "payment.initiate", "card.collect_cvv", "card.reveal_pan", "order.status",
           "marketing.send", "data.export", "account.password_reset", "phi.disclose"]


@st.composite
def cases(draw: st.DrawFn) -> tuple[dict[str, Any], str, Any, Any]:
    req = _req(action=draw(st.sampled_from(ACTIONS)))
    for path, values in FIELDS.items():
        if draw(st.booleans()):
            head, _, tail = path.partition(".")
            if tail:
                req.setdefault(head, {})[tail] = draw(st.sampled_from(values))
            else:
                req[head] = draw(st.sampled_from(values))
    field = draw(st.sampled_from(sorted(FIELDS)))
    bound_value = draw(st.sampled_from(FIELDS[field]))
    other = draw(st.sampled_from([v for v in FIELDS[field] if v != bound_value] + ["junk", 7, None]))
    return req, field, bound_value, other


def _with(req: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in req.items()}
    head, _, tail = path.partition(".")
    if tail:
        out.setdefault(head, {})[tail] = value
    else:
        out[head] = value
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_a_contradicting_body_is_never_less_strict_than_the_bound_value(
    case: tuple[dict[str, Any], str, Any, Any],
) -> None:
    req, field, bound_value, other = case
    bound = {field: bound_value}
    honest = decide_trusted(packs().decide, _with(req, field, bound_value), bound)
    lying = decide_trusted(packs().decide, _with(req, field, other), bound)
    assert lying.effect.severity >= honest.effect.severity
    assert any(e.kind == "untrusted" and e.field == field for e in lying.errors)
    assert not any(e.kind == "untrusted" for e in honest.errors)


def test_a_re_decision_after_a_spent_grant_still_escalates_what_the_facts_contradicted(tmp_path: Path) -> None:
    """A body that contradicts a bound field escalates; if its grant was spent meanwhile, the
    re-decision (without the spent grant) must not drop that `untrusted` error."""
    import asyncio

    from cxpolicy.grants import GrantKeys, issue_for
    from cxpolicy.kinds import Effect
    from cxpolicy.service.app import create_app
    from cxpolicy.service.reload import Engine
    from cxpolicy.service.trust import decide_applied
    from tests.grants.support import POLICY, REFUND, SECRET, SIGNER

    (tmp_path / "p.cxp").write_text(POLICY)
    engine = Engine([tmp_path / "p.cxp"], grant_keys=GrantKeys.from_secret(SECRET))
    svc = create_app(engine).state.service
    policy = engine.policy
    asked = {**REFUND, "channel": "chat"}  # as the bound channel makes it
    grant = issue_for(asked, policy.decide(asked), SIGNER, kind="approval", by="lead")
    body = {**asked, "grants": [grant], "channel": "voice"}  # the body contradicts the binding
    applied, first, problems = decide_applied(policy.decide, body, {"channel": "chat"}, False, [])
    assert problems and first.effect is Effect.ESCALATE and first.grants_used
    svc.spent.record(applied, policy.decide({**asked, "grants": [grant]}))  # spent by another call first
    final = asyncio.run(svc._record_with_grants(policy, applied, first, False, problems))
    assert final is not first and final.effect is Effect.ESCALATE
    assert any(e.kind == "untrusted" for e in final.errors)
