"""Policy tests: run the `test` blocks of a policy set (LANGUAGE.md §7) and measure coverage.

Input: a compiled `PolicySet` (its tests travel with it). Output: one `TestOutcome` per block
with every expectation checked (not only the first that fails) and the decision actually made,
traced, so the author sees at once what the rules did instead. `coverage()` then reads those
outcomes back: which rules no test made match, and which constraints and conditions the tests
never saw both true and false — a rule whose `unless` was never true in any test has an
exception nobody has checked.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from cxpolicy.engine.decision import Decision
from cxpolicy.engine.evaluation import rule_verdict, seen
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.kinds import ErrorKind
from cxpolicy.lang.source import Span
from cxpolicy.tools.explain import as_decided, evaluate_rule

__all__ = [
    "ClauseCoverage",
    "Coverage",
    "Expectation",
    "ItemCoverage",
    "RuleCoverage",
    "TestOutcome",
    "clause_coverage",
    "coverage",
    "resolve_rule_id",
    "run_tests",
]


@dataclass(frozen=True)
class Expectation:
    """One `expect` line and what the decision had instead: the unit of a test failure."""

    kind: str  # effect | rules | rules_includes | rules_excludes | redact | escalate_to
    want: tuple[str, ...]
    got: tuple[str, ...]
    line: int

    @property
    def ok(self) -> bool:
        if self.kind == "effect":
            return self.want == self.got
        if self.kind == "rules_includes":  # these rules decided, whatever else did too
            return set(self.want) <= set(self.got)
        if self.kind == "rules_excludes":  # none of these rules decided
            return not set(self.want) & set(self.got)
        return set(self.want) == set(self.got)

    @property
    def source(self) -> str:
        """The expectation as the author wrote it."""
        if self.kind == "effect":
            return f"expect {self.want[0]}"
        return f"expect {self.kind.replace('_', ' ')} {_fmt(self.want)}"

    def message(self) -> str:
        if self.kind == "effect":
            return f"expected effect {self.want[0]}, got {self.got[0]}"
        want, got = set(self.want), set(self.got)
        if self.kind == "rules_includes":
            return f"expected rules to include {_fmt(want)}, got {_fmt(got)} (missing {_fmt(want - got)})"
        if self.kind == "rules_excludes":
            return f"expected rules to exclude {_fmt(want)}, got {_fmt(got)} (present {_fmt(want & got)})"
        return f"expected {self.kind} {_fmt(want)}, got {_fmt(got)}" + _delta(want, got)


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
    expectations: list[Expectation] = field(default_factory=list)
    request: Any = None
    seconds: float = 0.0
    why_not: dict[str, list[str]] = field(default_factory=dict)  # expected rule → what failed


def _fmt(values: Sequence[str] | set[str]) -> str:
    return "[" + ", ".join(sorted(values)) + "]"


# The `signals` keys the detectors fill (cxpolicy.signals.DETECTOR_KEYS).
_DETECTED = frozenset({"pii", "pii_spans", "prompt_injection", "truncated", "error"})


def _pins_signals(request: Any) -> bool:
    """Whether a test request states the detectors' output itself (`"signals": {"error": …}`):
    then it is decided as written, without running the detectors over its text, so a test
    of the detector-failure path stays a test of that path with detection on by default."""
    signals = request.get("signals") if isinstance(request, dict) else None
    return isinstance(signals, dict) and not _DETECTED.isdisjoint(signals)


def run_tests(policy: PolicySet, pattern: str | None = None, *, include_shipped: bool = True) -> list[TestOutcome]:
    """Run every test block (whose name matches `pattern`, a substring or glob)."""
    shipped_files = {s.path for s in policy.sources if s.shipped}
    out: list[TestOutcome] = []
    ids = frozenset(r.id for r in policy.rules)
    for t in policy.tests:
        if pattern and not (pattern in t.name or fnmatch.fnmatch(t.name, pattern)):
            continue
        is_shipped = t.file in shipped_files
        if is_shipped and not include_shipped:
            continue
        block = t.block
        request = block.requests[0] if block.requests else None
        start = time.perf_counter()
        decision = policy.decide(request, explain=True, detect=False if _pins_signals(request) else None)
        seconds = time.perf_counter() - start
        rules_got = tuple(r.rule for r in decision.reasons)
        got_by_kind: dict[str, tuple[str, ...]] = {
            "effect": (decision.effect.value,),
            "rules": rules_got,
            "rules_includes": rules_got,
            "rules_excludes": rules_got,
            "redact": tuple(r.data_class for r in decision.redact),
            "escalate_to": tuple(decision.escalate_to),
        }
        expectations = [
            Expectation(e.kind, _wanted(ids, t.package, e), got_by_kind.get(e.kind, ()), e.span.line)
            for e in block.expects
        ]
        failures = [e.message() for e in expectations if not e.ok]
        outcome = TestOutcome(
            t.name, t.file, t.span, not failures, failures, decision, is_shipped, expectations, request, seconds
        )
        wanted = [e for e in expectations if e.kind in ("rules", "rules_includes") and not e.ok]
        missing = {r for e in wanted for r in set(e.want) - set(e.got)}
        if missing and isinstance(request, dict) and not any(x.kind == ErrorKind.REQUEST for x in decision.errors):
            outcome.why_not = _why_not(policy, request, decision, sorted(missing))
        out.append(outcome)
    return out


def resolve_rule_id(ids: Collection[str], package: str | None, rid: str) -> str | None:
    """The full id `rid` names from a test in `package`: itself when a rule has that id,
    else `package.rid` when that is a rule (a short id), else None (lint reports it, CXP619)."""
    if rid in ids:
        return rid
    if package is not None and f"{package}.{rid}" in ids:
        return f"{package}.{rid}"
    return None


def _wanted(ids: Collection[str], package: str | None, e: Any) -> tuple[str, ...]:
    """An expectation's values, with short rule ids resolved within the test's package."""
    values = tuple(v.text for v in e.values)
    if not e.kind.startswith("rules"):
        return values
    return tuple(resolve_rule_id(ids, package, v) or v for v in values)


def _why_not(
    policy: PolicySet, request: dict[str, Any], decision: Decision, rule_ids: Sequence[str]
) -> dict[str, list[str]]:
    """For each expected rule that did not match: the constraints and conditions that failed."""
    request, act = as_decided(policy, request, decision)
    out: dict[str, list[str]] = {}
    for rid in rule_ids:
        rule = policy.rule(rid)
        if rule is None:
            out[rid] = ["no rule has this id in the policy set"]
            continue
        story = evaluate_rule(policy, rule, request, act, False)
        out[rid] = [
            f"{i.text if i.kind == 'constraint' else f'{i.kind} {i.text}'}   [{i.seen}]" for i in story.failing
        ] or ["(every constraint and condition held)"]
    return out


def _delta(want: set[str], got: set[str]) -> str:
    parts = []
    if want - got:
        parts.append("missing " + _fmt(want - got))
    if got - want:
        parts.append("unexpected " + _fmt(got - want))
    return f" ({'; '.join(parts)})" if parts else ""


# ---------------------------------------------------------------------------------- coverage
@dataclass
class ItemCoverage:
    """A constraint or condition of a rule, and the truth values the tests made it take."""

    kind: str  # constraint | when | unless
    text: str
    location: str
    seen_true: int = 0
    seen_false: int = 0
    seen_error: int = 0

    @property
    def both_ways(self) -> bool:
        return self.seen_true > 0 and self.seen_false > 0

    def missing(self) -> str:
        """What no test has shown yet, in words: `never false`, `never evaluated`."""
        if not self.seen_true and not self.seen_false:
            return "never evaluated" if not self.seen_error else "only ever failed to evaluate"
        return "never false" if not self.seen_false else "never true"


@dataclass
class RuleCoverage:
    rule: str
    location: str
    matched_by: list[str] = field(default_factory=list)
    items: list[ItemCoverage] = field(default_factory=list)

    @property
    def half_exercised(self) -> list[ItemCoverage]:
        return [i for i in self.items if not i.both_ways]


@dataclass
class Coverage:
    rules: list[RuleCoverage]
    tests: int

    @property
    def unmatched(self) -> list[RuleCoverage]:
        return [r for r in self.rules if not r.matched_by]

    @property
    def items(self) -> list[ItemCoverage]:
        return [i for r in self.rules for i in r.items]

    def to_dict(self) -> dict[str, Any]:
        items = self.items
        return {
            "rules": len(self.rules),
            "rules_matched": len(self.rules) - len(self.unmatched),
            "items": len(items),
            "items_both_ways": len([i for i in items if i.both_ways]),
            "unmatched_rules": [{"rule": r.rule, "at": r.location} for r in self.unmatched],
            "half_exercised": [
                {
                    "rule": r.rule,
                    "kind": i.kind,
                    "text": i.text,
                    "at": i.location,
                    "true": i.seen_true,
                    "false": i.seen_false,
                    "errors": i.seen_error,
                    "missing": i.missing(),
                }
                for r in self.rules
                for i in r.half_exercised
            ],
        }


def coverage(policy: PolicySet, outcomes: Sequence[TestOutcome], *, shipped: bool | None = None) -> Coverage:
    """Which rules the tests made match, and which constraints/conditions they saw both ways.

    A constraint counts for every valid test request (it is a fact about the request). A
    condition counts only when its rule's constraints all held, because that is the only time
    the engine runs it. By default the rules measured are the user's (not shipped packs'),
    unless the policy set has only shipped rules (`cxpolicy test --pack hipaa --coverage`).
    """
    if shipped is None:
        shipped = all(r.checked.shipped for r in policy.rules)
    rules = [r for r in policy.rules if shipped or not r.checked.shipped]
    table: dict[str, RuleCoverage] = {}
    for r in rules:
        rc = RuleCoverage(r.id, r.location)
        rc.items += [ItemCoverage("constraint", c.text, str(c.span)) for c in r.checked.constraints]
        rc.items += [ItemCoverage(cond.kind, cond.text, str(cond.span)) for cond in r.conditions]
        table[r.id] = rc
    counted = 0
    for o in outcomes:
        d = o.decision
        if d is None or d.trace is None or d.trace.request_errors or not isinstance(o.request, dict):
            continue
        counted += 1
        looked_at = seen(policy.vocabulary, o.request, d.signals)  # with detected data classes
        matched = {reason.rule for reason in d.reasons}
        for r in rules:
            rc = table[r.id]
            if r.id in matched:
                rc.matched_by.append(o.name)
            verdict = rule_verdict(r, looked_at)
            n = len(verdict.constraints)
            for item, c in zip(rc.items[:n], verdict.constraints, strict=True):
                if c.holds:
                    item.seen_true += 1
                else:
                    item.seen_false += 1
            if not verdict.constraints_hold:
                continue
            for item, cc in zip(rc.items[n:], verdict.conditions, strict=True):
                if cc.value is None:
                    item.seen_error += 1
                elif cc.value:
                    item.seen_true += 1
                else:
                    item.seen_false += 1
    return Coverage(list(table.values()), counted)


# --------------------------------------------------------------------------- clause coverage
@dataclass
class ClauseCoverage:
    """A `cite` declared by a pack: the rules that cite it, and the tests that made one match."""

    pack: str
    name: str
    text: str
    location: str
    rules: list[str] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if not self.rules:
            return "no rule"
        return "covered" if self.tests else "no test"

    def to_dict(self) -> dict[str, Any]:
        return {
            "pack": self.pack,
            "cite": self.name,
            "text": self.text,
            "at": self.location,
            "status": self.status,
            "rules": self.rules,
            "tests": self.tests,
        }


def clause_coverage(policy: PolicySet, outcomes: Sequence[TestOutcome], packs: Sequence[str]) -> list[ClauseCoverage]:
    """Which cited clauses of the named packs have a rule, and a test whose decision matched it.

    A clause is a `cite NAME = "..."` declared in one of the pack's files; a rule anywhere in
    the set (a pack's or the user's) covers it by citing it; a test covers that rule when its
    decision lists the rule among its reasons. This is what a compliance reviewer asks: for
    each paragraph we claim to implement, where is the rule, and where is the proof it fires?
    """
    pack_of = {s.path: s.pack for s in policy.sources if s.pack}
    matched_by: dict[str, list[str]] = {}
    for o in outcomes:
        if o.decision is not None:
            for reason in o.decision.reasons:
                matched_by.setdefault(reason.rule, []).append(o.name)
    out: list[ClauseCoverage] = []
    for name, (text, span) in policy.checked.cites.items():
        pack = pack_of.get(span.file)
        if pack not in packs:
            continue
        cc = ClauseCoverage(pack or "", name, text, f"{span.file}:{span.line}")
        for r in policy.rules:
            if any(n == name for n, _ in r.checked.cites):
                cc.rules.append(r.id)
                cc.tests += [t for t in matched_by.get(r.id, []) if t not in cc.tests]
        out.append(cc)
    order = {p: i for i, p in enumerate(packs)}
    out.sort(key=lambda c: (order[c.pack], c.location))
    return out
