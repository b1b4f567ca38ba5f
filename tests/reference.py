"""A deliberately simple reference evaluator: every rule, every constraint, no index.

It reads LANGUAGE.md's semantics straight off the checked rules, sharing no matching code with
the engine (no bitsets, no `allowed()` sets), so the property tests can hold the indexed engine
equal to it. `reference_decide` evaluates a valid request; `reference_full` also validates
(LANGUAGE.md §5: an invalid request escalates with an error per bad field and no rule
evaluated), fills attribute defaults and merges detected data classes, each written here
again from the language contract rather than imported from the engine. Conditions are
evaluated by the compiled CEL expressions themselves: CEL is held to cel-python by
tests/cel/test_properties.py, so what is compared here is everything around them — the
index, the fail-safe, the combination.
"""

from __future__ import annotations

import copy
from typing import Any

from cxpolicy.cel import CelEvalError
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.kinds import Effect, Style
from cxpolicy.lang.checker import CheckedConstraint, CheckedRule
from cxpolicy.limits import MAX_SET_VALUES

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
        queue = [policy.default_queue] if policy.default_queue and policy.default is Effect.ESCALATE else []
        return {
            "effect": policy.default.value,
            "rules": [],
            "redact": {},
            "escalate_to": queue,
            "errors": errors,
            "default_applied": True,
        }
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
        "default_applied": False,
    }


def engine_view(decision: Any) -> dict[str, Any]:
    return {
        "effect": decision.effect.value,
        "rules": [r.rule for r in decision.reasons],
        "redact": {r.data_class: Style(r.style).value for r in decision.redact},
        "escalate_to": list(decision.escalate_to),
        "errors": [e.rule for e in decision.errors],
        "default_applied": decision.default_applied,
    }


# ----------------------------------------------------------------- validation, defaults, signals

_ABSENT: Any = object()


def _walk(req: Any, path: tuple[str, ...]) -> Any:
    """The value at `path`, or _ABSENT when a step is missing or is not an object."""
    cur = req
    for k in path:
        if not isinstance(cur, dict) or k not in cur:
            return _ABSENT
        cur = cur[k]
    return cur


def _is_type(type_name: str, v: Any) -> bool:
    """LANGUAGE.md §5: a declared attribute of the wrong type, `null` included, is an error."""
    if v is None:
        return False
    number = isinstance(v, int | float) and not isinstance(v, bool)
    return {
        "any": True,
        "bool": isinstance(v, bool),
        "number": number,
        "int": number and isinstance(v, int),
        "string": isinstance(v, str),
        "list": isinstance(v, list),
        "map": isinstance(v, dict),
    }[type_name]


def reference_errors(policy: PolicySet, request: Any) -> set[tuple[str, str | None]]:
    """(kind, field) of every reason `request` is invalid; empty when it is valid."""
    if not isinstance(request, dict):
        return {("request", None)}
    out: set[tuple[str, str | None]] = set()
    for d in policy.vocabulary.dimensions.values():
        field = ".".join(d.path)
        v = _walk(request, d.path)
        if d.kind == "set":
            if v is _ABSENT:
                continue
            if not isinstance(v, list):
                out.add(("request", field))
            elif len(v) > MAX_SET_VALUES:
                out.add(("limit", field))
            elif any(not isinstance(x, str) or x not in d.values for x in v):
                out.add(("request", field))
        elif v is _ABSENT:
            if d.default is None:
                out.add(("request", field))
        elif not isinstance(v, str) or v not in d.values:
            out.add(("request", field))
    for a in policy.vocabulary.attributes.values():
        v = _walk(request, a.path)
        if v is not _ABSENT and not _is_type(a.type, v):
            out.add(("request", ".".join(a.path)))
    return out


def reference_activation(policy: PolicySet, request: dict[str, Any]) -> dict[str, Any]:
    """The request with every absent declared attribute set to its default (on a copy)."""
    act = copy.deepcopy(request)
    for a in policy.vocabulary.attributes.values():
        if not a.has_default or _walk(act, a.path) is not _ABSENT:
            continue
        cur = act
        for k in a.path[:-1]:
            if k not in cur:
                cur[k] = {}
            if not isinstance(cur[k], dict):
                break  # a non-object on the way: nothing can be filled in under it
            cur = cur[k]
        else:
            cur[a.path[-1]] = copy.deepcopy(a.default)
    return act


def reference_full(policy: PolicySet, request: Any, signals: dict[str, Any] | None = None) -> dict[str, Any]:
    """The decision for any request, in `engine_view` shape (`errors`: the rules whose
    condition failed) plus `request_errors`: the (kind, field) pairs that make it invalid.

    With `signals` (what a detector returned), conditions see them at `signals`, and the
    detected `pii` classes the data-class dimension declares join the request's data classes
    for matching and implicit redaction (not the `data_classes` field conditions read).
    """
    if isinstance(request, dict) and signals is not None:
        request = {**request, "signals": signals}
    errors = reference_errors(policy, request)
    if errors:
        return {
            "effect": "escalate",
            "rules": [],
            "redact": {},
            "escalate_to": [],
            "errors": [],
            "default_applied": False,
            "request_errors": errors,
        }
    matching = request
    data = policy.vocabulary.data_dimension
    if signals is not None and data is not None:
        have = list(_walk(request, data.path) if _walk(request, data.path) is not _ABSENT else [])
        extra = [c for c in signals.get("pii", ()) if c in data.values]
        matching = {**request, data.path[0]: list(dict.fromkeys([*have, *extra]))}
    out = reference_decide(policy, matching, reference_activation(policy, request))
    out["request_errors"] = set()
    return out
