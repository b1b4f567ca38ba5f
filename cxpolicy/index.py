"""Index: per dimension, value → bitset (a Python int) of the rules that accept that value.

Input: compiled constraints per rule. Output: `RuleIndex`, which turns a validated request into
the candidate set in one AND per dimension. A rule that does not constrain a dimension is in
every bucket of it. For a set dimension, the candidates are the rules with no positive
constraint on it, plus the OR of the positive buckets of the request's values, minus the OR of
the negative buckets (a `!=`/`not in` excluded value present in the request).

A rule with two positive constraints on one set dimension (`d = a, d = b`: both present) is
indexed by the first; the others are checked per candidate (`residual`). The property tests
hold this equal to evaluating every rule by brute force.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cxpolicy.checker import CheckedConstraint, CheckedRule
from cxpolicy.vocabulary import DimensionDef, Vocabulary

__all__ = ["DimensionIndex", "Residual", "RuleIndex", "build_index"]

Residual = tuple[int, frozenset[str]]  # (dimension slot, values of which one must be present)


@dataclass(frozen=True, slots=True)
class DimensionIndex:
    slot: int
    name: str
    path: tuple[str, ...]
    kind: str
    default: str | None
    values: tuple[str, ...]
    buckets: dict[str, int]  # plain / ordered: value -> rules accepting it
    free: int  # set: rules without a positive constraint here
    positive: dict[str, int]  # set: value -> rules whose (first) positive constraint names it
    negative: dict[str, int]  # set: value -> rules that exclude it
    constrained: bool  # some rule constrains this dimension

    @property
    def path_text(self) -> str:
        return ".".join(self.path)

    @property
    def is_set(self) -> bool:
        return self.kind == "set"


@dataclass(frozen=True, slots=True)
class RuleIndex:
    dimensions: tuple[DimensionIndex, ...]
    all_rules: int
    residuals: dict[int, tuple[Residual, ...]]  # rule index -> extra set checks


def build_index(rules: Sequence[CheckedRule], vocab: Vocabulary) -> RuleIndex:
    dims = list(vocab.dimensions.values())
    slots = {d.name: i for i, d in enumerate(dims)}
    all_rules = (1 << len(rules)) - 1
    residuals: dict[int, list[Residual]] = {}
    out: list[DimensionIndex] = []
    for slot, d in enumerate(dims):
        per_rule: list[list[CheckedConstraint]] = [
            [c for c in r.constraints if c.dimension.name == d.name] for r in rules
        ]
        constrained = any(per_rule)
        if d.is_set:
            out.append(_set_index(slot, d, per_rule, residuals, slots))
        else:
            out.append(_plain_index(slot, d, per_rule, constrained))
    return RuleIndex(tuple(out), all_rules, {k: tuple(v) for k, v in residuals.items()})


def _plain_index(
    slot: int, d: DimensionDef, per_rule: list[list[CheckedConstraint]], constrained: bool
) -> DimensionIndex:
    buckets = {v: 0 for v in d.values}
    everything = frozenset(d.values)
    for i, cs in enumerate(per_rule):
        allowed = everything
        for c in cs:
            allowed = allowed & c.allowed()
        bit = 1 << i
        for v in allowed:
            buckets[v] |= bit
    return DimensionIndex(slot, d.name, d.path, d.kind, d.default, tuple(d.values), buckets, 0, {}, {}, constrained)


def _set_index(
    slot: int,
    d: DimensionDef,
    per_rule: list[list[CheckedConstraint]],
    residuals: dict[int, list[Residual]],
    slots: dict[str, int],
) -> DimensionIndex:
    free = 0
    positive = {v: 0 for v in d.values}
    negative = {v: 0 for v in d.values}
    for i, cs in enumerate(per_rule):
        bit = 1 << i
        pos = [c for c in cs if c.positive]
        if pos:
            for v in pos[0].values:
                positive[v] |= bit
            for extra in pos[1:]:
                residuals.setdefault(i, []).append((slots[d.name], frozenset(extra.values)))
        else:
            free |= bit
        for c in cs:
            if not c.positive:
                for v in c.values:
                    negative[v] |= bit
    return DimensionIndex(
        slot, d.name, d.path, d.kind, None, tuple(d.values), {}, free, positive, negative, any(per_rule)
    )
