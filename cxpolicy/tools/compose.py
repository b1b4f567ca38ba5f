"""Policy tests that compose: each test runs against the policy set it was written for.

Input: the user's paths, the packs named on the command line, a test-name pattern. Output: a
`ComposedRun`: one `TestOutcome` per test block, decided by its *home* set, and the
`Interaction`s: tests whose decision changes when the organisation's rules and the packs
are loaded together.

Why: a pack's tests were written against the pack alone (its baseline rule, no `allow` of
yours); your tests were written against your files and the packs they `use`. Loading both
with `--pack` used to fail both sides for reasons that are not bugs in either (a pack's
baseline rule appearing in your `expect rules`; your `allow` rule appearing in the pack's).
What *is* worth knowing is where the combination decides differently from either part:
that is reported as its own finding, with the effect and rules on each side.

Home sets: a test in a user file runs against the user's files (plus what they `use`); if
those do not compile without the command-line packs (they rely on a pack's vocabulary),
against the whole set. A test of a shipped pack runs against that pack alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cxpolicy.engine.loader import load
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.lang.source import PolicyError
from cxpolicy.tools.testing import TestOutcome, run_tests

__all__ = ["ComposedRun", "Interaction", "run_composed"]


@dataclass(frozen=True)
class Interaction:
    """A test whose decision in the combined set differs from its decision at home."""

    test: str
    file: str
    line: int
    home: str  # "your rules" or "pack NAME"
    effect_alone: str
    effect_together: str
    rules_added: tuple[str, ...]  # rules that decided only in the combined set
    rules_dropped: tuple[str, ...]  # rules that decided only at home
    still_passes: bool  # whether the test's expectations also hold in the combined set

    def text(self) -> str:
        """One finding, in words: where the test is, what changed, and by which rules."""
        parts = []
        if self.effect_alone != self.effect_together:
            parts.append(f"effect {self.effect_alone} → {self.effect_together}")
        if self.rules_added:
            parts.append("also decided by " + ", ".join(self.rules_added))
        if self.rules_dropped:
            parts.append("no longer decided by " + ", ".join(self.rules_dropped))
        verdict = "its expectations still hold" if self.still_passes else "its expectations no longer hold"
        where = f'{self.file}:{self.line}: "{self.test}" (written for {self.home})'
        return f"{where}: {'; '.join(parts)} — {verdict}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "file": self.file,
            "line": self.line,
            "home": self.home,
            "effect_alone": self.effect_alone,
            "effect_together": self.effect_together,
            "rules_added": list(self.rules_added),
            "rules_dropped": list(self.rules_dropped),
            "still_passes": self.still_passes,
        }


@dataclass
class ComposedRun:
    outcomes: list[TestOutcome]
    interactions: list[Interaction] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. "your files need the packs to compile"


def run_composed(
    combined: PolicySet,
    paths: Sequence[str],
    packs: Sequence[str],
    pattern: str | None = None,
    *,
    detect: bool = False,
) -> ComposedRun:
    """Run every test against its home set; compare with the combined set `combined`.

    Packs brought in by `use` count as well as `--pack`: a pack's tests were written for the
    pack alone however it was loaded. With no pack tests in the set, or one pack and nothing
    else, home and combined are the same set and this is `run_tests(combined)`.
    """
    together = run_tests(combined, pattern)
    pack_of = {s.path: s.pack for s in combined.sources if s.shipped}
    tested_packs = list(dict.fromkeys(p for t in combined.tests if (p := pack_of.get(t.file)) is not None))
    if not tested_packs or (not paths and len(set(packs)) == 1):
        return ComposedRun(together)  # one set: home and combined are the same
    run = ComposedRun([])
    homes: dict[str, list[TestOutcome]] = {}  # home label -> outcomes there
    if paths and not packs:
        homes["your rules"] = together  # what the files `use` is part of what they were written for
    elif paths:
        try:
            homes["your rules"] = run_tests(load(list(paths), detect=detect), pattern)
        except PolicyError:
            run.notes.append("your files do not compile without the packs named; their tests ran with the packs")
    for pack in tested_packs:
        homes[f"pack {pack}"] = run_tests(load((), packs=[pack], detect=detect), pattern)
    at_home: dict[tuple[str, int, str], tuple[str, TestOutcome]] = {}
    for label, outcomes in homes.items():
        for o in outcomes:
            mine = (pack_of.get(o.file) is None) if label == "your rules" else (f"pack {pack_of.get(o.file)}" == label)
            if mine:
                at_home.setdefault((o.file, o.span.line, o.name), (label, o))
    for o in together:
        found = at_home.get((o.file, o.span.line, o.name))
        if found is None:  # no home set apart from the combined one
            run.outcomes.append(o)
            continue
        label, home = found
        run.outcomes.append(home)
        interaction = _compare(label, home, o)
        if interaction is not None:
            run.interactions.append(interaction)
    return run


def _compare(label: str, home: TestOutcome, together: TestOutcome) -> Interaction | None:
    a, b = home.decision, together.decision
    if a is None or b is None:  # pragma: no cover - run_tests always decides
        return None
    rules_a = [r.rule for r in a.reasons]
    rules_b = [r.rule for r in b.reasons]
    if a.effect == b.effect and set(rules_a) == set(rules_b):
        return None
    return Interaction(
        test=home.name,
        file=home.file,
        line=home.span.line,
        home=label,
        effect_alone=a.effect.value,
        effect_together=b.effect.value,
        rules_added=tuple(r for r in rules_b if r not in rules_a),
        rules_dropped=tuple(r for r in rules_a if r not in rules_b),
        still_passes=together.passed,
    )
