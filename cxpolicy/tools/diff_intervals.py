"""Conditions over the same field, reasoned about together: which diff regions can happen,
and the change in the author's terms ("for 50,000 < context.amount ≤ 100,000").

Input: a diff `Region` (tools/analysis.py), whose condition variables are unknowns, each
assignment of them an outcome pair. Output: the assignments some request can realise
(`feasible`), and, where every variable compares one field with a literal, the condition
of a set of assignments as intervals or value sets (`interval_text`).

Why: the region engine treats `context.amount > 50000` and `context.amount > 100000` as two
unrelated unknowns, so a threshold change printed four combinations, two of them impossible
(`unless amount > 50000 … and if amount > 100000`). A condition that is one comparison of a
field with a literal (`f > 5`, `5 <= f`, `f == "x"`, `f != "x"`, `f in ["a", "b"]`) is an
atom: numbers as intervals over the reals (CEL compares int and double by value), strings,
bools and numbers by equality as sets. Pruning is sound: an assignment is dropped only when
no value of the field satisfies every atom as assigned. Order comparisons with a number
either all evaluate or all fail on one field (a field that is not a number fails them all);
an equality fails only when the field is missing, and then every atom on it fails.
Anything else (several conditions in one variable, `&&`, functions) stays an unknown.
tests/tools/test_analysis.py's brute-force check decides concrete requests against the result.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cxpolicy.cel import syntax as cel
from cxpolicy.cel.errors import CelSyntaxError
from cxpolicy.tools.analysis import ERROR, TRUE, Region

__all__ = ["Atom", "atom_of", "feasible", "interval_text"]

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_NEGATE = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}
_ORDER = frozenset({"<", "<=", ">", ">="})
_Value = tuple[str, Any]  # (type tag, value): 1 and true and 1.0 and "1" kept apart where CEL does


@dataclass(frozen=True)
class Atom:
    """`field op value` (op: < <= > >= == !=), or `field in values` (op "in")."""

    field: str
    op: str
    values: tuple[_Value, ...]

    @property
    def ordered(self) -> bool:
        return self.op in _ORDER


def _value(lit: Any) -> _Value | None:
    v = lit.value
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, int | float):
        return ("num", float(v)) if math.isfinite(v) else None
    if isinstance(v, str):
        return ("str", v)
    return None


@functools.lru_cache(maxsize=4096)
def atom_of(text: str) -> Atom | None:
    """The atom a condition text is, or None."""
    try:
        _, node = cel.parse(text)
    except CelSyntaxError:
        return None
    if not isinstance(node, cel.Binary):
        return None
    if node.op in _FLIP:
        for field, lit, op in ((node.left, node.right, node.op), (node.right, node.left, _FLIP[node.op])):
            path = cel.field_path(field)
            if path is None or path[0].bound or not isinstance(lit, cel.Lit):
                continue
            v = _value(lit)
            if v is None or (op in _ORDER and v[0] != "num"):
                return None
            return Atom(".".join((path[0].name, *path[1])), op, (v,))
        return None
    if node.op == "in" and isinstance(node.right, cel.ListLit):
        path = cel.field_path(node.left)
        values = [_value(i) if isinstance(i, cel.Lit) else None for i in node.right.items]
        if path is None or path[0].bound or any(v is None for v in values):
            return None
        return Atom(".".join((path[0].name, *path[1])), "in", tuple(v for v in values if v is not None))
    return None


def _atoms(region: Region) -> list[Atom | None]:
    """Per variable of the region: its atom, when it is one condition that is one."""
    out: list[Atom | None] = []
    for key in region.variables:
        conds = key[0]
        out.append(atom_of(conds[0][1]) if len(conds) == 1 else None)
    return out


def _holds(region: Region, i: int, state: int) -> bool:
    """Whether variable i's expression is true in `state` (TRUE means it lets its rule match)."""
    kind = region.variables[i][0][0][0]
    return (state == TRUE) if kind == "when" else (state != TRUE)


@dataclass
class _Field:
    """What the assigned atoms say of one field."""

    lo: float = -math.inf
    lo_in: bool = False
    hi: float = math.inf
    hi_in: bool = False
    allowed: frozenset[_Value] | None = None  # it is one of these (None: no such claim)
    excluded: frozenset[_Value] = frozenset()
    numeric: bool = False  # an order comparison evaluated: the field is a number
    erred: bool = False  # an order comparison failed: the field is not a number
    other_type: bool = False  # an equality with a non-number held
    num_equal: bool = False  # an equality with a number held: the field is a number
    absent: bool = False  # an equality failed: only a missing field does that, and then all fail
    evaluated: bool = False  # some atom on the field did not fail

    def add(self, a: Atom, truth: bool) -> None:
        self.evaluated = True
        op = a.op if truth else _NEGATE.get(a.op, a.op)
        if a.op == "in":
            vals = frozenset(a.values)
            if truth:
                self.allowed = vals if self.allowed is None else self.allowed & vals
                self.other_type |= all(v[0] != "num" for v in vals)
                self.num_equal |= all(v[0] == "num" for v in vals)
            else:
                self.excluded |= vals
            return
        (v,) = a.values
        if op in _ORDER:
            self.numeric = True
            x = float(v[1])
            if op in (">", ">=") and (x > self.lo or (x == self.lo and op == ">")):
                self.lo, self.lo_in = x, op == ">="
            if op in ("<", "<=") and (x < self.hi or (x == self.hi and op == "<")):
                self.hi, self.hi_in = x, op == "<="
        elif op == "==":
            self.allowed = frozenset({v}) if self.allowed is None else self.allowed & {v}
            self.other_type |= v[0] != "num"
            self.num_equal |= v[0] == "num"
        else:
            self.excluded |= {v}

    def possible(self) -> bool:
        if self.absent and self.evaluated:
            return False
        if (self.numeric or self.num_equal) and (self.erred or self.other_type):
            return False
        if self.lo > self.hi or (self.lo == self.hi and not (self.lo_in and self.hi_in)):
            return False
        if self.allowed is not None:
            left = [v for v in self.allowed if v not in self.excluded]
            if self.numeric:
                left = [v for v in left if v[0] == "num" and self._inside(float(v[1]))]
            return bool(left)
        return not (self.lo == self.hi and ("num", self.lo) in self.excluded)

    def _inside(self, x: float) -> bool:
        above = x > self.lo or (x == self.lo and self.lo_in)
        below = x < self.hi or (x == self.hi and self.hi_in)
        return above and below


_MAX_BRANCHES = 1024  # beyond this many readings of an assignment, call it feasible


def _readings(region: Region, atoms: Sequence[Atom | None], assignment: Sequence[int]) -> list[list[int]]:
    """Per atom variable, the states its assigned state may stand for. A variable whose
    domain has no ERROR folds an evaluation error into its `on_error` state, so that state
    reads as "the expression gave it, or the expression failed"."""
    out: list[list[int]] = []
    for i, (a, state) in enumerate(zip(atoms, assignment, strict=True)):
        if a is None:
            out.append([state])
        elif ERROR not in region.domains[i] and state == region.on_error[i]:
            out.append([state, ERROR])
        else:
            out.append([state])
    return out


def _fields(region: Region, atoms: Sequence[Atom | None], states: Sequence[int]) -> dict[str, _Field]:
    fields: dict[str, _Field] = {}
    for i, (a, state) in enumerate(zip(atoms, states, strict=True)):
        if a is None:
            continue
        f = fields.setdefault(a.field, _Field())
        if state == ERROR:
            if a.ordered:
                f.erred = True
            else:
                f.absent = True
            continue
        f.add(a, _holds(region, i, state))
    return fields


def _possible(region: Region, atoms: Sequence[Atom | None], assignment: Sequence[int]) -> bool:
    readings = _readings(region, atoms, assignment)
    branches = 1
    for r in readings:
        branches *= len(r)
    if branches > _MAX_BRANCHES:
        return True
    return any(
        all(f.possible() for f in _fields(region, atoms, states).values()) for states in itertools.product(*readings)
    )


def feasible(region: Region) -> list[tuple[int, ...]]:
    """The region's assignments that some value of each field realises, in region order."""
    atoms = _atoms(region)
    if not any(atoms):
        return list(region.outcomes)
    return [a for a in region.outcomes if _possible(region, atoms, a)]


def interval_text(
    region: Region,
    assignments: Sequence[tuple[int, ...]],
    describe: Callable[[int, int], str] | None = None,
    tag: Callable[[Sequence[int]], str] | None = None,
) -> str | None:
    """The condition under which `assignments` happen, as an interval of one field when two
    or more of the region's conditions order that field against numbers:
    `50,000 < context.amount ≤ 100,000` (pieces joined by "or"), followed by the other
    conditions' states (`describe(variable index, state)`) when each is the same in every
    assignment; `tag(variable indices)` follows the interval (the rules it comes from).
    None when that does not describe them exactly, or a reading may be an error."""
    atoms = _atoms(region)
    on_field: dict[str, list[int]] = {}
    for i, a in enumerate(atoms):
        if a is not None and a.ordered:
            on_field.setdefault(a.field, []).append(i)
    fields = [f for f, ix in on_field.items() if len(ix) >= 2]
    if len(fields) != 1 or not assignments:
        return None  # one condition reads best as written: `if context.amount > 500`
    (name,) = fields
    mine = set(on_field[name])
    others = [i for i in range(len(atoms)) if i not in mine]
    if any(a is not None and a.field == name for i, a in enumerate(atoms) if i in others):
        return None  # an equality on the same field: leave it to the generic text
    if others and (describe is None or any(len({a[i] for a in assignments}) != 1 for i in others)):
        return None
    only = [a if i in mine else None for i, a in enumerate(atoms)]
    pieces: list[tuple[float, bool, float, bool]] = []
    for assignment in assignments:
        for states in itertools.product(*_readings(region, only, assignment)):
            found = _fields(region, only, states)
            if not all(f.possible() for f in found.values()):
                continue  # a reading no request realises
            if any(states[i] == ERROR for i in mine):  # a failed evaluation is no interval
                return None
            g = found[name]
            pieces.append((g.lo, g.lo_in, g.hi, g.hi_in))
    if not pieces:
        return None
    pieces.sort(key=lambda p: (p[0], not p[1]))
    merged = [pieces[0]]
    for lo, lo_in, hi, hi_in in pieces[1:]:
        plo, plo_in, phi, phi_in = merged[-1]
        if lo < phi or (lo == phi and (lo_in or phi_in)):  # touching or overlapping
            if hi > phi or (hi == phi and hi_in):
                merged[-1] = (plo, plo_in, hi, hi_in)
        else:
            merged.append((lo, lo_in, hi, hi_in))
    text = " or ".join(_piece(name, *p) for p in merged) + (tag(sorted(mine)) if tag is not None else "")
    if describe is not None:
        text = " and ".join([text, *(describe(i, assignments[0][i]) for i in others)])
    return text


def _num(x: float) -> str:
    return f"{int(x):,}" if x == int(x) else f"{x:,}"


def _piece(name: str, lo: float, lo_in: bool, hi: float, hi_in: bool) -> str:
    if lo == -math.inf and hi == math.inf:
        return f"any {name}"
    if lo == hi:
        return f"{name} = {_num(lo)}"
    if lo == -math.inf:
        return f"{name} {'≤' if hi_in else '<'} {_num(hi)}"
    if hi == math.inf:
        return f"{name} {'≥' if lo_in else '>'} {_num(lo)}"
    return f"{_num(lo)} {'≤' if lo_in else '<'} {name} {'≤' if hi_in else '<'} {_num(hi)}"


_WORDS = {">": "above", ">=": "at least", "<": "below", "<=": "at most", "==": "equal to", "!=": "other than"}


def threshold_changes(old: Any, new: Any, modified: Iterable[str]) -> list[str]:
    """For each modified rule whose only change is the number in same-field comparisons,
    one line: `claims.big_payouts: when context.amount above 50,000 → above 100,000`.

    `old`/`new` are `PolicySet`s; a rule with any other change (constraints, outcome,
    another condition) is left to the region report."""
    out: list[str] = []
    for rid in modified:
        a, b = old.rule(rid), new.rule(rid)
        if a is None or b is None or _outcome(a) != _outcome(b) or len(a.conditions) != len(b.conditions):
            continue
        parts: list[str] = []
        for ca, cb in zip(a.conditions, b.conditions, strict=True):
            if ca.text == cb.text:
                continue
            x, y = atom_of(ca.text), atom_of(cb.text)
            if ca.kind != cb.kind or x is None or y is None or (x.field, x.op) != (y.field, y.op) or x.op == "in":
                parts = []
                break
            if x.values[0][0] != "num" or y.values[0][0] != "num":
                parts = []
                break
            word = _WORDS[x.op]
            parts.append(f"{ca.kind} {x.field} {word} {_num(x.values[0][1])} → {word} {_num(y.values[0][1])}")
        if parts:
            out.append(f"{rid}: " + "; ".join(parts))
    return out


def _outcome(r: Any) -> tuple[Any, ...]:
    constraints = tuple(sorted((c.dimension.name, c.op, c.values) for c in r.checked.constraints))
    return (constraints, [c.kind for c in r.conditions], r.effect, r.queue, r.redact_classes, r.style)
