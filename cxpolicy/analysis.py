"""Analysis: the decision table of two policy revisions, as regions of the dimension space.

Input: two `PolicySet`s, OLD and NEW (the same one twice gives a plain decision table).
Output: `Region`s that partition every combination of dimension values exactly, each with the
outcome (effect, redact set, escalation queues) each revision gives there; `diff()` keeps the
regions whose outcome changes, merged into as few boxes as it can, for `cxpolicy diff`.

Why regions and not sampling: the vocabulary is finite and declared, so "what does this
change change?" has an exact answer, and a reviewer wants all of it. Why not the plain cross
product: the core vocabulary alone has billions of combinations. So the space is refined
lazily, like a decision diagram: start from one region covering everything and split it on
one dimension at a time, only while a rule that could still change the outcome is undecided
there. A plain dimension splits into classes of values that no such rule tells apart; a set
dimension splits on one value's presence. Two prunings keep the tree small:

- a rule that cannot change a region's outcome (an `allow` where an unconditional `escalate`
  already holds) is no reason to split it;
- where both revisions hold the same rules (compared by meaning, not by id) and agree on
  validity, the outcome is the same in both, and the region is not split at all.

Conditions (`when`/`unless`) are not analysed: each distinct condition list is a free variable,
shared by both revisions when its text (and the attribute defaults it reads) is unchanged. It
is true, false, or — where an `allow` rule and a stricter rule share it — "fails to evaluate"
(LANGUAGE.md §5: the stricter rule then matches and the `allow` does not). A region's outcome
is computed for every assignment, so a change that happens only when a condition goes one way
is reported as depending on it.

Limits: requests are assumed to carry every dimension; logically related conditions (`x` and
`!x`) count as independent; dimensions are matched between revisions by name.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cxpolicy.checker import CheckedConstraint
from cxpolicy.compiler import CompiledRule
from cxpolicy.decision import Decision
from cxpolicy.effects import EFFECT_BY_SEVERITY, Effect, Style
from cxpolicy.engine import PolicySet, condition_verdict
from cxpolicy.vocabulary import DimensionDef

__all__ = [
    "Axis",
    "Cell",
    "Cells",
    "Outcome",
    "Region",
    "SideRule",
    "Space",
    "activation",
    "assignment_for",
    "dimension_value",
    "outcome_of",
    "partition",
]

MAX_ASSIGNMENTS = 1024
_F, _T, _U = 0, 1, 2
FALSE, TRUE, ERROR = 0, 1, 2  # the states of a condition variable


# ------------------------------------------------------------------------- request helpers
def dimension_value(request: Mapping[str, Any], dim: DimensionDef) -> Any:
    """The value a (valid) request holds for a dimension, defaults applied as the engine does."""
    cur: Any = request
    for k in dim.path:
        if not isinstance(cur, dict) or k not in cur:
            return [] if dim.is_set else dim.default
        cur = cur[k]
    return cur


def activation(policy: PolicySet, request: Mapping[str, Any]) -> dict[str, Any]:
    """The request with attribute defaults filled in — what conditions see (a deep copy)."""
    out: dict[str, Any] = copy.deepcopy(dict(request))
    for a in policy.vocabulary.attributes.values():
        if not a.has_default:
            continue
        cur = out
        for k in a.path[:-1]:
            nxt = cur.setdefault(k, {})
            if not isinstance(nxt, dict):
                break
            cur = nxt
        else:
            cur.setdefault(a.path[-1], copy.deepcopy(a.default))
    return out


# ------------------------------------------------------------------------------- outcomes
@dataclass(frozen=True)
class Outcome:
    """What a decision obliges the caller to do: the part a diff compares."""

    effect: Effect
    redact: frozenset[tuple[str, Style]] = frozenset()
    queues: frozenset[str] = frozenset()
    invalid: bool = False
    default: bool = field(default=False, compare=False)

    def text(self) -> str:
        out = self.effect.value
        if self.queues:
            out += " to " + ", ".join(sorted(self.queues))
        out += " (invalid request)" if self.invalid else " (default)" if self.default else ""
        if self.redact:
            masks = ", ".join(f"{c}:{s.value}" for c, s in sorted(self.redact))
            out += f" [{masks}]" if self.effect is Effect.REDACT else f" [redact {masks}]"
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "effect": self.effect.value,
            "redact": {c: s.value for c, s in sorted(self.redact)},
            "escalate_to": sorted(self.queues),
            "invalid": self.invalid,
        }

    def looser_than(self, other: Outcome) -> bool:
        """Less strict: a lower effect, or a data class masked less (or no longer masked)."""
        if self.effect.severity < other.effect.severity:
            return True
        mine = dict(self.redact)
        return any(c not in mine or mine[c].strictness < s.strictness for c, s in other.redact)


def outcome_of(d: Decision) -> Outcome:
    return Outcome(
        d.effect,
        frozenset((r.data_class, r.style) for r in d.redact),
        frozenset(d.escalate_to),
        any(e.kind == "request" for e in d.errors),
        d.default_applied,
    )


# ---------------------------------------------------------------------------------- space
@dataclass(frozen=True)
class Axis:
    """One dimension of the union vocabulary of both revisions."""

    name: str
    path: tuple[str, ...]
    kind: str
    values: tuple[str, ...]
    valid: tuple[frozenset[str], frozenset[str]]  # per revision; every value if it lacks the axis
    named: frozenset[str] = frozenset()  # set axis: values a rule names or one revision lacks

    @property
    def is_set(self) -> bool:
        return self.kind == "set"


@dataclass(frozen=True, slots=True)
class Cell:
    """A region's extent on one axis: a class of values or, on a set axis, the values known
    present (`values`) and known absent (`absent`); any other value may be either."""

    values: frozenset[str]
    absent: frozenset[str] = frozenset()


Cells = tuple[Cell, ...]


@dataclass(frozen=True)
class SideRule:
    rule: CompiledRule
    checks: tuple[tuple[int, CheckedConstraint, frozenset[str]], ...]  # axis, constraint, allowed
    fingerprint: tuple[Any, ...]  # the rule's meaning, without its id
    cond_key: tuple[Any, ...] | None  # its condition list, as a free variable

    @property
    def id(self) -> str:
        return self.rule.id


@dataclass
class Region:
    """A box of the space on which each revision's outcome is fixed, per condition assignment."""

    cells: Cells
    size: int
    pruned: bool  # both revisions provably agree here; outcomes were not computed
    variables: tuple[tuple[Any, ...], ...] = ()  # condition keys, in assignment order
    domains: tuple[tuple[int, ...], ...] = ()  # states each variable can take here
    on_error: tuple[int, ...] = ()  # the state an evaluation error amounts to, per variable
    outcomes: dict[tuple[int, ...], tuple[Outcome, Outcome]] = field(default_factory=dict)
    matched: dict[tuple[int, ...], tuple[list[SideRule], list[SideRule]]] = field(default_factory=dict)
    maybe: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())  # ids undecided
    partial: bool = False  # too many conditions: only some assignments were enumerated

    @property
    def changed(self) -> bool:
        return any(a != b for a, b in self.outcomes.values())


class Space:
    """The union vocabulary of two revisions, and the rules of each mapped onto its axes."""

    def __init__(self, old: PolicySet, new: PolicySet):
        self.policies = (old, new)
        dims = (old.vocabulary.dimensions, new.vocabulary.dimensions)
        axes: list[Axis] = []
        for name in [*dims[0], *(n for n in dims[1] if n not in dims[0])]:
            defs = [d.get(name) for d in dims]
            first = next(d for d in defs if d is not None)
            values = list(first.values)
            for d in defs:
                values += [v for v in (d.values if d else ()) if v not in values]
            valid = [frozenset(d.values) if d else frozenset(values) for d in defs]
            axes.append(Axis(name, first.path, first.kind, tuple(values), (valid[0], valid[1])))
        self.index = {a.name: i for i, a in enumerate(axes)}
        self.sides = (self._rules(old, axes), self._rules(new, axes))
        for i, a in enumerate(axes):
            if a.is_set:
                named = {v for s in self.sides for r in s for k, c, _ in r.checks if k == i for v in c.values}
                named |= a.valid[0] ^ a.valid[1]
                axes[i] = Axis(a.name, a.path, a.kind, a.values, a.valid, frozenset(named))
        self.axes = tuple(axes)
        self.data_axis = tuple(
            self.index[p.vocabulary.data_dimension.name] if p.vocabulary.data_dimension else None
            for p in self.policies
        )

    def _rules(self, policy: PolicySet, axes: list[Axis]) -> list[SideRule]:
        index = {a.name: i for i, a in enumerate(axes)}
        common = [a.valid[0] & a.valid[1] for a in axes]
        attrs = policy.vocabulary.attributes
        out = []
        for r in policy.rules:
            checks = tuple(
                (index[c.dimension.name], c, frozenset() if c.dimension.is_set else c.allowed())
                for c in r.checked.constraints
            )
            shape = frozenset(
                (k, c.op, frozenset(c.values)) if c.dimension.is_set else (k, "", allowed & common[k])
                for k, c, allowed in checks
            )
            key: tuple[Any, ...] | None = None
            if r.conditions:
                reads = sorted({f for cc in r.conditions for f in cc.expression.fields})
                defaults = tuple(
                    (f, attrs[f].type, repr(attrs[f].default), attrs[f].has_default) if f in attrs else (f,)
                    for f in reads
                )
                key = (tuple((cc.kind, cc.text) for cc in r.conditions), defaults)
            redact = (
                (frozenset(r.redact_classes or ()), r.redact_classes is None, r.implicit_classes, r.style)
                if r.effect is Effect.REDACT
                else None
            )
            queue = r.queue if r.effect is Effect.ESCALATE else None
            out.append(SideRule(r, checks, (shape, key, r.effect, redact, queue), key))
        return out

    def top(self) -> Cells:
        return tuple(Cell(frozenset()) if a.is_set else Cell(frozenset(a.values)) for a in self.axes)

    def size(self, cells: Cells) -> int:
        """How many value combinations the region holds (set axes: every subset of the rest)."""
        n = 1
        for a, cell in zip(self.axes, cells, strict=True):
            n *= 2 ** (len(a.values) - len(cell.values) - len(cell.absent)) if a.is_set else len(cell.values)
        return n

    def contains(self, cells: Cells, point: Sequence[Any]) -> bool:
        """Whether a point (a value per axis, a frozenset on set axes) lies in the region."""
        for a, cell, v in zip(self.axes, cells, point, strict=True):
            if a.is_set and (not cell.values <= v or cell.absent & v):
                return False
            if not a.is_set and v not in cell.values:
                return False
        return True

    def describe(self, cells: Cells) -> str:
        """The region in match syntax: `action=refund.execute actor=ai risk_tier>=high`."""
        parts: list[str] = []
        for a, cell in zip(self.axes, cells, strict=True):
            parts.extend(_describe_cell(a, cell))
        return " ".join(parts) or "every request"

    def constraints(self, cells: Cells) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for a, cell in zip(self.axes, cells, strict=True):
            if a.is_set and (cell.values or cell.absent):
                out[a.name] = {"present": _ordered(a, cell.values), "absent": _ordered(a, cell.absent)}
            elif not a.is_set and len(cell.values) < len(a.values):
                out[a.name] = {"in": _ordered(a, cell.values)}
        return out


def _ordered(a: Axis, values: Iterable[str]) -> list[str]:
    keep = set(values)
    return [v for v in a.values if v in keep]


def _describe_cell(a: Axis, cell: Cell) -> list[str]:
    if a.is_set:
        out = [f"{a.name}={v}" for v in _ordered(a, cell.values)]
        absent = _ordered(a, cell.absent)
        if len(absent) == 1:
            out.append(f"{a.name}!={absent[0]}")
        elif absent:
            out.append(f"{a.name} not in [{','.join(absent)}]")
        return out
    vals = _ordered(a, cell.values)
    if len(vals) == len(a.values):
        return []
    if len(vals) == 1:
        return [f"{a.name}={vals[0]}"]
    pos = [a.values.index(v) for v in vals]
    if a.kind == "ordered" and pos[-1] - pos[0] == len(pos) - 1:
        if pos[0] == 0:
            return [f"{a.name}<={vals[-1]}"]
        if pos[-1] == len(a.values) - 1:
            return [f"{a.name}>={vals[0]}"]
        return [f"{a.name}>={vals[0]}", f"{a.name}<={vals[-1]}"]
    rest = [v for v in a.values if v not in cell.values]
    if len(rest) == 1:
        return [f"{a.name}!={rest[0]}"]
    if len(vals) <= len(rest):
        return [f"{a.name} in [{','.join(vals)}]"]
    return [f"{a.name} not in [{','.join(rest)}]"]


# ----------------------------------------------------------------------- classification
def _constraint_status(axis: Axis, c: CheckedConstraint, allowed: frozenset[str], cell: Cell) -> int:
    if not axis.is_set:
        if cell.values <= allowed:
            return _T
        return _F if cell.values.isdisjoint(allowed) else _U
    vals = frozenset(c.values)
    hit = _T if vals & cell.values else _F if vals <= cell.absent else _U
    if c.op in ("=", "in") or hit == _U:
        return hit
    return _T - hit


@dataclass
class _View:
    """One revision inside one region: which rules hold surely, conditionally, or maybe."""

    valid: int
    invalid_axis: int  # where validity is undecided (when `valid` is _U)
    certain: list[SideRule]  # constraints hold, no condition
    conditional: list[SideRule]  # constraints hold, conditions decide
    maybe: list[tuple[SideRule, list[int]]]  # constraints undecided: (rule, undecided axes)
    base: Outcome | None = None

    def prints(self) -> set[tuple[Any, ...]]:
        return {r.fingerprint for r in [*self.certain, *self.conditional, *(m for m, _ in self.maybe)]}


def _view(space: Space, side: int, cells: Cells) -> _View:
    undecided_axis = -1
    for k, (a, cell) in enumerate(zip(space.axes, cells, strict=True)):
        valid = a.valid[side]
        if a.is_set:
            bad = frozenset(a.values) - valid
            if bad & cell.values:
                return _View(_F, -1, [], [], [])
            undecided = not bad <= cell.absent
        else:
            if cell.values.isdisjoint(valid):
                return _View(_F, -1, [], [], [])
            undecided = not cell.values <= valid
        if undecided and undecided_axis < 0:
            undecided_axis = k
    if undecided_axis >= 0:
        return _View(_U, undecided_axis, [], [], [])
    v = _View(_T, -1, [], [], [])
    for r in space.sides[side]:
        where: list[int] = []
        for k, c, allowed in r.checks:
            s = _constraint_status(space.axes[k], c, allowed, cells[k])
            if s == _F:
                break
            if s == _U:
                where.append(k)
        else:
            if where:
                v.maybe.append((r, where))
            else:
                (v.conditional if r.cond_key is not None else v.certain).append(r)
    return v


def _relevant(space: Space, side: int, v: _View, r: SideRule, cells: Cells) -> bool:
    """Could this rule, by matching, change the revision's outcome anywhere in the region?"""
    if not v.certain:
        return True
    if v.base is None:
        v.base = _combine(space, side, v.certain, cells)
    base, rule = v.base, r.rule
    if rule.severity > base.effect.severity:
        return True
    if rule.effect is Effect.ESCALATE:
        return rule.queue is not None and rule.queue not in base.queues
    if rule.effect is not Effect.REDACT:
        return False
    have = dict(base.redact)
    k = space.data_axis[side]
    classes: Iterable[str] = rule.redact_classes or ()
    if rule.redact_classes is None and k is not None:
        classes = rule.implicit_classes - cells[k].absent
    return any(c not in have or have[c].strictness < rule.style.strictness for c in classes)


def _combine(space: Space, side: int, matched: Sequence[SideRule], cells: Cells) -> Outcome:
    """The engine's combination (most restrictive wins) over rules that match everywhere."""
    policy = space.policies[side]
    if not matched:
        default_queue = policy.default_queue if policy.default is Effect.ESCALATE else None
        return Outcome(policy.default, queues=frozenset([default_queue] if default_queue else []), default=True)
    k = space.data_axis[side]
    present = cells[k].values if k is not None else frozenset()
    styles: dict[str, Style] = {}
    queues: set[str] = set()
    for m in matched:
        r = m.rule
        if r.effect is Effect.REDACT:
            classes = r.redact_classes if r.redact_classes is not None else r.implicit_classes & present
            for c in classes:
                if c not in styles or r.style.strictness > styles[c].strictness:
                    styles[c] = r.style
        elif r.effect is Effect.ESCALATE and r.queue is not None:
            queues.add(r.queue)
    top = max(m.rule.severity for m in matched)
    return Outcome(EFFECT_BY_SEVERITY[top], frozenset(styles.items()), frozenset(queues))


# ----------------------------------------------------------------------------- refining
def partition(space: Space, *, prune_equal: bool = True) -> Iterator[Region]:
    """Every region of the space, exactly once. With `prune_equal`, a region both revisions
    provably agree on comes back `pruned`, without outcomes, instead of being refined."""
    stack: list[Cells] = [space.top()]
    while stack:
        cells = stack.pop()
        views = (_view(space, 0, cells), _view(space, 1, cells))
        if prune_equal and _agree(space, views):
            yield Region(cells, space.size(cells), True)
            continue
        split = _choose_split(space, views, cells)
        if split is None:
            yield _leaf(space, views, cells)
        else:
            stack.extend(reversed(_split(space, cells, *split)))


def _agree(space: Space, views: tuple[_View, _View]) -> bool:
    a, b = views
    if _U in (a.valid, b.valid) or a.valid != b.valid:
        return False
    if a.valid == _F:
        return True
    if a.prints() != b.prints():
        return False
    pa, pb = space.policies
    return bool(a.certain) or (pa.default, pa.default_queue) == (pb.default, pb.default_queue)


def _choose_split(
    space: Space, views: tuple[_View, _View], cells: Cells
) -> tuple[int, list[frozenset[str]]] | None:
    """The axis to split next, and the value sets whose distinctions the split must keep.

    On a plain axis each value set is what one constraint allows; on a set axis, the values one
    constraint names. Rules that differ between the revisions weigh far more than rules both
    hold, so splits isolate what changed first and the rest prunes as "agree".
    """
    for side, v in enumerate(views):
        if v.valid == _U:
            a = space.axes[v.invalid_axis]
            return v.invalid_axis, [frozenset(a.values) - a.valid[side]] if a.is_set else []
    prints = [v.prints() for v in views]
    weights: dict[int, int] = {}
    wanted: dict[int, list[frozenset[str]]] = {}
    for side, v in enumerate(views):
        if v.valid != _T:
            continue
        for r, axes in v.maybe:
            if not _relevant(space, side, v, r, cells):
                continue
            weight = 1000 if r.fingerprint not in prints[1 - side] else 1
            for k in axes:
                weights[k] = weights.get(k, 0) + weight
                wanted.setdefault(k, []).extend(
                    frozenset(c.values) if c.dimension.is_set else allowed for kk, c, allowed in r.checks if kk == k
                )
        data = space.data_axis[side]
        if data is not None:  # a matching implicit redact whose classes are not all fixed yet
            fixed = cells[data].values | cells[data].absent
            open_ = {
                c
                for r in [*v.certain, *v.conditional]
                if r.rule.effect is Effect.REDACT and r.rule.redact_classes is None
                for c in r.rule.implicit_classes - fixed
            }
            if open_:
                weights[data] = weights.get(data, 0) + 1
                wanted.setdefault(data, []).append(frozenset(open_))
    if not weights:
        return None
    best = max(weights, key=lambda k: (weights[k], -k))
    return best, wanted.get(best, [])


def _split(space: Space, cells: Cells, k: int, wanted: list[frozenset[str]]) -> list[Cells]:
    axis, cell = space.axes[k], cells[k]
    if axis.is_set:
        fixed = cell.values | cell.absent
        counts: dict[str, int] = {}
        for vals in wanted:
            for val in vals - fixed:
                counts[val] = counts.get(val, 0) + 1
        pick = max(counts, key=lambda val: (counts[val], -axis.values.index(val)))
        parts = [Cell(cell.values | {pick}, cell.absent), Cell(cell.values, cell.absent | {pick})]
    else:
        groups: dict[tuple[bool, ...], list[str]] = {}
        for val in axis.values:
            if val in cell.values:
                sig = (val in axis.valid[0], val in axis.valid[1], *(val in a for a in wanted))
                groups.setdefault(sig, []).append(val)
        parts = [Cell(frozenset(vals)) for vals in groups.values()]
    return [(*cells[:k], part, *cells[k + 1 :]) for part in parts]


def _matches(r: SideRule, state: int) -> bool:
    """A conditional rule under a state of its condition variable (errors fail safe, §5)."""
    return state == TRUE or (state == ERROR and r.rule.severity > 0)


def _leaf(space: Space, views: tuple[_View, _View], cells: Cells) -> Region:
    strictness: dict[tuple[Any, ...], set[bool]] = {}
    for v in views:
        for r in v.conditional:
            if r.cond_key is not None:
                strictness.setdefault(r.cond_key, set()).add(r.rule.severity > 0)
    variables = tuple(strictness)
    # An error is a third outcome only where it splits the rules sharing the condition.
    domains = tuple((FALSE, TRUE, ERROR) if len(strictness[k]) == 2 else (FALSE, TRUE) for k in variables)
    on_error = tuple(ERROR if len(strictness[k]) == 2 else TRUE if True in strictness[k] else FALSE for k in variables)
    region = Region(cells, space.size(cells), False, variables, domains, on_error)
    region.maybe = (frozenset(r.id for r, _ in views[0].maybe), frozenset(r.id for r, _ in views[1].maybe))
    count = 1
    for d in domains:
        count *= len(d)
    assignments: list[tuple[int, ...]]
    if count <= MAX_ASSIGNMENTS:
        assignments = list(itertools.product(*domains))
    else:
        region.partial = True
        n = len(variables)
        flips = [tuple(TRUE if i == j else FALSE for j in range(n)) for i in range(n)]
        assignments = [(FALSE,) * n, (TRUE,) * n, *flips, *(tuple(1 - x for x in f) for f in flips)]
    for assignment in assignments:
        state = dict(zip(variables, assignment, strict=True))
        pair: list[Outcome] = []
        matched: list[list[SideRule]] = []
        for side, v in enumerate(views):
            m = [*v.certain, *(r for r in v.conditional if r.cond_key and _matches(r, state[r.cond_key]))]
            matched.append(m)
            pair.append(Outcome(Effect.ESCALATE, invalid=True) if v.valid == _F else _combine(space, side, m, cells))
        region.outcomes[assignment] = (pair[0], pair[1])
        region.matched[assignment] = (matched[0], matched[1])
    return region


def assignment_for(space: Space, region: Region, request: Mapping[str, Any]) -> tuple[int, ...]:
    """The state of each of a region's condition variables for one concrete request."""
    out: list[int] = []
    for key, on_error in zip(region.variables, region.on_error, strict=True):
        for side, rules in enumerate(space.sides):
            r = next((r for r in rules if r.cond_key == key), None)
            if r is None:
                continue
            ok, error = condition_verdict(r.rule, activation(space.policies[side], request))
            # With an error the verdict is the fail-safe's, not the condition's value.
            out.append(on_error if error is not None else TRUE if ok else FALSE)
            break
    return tuple(out)
