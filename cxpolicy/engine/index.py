"""Index: per dimension, value → bitset (a Python int) of the rules that accept that value.

Input: checked rules and the vocabulary. Output: `RuleIndex`, which turns a validated request
into its candidate rules in one AND per dimension. A rule that does not constrain a dimension
is in every bucket of it. For a set dimension the candidates are the rules with no positive
constraint on it, plus the OR of the positive buckets of the request's values, minus the OR of
the negative buckets (a `!=` / `not in` value that the request carries).

Partitioning: Python ints are arbitrary-precision, so with 10,000 rules every AND and every
step of walking the candidate bits touches ~160 machine words. The index therefore picks the
plain dimension that splits the rules best (usually `action`) and builds one small index per
value of it over the rules that constrain that dimension and accept the value, plus one
`common` index over the rules that do not constrain it at all. A request scans its value's
partition and the common one, both on ints of a few words, and merges the two candidate
lists back into load order, so reasons come out as from one big index.

A rule with two positive constraints on one set dimension (`d = a, d = b`: both present) is
indexed by the first; the others are checked per candidate (`residuals`). The property tests
hold the whole thing equal to evaluating every rule by brute force.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cxpolicy.kinds import DimensionKind
from cxpolicy.lang.checker import CheckedConstraint, CheckedRule
from cxpolicy.lang.vocabulary import DimensionDef, DimensionShape, Vocabulary

__all__ = ["DimensionIndex", "Partition", "Residual", "RuleIndex", "build_index"]

Residual = tuple[int, frozenset[str]]  # (dimension slot, values of which one must be present)

# Partition only when it pays: the partitions together may hold at most this many times the
# rules (rules that do not constrain the partition dimension are copied into every partition).
_MAX_BLOWUP = 4.0
_MIN_RULES_TO_PARTITION = 64
_MAX_PARTITION_SHARE = 0.5  # a request may be left at most this share of the rules to scan


@dataclass(frozen=True, slots=True)
class DimensionIndex(DimensionShape):
    slot: int
    name: str
    path: tuple[str, ...]
    kind: DimensionKind
    default: str | None
    values: tuple[str, ...]
    buckets: dict[str, int]  # plain / ordered: value -> rules accepting it
    free: int  # set: rules without a positive constraint here
    positive: dict[str, int]  # set: value -> rules whose (first) positive constraint names it
    negative: dict[str, int]  # set: value -> rules that exclude it
    constrained: bool  # some rule constrains this dimension


@dataclass(frozen=True, slots=True)
class Partition:
    """The index over the rules that accept one value of the partition dimension."""

    rules: tuple[int, ...]  # local bit -> global rule index (ascending: load order)
    plain: tuple[DimensionIndex, ...]  # every plain dimension except the partition's, in slot order
    sets: tuple[DimensionIndex, ...]
    all_rules: int
    residuals: dict[int, tuple[Residual, ...]]  # by global rule index


@dataclass(frozen=True, slots=True)
class RuleIndex:
    dimensions: tuple[DimensionDef, ...]  # by slot
    by: DimensionIndex | None  # the partition dimension (None: one partition holds every rule)
    partitions: dict[str, Partition]  # by value of `by`; key "" when `by` is None
    common: Partition | None = None  # rules that do not constrain `by` (None when there are none)

    def any_partition(self) -> Partition:
        """Any partition: each validates every non-partition dimension the same way."""
        return next(iter(self.partitions.values()))


def build_index(rules: Sequence[CheckedRule], vocab: Vocabulary) -> RuleIndex:
    dims = list(vocab.dimensions.values())
    per_dim: list[list[list[CheckedConstraint]]] = [[[] for _ in rules] for _ in dims]
    slot_of = {d.name: i for i, d in enumerate(dims)}
    for ri, r in enumerate(rules):
        for c in r.constraints:
            per_dim[slot_of[c.dimension.name]][ri].append(c)
    accepted = [_accepted_values(d, per_dim[s]) if not d.is_set else None for s, d in enumerate(dims)]
    by_slot = _choose_partition_dimension(dims, accepted, per_dim, len(rules))
    if by_slot is None:
        whole = _partition(list(range(len(rules))), dims, per_dim, None, accepted)
        return RuleIndex(tuple(dims), None, {"": whole})
    by_dim = dims[by_slot]
    acc = accepted[by_slot]
    assert acc is not None
    members: dict[str, list[int]] = {v: [] for v in by_dim.values}
    common: list[int] = []
    for ri, values in enumerate(acc):
        if not per_dim[by_slot][ri]:
            common.append(ri)
            continue
        for v in values:
            members[v].append(ri)
    partitions = {v: _partition(members[v], dims, per_dim, by_slot, accepted) for v in by_dim.values}
    by = DimensionIndex(
        by_slot, by_dim.name, by_dim.path, by_dim.kind, by_dim.default, tuple(by_dim.values), {}, 0, {}, {}, True
    )
    shared = _partition(common, dims, per_dim, by_slot, accepted) if common else None
    return RuleIndex(tuple(dims), by, partitions, shared)


def _accepted_values(d: DimensionDef, per_rule: list[list[CheckedConstraint]]) -> list[frozenset[str]]:
    everything = frozenset(d.values)
    out = []
    for cs in per_rule:
        allowed = everything
        for c in cs:
            allowed = allowed & c.allowed()
        out.append(allowed)
    return out


def _choose_partition_dimension(
    dims: Sequence[DimensionDef],
    accepted: Sequence[list[frozenset[str]] | None],
    per_dim: list[list[list[CheckedConstraint]]],
    n_rules: int,
) -> int | None:
    """The plain dimension that leaves a request the fewest rules to scan, if that pays at all.

    A request scans its value's partition plus the common rules (those that do not constrain
    the dimension), so the cost to minimise is the largest partition plus the common part.
    Rules that constrain the dimension but accept many values (`!=`, `not in`) are copied into
    each partition they accept; the copies together are bounded by `_MAX_BLOWUP`.
    """
    if n_rules < _MIN_RULES_TO_PARTITION:
        return None
    best: tuple[int, int] | None = None
    for slot, acc in enumerate(accepted):
        if acc is None or len(dims[slot].values) < 2:
            continue
        sizes = dict.fromkeys(dims[slot].values, 0)
        common = 0
        for ri, values in enumerate(acc):
            if not per_dim[slot][ri]:
                common += 1
                continue
            for v in values:
                sizes[v] += 1
        if sum(sizes.values()) > _MAX_BLOWUP * n_rules:
            continue
        cost = max(sizes.values()) + common
        if cost > _MAX_PARTITION_SHARE * n_rules:
            continue
        if best is None or cost < best[1]:
            best = (slot, cost)
    return None if best is None else best[0]


def _bits(indices: Sequence[int], nbytes: int) -> int:
    """An int with the given bits set, built in one pass (no per-bit big-int arithmetic)."""
    if not indices:
        return 0
    buf = bytearray(nbytes)
    for i in indices:
        buf[i >> 3] |= 1 << (i & 7)
    return int.from_bytes(buf, "little")


def _partition(
    members: list[int],
    dims: Sequence[DimensionDef],
    per_dim: list[list[list[CheckedConstraint]]],
    skip_slot: int | None,
    accepted: Sequence[list[frozenset[str]] | None],
) -> Partition:
    nbytes = (len(members) + 7) // 8
    plain: list[DimensionIndex] = []
    sets: list[DimensionIndex] = []
    residuals: dict[int, list[Residual]] = {}
    for slot, d in enumerate(dims):
        if slot == skip_slot:
            continue
        column = per_dim[slot]
        local = [column[g] for g in members]
        constrained = any(local)
        acc = accepted[slot]
        if d.is_set or acc is None:
            sets.append(_set_index(slot, d, local, residuals, nbytes, constrained))
        else:
            plain.append(_plain_index(slot, d, [acc[g] for g in members], nbytes, constrained))
    return Partition(
        tuple(members),
        tuple(plain),
        tuple(sets),
        (1 << len(members)) - 1,
        {members[k]: tuple(v) for k, v in residuals.items()},
    )


def _plain_index(
    slot: int, d: DimensionDef, accepted: list[frozenset[str]], nbytes: int, constrained: bool
) -> DimensionIndex:
    """Buckets of one plain dimension; `accepted[i]`: the values local rule i accepts there
    (from `_accepted_values`, computed once for every rule rather than once per partition).

    A rule that accepts every value is in every bucket: those are ORed in once, not appended
    to each value's list (for 10,000 rules that was most of the index's time)."""
    lists: dict[str, list[int]] = {v: [] for v in d.values}
    width = len(d.values)
    every: list[int] = []
    for i, allowed in enumerate(accepted):
        if len(allowed) == width:  # a subset of the values as large as all of them
            every.append(i)
            continue
        for v in allowed:
            lists[v].append(i)
    every_bits = _bits(every, nbytes)
    buckets = {v: _bits(ix, nbytes) | every_bits for v, ix in lists.items()}
    return DimensionIndex(slot, d.name, d.path, d.kind, d.default, tuple(d.values), buckets, 0, {}, {}, constrained)


def _set_index(
    slot: int,
    d: DimensionDef,
    per_rule: list[list[CheckedConstraint]],
    residuals: dict[int, list[Residual]],
    nbytes: int,
    constrained: bool,
) -> DimensionIndex:
    free: list[int] = []
    positive: dict[str, list[int]] = {v: [] for v in d.values}
    negative: dict[str, list[int]] = {v: [] for v in d.values}
    for i, cs in enumerate(per_rule):
        pos = [c for c in cs if c.positive]
        if pos:
            for v in pos[0].values:
                positive[v].append(i)
            for extra in pos[1:]:
                residuals.setdefault(i, []).append((slot, frozenset(extra.values)))
        else:
            free.append(i)
        for c in cs:
            if not c.positive:
                for v in c.values:
                    negative[v].append(i)
    return DimensionIndex(
        slot,
        d.name,
        d.path,
        d.kind,
        None,
        tuple(d.values),
        {},
        _bits(free, nbytes),
        {v: _bits(ix, nbytes) for v, ix in positive.items()},
        {v: _bits(ix, nbytes) for v, ix in negative.items()},
        constrained,
    )
