"""Same-field conditions in diff: impossible condition combinations are pruned, threshold
changes read as intervals — checked against brute force (every request deciding on both
revisions, with field values on, between and around every literal)."""

from __future__ import annotations

import itertools
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxpolicy.engine.loader import load_text
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.tools.analysis import DECISION
from cxpolicy.tools.diff import diff, outcome_of
from cxpolicy.tools.diff_intervals import Atom, atom_of, threshold_changes

EXAMPLES = int(os.environ.get("CXPOLICY_DIFF_EXAMPLES", "40"))
VOCAB = """
dimension action: {a, b}
dimension actor at actor.kind: {ai, human}
"""
CONDITIONS = [
    *(f"when context.n {op} {k}" for op in ("<", "<=", ">", ">=", "==", "!=") for k in (3, 5, 8)),
    "unless context.n > 5", "unless context.n <= 3", "when context.n in [3, 5]", "when 5 < context.n",
    'when context.s == "x"', 'unless context.s != "y"', 'when context.s in ["x", "y"]',
]  # fmt: skip
N_VALUES: list[Any] = [None, "x", 2, 3, 3.5, 4, 5, 5.0, 6, 8, 9]
S_VALUES: list[Any] = [None, "x", "y", "z"]


@st.composite
def rule(draw: st.DrawFn, name: str) -> str:
    lines = [f"rule {name} {{"]
    if draw(st.booleans()):
        lines.append(f"  match {draw(st.sampled_from(['action = a', 'action = b', 'actor = ai']))}")
    for cond in draw(st.lists(st.sampled_from(CONDITIONS), max_size=1)):  # one condition: an atom
        lines.append("  " + cond)
    lines.append("  decide " + draw(st.sampled_from(["allow", "require_otp", "escalate", 'escalate to "q"'])))
    return "\n".join([*lines, "}"])


@st.composite
def revisions(draw: st.DrawFn) -> tuple[str, str]:
    def policy(rules: list[str]) -> str:
        return VOCAB + "package p\ndefault allow\n" + "\n".join(rules) + "\n"

    old = [draw(rule(f"r{i}")) for i in range(draw(st.integers(1, 3)))]
    new = list(old)
    i = draw(st.integers(0, len(new) - 1))
    new[i] = draw(rule(f"r{i}"))  # one rule rewritten: often only its threshold
    return policy(old), policy(new)


def _requests(n_values: list[Any]) -> list[dict[str, Any]]:
    out = []
    for action, actor, n, s in itertools.product(["a", "b"], ["ai", "human"], n_values, S_VALUES):
        ctx = {k: v for k, v in (("n", n), ("s", s)) if v is not None}
        out.append({"action": action, "actor": {"kind": actor}, "context": ctx})
    return out


def check(old: PolicySet, new: PolicySet, n_values: list[Any] = N_VALUES) -> None:
    report = diff(old, new)
    space = report.space
    realised: set[tuple[int, str, str]] = set()
    for req in _requests(n_values):
        was, now = outcome_of(old.decide(req)), outcome_of(new.decide(req))
        o, n = was.project(DECISION).text(), now.project(DECISION).text()
        point = (req["action"], req["actor"]["kind"])
        boxes = [(i, c) for i, c in enumerate(report.changes) if space.contains(c.cells, point)]
        if was.project(DECISION) != now.project(DECISION):  # complete: every change is reported, in its box
            (found,) = [(i, c) for i, c in boxes]
            assert (o, n) in {(t.old, t.new) for t, _ in found[1].transitions}, (req, found[1].transitions)
            realised.add((found[0], o, n))
    for i, c in enumerate(report.changes):  # pruned: every transition left happens to some request
        for t, _ in c.transitions:
            assert (i, t.old, t.new) in realised, (space.describe(c.cells), t.text(), report.changes)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(revisions())
def test_pruned_diff_equals_brute_force(texts: tuple[str, str]) -> None:
    check(load_text(texts[0], "old.cxp"), load_text(texts[1], "new.cxp"))


def test_the_threshold_change_is_one_line_with_its_interval() -> None:
    head = VOCAB + "package p\ndefault allow\n"
    head += "rule big {\n  match action = a\n  when context.n > %s\n  decide escalate\n}\n"
    old, new = load_text(head % 50000, "o.cxp"), load_text(head % 100000, "n.cxp")
    report = diff(old, new)
    (change,) = report.changes
    (pair,) = change.transitions
    t, cond = pair
    assert (t.old, t.new) == ("escalate", "allow (default)") and t.loosens
    assert cond == "for 50,000 < context.n ≤ 100,000 [p.big]"
    assert threshold_changes(old, new, report.rules_modified) == ["p.big: when context.n above 50,000 → above 100,000"]
    check(old, new, [None, "x", 0, 50000, 50000.5, 75000, 100000, 100000.5, 10**6])


def test_atoms() -> None:
    assert atom_of("context.n > 5") == Atom("context.n", ">", (("num", 5.0),))
    assert atom_of("5 < context.n") == Atom("context.n", ">", (("num", 5.0),))
    assert atom_of('context.s in ["x", "y"]') == Atom("context.s", "in", (("str", "x"), ("str", "y")))
    assert atom_of("context.n > 5 && context.n < 9") is None
    assert atom_of('context.s > "a"') is None  # text ordering is not an interval here
    assert atom_of("size(context.l) > 5") is None


MIXED = VOCAB + """attribute context.f: bool = false
package p
default allow
rule big {
  match action = a
  when context.n > %s
  decide escalate
}
rule flagged {
  match action = a
  when context.f
  decide require_otp
}
"""


def test_an_interval_with_another_rule_s_condition_beside_it_says_exactly_when() -> None:
    old, new = load_text(MIXED % 50000, "o.cxp"), load_text(MIXED % 100000, "n.cxp")
    (change,) = diff(old, new).changes
    got = {(t.new, cond) for t, cond in change.transitions}
    assert got == {
        ("require_otp", "for 50,000 < context.n ≤ 100,000 [p.big] and if `context.f` [p.flagged]"),
        ("allow (default)", "for 50,000 < context.n ≤ 100,000 [p.big] and unless `context.f` [p.flagged]"),
    }
    for n in (0, 50000, 50000.5, 75000, 100000, 100001):  # brute force: exactly there, nowhere else
        for f in (False, True):
            req = {"action": "a", "actor": {"kind": "ai"}, "context": {"n": n, "f": f}}
            was, now = outcome_of(old.decide(req)), outcome_of(new.decide(req))
            inside = 50000 < n <= 100000
            assert (was != now) == inside, req
            if inside:
                assert now.effect.value == ("require_otp" if f else "allow")
