"""Analysis: the decision table of two policy revisions, as regions of the dimension space.

Input: two `PolicySet`s, OLD and NEW (the same one twice gives a plain decision table).
Output: for one *aspect* of the outcome — the decision (effect, escalation queues, validity) or
the masking of one data class — `Region`s that partition every combination of dimension values
exactly, each with the value that aspect takes in each revision. `changes.py` keeps the regions
where it differs and prints them for `cxpolicy diff`.

Why regions and not sampling: the vocabulary is finite and declared, so "what does this change
change?" has an exact answer, and a reviewer wants all of it. Why not the plain cross product:
the core vocabulary alone has billions of combinations. So the space is refined lazily, like a
decision diagram: start from one region holding everything and split it on one dimension at a
time, only while a rule that could still change the aspect is undecided there. A plain
dimension splits into classes of values no such rule tells apart; a set dimension splits on one
value's presence. Two prunings keep the tree small:

- a rule that cannot change the aspect in a region (an `allow` where an unconditional
  `escalate` holds; any rule but a `redact` naming the class, for a masking aspect) is no
  reason to split it;
- where both revisions hold the same rules (compared by meaning, not by id) and agree on
  validity, the aspect has the same value in both, and the region is not split at all.

Why aspects: the redact set of a decision depends on which data classes are present, so one
partition of whole outcomes would split on every subset of classes that some `redact` names.
Each aspect alone depends on few rules, and a reviewer reads the changes aspect by aspect.

Conditions (`when`/`unless`) are not analysed: each distinct condition list is a free variable,
shared by both revisions when its text (and the attribute defaults it reads) is unchanged. It
is true, false, or — where an `allow` rule and a stricter rule share it — "fails to evaluate"
(LANGUAGE.md §5: the stricter rule then matches and the `allow` does not). A region's value is
computed for every assignment, so a change that happens only when a condition goes one way is
reported as depending on it.

Limits: requests are assumed to carry every dimension; logically related conditions (`x` and
`!x`) count as independent; dimensions are matched between revisions by name.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final

from cxpolicy.engine.compiler import CompiledRule
from cxpolicy.engine.evaluation import activation, condition_verdict
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.kinds import EFFECT_BY_SEVERITY, DimensionKind, Effect, Op, Style
from cxpolicy.lang.checker import CheckedConstraint

__all__ = [
    "DECISION",
    "ERROR",
    "FALSE",
    "TRUE",
    "Aspect",
    "Axis",
    "Cell",
    "Cells",
    "DecisionAspect",
    "Region",
    "SideRule",
    "Space",
    "Verdict",
    "aspect_name",
    "assignment_for",
    "partition",
]

class DecisionAspect(Enum):
    """The aspect of effect, escalation queues and validity. A member of its own type, not a
    string, so it can never collide with a data class (a vocabulary may name one `decision`)."""

    DECISION = "decision"


DECISION: Final = DecisionAspect.DECISION
Aspect = DecisionAspect | str  # `DECISION`, or the name of a data class (its masking)


def aspect_name(aspect: Aspect) -> str:
    """How reports print an aspect: `decision`, or the data class."""
    return aspect.value if isinstance(aspect, DecisionAspect) else aspect


MAX_ASSIGNMENTS = 1024
_F, _T, _U = 0, 1, 2
FALSE, TRUE, ERROR = 0, 1, 2  # the states of a condition variable


# ------------------------------------------------------------------------------- outcomes
@dataclass(frozen=True)
class Verdict:
    """The value of one aspect: for `decision` the effect, queues and validity; for a data
    class the style it is masked with (None: not masked)."""

    aspect: Aspect
    effect: Effect | None = None
    queues: frozenset[str] = frozenset()
    invalid: bool = False
    style: Style | None = None
    default: bool = field(default=False, compare=False)

    def text(self) -> str:
        if self.aspect is not DECISION:
            return self.style.value if self.style is not None else "not masked"
        out = self.effect.value if self.effect is not None else "?"
        if self.queues:
            out += " to " + ", ".join(sorted(self.queues))
        return out + (" (invalid request)" if self.invalid else " (default)" if self.default else "")

    def looser_than(self, other: Verdict) -> bool:
        """Less strict: a lower effect, or the class masked less (or no longer masked)."""
        if self.aspect is DECISION:
            mine, theirs = self.effect or Effect.ESCALATE, other.effect or Effect.ESCALATE
            return mine.severity < theirs.severity
        if other.style is None:
            return False
        return self.style is None or self.style.strictness < other.style.strictness

    def to_dict(self) -> dict[str, Any]:
        if self.aspect is not DECISION:
            return {"masked": self.style.value if self.style is not None else None}
        effect = self.effect.value if self.effect is not None else None
        return {"effect": effect, "escalate_to": sorted(self.queues), "invalid": self.invalid}


# ---------------------------------------------------------------------------------- space
@dataclass(frozen=True)
class Axis:
    """One dimension of the union vocabulary of both revisions."""

    name: str
    path: tuple[str, ...]
    kind: DimensionKind
    values: tuple[str, ...]
    valid: tuple[frozenset[str], frozenset[str]]  # per revision; every value if it lacks the axis

    @property
    def is_set(self) -> bool:
        return self.kind == DimensionKind.SET


@dataclass(frozen=True, slots=True)
class Cell:
    """A region's extent on one axis: a class of values or, on a set axis, the values known
    present (`values`) and known absent (`absent`); any other value may be either — except
    that, when `some` is not empty, at least one of its values is present (`d in [...]`: the
    partition never makes such cells, merging its boxes for display does)."""

    values: frozenset[str]
    absent: frozenset[str] = frozenset()
    some: frozenset[str] = frozenset()


Cells = tuple[Cell, ...]
Check = tuple[int, CheckedConstraint, frozenset[str]]  # axis, constraint, values it allows (plain)


@dataclass(frozen=True)
class SideRule:
    """A rule as one aspect sees it: its checks on the axes and what it contributes."""

    rule: CompiledRule
    checks: tuple[Check, ...]
    fingerprint: tuple[Any, ...]  # the rule's meaning for this aspect, without its id
    cond_key: tuple[Any, ...] | None  # its condition list, as a free variable

    @property
    def id(self) -> str:
        return self.rule.id


@dataclass
class Region:
    """A box of the space on which each revision's aspect is fixed, per condition assignment."""

    cells: Cells
    size: int
    pruned: bool  # both revisions provably agree here; nothing was computed
    variables: tuple[tuple[Any, ...], ...] = ()  # condition keys, in assignment order
    domains: tuple[tuple[int, ...], ...] = ()  # the states each variable can take here
    on_error: tuple[int, ...] = ()  # the state an evaluation error amounts to, per variable
    outcomes: dict[tuple[int, ...], tuple[Verdict, Verdict]] = field(default_factory=dict)
    matched: dict[tuple[int, ...], tuple[list[SideRule], list[SideRule]]] = field(default_factory=dict)
    maybe: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())  # ids undecided
    partial: bool = False  # too many conditions: only some assignments were enumerated

    @property
    def changed(self) -> bool:
        return any(a != b for a, b in self.outcomes.values())


class Space:
    """The union vocabulary of two revisions, and each revision's rules mapped onto its axes."""

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
        self.axes = tuple(axes)
        self.index = {a.name: i for i, a in enumerate(axes)}
        self.data_axis = tuple(
            self.index[p.vocabulary.data_dimension.name] if p.vocabulary.data_dimension else None
            for p in self.policies
        )
        self._rules: dict[Aspect, tuple[list[SideRule], list[SideRule]]] = {}

    def aspects(self) -> list[Aspect]:
        """`decision`, then every data class some `redact` rule of either revision can mask."""
        classes: set[str] = set()
        for p in self.policies:
            for r in p.rules:
                if r.effect is Effect.REDACT:
                    classes |= set(r.redact_classes if r.redact_classes is not None else r.implicit_classes)
        k = next((k for k in self.data_axis if k is not None), None)
        order = {v: i for i, v in enumerate(self.axes[k].values)} if k is not None else {}
        return [DECISION, *sorted(classes, key=lambda c: (order.get(c, len(order)), c))]

    def rules(self, aspect: Aspect) -> tuple[list[SideRule], list[SideRule]]:
        """Each revision's rules that can affect the aspect, with their meaning for it."""
        if aspect not in self._rules:
            self._rules[aspect] = (self._side_rules(0, aspect), self._side_rules(1, aspect))
        return self._rules[aspect]

    def _side_rules(self, side: int, aspect: Aspect) -> list[SideRule]:
        policy = self.policies[side]
        common = [a.valid[0] & a.valid[1] for a in self.axes]
        attrs = policy.vocabulary.attributes
        data = policy.vocabulary.data_dimension
        out = []
        for r in policy.rules:
            checks: list[Check] = [
                (self.index[c.dimension.name], c, frozenset() if c.dimension.is_set else c.allowed())
                for c in r.checked.constraints
            ]
            if aspect is DECISION:
                meaning: Any = (r.effect, r.queue if r.effect is Effect.ESCALATE else None)
            else:
                if r.effect is not Effect.REDACT:
                    continue
                if r.redact_classes is not None:
                    if aspect not in r.redact_classes:
                        continue
                elif aspect in r.implicit_classes and data is not None:
                    # An implicit list masks the class only when the request carries it.
                    present = CheckedConstraint(data, Op.EQ, (aspect,), r.checked.span, f"{data.name} = {aspect}")
                    checks.append((self.index[data.name], present, frozenset()))
                else:
                    continue
                meaning = r.style
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
            out.append(SideRule(r, tuple(checks), (shape, key, meaning), key))
        return out

    def top(self) -> Cells:
        return tuple(Cell(frozenset()) if a.is_set else Cell(frozenset(a.values)) for a in self.axes)

    def size(self, cells: Cells) -> int:
        """How many value combinations the region holds (set axes: every subset of the rest)."""
        n = 1
        for a, cell in zip(self.axes, cells, strict=True):
            if not a.is_set:
                n *= len(cell.values)
                continue
            free = len(a.values) - len(cell.values) - len(cell.absent)
            n *= 2**free - (2 ** (free - len(cell.some)) if cell.some else 0)
        return n

    def contains(self, cells: Cells, point: Sequence[Any]) -> bool:
        """Whether a point (a value per axis, a frozenset on set axes) lies in the region."""
        for a, cell, v in zip(self.axes, cells, point, strict=True):
            if a.is_set and (not cell.values <= v or cell.absent & v or (cell.some and not cell.some & v)):
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
            if a.is_set and (cell.values or cell.absent or cell.some):
                out[a.name] = {"present": _ordered(a, cell.values), "absent": _ordered(a, cell.absent)}
                if cell.some:
                    out[a.name]["any_of"] = _ordered(a, cell.some)
            elif not a.is_set and len(cell.values) < len(a.values):
                out[a.name] = {"in": _ordered(a, cell.values)}
        return out


def _ordered(a: Axis, values: Iterable[str]) -> list[str]:
    keep = set(values)
    return [v for v in a.values if v in keep]


def _describe_cell(a: Axis, cell: Cell) -> list[str]:
    if a.is_set:
        out = [f"{a.name}={v}" for v in _ordered(a, cell.values)]
        if cell.some:
            out.append(f"{a.name} in [{','.join(_ordered(a, cell.some))}]")
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
    if a.kind == DimensionKind.ORDERED and pos[-1] - pos[0] == len(pos) - 1:
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
    base: Verdict | None = None

    def prints(self) -> set[tuple[Any, ...]]:
        return {r.fingerprint for r in [*self.certain, *self.conditional, *(m for m, _ in self.maybe)]}


def _view(space: Space, aspect: Aspect, side: int, cells: Cells) -> _View:
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
    for r in space.rules(aspect)[side]:
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


def _relevant(space: Space, aspect: Aspect, side: int, v: _View, r: SideRule) -> bool:
    """Could this rule, by matching, change the aspect anywhere in the region?"""
    if not v.certain:
        return True
    if v.base is None:
        v.base = _combine(space, aspect, side, v.certain)
    rule = r.rule
    if aspect is not DECISION:
        return v.base.style is None or rule.style.strictness > v.base.style.strictness
    assert v.base.effect is not None
    if rule.severity > v.base.effect.severity:
        return True
    return rule.effect is Effect.ESCALATE and rule.queue is not None and rule.queue not in v.base.queues


def _combine(space: Space, aspect: Aspect, side: int, matched: Sequence[SideRule]) -> Verdict:
    """The engine's combination (most restrictive wins), for one aspect, over matching rules."""
    if aspect is not DECISION:
        styles = [m.rule.style for m in matched]
        return Verdict(aspect, style=max(styles, key=lambda s: s.strictness) if styles else None)
    policy = space.policies[side]
    if not matched:
        queue = policy.default_queue if policy.default is Effect.ESCALATE else None
        return Verdict(DECISION, policy.default, frozenset([queue] if queue else []), default=True)
    queues = frozenset(
        m.rule.queue for m in matched if m.rule.effect is Effect.ESCALATE and m.rule.queue is not None
    )
    return Verdict(DECISION, EFFECT_BY_SEVERITY[max(m.rule.severity for m in matched)], queues)


# ----------------------------------------------------------------------------- refining
def partition(space: Space, aspect: Aspect = DECISION, *, prune_equal: bool = True) -> Iterator[Region]:
    """Every region of the space for one aspect, exactly once. With `prune_equal`, a region
    both revisions provably agree on comes back `pruned`, without values, instead of refined."""
    stack: list[Cells] = [space.top()]
    while stack:
        cells = stack.pop()
        views = (_view(space, aspect, 0, cells), _view(space, aspect, 1, cells))
        if prune_equal and _agree(space, aspect, views):
            yield Region(cells, space.size(cells), True)
            continue
        split = _choose_split(space, aspect, views)
        if split is None:
            yield _leaf(space, aspect, views, cells)
        else:
            stack.extend(reversed(_split(space, cells, *split)))


def _agree(space: Space, aspect: Aspect, views: tuple[_View, _View]) -> bool:
    a, b = views
    if _U in (a.valid, b.valid) or a.valid != b.valid:
        return False
    if a.valid == _F or a.prints() != b.prints():
        return a.valid == _F
    pa, pb = space.policies
    same_default = (pa.default, pa.default_queue) == (pb.default, pb.default_queue)
    return aspect is not DECISION or same_default or bool(a.certain)


def _choose_split(space: Space, aspect: Aspect, views: tuple[_View, _View]) -> tuple[int, list[frozenset[str]]] | None:
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
            if not _relevant(space, aspect, side, v, r):
                continue
            weight = 1000 if r.fingerprint not in prints[1 - side] else 1
            for k in axes:
                weights[k] = weights.get(k, 0) + weight
                wanted.setdefault(k, []).extend(
                    frozenset(c.values) if c.dimension.is_set else allowed for kk, c, allowed in r.checks if kk == k
                )
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


def _leaf(space: Space, aspect: Aspect, views: tuple[_View, _View], cells: Cells) -> Region:
    strictness: dict[tuple[Any, ...], set[bool]] = {}
    for v in views:
        for r in v.conditional:
            if r.cond_key is not None:
                strictness.setdefault(r.cond_key, set()).add(r.rule.severity > 0)
    variables = tuple(strictness)
    # An error is a third state only where it splits the rules sharing the condition.
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
    invalid = Verdict(DECISION, Effect.ESCALATE, invalid=True) if aspect is DECISION else Verdict(aspect)
    for assignment in assignments:
        state = dict(zip(variables, assignment, strict=True))
        pair: list[Verdict] = []
        matched: list[list[SideRule]] = []
        for side, v in enumerate(views):
            m = [*v.certain, *(r for r in v.conditional if r.cond_key and _matches(r, state[r.cond_key]))]
            matched.append(m)
            pair.append(invalid if v.valid == _F else _combine(space, aspect, side, m))
        region.outcomes[assignment] = (pair[0], pair[1])
        region.matched[assignment] = (matched[0], matched[1])
    return region


def assignment_for(space: Space, aspect: Aspect, region: Region, request: Mapping[str, Any]) -> tuple[int, ...]:
    """The state of each of a region's condition variables for one concrete request."""
    out: list[int] = []
    for key, on_error in zip(region.variables, region.on_error, strict=True):
        for side, rules in enumerate(space.rules(aspect)):
            r = next((r for r in rules if r.cond_key == key), None)
            if r is not None:
                ok, error = condition_verdict(r.rule, activation(space.policies[side].vocabulary, dict(request)))
                # With an error the verdict is the fail-safe's, not the condition's value.
                out.append(on_error if error is not None else TRUE if ok else FALSE)
                break
    return tuple(out)
