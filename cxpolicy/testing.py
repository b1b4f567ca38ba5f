"""Policy tests: run the `test` blocks of a policy set (LANGUAGE.md §7).

Input: a compiled `PolicySet` (its tests travel with it). Output: one `TestOutcome` per block
with the failed expectations spelled out and the decision actually made, so the author sees
at once what the rules did instead.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field

from cxpolicy.decision import Decision
from cxpolicy.engine import PolicySet
from cxpolicy.source import Span

__all__ = ["TestOutcome", "run_tests"]


@dataclass
class TestOutcome:
    __test__ = False  # not a pytest test class

    name: str
    file: str
    span: Span
    passed: bool
    failures: list[str] = field(default_factory=list)
    decision: Decision | None = None
    shipped: bool = False


def _fmt(values: Sequence[str] | set[str]) -> str:
    return "[" + ", ".join(sorted(values)) + "]"


def run_tests(policy: PolicySet, pattern: str | None = None, *, include_shipped: bool = True) -> list[TestOutcome]:
    """Run every test block (whose name matches `pattern`, a substring or glob)."""
    shipped_files = {s.path for s in policy.sources if s.shipped}
    out: list[TestOutcome] = []
    for t in policy.tests:
        if pattern and not (pattern in t.name or fnmatch.fnmatch(t.name, pattern)):
            continue
        is_shipped = t.file in shipped_files
        if is_shipped and not include_shipped:
            continue
        block = t.block
        request = block.requests[0] if block.requests else None
        decision = policy.decide(request, explain=True)
        failures: list[str] = []
        for e in block.expects:
            want = [v.text for v in e.values]
            if e.kind == "effect":
                if decision.effect.value != want[0]:
                    failures.append(f"expected effect {want[0]}, got {decision.effect.value}")
            elif e.kind == "rules":
                got = {r.rule for r in decision.reasons}
                if got != set(want):
                    failures.append(f"expected rules {_fmt(want)}, got {_fmt(got)}" + _delta(set(want), got))
            elif e.kind == "redact":
                got = {r.data_class for r in decision.redact}
                if got != set(want):
                    failures.append(f"expected redact {_fmt(want)}, got {_fmt(got)}" + _delta(set(want), got))
            elif e.kind == "escalate_to":
                got = set(decision.escalate_to)
                if got != set(want):
                    failures.append(
                        f"expected escalate_to {_fmt(want)}, got {_fmt(got)}" + _delta(set(want), got)
                    )
        out.append(TestOutcome(t.name, t.file, t.span, not failures, failures, decision, is_shipped))
    return out


def _delta(want: set[str], got: set[str]) -> str:
    parts = []
    if want - got:
        parts.append("missing " + _fmt(want - got))
    if got - want:
        parts.append("unexpected " + _fmt(got - want))
    return f" ({'; '.join(parts)})" if parts else ""
