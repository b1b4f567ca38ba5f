"""Property: the indexed engine decides exactly as the brute-force reference evaluator.

Random vocabularies (plain, ordered and set dimensions), random rules using every constraint
form (scope included), conditions that are true, false or erroring, and random valid requests.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cxpolicy.engine import index as index_module
from cxpolicy.engine.evaluation import with_defaults
from cxpolicy.engine.loader import load_text
from tests.reference import engine_view, reference_decide

EFFECTS = ["allow", "redact", "require_otp", "escalate"]
CONDITIONS = [
    "context.n > 5",
    "context.n <= 5",
    "context.flag",
    "!context.flag",
    "context.missing > 1",  # errors: field absent
    "context.n > 5 && context.missing > 1",
    "context.n > 100 && context.missing > 1",  # false && error -> false
    "'vip' in actor.roles",
]


@st.composite
def policies(draw: st.DrawFn) -> tuple[str, list[tuple[str, str, list[str]]]]:
    dims: list[tuple[str, str, list[str]]] = []
    n_plain = draw(st.integers(1, 3))
    for i in range(n_plain):
        kind = draw(st.sampled_from(["plain", "ordered"]))
        values = [f"v{i}_{j}" for j in range(draw(st.integers(2, 4)))]
        dims.append((f"d{i}", kind, values))
    dims.append(("dc", "set", [f"c{j}" for j in range(draw(st.integers(2, 4)))]))
    lines = ["package gen", f"default {draw(st.sampled_from(['allow', 'escalate', 'require_otp']))}"]
    for name, kind, values in dims:
        at = "data_classes" if kind == "set" else f"r.{name}"
        k = {"plain": "", "ordered": "ordered ", "set": "set "}[kind]
        lines.append(f"dimension {name} at {at}: {k}{{{', '.join(values)}}}")
    lines.append("attribute context.flag: bool = false")
    lines.append("attribute actor.roles: list = []")

    def constraint() -> tuple[str, bool, str]:
        name, kind, values = draw(st.sampled_from(dims))
        ops = ["=", "!=", "in", "not in"] + (["<", "<=", ">", ">="] if kind == "ordered" else [])
        op = draw(st.sampled_from(ops))
        if op in ("in", "not in"):
            vs = draw(st.lists(st.sampled_from(values), min_size=1, max_size=3, unique=True))
            return f"{name} {op} [{', '.join(vs)}]", kind == "set" and op == "in", name
        return f"{name} {op} {draw(st.sampled_from(values))}", kind == "set" and op == "=", name

    if draw(st.booleans()):
        lines.append(f"scope {constraint()[0]}")
    for r in range(draw(st.integers(1, 12))):
        cons = [constraint() for _ in range(draw(st.integers(0, 3)))]
        effect = draw(st.sampled_from(EFFECTS))
        body = [f"rule r{r} {{"]
        if cons:
            body.append("  match " + ", ".join(c[0] for c in cons))
        for _ in range(draw(st.integers(0, 2))):
            body.append(f"  {draw(st.sampled_from(['when', 'unless']))} {draw(st.sampled_from(CONDITIONS))}")
        if effect == "redact":
            set_values = dims[-1][2]
            implicit_ok = any(c[1] for c in cons)
            if implicit_ok and draw(st.booleans()):
                spec = "redact"
            else:
                cls = draw(st.lists(st.sampled_from(set_values), min_size=1, max_size=2, unique=True))
                spec = f"redact [{', '.join(cls)}]"
            spec += draw(st.sampled_from(["", " as full", " as token", " as last4"]))
        elif effect == "escalate":
            spec = draw(st.sampled_from(["escalate", 'escalate to "q1"', 'escalate to "q2"']))
        else:
            spec = effect
        body.append(f"  decide {spec}")
        body.append("}")
        lines.extend(body)
    return "\n".join(lines) + "\n", dims


@st.composite
def requests(draw: st.DrawFn, dims: list[tuple[str, str, list[str]]]) -> dict[str, Any]:
    r: dict[str, Any] = {}
    req: dict[str, Any] = {"r": r}
    for name, kind, values in dims:
        if kind == "set":
            if draw(st.booleans()):
                req["data_classes"] = draw(st.lists(st.sampled_from(values), max_size=3, unique=True))
        else:
            r[name] = draw(st.sampled_from(values))
    ctx: dict[str, Any] = {}
    if draw(st.booleans()):
        ctx["n"] = draw(st.one_of(st.integers(-10, 200), st.floats(-10, 200, allow_nan=False), st.just("x")))
    if draw(st.booleans()):
        ctx["flag"] = draw(st.booleans())
    req["context"] = ctx
    req["actor"] = {"roles": draw(st.lists(st.sampled_from(["vip", "tier1"]), max_size=2))}
    return req


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), partition=st.booleans())
def test_indexed_engine_equals_brute_force(data: st.DataObject, partition: bool) -> None:
    text, dims = data.draw(policies())
    # Small policies are not partitioned by default; force it for half the examples.
    names = ("_MIN_RULES_TO_PARTITION", "_MAX_BLOWUP", "_MAX_PARTITION_SHARE")
    saved = [getattr(index_module, n) for n in names]
    forced = (0, float("inf"), 1.0) if partition else (10**9, 0.0, 0.0)
    for n, v in zip(names, forced, strict=True):
        setattr(index_module, n, v)
    try:
        policy = load_text(text, "gen.cxp")
    finally:
        for n, v in zip(names, saved, strict=True):
            setattr(index_module, n, v)
    event(f"partitioned by a dimension: {policy.index.by is not None}")
    for _ in range(5):
        req = data.draw(requests(dims))
        decision = policy.decide(req)
        activation = with_defaults(req, [a for a in policy.vocabulary.attributes.values() if a.has_default])
        assert engine_view(decision) == reference_decide(policy, req, activation), text

