"""Differential testing: the indexed engine against the reference evaluator, conditions included.

tests/engine/test_index_properties.py holds the index equal to brute force on valid requests and a
handful of fixed conditions. This file widens what is compared to everything around a
decision that can go wrong while optimising the engine:

* **conditions** generated from a small CEL grammar: comparisons, arithmetic that divides by
  zero or mixes int and double, string functions and RE2 regexes, `has()`, comprehensions,
  expressions that run on cel-python (`int()`, `string()`), and expressions whose value is
  not a bool (`context.n`, `[x]`, `c ? 1 : true`) — several per rule, `when` and `unless`
  mixed, so LANGUAGE.md §5's fail-safe and CEL's commutative `&&` are exercised together;
* **invalid requests** (missing, null, mistyped and unknown values, set dimensions over the
  limit, attributes of the wrong type): the engine must escalate, evaluate no rule, and name
  exactly the fields the reference names;
* **attribute defaults**, `default escalate to "queue"`, and a **detector** whose classes join
  the data-class dimension;
* **explain**: the traced decision equals the plain one, every rule whose constraints hold is
  a candidate, and the trace's matched flags and condition errors agree with the reference.

The reference (tests/reference.py) shares no matching, validation or combination code with
the engine; both evaluate conditions with the same compiled CEL, which
tests/cel/test_properties.py holds equal to cel-python.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cxpolicy.engine import index as index_module
from cxpolicy.engine.decision import Decision
from cxpolicy.engine.loader import load_text
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.limits import MAX_SET_VALUES
from tests.reference import _holds, engine_view, reference_full

EXAMPLES = int(os.environ.get("CXPOLICY_DIFF_EXAMPLES", "120"))
REQUESTS_PER_POLICY = 6

# ------------------------------------------------------------------------------- conditions

ATOMS = [
    "context.n > 5",
    "context.n <= 5",
    "context.n == 5.0",
    "context.flag",
    "!context.flag",
    "context.s.startsWith('a')",
    "context.s.matches('^a+$')",
    "size(context.s) > 2",
    "context.n / context.d > 1",  # int division by zero errs; int / double errs
    "context.n % 2 == 0",  # a double operand errs
    "has(context.n)",
    "'vip' in actor.roles",
    "context.items.exists(i, i > 3)",
    "context.items.all(i, i.p > 0)",  # errs on every non-map item
    "context.missing > 1",  # always errs
    "nosuch.field == 1",  # always errs: not a request field
    "int(context.s) > 2",  # cel-python; errs on non-numeric text
    "string(context.n) == '5'",  # cel-python
    "data_classes.exists(c, c == 'c0')",
    "has(signals.hit) && signals.hit",
    "signals.hit",  # errs when the detector saw nothing
]
NOT_BOOL = ["context.n", "context.s", "context.flag ? 1 : true", "[context.flag]", "null", "context.items"]


@st.composite
def conditions(draw: st.DrawFn, depth: int = 0) -> str:
    if depth >= 2 or draw(st.integers(0, 2)) == 0:
        return draw(st.sampled_from(ATOMS if draw(st.integers(0, 5)) else NOT_BOOL))
    form = draw(st.sampled_from(["and", "or", "not", "cond"]))
    a = draw(conditions(depth + 1))
    b = draw(conditions(depth + 1))
    if form == "and":
        return f"({a}) && ({b})"
    if form == "or":
        return f"({a}) || ({b})"
    if form == "not":
        return f"!({a})"
    return f"context.flag ? ({a}) : ({b})"


# ----------------------------------------------------------------------------------- policy

Dim = tuple[str, str, list[str], str | None]  # name, kind, values, default


@st.composite
def policies(draw: st.DrawFn) -> tuple[str, list[Dim]]:
    dims: list[Dim] = []
    for i in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["plain", "ordered"]))
        values = [f"v{i}_{j}" for j in range(draw(st.integers(2, 4)))]
        default = draw(st.sampled_from([None, values[0]]))
        dims.append((f"d{i}", kind, values, default))
    dims.append(("dc", "set", [f"c{j}" for j in range(draw(st.integers(2, 4)))], None))
    if draw(st.booleans()):
        dims.append(("tg", "set", ["t0", "t1", "t2"], None))
    default = draw(st.sampled_from(["allow", "escalate", "require_otp", 'escalate to "dq"']))
    lines = ["package gen", f"default {default}"]
    for name, kind, values, dflt in dims:
        at = {"dc": "data_classes", "tg": "r.tags"}.get(name, f"r.{name}")
        k = {"plain": "", "ordered": "ordered ", "set": "set "}[kind]
        tail = f" default {dflt}" if dflt else ""
        lines.append(f"dimension {name} at {at}: {k}{{{', '.join(values)}}}{tail}")
    lines += [
        "attribute context.flag: bool = false",
        "attribute context.n: number",
        "attribute context.s: string",
        "attribute context.items: list = []",
        "attribute actor.roles: list = []",
        "attribute data_classes: list = []",
    ]

    def constraint() -> tuple[str, bool]:
        name, kind, values, _ = draw(st.sampled_from(dims))
        ops = ["=", "!=", "in", "not in"] + (["<", "<=", ">", ">="] if kind == "ordered" else [])
        op = draw(st.sampled_from(ops))
        positive_on_dc = name == "dc" and op in ("=", "in")
        if op in ("in", "not in"):
            vs = draw(st.lists(st.sampled_from(values), min_size=1, max_size=3, unique=True))
            return f"{name} {op} [{', '.join(vs)}]", positive_on_dc
        return f"{name} {op} {draw(st.sampled_from(values))}", positive_on_dc

    if draw(st.booleans()):
        lines.append(f"scope {constraint()[0]}")
    for r in range(draw(st.integers(1, 10))):
        cons = [constraint() for _ in range(draw(st.integers(0, 3)))]
        body = [f"rule r{r} {{"]
        if cons:
            body.append("  match " + ", ".join(c[0] for c in cons))
        for _ in range(draw(st.integers(0, 3))):
            body.append(f"  {draw(st.sampled_from(['when', 'unless']))} {draw(conditions())}")
        effect = draw(st.sampled_from(["allow", "redact", "require_otp", "escalate"]))
        if effect == "redact":
            if any(c[1] for c in cons) and draw(st.booleans()):
                spec = "redact"
            else:
                dc_values = next(d[2] for d in dims if d[0] == "dc")
                classes = draw(st.lists(st.sampled_from(dc_values), min_size=1))
                spec = f"redact [{', '.join(dict.fromkeys(classes))}]"
            spec += draw(st.sampled_from(["", " as full", " as token", " as last4"]))
        elif effect == "escalate":
            spec = draw(st.sampled_from(["escalate", 'escalate to "q1"', 'escalate to "q2"']))
        else:
            spec = effect
        body += [f"  decide {spec}", "}"]
        lines += body
    return "\n".join(lines) + "\n", dims


# ---------------------------------------------------------------------------------- requests

WRONG = [None, 1, 2.5, True, ["x"], {"k": "v"}, "zz", ""]


@st.composite
def requests(draw: st.DrawFn, dims: list[Dim]) -> dict[str, Any]:
    """Mostly valid requests; about a third carry one or more invalid fields."""
    broken = draw(st.integers(0, 2)) == 0
    r: dict[str, Any] = {}
    req: dict[str, Any] = {"r": r}
    for name, kind, values, _ in dims:
        holder, key = (req, "data_classes") if name == "dc" else (r, "tags" if name == "tg" else name)
        if kind == "set":
            choice = draw(st.integers(0, 9)) if broken else 0
            if choice == 1:
                holder[key] = draw(st.sampled_from(WRONG[:-2]))
            elif choice == 2:
                holder[key] = [values[0], draw(st.sampled_from(WRONG))]
            elif choice == 3:
                holder[key] = [values[0]] * (MAX_SET_VALUES + 1)
            elif draw(st.booleans()):
                holder[key] = draw(st.lists(st.sampled_from(values), max_size=3))
            continue
        choice = draw(st.integers(0, 9)) if broken else 0
        if choice == 1:
            continue  # missing: the default applies, or it is an error
        if choice == 2:
            holder[key] = draw(st.sampled_from(WRONG))
        else:
            holder[key] = draw(st.sampled_from(values))
    ctx: dict[str, Any] = {}
    if draw(st.booleans()):
        ctx["n"] = draw(st.one_of(st.integers(-3, 12), st.sampled_from([5.0, 0.5, -0.0, 1e300]), st.just("x")))
    if draw(st.booleans()):
        ctx["d"] = draw(st.sampled_from([0, 1, 2, 0.0, 2.0, "2"]))
    if draw(st.booleans()):
        ctx["flag"] = draw(st.one_of(st.booleans(), st.sampled_from([1, "true", None])) if broken else st.booleans())
    if draw(st.booleans()):
        ctx["s"] = draw(st.sampled_from(["a", "aaa", "ab", "12", "7", "", "ba"] + ([3, None] if broken else [])))
    if draw(st.booleans()):
        ctx["items"] = draw(st.lists(st.one_of(st.integers(0, 6), st.just({"p": 1}), st.just("x")), max_size=4))
    req["context"] = ctx
    if draw(st.booleans()):
        req["actor"] = {"roles": draw(st.lists(st.sampled_from(["vip", "tier1"]), max_size=2))}
    if draw(st.booleans()):
        dc = next(d for d in dims if d[0] == "dc")
        req["_pii"] = draw(st.lists(st.sampled_from([*dc[2], "undeclared"]), max_size=2))
    if draw(st.booleans()):
        req["_hit"] = draw(st.booleans())
    return req


def stub_detector(request: Mapping[str, Any]) -> dict[str, Any]:
    """A detector reading its findings from the request, so the reference can know them."""
    out: dict[str, Any] = {"pii": list(request.get("_pii") or [])}
    if "_hit" in request:
        out["hit"] = request["_hit"]
    return out


@contextmanager
def partitioning(on: bool) -> Iterator[None]:
    """Force the index to partition (or not) whatever the policy's size, as the engine would
    for a large policy set; small generated policies are otherwise never partitioned."""
    names = ("_MIN_RULES_TO_PARTITION", "_MAX_BLOWUP", "_MAX_PARTITION_SHARE")
    saved = [getattr(index_module, n) for n in names]
    forced = (0, float("inf"), 1.0) if on else (10**9, 0.0, 0.0)
    for n, v in zip(names, forced, strict=True):
        setattr(index_module, n, v)
    try:
        yield
    finally:
        for n, v in zip(names, saved, strict=True):
            setattr(index_module, n, v)


# ------------------------------------------------------------------------------- comparison


def _engine(d: Decision) -> dict[str, Any]:
    view = engine_view(d)
    view["errors"] = [e.rule for e in d.errors if e.kind == "condition"]
    view["request_errors"] = {(e.kind, e.field) for e in d.errors if e.kind != "condition"}
    return view


def _check_trace(policy: PolicySet, d: Decision, expected: dict[str, Any], request: dict[str, Any]) -> None:
    """`request` is the request as the constraints see it (detected classes merged)."""
    assert d.trace is not None
    traced = {t.rule: t for t in d.trace.candidates}
    if expected["request_errors"]:
        assert traced == {}
        return
    matched = set(expected["rules"])
    assert {rule for rule, t in traced.items() if t.matched} == matched
    for r in policy.checked.rules:  # the index never drops a rule whose constraints hold
        if all(_holds(c, request) for c in r.constraints):
            assert r.id in traced, r.id
    for rule in expected["errors"]:
        assert any(c.error for c in traced[rule].conditions), rule
    for rule, t in traced.items():  # detected classes included (regression test below)
        if t.matched:
            assert all(c.holds for c in t.constraints), rule


def _matching_view(request: dict[str, Any], dims: list[Dim]) -> dict[str, Any]:
    """The request as the constraints see it: detected, declared classes join data_classes."""
    extra = [c for c in stub_detector(request)["pii"] if c in next(d for d in dims if d[0] == "dc")[2]]
    have = request.get("data_classes")
    if not extra or not isinstance(have, list | type(None)):
        return request
    if any(type(c) is not str for c in have or ()):  # an invalid request: nothing is merged
        return request
    return {**request, "data_classes": list(dict.fromkeys([*(have or []), *extra]))}


def _differential(data: st.DataObject, partition: bool) -> None:
    text, dims = data.draw(policies())
    with partitioning(partition):
        policy = load_text(text, "gen.cxp")
    policy.detector = stub_detector
    event(f"partitioned: {policy.index.by is not None}")
    for _ in range(REQUESTS_PER_POLICY):
        req = data.draw(requests(dims))
        expected = reference_full(policy, req, stub_detector(req))
        decision = policy.decide(req)
        assert _engine(decision) == expected, text
        explained = policy.decide(req, explain=True)
        assert _engine(explained) == expected
        _check_trace(policy, explained, expected, _matching_view(req, dims))
        if expected["request_errors"]:
            event("invalid request")
        elif expected["errors"]:
            event("condition error (fail-safe)")
        else:
            event(f"valid: {expected['effect']}")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), partition=st.booleans())
def test_engine_equals_reference_with_conditions(data: st.DataObject, partition: bool) -> None:
    _differential(data, partition)


@pytest.mark.slow
@settings(
    max_examples=int(os.environ.get("CXPOLICY_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data(), partition=st.booleans())
def test_engine_equals_reference_with_conditions_long(data: st.DataObject, partition: bool) -> None:
    _differential(data, partition)


# ---------------------------------------------------------------------- the fail-safe, spelt out

FAIL_SAFE = """
package fs
dimension d at d: {a, b}
attribute context.flag: bool = false
default allow
rule erring_escalate   { when  context.missing > 1
                         decide escalate }
rule erring_allow      { when  context.missing > 1
                         decide allow }
rule erring_but_false  { when  context.missing > 1
                         when  context.flag
                         decide escalate to "never" }
rule erring_unless_true{ unless context.missing > 1
                         unless !context.flag
                         decide require_otp }
rule not_a_bool        { when  context.flag ? 1 : 2
                         decide redact [x] }
dimension dc at data_classes: set {x}
"""


@pytest.mark.parametrize("flag", [False, True])
def test_fail_safe_rules_of_language_section_5(flag: bool) -> None:
    """Each branch of the fail-safe once, against the reference: an erring condition makes a
    stricter-than-allow rule match and an allow rule not match; a false `when` (a true
    `unless`) decides "no match" even beside an erring one; a non-bool result is an error."""
    policy = load_text(FAIL_SAFE.replace("{ when", "{\n when").replace("{ unless", "{\n unless"), "fs.cxp")
    req = {"d": "a", "context": {"flag": flag}}
    d = policy.decide(req)
    assert _engine(d) == reference_full(policy, req)
    matched = {r.rule for r in d.reasons}
    assert "fs.erring_escalate" in matched and "fs.not_a_bool" in matched
    assert "fs.erring_allow" not in matched
    assert ("fs.erring_but_false" in matched) is flag  # false `when` wins over the error
    assert ("fs.erring_unless_true" in matched) is flag  # true `unless` (!flag) wins over the error
    errors = {e.rule for e in d.errors}
    assert {"fs.erring_escalate", "fs.erring_allow", "fs.not_a_bool"} <= errors
    assert d.effect.value == "escalate"


def test_regression_unhashable_data_class_with_detection() -> None:
    policy = load_text("package k\ndimension dc at data_classes: set {c0}\nrule r {\n  decide allow\n}\n", "k.cxp")
    policy.detector = stub_detector
    req = {"data_classes": ["c0", ["x"]], "_pii": ["c0"]}
    d = policy.decide(req)
    assert [(e.kind, e.field) for e in d.errors] == [("request", "data_classes")]


def test_regression_trace_constraints_see_detected_classes() -> None:
    """With detection on, a class the detector found makes `dc = c0` hold and the rule match,
    but the trace evaluates its constraints on the request's own `data_classes` (empty here)
    and shows `dc = c0` as not holding beside the note "all constraints hold"."""
    policy = load_text(
        "package k\ndimension dc at data_classes: set {c0}\nrule r {\n  match dc = c0\n  decide escalate\n}\n"
    )
    policy.detector = lambda request: {"pii": ["c0"]}
    d = policy.decide({}, explain=True)
    assert d.trace is not None and d.trace.candidates[0].matched
    assert all(c.holds for c in d.trace.candidates[0].constraints)
