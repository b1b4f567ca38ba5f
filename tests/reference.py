"""A deliberately simple reference evaluator: every rule, every constraint, no index.

It reads LANGUAGE.md's semantics straight off the checked rules, sharing no matching code with
the engine (no bitsets, no `allowed()` sets), so the property tests can hold the indexed engine
equal to it. Only valid requests are evaluated here; invalid ones are the engine's own tests.
"""

from __future__ import annotations

from typing import Any

from cxpolicy.cel import CelEvalError
from cxpolicy.checker import CheckedConstraint, CheckedRule
from cxpolicy.effects import Effect, Style
from cxpolicy.engine import PolicySet

_SEV = {"allow": 0, "redact": 1, "require_otp": 2, "escalate": 3}
_STRICT = {"last4": 0, "token": 1, "full": 2}


def _get(req: dict[str, Any], path: tuple[str, ...]) -> Any:
    cur: Any = req
    for k in path:
        if not isinstance(cur, dict) or k not in cur:
            return None
        cur = cur[k]
    return cur


def _holds(c: CheckedConstraint, req: dict[str, Any]) -> bool:
    d = c.dimension
    v = _get(req, d.path)
    if d.kind == "set":
        have = list(v or [])
        if c.op == "=":
            return c.values[0] in have
        if c.op == "!=":
            return c.values[0] not in have
        if c.op == "in":
            return any(x in have for x in c.values)
        return all(x not in have for x in c.values)
    if v is None:
        v = d.default
    if c.op == "=":
        return v == c.values[0]
    if c.op == "!=":
        return v != c.values[0]
    if c.op == "in":
        return v in c.values
    if c.op == "not in":
        return v not in c.values
    i, j = d.values.index(v), d.values.index(c.values[0])
    return {"<": i < j, "<=": i <= j, ">": i > j, ">=": i >= j}[c.op]


def _conditions(rule: CheckedRule, act: dict[str, Any]) -> tuple[bool, bool]:
    """(matches, had_error)"""
    results = []
    for cond in rule.conditions:
        v = cond.expression.evaluate(act)
        if isinstance(v, CelEvalError) or not isinstance(v, bool):
            results.append(None)
        else:
            results.append(v if cond.kind == "when" else not v)
    if any(r is False for r in results):
        return False, False
    if any(r is None for r in results):
        return rule.effect is not Effect.ALLOW, True
    return True, False


def reference_decide(policy: PolicySet, request: dict[str, Any], activation: dict[str, Any]) -> dict[str, Any]:
    matched: list[CheckedRule] = []
    errors: list[str] = []
    for r in policy.checked.rules:
        if not all(_holds(c, request) for c in r.constraints):
            continue
        ok, err = _conditions(r, activation)
        if err:
            errors.append(r.id)
        if ok:
            matched.append(r)
    if not matched:
        return {"effect": policy.default.value, "rules": [], "redact": {}, "escalate_to": [], "errors": errors}
    effect = max((r.effect.value for r in matched), key=lambda e: _SEV[e])
    ordered = sorted(matched, key=lambda r: (-_SEV[r.effect.value], r.order))
    styles: dict[str, str] = {}
    have = list(_get(request, ("data_classes",)) or [])
    for r in matched:
        if r.effect is not Effect.REDACT:
            continue
        classes = (
            list(r.redact_classes) if r.redact_classes is not None else [c for c in have if c in r.implicit_classes]
        )
        for c in classes:
            s = r.style.value
            if c not in styles or _STRICT[s] > _STRICT[styles[c]]:
                styles[c] = s
    queues: list[str] = []
    for r in matched:
        if r.effect is Effect.ESCALATE and r.queue and r.queue not in queues:
            queues.append(r.queue)
    return {
        "effect": effect,
        "rules": [r.id for r in ordered],
        "redact": styles,
        "escalate_to": queues,
        "errors": errors,
    }


def engine_view(decision: Any) -> dict[str, Any]:
    return {
        "effect": decision.effect.value,
        "rules": [r.rule for r in decision.reasons],
        "redact": {r.data_class: Style(r.style).value for r in decision.redact},
        "escalate_to": list(decision.escalate_to),
        "errors": [e.rule for e in decision.errors],
    }
