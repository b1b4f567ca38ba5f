"""Evaluation: what the engine sees of a request, and the verdict of one rule on it.

Input: a (valid) request, the vocabulary it is read against and, when the detectors ran, the
signals they found; a `CompiledRule`. Output: a `Seen` (the request as the constraints read it,
detected data classes included, and the activation the conditions read, attribute defaults
filled in) and a `RuleVerdict` (every constraint and condition with the value it took, whether
the rule matches, and the condition error the fail-safe decided on).

Why one module: `decide`, `explain`, `test`, `coverage` and `diff` all need these two answers,
and LANGUAGE.md §5 (a failed condition makes a rule stricter than `allow` match and an `allow`
rule not match) must mean the same thing in all of them. `PolicySet.decide` keeps an inlined
fast form of `seen` (its index already holds the validated set values) and runs
`condition_verdict`, which stops at the first decisive condition; `tests/engine/
test_evaluation.py` holds both equal to `rule_verdict`, which evaluates everything.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cxpolicy.cel import CelEvalError
from cxpolicy.engine.compiler import CompiledRule
from cxpolicy.kinds import ConditionKind, Op
from cxpolicy.lang.checker import CheckedCondition, CheckedConstraint
from cxpolicy.lang.vocabulary import AttributeDef, DimensionDef, Vocabulary

__all__ = [
    "MISSING",
    "ConditionResult",
    "ConstraintResult",
    "RuleVerdict",
    "Seen",
    "activation",
    "condition_verdict",
    "constraint_holds",
    "dimension_value",
    "evaluate_condition",
    "lookup",
    "rule_verdict",
    "seen",
    "short",
    "with_defaults",
]

MISSING: Any = type("_Missing", (), {"__repr__": lambda self: "MISSING", "__slots__": ()})()


# ------------------------------------------------------------------------- reading a request
def lookup(request: Any, path: Sequence[str]) -> Any:
    """The value at a dotted path of a JSON object, or `MISSING` (never raises)."""
    cur: Any = request
    for k in path:
        if type(cur) is not dict:
            return MISSING
        cur = cur.get(k, MISSING)
        if cur is MISSING:
            return MISSING
    return cur


def dimension_value(request: Mapping[str, Any], dim: DimensionDef) -> Any:
    """The value a (valid) request holds for a dimension: an absent set is empty, an absent
    plain dimension takes its declared default (None when it has none)."""
    v = lookup(request, dim.path)
    if v is MISSING:
        return [] if dim.is_set else dim.default
    return v


def with_defaults(request: dict[str, Any], attrs: Sequence[AttributeDef]) -> dict[str, Any]:
    """The request with the defaults of `attrs` filled in where absent, never mutating the
    caller's: only the objects on the path to a filled-in default are copied (the hot path
    calls this), and a default is skipped where the path runs through a non-object."""
    root: dict[str, Any] | None = None
    copied: set[int] = set()
    for a in attrs:
        if not a.has_default or lookup(request if root is None else root, a.path) is not MISSING:
            continue
        if root is None:
            root = dict(request)
            copied.add(id(root))
        cur = root
        ok = True
        for k in a.path[:-1]:
            nxt = cur.get(k, MISSING)
            if nxt is MISSING:
                nxt = {}
                copied.add(id(nxt))
            elif type(nxt) is not dict:
                ok = False
                break
            elif id(nxt) not in copied:
                nxt = dict(nxt)
                copied.add(id(nxt))
            cur[k] = nxt
            cur = nxt
        if ok:
            cur[a.path[-1]] = copy.deepcopy(a.default) if isinstance(a.default, list | dict) else a.default
    return root if root is not None else request


def activation(vocabulary: Vocabulary, request: dict[str, Any]) -> dict[str, Any]:
    """What conditions read: the request with every attribute default filled in."""
    return with_defaults(request, tuple(vocabulary.attributes.values()))


@dataclass(frozen=True, slots=True)
class Seen:
    """A request as the engine saw it.

    `request` is what constraints read: with the detectors on, it carries `signals` and its
    data-class dimension also holds the classes detected in the payload (those the vocabulary
    declares, after the request's own). `activation` is what conditions read: the request
    with `signals` (but only its own data classes) and attribute defaults filled in.
    """

    request: Mapping[str, Any]
    activation: Mapping[str, Any]


def seen(vocabulary: Vocabulary, request: dict[str, Any], signals: Mapping[str, Any] | None = None) -> Seen:
    """The `Seen` of a valid request; `signals` is what the detectors returned, if they ran."""
    if not signals:
        return Seen(request, activation(vocabulary, request))
    with_signals = {**request, "signals": signals}
    data = vocabulary.data_dimension
    detected = [c for c in signals.get("pii", ()) if data is not None and type(c) is str and c in data.values]
    constraints_read = with_signals
    if data is not None and detected:
        constraints_read = copy.deepcopy(with_signals)
        cur = constraints_read
        for k in data.path[:-1]:
            cur = cur.setdefault(k, {})
        present = list(cur.get(data.path[-1]) or [])
        cur[data.path[-1]] = [*present, *dict.fromkeys(c for c in detected if c not in present)]
    return Seen(constraints_read, activation(vocabulary, with_signals))


# ------------------------------------------------------------------------- one rule's verdict
def constraint_holds(c: CheckedConstraint, value: Any) -> bool:
    """One constraint against the request's (validated) value; the index must agree with it."""
    if c.dimension.is_set:
        present = set(value or ())
        if c.op == Op.EQ:
            return c.values[0] in present
        if c.op == Op.NE:
            return c.values[0] not in present
        hit = not present.isdisjoint(c.values)
        return hit if c.op == Op.IN else not hit
    return value in c.allowed()


def condition_verdict(rule: CompiledRule, activation: Mapping[str, Any]) -> tuple[bool, str | None]:
    """Whether a candidate rule's conditions let it match — the fail-safe of LANGUAGE.md §5.

    All `when` must be true and every `unless` false. One false `when` (or true `unless`)
    decides "no match" even when another condition errs (CEL's commutative `&&`). Otherwise an
    error (or a non-bool result) makes a rule stricter than `allow` match and an `allow` rule
    not match, so a broken condition can only make the decision more cautious. This is the
    fast form: it stops at the first decisive condition.
    """
    error: str | None = None
    for exprs, kind, wanted in ((rule.whens, "when", True), (rule.unlesses, "unless", False)):
        for expr in exprs:
            try:
                v = expr(activation)
            except CelEvalError as exc:
                error = error or f"`{kind} {expr.text}`: {exc}"
                continue
            if v is wanted:
                continue
            if v is (not wanted):
                return False, None
            error = error or f"`{kind} {expr.text}` gave {short(v)}, not a bool"
    if error is not None:
        return rule.severity > 0, error
    return True, None


@dataclass(frozen=True, slots=True)
class ConstraintResult:
    """One constraint and the value the request held for its dimension."""

    constraint: CheckedConstraint
    value: Any
    holds: bool

    @property
    def seen(self) -> str:
        """`customer.risk_tier = high`, `data.classes = [pan, cvv]`."""
        v = self.value
        shown = f"[{', '.join(map(str, v))}]" if isinstance(v, list) else str(v)
        return f"{self.constraint.dimension.path_text} = {shown}"


@dataclass(frozen=True, slots=True)
class ConditionResult:
    """One `when`/`unless` and what it evaluated to: a bool, a `CelEvalError`, or another value."""

    condition: CheckedCondition
    result: Any
    rendered: str  # the expression with the values it read substituted

    @property
    def value(self) -> bool | None:
        """The condition's value; None when it failed (an error or a non-bool)."""
        return self.result if isinstance(self.result, bool) else None

    @property
    def error(self) -> str | None:
        """What went wrong: the evaluation error, or `gave 3, not a bool`; None for a bool."""
        if isinstance(self.result, bool):
            return None
        return str(self.result) if isinstance(self.result, CelEvalError) else f"gave {short(self.result)}, not a bool"

    @property
    def decisive(self) -> bool:
        """A value that rules the match out: a false `when` or a true `unless`."""
        return isinstance(self.result, bool) and self.result != (self.condition.kind == ConditionKind.WHEN)

    def holds(self, rule: CompiledRule) -> bool:
        """Whether it lets the rule match; an error does so only for a stricter-than-allow rule."""
        if not isinstance(self.result, bool):
            return rule.severity > 0
        return not self.decisive

    @property
    def message(self) -> str:
        """The error as `condition_verdict` reports it: the condition, then what went wrong."""
        c = self.condition
        sep = ":" if isinstance(self.result, CelEvalError) else ""
        return f"`{c.kind} {c.text}`{sep} {self.error}"


@dataclass(frozen=True, slots=True)
class RuleVerdict:
    """The verdict of one rule on one request: every constraint and condition, evaluated."""

    rule: CompiledRule
    constraints: tuple[ConstraintResult, ...]
    conditions: tuple[ConditionResult, ...]

    @property
    def constraints_hold(self) -> bool:
        return all(c.holds for c in self.constraints)

    @property
    def conditions_verdict(self) -> tuple[bool, str | None]:
        """What `condition_verdict` answers, derived from every condition's value."""
        if any(c.decisive for c in self.conditions):
            return False, None
        # `condition_verdict` reports the first error of the `when`s, then of the `unless`es.
        for kind in (ConditionKind.WHEN, ConditionKind.UNLESS):
            for c in self.conditions:
                if c.condition.kind == kind and not isinstance(c.result, bool):
                    return self.rule.severity > 0, c.message
        return True, None

    @property
    def matched(self) -> bool:
        """Whether the engine matches the rule (its constraints hold and §5 lets it)."""
        return self.constraints_hold and self.conditions_verdict[0]

    @property
    def error(self) -> str | None:
        """The condition error the engine reports for this rule, if it is a candidate."""
        return self.conditions_verdict[1] if self.constraints_hold else None


def evaluate_condition(c: CheckedCondition, activation: Mapping[str, Any]) -> ConditionResult:
    """One condition on the activation (never raises: a failure is in the result)."""
    return ConditionResult(c, c.expression.evaluate(activation), c.expression.render(activation))


def rule_verdict(
    rule: CompiledRule, seen: Seen, *, set_values: Mapping[str, list[str]] | None = None
) -> RuleVerdict:
    """Every constraint and condition of `rule` on the request, run or not.

    `set_values` (dimension name → the values the engine validated) lets the trace read set
    dimensions from what the index saw instead of from the request again; they are the same.
    """
    constraints: list[ConstraintResult] = []
    for c in rule.checked.constraints:
        if set_values is not None and c.dimension.name in set_values:
            value: Any = set_values[c.dimension.name]
        else:
            value = dimension_value(seen.request, c.dimension)
        constraints.append(ConstraintResult(c, value, constraint_holds(c, value)))
    conditions = tuple(evaluate_condition(cc, seen.activation) for cc in rule.conditions)
    return RuleVerdict(rule, tuple(constraints), conditions)


def short(v: Any) -> str:
    """A value's repr cut to 40 characters, for messages."""
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."
