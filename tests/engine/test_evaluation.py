"""The shared evaluation (cxpolicy/engine/evaluation.py) against the engine's inlined fast form.

Input: generated policies and requests (the strategies of tests/engine/test_differential.py: CEL
conditions that err or give non-bools, attribute defaults, a detector whose classes join the
data-class dimension). Output: assertions that `PolicySet.decide`, which keeps an inlined fast
form of "what the engine sees" and "does this rule match", agrees with `evaluation.seen` and
`evaluation.rule_verdict` on every rule: the same rules match, the same condition errors are
reported in the same order, and `condition_verdict` (which stops at the first decisive
condition) equals the verdict derived from every condition. If LANGUAGE.md §5 changes in one
place only, this fails.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxpolicy.engine.evaluation import (
    MISSING,
    activation,
    condition_verdict,
    dimension_value,
    lookup,
    rule_verdict,
    seen,
    with_defaults,
)
from cxpolicy.engine.loader import load_text
from cxpolicy.kinds import ErrorKind
from tests.engine.test_differential import partitioning, policies, requests, stub_detector

EXAMPLES = int(os.environ.get("CXPOLICY_DIFF_EXAMPLES", "80"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), partition=st.booleans(), detect=st.booleans())
def test_decide_equals_the_shared_rule_verdict(data: st.DataObject, partition: bool, detect: bool) -> None:
    text, dims = data.draw(policies())
    with partitioning(partition):
        policy = load_text(text, "gen.cxp")
    policy.detector = stub_detector if detect else None
    for _ in range(4):
        req = data.draw(requests(dims))
        d = policy.decide(req)
        if any(e.kind == ErrorKind.REQUEST or e.kind == ErrorKind.LIMIT for e in d.errors):
            continue  # invalid: no rule is evaluated, nothing to compare
        looked_at = seen(policy.vocabulary, req, d.signals)
        verdicts = [rule_verdict(r, looked_at) for r in policy.rules]
        for r, v in zip(policy.rules, verdicts, strict=True):
            assert condition_verdict(r, looked_at.activation) == v.conditions_verdict, (text, req, r.id)
        want = [v.rule.id for v in verdicts if v.matched]
        got = [reason.rule for reason in d.reasons]
        assert sorted(got) == sorted(want), (text, req)
        errors = [(v.rule.id, v.error) for v in verdicts if v.error is not None]
        assert [(e.rule, e.message) for e in d.errors] == errors, (text, req)
        traced = policy.decide(req, explain=True).trace
        assert traced is not None
        for t in traced.candidates:  # the trace is built from the shared verdict on the engine's view
            v = next(v for v in verdicts if v.rule.id == t.rule)
            assert [c.holds for c in t.constraints] == [c.holds for c in v.constraints], (text, req, t.rule)
            assert [c.value for c in t.conditions] == [c.value for c in v.conditions]


def test_seen_merges_only_declared_detected_classes_after_the_requests_own() -> None:
    policy = load_text("dimension dc at data_classes: set {a, b, c}\nattribute context.n: number = 3\n")
    request: dict[str, Any] = {"data_classes": ["b"], "context": {}}
    s = seen(policy.vocabulary, request, {"pii": ["c", "b", "zz", "c", 7]})
    assert s.request["data_classes"] == ["b", "c"]
    assert s.request["signals"]["pii"] == ["c", "b", "zz", "c", 7]
    # Conditions read the request's own classes, the signals and the defaults.
    assert s.activation["data_classes"] == ["b"]
    assert s.activation["context"]["n"] == 3
    assert request == {"data_classes": ["b"], "context": {}}  # the caller's request is untouched


def test_with_defaults_copies_only_the_path_it_fills_and_skips_non_objects() -> None:
    policy = load_text("attribute a.b.c: list = [1]\nattribute x.y: number = 2\n")
    shared = {"keep": [1, 2]}
    request: dict[str, Any] = {"a": {"b": {}}, "x": 5, "other": shared}
    out = activation(policy.vocabulary, request)
    assert out["a"]["b"]["c"] == [1]
    assert out["x"] == 5  # `x` is not an object: `x.y` cannot be filled in
    assert out["other"] is shared  # untouched parts are shared, not copied
    assert request["a"] == {"b": {}}
    out["a"]["b"]["c"].append(9)  # a fresh copy of the default each time
    assert activation(policy.vocabulary, request)["a"]["b"]["c"] == [1]
    attrs = tuple(policy.vocabulary.attributes.values())
    full: dict[str, Any] = {"a": {"b": {"c": []}}, "x": {"y": 0}}
    assert with_defaults(full, attrs) is full  # nothing to fill: the request itself


def test_lookup_and_dimension_value_on_absent_and_non_object_paths() -> None:
    policy = load_text("dimension t at r.tier: {lo, hi} default lo\ndimension s at r.tags: set {p, q}\n")
    tier, tags = policy.vocabulary.dimensions["t"], policy.vocabulary.dimensions["s"]
    assert lookup({"r": "text"}, ("r", "tier")) is MISSING
    assert lookup({"r": {"tier": None}}, ("r", "tier")) is None
    assert dimension_value({}, tier) == "lo"
    assert dimension_value({}, tags) == []
    assert dimension_value({"r": {"tier": "hi"}}, tier) == "hi"


def test_fail_safe_verdicts_per_condition() -> None:
    text = """
    package p
    dimension action: {a}
    attribute context.n: number
    rule strict { match action = a
      when context.n > 1
      when context.missing > 1
      decide escalate }
    rule lax { match action = a
      when context.missing > 1
      decide allow }
    rule decided { match action = a
      when context.missing > 1
      unless context.n > 1
      decide escalate }
    """
    policy = load_text(text)
    s = seen(policy.vocabulary, {"action": "a", "context": {"n": 5}})
    by_id = {r.id.split(".")[-1]: rule_verdict(r, s) for r in policy.rules}
    assert by_id["strict"].matched and by_id["strict"].error is not None  # the fail-safe matches it
    assert not by_id["lax"].matched and by_id["lax"].error is not None  # an allow never matches on an error
    assert not by_id["decided"].matched and by_id["decided"].error is None  # a decisive unless wins over the error
    d = policy.decide({"action": "a", "context": {"n": 5}})
    assert {r.rule.split(".")[-1] for r in d.reasons} == {"strict"}
    assert [e.rule for e in d.errors] == [by_id["strict"].rule.id, by_id["lax"].rule.id]
