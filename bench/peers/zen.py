"""The workload as a GoRules decision table (JDM), evaluated with zen-engine (Rust).

One graph: input node → decision table → output node. The table has one input column per
request field that some rule reads (`action`, `channel`, `actor.kind`, `customer.risk_tier`,
`customer.segment`, `customer.region`, `data_classes`, and for conditions `context.amount`,
`context.otp_verified`, `actor.roles`) and two output columns: `sev` (the effect's severity) and
`rule` (the rule's index). One row per rule; an empty cell matches anything.

Cells are zen unary tests: `"chat"` (equals), `"chat", "email"` (one of), `$ != "chat"`,
`not($ in [...])`, `$ in ["high", "critical"]` for an ordered comparison (the values it admits),
`contains($, "card_pan")`, `some($, # in [...])`, `none($, # in [...])` on the data-class list,
and `$ > 500`, `$ == false`, `contains($, "tier2")` for conditions (an `unless` is negated with
`not(...)`; two tests on one field are joined with `and`).

Two hit policies:
- `first`: rows sorted strictest effect first (then in rule order), so the first row that hits
  carries the decision's effect. The answer is one row; it cannot list every matched rule.
- `collect`: every row that hits is returned; the effect is the highest `sev` among them (a
  `max` in Python, per decision) and the rows are the matched rules, as cxpolicy reports them.
No row hit means the policy set's default. The request has the same shape cxpolicy gets (zen
reads nested fields by dotted path); it is serialised to a JSON string once, before timing
(zen's cheapest input, slightly faster than a dict). Loading builds a `ZenDecisionContent`
(which parses and compiles the table once) served by a `ZenEngine` loader: measured on this
machine that path is ~10x faster per call than `ZenDecision.evaluate`, so the peer gets it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import zen

from bench.workload import DIMENSIONS, EFFECTS, Condition, Constraint, Rule, Workload

__all__ = ["ZenAdapter", "to_jdm"]

_CONDITION_FIELDS = {"amount": "context.amount", "otp_verified": "context.otp_verified",
                     "roles": "actor.roles"}


def _q(v: str) -> str:
    return json.dumps(v)


def _constraint_cell(c: Constraint) -> str:
    d = next(d for d in DIMENSIONS if d.name == c.dimension)
    vals = ", ".join(_q(v) for v in c.values)
    if d.kind == "set":
        return {
            "=": f"contains($, {_q(c.values[0])})",
            "!=": f"not(contains($, {_q(c.values[0])}))",
            "in": f"some($, # in [{vals}])",
            "not in": f"none($, # in [{vals}])",
        }[c.op]
    if c.op == "=":
        return _q(c.values[0])
    if c.op == "in":
        return vals
    if c.op == "!=":
        return f"$ != {_q(c.values[0])}"
    if c.op == "not in":
        return f"not($ in [{vals}])"
    admitted = [v for v in d.values if v in c.allowed()]  # ordered comparison
    return f"$ in [{', '.join(_q(v) for v in admitted)}]"


def _condition_test(c: Condition) -> str:
    if c.field == "amount":
        test = f"$ {c.test} {c.value}"
    elif c.field == "otp_verified":
        test = f"$ == {'true' if c.value else 'false'}"
    else:
        test = f"contains($, {_q(str(c.value))})"
    return f"not({test})" if c.kind == "unless" else test


def _row(r: Rule, columns: dict[str, str]) -> dict[str, str]:
    row = {"_id": r.name, "sev": str(r.severity), "rule": str(r.index)}
    cells: dict[str, list[str]] = {}
    for c in r.constraints:
        cells.setdefault(columns[c.dimension], []).append(_constraint_cell(c))
    for cond in r.conditions:
        cells.setdefault(columns[cond.field], []).append(_condition_test(cond))
    for col_id in columns.values():
        tests = cells.get(col_id, [])
        row[col_id] = tests[0] if len(tests) == 1 else " and ".join(f"({t})" for t in tests)
    return row


def to_jdm(workload: Workload, hit_policy: str) -> dict[str, Any]:
    """The JDM graph; `hit_policy` is `first` (rows strictest first) or `collect`."""
    used_dims = {c.dimension for r in workload.rules for c in r.constraints}
    used_fields = {c.field for r in workload.rules for c in r.conditions}
    columns: dict[str, str] = {}
    inputs = []
    for d in DIMENSIONS:
        if d.name in used_dims:
            columns[d.name] = f"in_{d.name}"
            inputs.append({"id": f"in_{d.name}", "name": d.name, "field": d.path_text})
    for f, path in _CONDITION_FIELDS.items():
        if f in used_fields:
            columns[f] = f"in_{f}"
            inputs.append({"id": f"in_{f}", "name": f, "field": path})
    rules = list(workload.rules)
    if hit_policy == "first":
        rules.sort(key=lambda r: (-r.severity, r.index))
    table = {
        "hitPolicy": hit_policy,
        "inputs": inputs,
        "outputs": [
            {"id": "sev", "name": "severity", "field": "sev"},
            {"id": "rule", "name": "rule", "field": "rule"},
        ],
        "rules": [_row(r, columns) for r in rules],
    }
    return {
        "nodes": [
            {"id": "request", "type": "inputNode", "name": "request", "position": {"x": 0, "y": 0}},
            {"id": "rules", "type": "decisionTableNode", "name": "rules",
             "position": {"x": 300, "y": 0}, "content": table},
            {"id": "decision", "type": "outputNode", "name": "decision",
             "position": {"x": 600, "y": 0}},
        ],
        "edges": [
            {"id": "e1", "sourceId": "request", "targetId": "rules", "type": "edge"},
            {"id": "e2", "sourceId": "rules", "targetId": "decision", "type": "edge"},
        ],
    }


class _Loaded:
    __slots__ = ("decision", "default", "engine", "key")

    def __init__(self, engine: Any, decision: Any, key: str, default: str):
        self.engine = engine
        self.decision = decision
        self.key = key
        self.default = default


class ZenAdapter:
    native = True

    def __init__(self, hit_policy: str):
        assert hit_policy in ("first", "collect")
        self.hit_policy = hit_policy
        self.name = f"zen-{hit_policy}"

    def source(self, workload: Workload) -> tuple[str, str]:
        return json.dumps(to_jdm(workload, self.hit_policy)), workload.default

    def load(self, source: tuple[str, str]) -> _Loaded:
        text, default = source
        content = zen.ZenDecisionContent(text)  # parsed and compiled once, here
        engine = zen.ZenEngine({"loader": lambda key: content})
        engine.evaluate("bench", {})  # the engine caches the decision on first use
        return _Loaded(engine, content, "bench", default)

    def prepare(self, request: dict[str, Any]) -> str:
        return json.dumps(request)

    def decider(self, h: _Loaded) -> Callable[[Any], str]:
        evaluate = h.engine.evaluate
        key = h.key
        default = h.default
        if self.hit_policy == "first":

            def first(req: Any) -> str:
                hit = evaluate(key, req)["result"]
                return EFFECTS[hit["sev"]] if hit else default

            return first

        def collect(req: Any) -> str:
            rows = evaluate(key, req)["result"]
            return EFFECTS[max(r["sev"] for r in rows)] if rows else default

        return collect

    def batch(self, h: _Loaded) -> Callable[[Sequence[Any]], list[str]]:
        one = self.decider(h)

        def run(reqs: Sequence[Any]) -> list[str]:
            return [one(r) for r in reqs]

        return run

    def explain(self, h: _Loaded, prepared: Any) -> tuple[str, frozenset[int] | None]:
        result = h.engine.evaluate(h.key, prepared)["result"]
        rows = result if isinstance(result, list) else ([result] if result else [])
        effect = EFFECTS[max(r["sev"] for r in rows)] if rows else h.default
        if self.hit_policy == "first":
            return effect, None
        return effect, frozenset(int(r["rule"]) for r in rows)
