"""The region partition and the diff against brute force: every combination of a small vocabulary.

The oracle is the engine itself: each point of the space becomes a request, both revisions
decide it, and the regions (and the diff built from them) must say exactly what happened —
for the condition outcomes that request actually produced.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxpolicy.engine.evaluation import activation, condition_verdict
from cxpolicy.engine.loader import load_text
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.tools.analysis import DECISION, Region, Space, assignment_for, partition
from cxpolicy.tools.diff import Outcome, diff, outcome_of

EXAMPLES = int(os.environ.get("CXPOLICY_DIFF_EXAMPLES", "40"))

VOCAB = """
dimension action: {a, b, c}
dimension actor at actor.kind: {ai, human}
dimension risk at customer.risk_tier: ordered {low, med, high}
dimension data_class at data_classes: set {pan, cvv, ssn}
attribute context.f: bool = false
attribute context.g: bool = false
"""
VALUES = {"action": ["a", "b", "c"], "actor": ["ai", "human"], "risk": ["low", "med", "high"]}
CLASSES = ["pan", "cvv", "ssn"]
# `context.h` is undeclared: absent, its condition fails to evaluate (the fail-safe decides).
CONDITIONS = ["when context.f", "unless context.g", "when context.f && !context.g", "when context.h > 3"]
CONTEXTS = [
    {"f": f, "g": g, **({} if h is None else {"h": h})}
    for f in (False, True)
    for g in (False, True)
    for h in (None, 1, 5)
]


# ------------------------------------------------------------------------------ strategies
@st.composite
def constraint(draw: st.DrawFn) -> str:
    dim = draw(st.sampled_from(["action", "actor", "risk", "data_class"]))
    values = CLASSES if dim == "data_class" else VALUES[dim]
    ops = ["=", "!=", "in", "not in"] + (["<", "<=", ">", ">="] if dim == "risk" else [])
    op = draw(st.sampled_from(ops))
    if op in ("in", "not in"):
        picked = draw(st.lists(st.sampled_from(values), min_size=1, max_size=len(values), unique=True))
        return f"{dim} {op} [{', '.join(picked)}]"
    return f"{dim} {op} {draw(st.sampled_from(values))}"


@st.composite
def rule(draw: st.DrawFn, name: str) -> str:
    cs = draw(st.lists(constraint(), max_size=3))
    lines = [f"rule {name} {{"]
    if cs:
        lines.append("  match " + ", ".join(cs))
    if draw(st.integers(0, 3)) == 0:
        lines.append("  " + draw(st.sampled_from(CONDITIONS)))
    positive = [c for c in cs if c.startswith("data_class =") or c.startswith("data_class in")]
    effects = ["allow", "require_otp", "escalate", 'escalate to "q1"', 'escalate to "q2"']
    redacts = [f"redact [{c}] as {s}" for c in CLASSES for s in ("full", "token", "last4")]
    redacts.append("redact [pan, ssn] as token")
    if positive:
        redacts += ["redact as last4", "redact as full"]
    lines.append("  decide " + draw(st.sampled_from(effects + redacts)))
    lines.append("}")
    return "\n".join(lines)


@st.composite
def revisions(draw: st.DrawFn) -> tuple[str, str]:
    common = [draw(rule(f"c{i}")) for i in range(draw(st.integers(0, 4)))]
    old_only = [draw(rule(f"m{i}")) for i in range(draw(st.integers(0, 3)))]
    new_only = [draw(rule(f"m{i}")) for i in range(draw(st.integers(0, 3)))]
    defaults = ["", "default allow", "default require_otp", 'default escalate to "q1"']
    old_default, new_default = draw(st.sampled_from(defaults)), draw(st.sampled_from(defaults))
    new_vocab = VOCAB
    if draw(st.booleans()):
        new_vocab += "extend dimension action: {d}\n"
    if draw(st.booleans()):
        new_vocab += "extend dimension data_class: {pin}\n"
    old = "\n".join([VOCAB, "package p", old_default, *common, *old_only])
    new = "\n".join([new_vocab, "package p", new_default, *common, *new_only])
    return old, new


# ------------------------------------------------------------------------------ brute force
def points(space: Space) -> Iterator[tuple[Any, ...]]:
    domains: list[list[Any]] = []
    for a in space.axes:
        if a.is_set:
            subsets = (itertools.combinations(a.values, n) for n in range(len(a.values) + 1))
            domains.append([frozenset(c) for group in subsets for c in group])
        else:
            domains.append(list(a.values))
    return itertools.product(*domains)


def request(space: Space, point: tuple[Any, ...], context: dict[str, Any]) -> dict[str, Any]:
    req: dict[str, Any] = {"context": dict(context)}
    for a, v in zip(space.axes, point, strict=True):
        cur = req
        for k in a.path[:-1]:
            cur = cur.setdefault(k, {})
        cur[a.path[-1]] = sorted(v) if a.is_set else v
    return req


def locate(space: Space, regions: list[Region], point: tuple[Any, ...]) -> Region:
    hits = [r for r in regions if space.contains(r.cells, point)]
    assert len(hits) == 1, f"{point} lies in {len(hits)} regions"
    return hits[0]


def check_partition(old: PolicySet, new: PolicySet, *, prune: bool) -> None:
    space = Space(old, new)
    decided = {}
    for point in points(space):
        for i, context in enumerate(CONTEXTS):
            req = request(space, point, context)
            decided[point, i] = (req, outcome_of(old.decide(req)), outcome_of(new.decide(req)))
    for aspect in space.aspects():
        regions = list(partition(space, aspect, prune_equal=prune))
        assert sum(r.size for r in regions) == space.size(space.top())
        for point in points(space):
            region = locate(space, regions, point)
            for i in range(len(CONTEXTS)):
                req, o, n = decided[point, i]
                actual = (o.project(aspect), n.project(aspect))
                if region.pruned:
                    assert actual[0] == actual[1], (aspect, space.describe(region.cells), req)
                else:
                    got = region.outcomes[assignment_for(space, aspect, region, req)]
                    assert got == actual, (aspect, space.describe(region.cells), req)


def aspects(o: Outcome, n: Outcome) -> dict[str, tuple[str, str]]:
    """What changed at one point, per aspect, in the texts the diff prints."""
    out: dict[str, tuple[str, str]] = {}
    for aspect in {DECISION, *(c for c, _ in o.redact | n.redact)}:
        a, b = o.project(aspect), n.project(aspect)
        if a != b:
            out[aspect] = (a.text(), b.text())
    return out


def check_diff(old: PolicySet, new: PolicySet) -> None:
    report = diff(old, new)
    space = report.space
    for point in points(space):
        boxes = [c for c in report.changes if space.contains(c.cells, point)]
        for context in CONTEXTS:
            req = request(space, point, context)
            changed = aspects(outcome_of(old.decide(req)), outcome_of(new.decide(req)))
            for aspect, (was, now) in changed.items():
                found = [c for c in boxes if c.aspect == aspect]
                assert len(found) == 1, (aspect, req, [space.describe(c.cells) for c in found])
                texts = {(t.old, t.new) for t, _ in found[0].transitions}
                assert (was, now) in texts, (aspect, req, texts)
            for c in boxes:
                if c.aspect not in changed:  # only a conditional box may hold unchanged points
                    assert c.conditional, (space.describe(c.cells), req)
                elif not c.conditional:
                    assert {(t.old, t.new) for t, _ in c.transitions} == {changed[c.aspect]}


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(revisions())
def test_regions_equal_brute_force(texts: tuple[str, str]) -> None:
    old, new = load_text(texts[0], "old.cxp"), load_text(texts[1], "new.cxp")
    check_partition(old, new, prune=True)
    check_partition(old, new, prune=False)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(revisions())
def test_diff_equals_brute_force(texts: tuple[str, str]) -> None:
    check_diff(load_text(texts[0], "old.cxp"), load_text(texts[1], "new.cxp"))


# ------------------------------------------------------------------------------ unit cases
POLICY = VOCAB + """
package p
rule ai_refund { match action = a, actor = ai
  decide escalate to "desk" }
rule otp { match risk >= med
  when !context.f
  decide require_otp }
rule mask { match data_class in [pan, cvv]
  decide redact as last4 }
"""


def test_same_policy_prunes_to_one_region_per_aspect() -> None:
    p = load_text(POLICY)
    space = Space(p, p)
    assert space.aspects() == [DECISION, "pan", "cvv"]
    for aspect in space.aspects():
        regions = list(partition(space, aspect))
        assert len(regions) == 1 and regions[0].pruned
    assert diff(p, p).changes == []


def test_decision_table_without_pruning_is_exact_and_small() -> None:
    p = load_text(POLICY)
    space = Space(p, p)
    regions = list(partition(space, DECISION, prune_equal=False))
    # action=a × actor=ai, risk at med, pan/cvv presence for the redact: fewer than 3*2*3*8 boxes.
    assert len(regions) < 3 * 2 * 3 * 8
    # The masking of `pan` depends on its presence alone.
    assert len(list(partition(space, "pan", prune_equal=False))) == 2
    check_partition(p, p, prune=False)


def test_unchanged_rule_condition_is_shared_not_reported() -> None:
    p = load_text(POLICY)
    q = load_text(POLICY.replace('to "desk"', 'to "refunds"'))
    report = diff(p, q)
    assert [space_text(report, c) for c in report.changes] == ["action=a actor=ai"]
    (change,) = report.changes
    assert not change.conditional
    assert change.transitions[0][0].text() == "escalate to desk → escalate to refunds (~ rule p.ai_refund)"


def test_condition_decides_is_marked() -> None:
    no_mask = POLICY.split("rule mask")[0] + "default allow\n"
    p = load_text(no_mask)
    q = load_text(no_mask + "rule block_b { match action = b\n decide escalate }\n")
    report = diff(p, q)
    texts = {(space_text(report, c), t.text(), cond) for c in report.changes for t, cond in c.transitions}
    assert texts == {
        ("action=b risk>=med", "require_otp → escalate (+ rule p.block_b)", "if `!context.f` [p.otp]"),
        ("action=b risk>=med", "allow (default) → escalate (+ rule p.block_b)", "unless `!context.f` [p.otp]"),
        ("action=b risk=low", "allow (default) → escalate (+ rule p.block_b)", None),
    }
    assert all(c.conditional == ("risk>=med" in space_text(report, c)) for c in report.changes)


def test_condition_verdict_matches_variable() -> None:
    p = load_text(POLICY)
    rule = p.rule("p.otp")
    assert rule is not None
    req = {"action": "b", "actor": {"kind": "ai"}, "customer": {"risk_tier": "high"}}
    assert condition_verdict(rule, activation(p.vocabulary, req)) == (True, None)


def test_extended_vocabulary_is_an_invalid_to_valid_change() -> None:
    p = load_text(POLICY)
    q = load_text(POLICY + "extend dimension action: {d}\n")
    report = diff(p, q)
    decisions = [c for c in report.changes if c.aspect is DECISION]
    assert decisions and all(space_text(report, c).startswith("action=d ") for c in decisions)
    assert all(t.old == "escalate (invalid request)" for c in decisions for t, _ in c.transitions)
    assert any(c.loosens for c in decisions)  # escalate → redact / require_otp for the new value
    assert sum(c.size for c in decisions) == report.space.size(report.space.top()) // 4


def space_text(report: Any, change: Any) -> str:
    return str(report.space.describe(change.cells))


def test_condition_error_is_a_third_state_where_it_splits_rules() -> None:
    base = VOCAB + """
package p
default require_otp
rule small_ok { match action = a
  when context.h > 3
  decide allow }
"""
    old = load_text(base)
    new = load_text(base + "rule small_stop { match action = a\n  when context.h > 3\n  decide escalate }\n")
    report = diff(old, new)
    (change,) = report.changes
    assert space_text(report, change) == "action=a"
    got = {(t.text(), cond) for t, cond in change.transitions}
    assert got == {
        ("allow → escalate (+ rule p.small_stop)", "if `context.h > 3` [p.small_ok, p.small_stop]"),
        (
            "require_otp (default) → escalate (+ rule p.small_stop)",
            "if `context.h > 3` fails to evaluate [p.small_ok, p.small_stop]",
        ),
    }
    check_diff(old, new)


def test_set_cell_union_is_exact() -> None:
    """`_union` (which merges boxes for display) returns a cell only when it is the union.

    Exhaustive over four values, each present, absent, free, or one of the `some` values.
    """
    from cxpolicy.tools.analysis import Cell
    from cxpolicy.tools.diff import _union

    values = ("a", "b", "c", "d")
    subsets = [frozenset(c) for n in range(5) for c in itertools.combinations(values, n)]
    cells = []
    for roles in itertools.product("pafs", repeat=len(values)):
        pick = {r: frozenset(v for v, x in zip(values, roles, strict=True) if x == r) for r in "pas"}
        if len(pick["s"]) != 1:  # a one-value `some` is written as present
            cells.append(Cell(pick["p"], pick["a"], pick["s"]))

    def members(c: Cell) -> frozenset[frozenset[str]]:
        return frozenset(s for s in subsets if c.values <= s and not c.absent & s and (not c.some or c.some & s))

    joined = 0
    for x in cells:
        for y in cells:
            z = _union(x, y)
            if z is not None:
                joined += 1
                assert members(z) == members(x) | members(y), (x, y, z)
    assert joined > 500  # the shapes the partition leaves do join
