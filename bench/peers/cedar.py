"""The workload as Cedar policies, evaluated with cedarpy (Cedar's Rust engine).

Encoding. Cedar has two effects (permit, forbid) and answers Allow/Deny; a CX decision has four
effects combined "most restrictive wins". We give every rule its own `permit` policy, tagged
with `@effect("…")`, and read the effect from Cedar's *determining policies*: when no `forbid`
exists, an Allow lists every satisfied `permit` (`diagnostics.reasons`), which is exactly the set
of matched rules. The effect is the highest severity among them (a lookup from policy id to
severity, in Python, per decision); Deny with no reasons means no rule matched, so the policy
set's default applies. This needs one Cedar call per request. (The alternatives cost more: one
policy set per effect needs up to four calls, strictest first; encoding effects as separate
Cedar actions needs four requests.)

Mapping of a CX request (LANGUAGE.md §2) to a Cedar request:
- principal `Actor::"<actor.kind>"`, action `Action::"<action>"`, resource `Customer::"<id>"`;
  the scope holds the rule's positive `actor`/`action` constraints (`==`, `in [...]`);
- everything else travels in `context`: `channel`, `segment`, `region` (strings), `risk`
  (the rank of `risk_tier`, a Long, so `risk_tier >= high` is `context.risk >= 2`),
  `data_classes` and `roles` (Sets of strings), `amount` (Long), `otp_verified` (Bool);
- constraints become a `when` conjunction (`==`, `!=`, `[...].contains(x)`,
  `set.contains(v)`, `set.containsAny([...])`), conditions their own `when`/`unless` clauses.

Cedar parses policy ids as `policy0`, `policy1`, … in text order: policy *i* is rule *i*.
No entities, no schema (an empty pre-parsed `Entities` handle). The request is translated once,
before timing, and its context pre-serialised to JSON (cedarpy accepts a string and then
skips its own `json.dumps`): the peer gets its cheapest input for free.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import cedarpy

from bench.workload import DIMENSION_BY_NAME, EFFECTS, Condition, Constraint, Rule, Workload

__all__ = ["CedarAdapter", "rule_to_cedar", "to_cedar"]

_RISK = {v: i for i, v in enumerate(DIMENSION_BY_NAME["risk_tier"].values)}
_CONTEXT_FIELD = {"channel": "channel", "segment": "segment", "region": "region"}


def _q(v: str) -> str:
    return json.dumps(v)


def _uid(kind: str, v: str) -> str:
    return f"{kind}::{_q(v)}"


def _scope_and_test(c: Constraint) -> tuple[str | None, str | None]:
    """(scope clause, when-expression) for one constraint; one of them is None."""
    if c.dimension in ("action", "actor"):
        var, kind = ("action", "Action") if c.dimension == "action" else ("principal", "Actor")
        uids = [_uid(kind, v) for v in c.values]
        if c.op == "=":
            return f"{var} == {uids[0]}", None
        if c.op == "in":
            if var == "action":
                return f"action in [{', '.join(uids)}]", None
            return None, f"[{', '.join(uids)}].contains(principal)"
        if c.op == "!=":
            return None, f"{var} != {uids[0]}"
        return None, f"!([{', '.join(uids)}].contains({var}))"
    if c.dimension == "data_class":
        vals = ", ".join(_q(v) for v in c.values)
        return None, {
            "=": f"context.data_classes.contains({_q(c.values[0])})",
            "!=": f"!context.data_classes.contains({_q(c.values[0])})",
            "in": f"context.data_classes.containsAny([{vals}])",
            "not in": f"!context.data_classes.containsAny([{vals}])",
        }[c.op]
    if c.dimension == "risk_tier":
        if c.op in ("in", "not in"):
            ranks = ", ".join(str(_RISK[v]) for v in c.values)
            neg = "!" if c.op == "not in" else ""
            return None, f"{neg}[{ranks}].contains(context.risk)"
        op = {"=": "=="}.get(c.op, c.op)
        return None, f"context.risk {op} {_RISK[c.values[0]]}"
    field = f"context.{_CONTEXT_FIELD[c.dimension]}"
    if c.op == "=":
        return None, f"{field} == {_q(c.values[0])}"
    if c.op == "!=":
        return None, f"{field} != {_q(c.values[0])}"
    lst = f"[{', '.join(_q(v) for v in c.values)}].contains({field})"
    return None, lst if c.op == "in" else f"!{lst}"


def _condition(c: Condition) -> str:
    if c.field == "amount":
        return f"context.amount {c.test} {c.value}"
    if c.field == "otp_verified":
        return "context.otp_verified" if c.value else "!context.otp_verified"
    assert isinstance(c.value, str)
    return f"context.roles.contains({_q(c.value)})"


def rule_to_cedar(r: Rule) -> str:
    scope = {"principal": "principal", "action": "action"}
    tests: list[str] = []
    for c in r.constraints:
        clause, test = _scope_and_test(c)
        if clause is not None:
            scope[clause.split(" ", 1)[0]] = clause
        if test is not None:
            tests.append(test)
    lines = [
        f"// {r.name}",
        f'@effect("{r.effect}")',
        f"permit({scope['principal']}, {scope['action']}, resource)",
    ]
    if tests:
        lines.append("when { " + " && ".join(tests) + " }")
    lines += [f"{c.kind} {{ {_condition(c)} }}" for c in r.conditions]
    lines[-1] += ";"
    return "\n".join(lines)


def to_cedar(workload: Workload) -> str:
    return "\n".join(rule_to_cedar(r) for r in workload.rules) + "\n"


def to_cedar_request(request: dict[str, Any]) -> dict[str, Any]:
    c = request["customer"]
    ctx = request["context"]
    return {
        "principal": {"type": "Actor", "id": request["actor"]["kind"]},
        "action": {"type": "Action", "id": request["action"]},
        "resource": {"type": "Customer", "id": c["id"]},
        "context": json.dumps(
            {
                "channel": request["channel"],
                "segment": c["segment"],
                "region": c["region"],
                "risk": _RISK[c["risk_tier"]],
                "data_classes": list(request["data_classes"]),
                "roles": list(request["actor"]["roles"]),
                "amount": int(ctx["amount"]),
                "otp_verified": bool(ctx["otp_verified"]),
            }
        ),
    }


class _Loaded:
    __slots__ = ("default", "entities", "policies", "severity")

    def __init__(self, policies: Any, severity: dict[str, int], default: str):
        self.policies = policies
        self.entities = cedarpy.Entities.from_json_str("[]")
        self.severity = severity
        self.default = default


class CedarAdapter:
    name = "cedarpy"
    native = True

    def source(self, workload: Workload) -> tuple[str, dict[str, int], str]:
        severity = {f"policy{r.index}": r.severity for r in workload.rules}
        return to_cedar(workload), severity, workload.default

    def load(self, source: tuple[str, dict[str, int], str]) -> _Loaded:
        text, severity, default = source
        return _Loaded(cedarpy.PolicySet.from_str(text), severity, default)

    def prepare(self, request: dict[str, Any]) -> dict[str, Any]:
        return to_cedar_request(request)

    def decider(self, h: _Loaded) -> Callable[[Any], str]:
        is_authorized = cedarpy.is_authorized
        policies, entities, severity, default = h.policies, h.entities, h.severity, h.default

        def decide(req: Any) -> str:
            reasons = is_authorized(req, policies, entities).diagnostics.reasons
            if not reasons:
                return default
            return EFFECTS[max(severity[p] for p in reasons)]

        return decide

    def batch(self, h: _Loaded) -> Callable[[Sequence[Any]], list[str]]:
        batch_call = cedarpy.is_authorized_batch
        policies, entities, severity, default = h.policies, h.entities, h.severity, h.default

        def run(reqs: Sequence[Any]) -> list[str]:
            out = []
            for res in batch_call(list(reqs), policies, entities):
                reasons = res.diagnostics.reasons
                out.append(EFFECTS[max(severity[p] for p in reasons)] if reasons else default)
            return out

        return run

    def explain(self, h: _Loaded, prepared: Any) -> tuple[str, frozenset[int] | None]:
        res = cedarpy.is_authorized(prepared, h.policies, h.entities)
        if res.diagnostics.errors:
            raise RuntimeError(f"cedar reported errors: {res.diagnostics.errors}")
        reasons = res.diagnostics.reasons
        if reasons and res.decision is not cedarpy.Decision.Allow:
            raise RuntimeError(f"cedar denied with reasons {reasons}: the encoding has no forbid")
        matched = frozenset(int(p.removeprefix("policy")) for p in reasons)
        if not matched:
            return h.default, matched
        return EFFECTS[max(h.severity[p] for p in reasons)], matched
