"""Changes between two policy revisions: the regions whose outcome differs, and a replay.

Input: two `PolicySet`s (and optionally recorded requests). Output: a `DiffReport` — the
changed regions of the dimension space (from `analysis.partition`), merged into as few boxes
as possible, each with the transition(s) it undergoes, the rules that explain them, whether
a condition decides and whether the change loosens the policy; and, for recorded requests,
how many decisions change when replayed on both revisions.

Why both: the static diff is exact over the vocabulary but treats conditions as unknowns;
the replay is exact for the requests you really get, conditions included, but only for them.
A reviewer gating a pull request wants the first, and the second to see how much traffic moves.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cxpolicy.engine.compiler import CompiledRule
from cxpolicy.engine.decision import Decision
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.engine.requests import RequestLine
from cxpolicy.kinds import Effect, ErrorKind, Style
from cxpolicy.tools import diff_intervals
from cxpolicy.tools.analysis import (
    DECISION,
    ERROR,
    FALSE,
    TRUE,
    Aspect,
    Cell,
    Cells,
    Region,
    SideRule,
    Space,
    Verdict,
    aspect_name,
    partition,
)

__all__ = ["Change", "DiffReport", "Outcome", "Replay", "Transition", "diff", "outcome_of", "replay"]

MAX_MERGE = 5000  # beyond this many changed boxes, print them as found rather than merge


@dataclass(frozen=True)
class Outcome:
    """A whole decision as far as a diff cares: what it obliges the caller to do."""

    effect: Effect
    redact: frozenset[tuple[str, Style]] = frozenset()
    queues: frozenset[str] = frozenset()
    invalid: bool = False
    default: bool = field(default=False, compare=False)

    def project(self, aspect: Aspect) -> Verdict:
        if aspect is DECISION:
            return Verdict(DECISION, self.effect, self.queues, self.invalid, default=self.default)
        return Verdict(aspect, style=dict(self.redact).get(aspect))

    def text(self) -> str:
        out = self.project(DECISION).text()
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
        if self.effect.severity < other.effect.severity:
            return True
        mine = dict(self.redact)
        return any(c not in mine or mine[c].strictness < s.strictness for c, s in other.redact)


def outcome_of(d: Decision) -> Outcome:
    return Outcome(
        d.effect,
        frozenset((r.data_class, r.style) for r in d.redact),
        frozenset(d.escalate_to),
        any(e.kind == ErrorKind.REQUEST for e in d.errors),
        d.default_applied,
    )


@dataclass(frozen=True)
class Transition:
    """One way one aspect of the outcome changes, with the rules that make the difference.

    The aspect is `decision` (effect, queues, validity) or a data class (its masking style):
    reporting them apart keeps a changed mask on `card_pan` one line, instead of repeating it
    in every box where the effect happens to differ for other reasons.
    """

    aspect: Aspect
    old: str
    new: str
    rules: tuple[str, ...] = ()  # "+id" now matches, "-id" no longer does, "~id" decides otherwise
    loosens: bool = False

    def text(self) -> str:
        tail = f" ({', '.join(_rule_word(r) for r in self.rules)})" if self.rules else ""
        head = "" if self.aspect is DECISION else f"redact {self.aspect}: "
        return f"{head}{self.old} → {self.new}{tail}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "aspect": aspect_name(self.aspect),
            "old": self.old,
            "new": self.new,
            "rules": list(self.rules),
            "loosens": self.loosens,
        }


def _rule_word(r: str) -> str:
    return {"+": "+ rule ", "-": "- rule ", "~": "~ rule "}[r[0]] + r[1:]


@dataclass
class Change:
    """A box of the space where one aspect of the outcome changes: `(transition, condition)`
    pairs, the condition None when the transition happens whatever the conditions say."""

    aspect: Aspect
    cells: Cells
    size: int
    transitions: tuple[tuple[Transition, str | None], ...]
    partial: bool = False  # too many conditions to enumerate every assignment

    @property
    def conditional(self) -> bool:
        return any(cond is not None for _, cond in self.transitions)

    @property
    def loosens(self) -> bool:
        return any(t.loosens for t, _ in self.transitions)

    @property
    def signature(self) -> tuple[Any, ...]:
        """What must be equal for two boxes to merge: the rules named may differ (they are
        joined), so one change made by different rules in different places reads as one."""
        return (self.aspect, tuple((t.old, t.new, cond) for t, cond in self.transitions), self.partial)


def _join(boxes: Sequence[Change], cells: Cells) -> Change:
    first = boxes[0]
    transitions = []
    for i, (t, cond) in enumerate(first.transitions):
        notes = list(dict.fromkeys(n for b in boxes for n in b.transitions[i][0].rules))
        transitions.append((replace(t, rules=tuple(notes)), cond))
    return replace(first, cells=cells, size=sum(b.size for b in boxes), transitions=tuple(transitions))


@dataclass
class Replay:
    total: int = 0
    changed: int = 0
    loosened: int = 0
    unreadable: int = 0
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: list[tuple[int, Outcome, Outcome]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.total,
            "changed": self.changed,
            "loosened": self.loosened,
            "unreadable": self.unreadable,
            "transitions": [{"old": o, "new": n, "count": c} for (o, n), c in self.transitions.most_common()],
            "examples": [{"line": ln, "old": o.to_dict(), "new": n.to_dict()} for ln, o, n in self.examples],
        }


@dataclass
class DiffReport:
    space: Space
    changes: list[Change]
    total: int  # combinations of dimension values in the union vocabulary
    regions: int  # boxes the partition produced (pruned ones included)
    rules_added: list[str]
    rules_removed: list[str]
    rules_modified: list[str]
    replay: Replay | None = None

    @property
    def changed_points(self) -> int:
        return sum(c.size for c in self.changes)

    @property
    def loosens(self) -> bool:
        return any(c.loosens for c in self.changes) or bool(self.replay and self.replay.loosened)

    @property
    def any_change(self) -> bool:
        return bool(self.changes) or bool(self.replay and self.replay.changed)


def diff(old: PolicySet, new: PolicySet, *, merge: bool = True) -> DiffReport:
    """Every region of the dimension space where OLD and NEW decide or mask differently."""
    space = Space(old, new)
    changes: list[Change] = []
    regions = 0
    for aspect in space.aspects():
        found: list[Change] = []
        for region in partition(space, aspect):
            regions += 1
            if not region.pruned and region.changed:
                found.append(_change(space, aspect, region))
        if merge and len(found) <= MAX_MERGE:
            found = _merge(space, found)
        changes += sorted(found, key=lambda c: _sort_key(space, c.cells))
    by_id = [{r.id: _as_written(r) for r in p.rules} for p in space.policies]
    added = [i for i in by_id[1] if i not in by_id[0]]
    removed = [i for i in by_id[0] if i not in by_id[1]]
    modified = [i for i in by_id[0] if i in by_id[1] and by_id[0][i] != by_id[1][i]]
    return DiffReport(space, changes, space.size(space.top()), regions, added, removed, modified)


def _as_written(r: CompiledRule) -> tuple[Any, ...]:
    """A rule as its author reads it: a rule whose text did not change is not "modified",
    even when a vocabulary change widens what `!=` accepts (the regions show that)."""
    constraints = tuple(sorted((c.dimension.name, c.op, c.values) for c in r.checked.constraints))
    conditions = tuple((c.kind, c.text) for c in r.conditions)
    return (constraints, conditions, r.effect, r.queue, r.redact_classes, r.implicit_classes, r.style)


def _change(space: Space, aspect: Aspect, region: Region) -> Change:
    groups: dict[Transition | None, list[tuple[int, ...]]] = {}
    possible = diff_intervals.feasible(region)  # no request realises the others (same-field atoms)
    for assignment in possible:
        o, n = region.outcomes[assignment]
        t = _transition(aspect, region, assignment) if o != n else None
        groups.setdefault(t, []).append(assignment)
    every = len(possible)
    pairs = [
        (t, None if len(assignments) == every else _condition(space, aspect, region, assignments))
        for t, assignments in groups.items()
        if t is not None
    ]
    pairs.sort(key=lambda tc: (tc[1] or "", tc[0].old, tc[0].new))
    return Change(aspect, region.cells, region.size, tuple(pairs), region.partial)


def _transition(aspect: Aspect, region: Region, assignment: tuple[int, ...]) -> Transition:
    """The change at one condition assignment, with the rules that make it: `+id` now takes
    part and did not, `-id` the reverse, `~id` matches in both but now decides otherwise."""
    verdicts = region.outcomes[assignment]
    matched = region.matched[assignment]

    def takes_part(r: SideRule, v: Verdict) -> bool:
        rule = r.rule
        if aspect is not DECISION:
            return bool(rule.style == v.style)
        severity = v.effect.severity if v.effect is not None else -1
        return rule.severity == severity or (rule.effect is Effect.ESCALATE and rule.queue is not None)

    found = [{r.id: r for r in m} for m in matched]
    notes: list[str] = []
    for side in (1, 0):
        for r in matched[side]:
            if not takes_part(r, verdicts[side]):
                continue
            other = found[1 - side].get(r.id)
            if other is None and r.id not in region.maybe[1 - side]:
                note = ("+" if side == 1 else "-") + r.id
            elif other is not None and other.fingerprint[2] != r.fingerprint[2]:
                note = "~" + r.id
            else:
                continue
            if note not in notes:
                notes.append(note)
    o, n = verdicts
    return Transition(aspect, o.text(), n.text(), tuple(notes), n.looser_than(o))


def _condition(space: Space, aspect: Aspect, region: Region, assignments: list[tuple[int, ...]]) -> str:
    """In words, the condition outcomes under which a transition happens."""
    def tag(indices: Sequence[int]) -> str:
        keys = {region.variables[i] for i in indices}
        return f" [{', '.join(sorted({r.id for rules in space.rules(aspect) for r in rules if r.cond_key in keys}))}]"

    interval = diff_intervals.interval_text(
        region, assignments, lambda i, state: _state_text(space, aspect, region.variables[i], state), tag
    )
    if interval is not None:  # conditions comparing one field with numbers, as an interval
        return f"for {interval}"
    n = len(region.variables)
    fixed = [i for i in range(n) if len({a[i] for a in assignments}) == 1]
    free = 1
    for i in range(n):
        free *= 1 if i in fixed else len(region.domains[i])
    if region.partial or not fixed or len(assignments) != free:
        names = ", ".join(_label(space, aspect, v) for v in region.variables)
        return f"for some outcomes of {names}"
    return " and ".join(_state_text(space, aspect, region.variables[i], assignments[0][i]) for i in fixed)


def _short(text: str, limit: int = 72) -> str:
    """A condition as printed: long ones are cut (the rule id beside it leads to the full text)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _label(space: Space, aspect: Aspect, key: tuple[Any, ...]) -> str:
    conds: tuple[tuple[str, str], ...] = key[0]
    ids = sorted({r.id for rules in space.rules(aspect) for r in rules if r.cond_key == key})
    return f"{', '.join(f'`{k} {_short(t)}`' for k, t in conds)} [{', '.join(ids)}]"


def _state_text(space: Space, aspect: Aspect, key: tuple[Any, ...], state: int) -> str:
    """A condition variable's state in the author's words: `if context.amount <= 500`."""
    conds: tuple[tuple[str, str], ...] = key[0]
    ids = sorted({r.id for rules in space.rules(aspect) for r in rules if r.cond_key == key})
    where = f" [{', '.join(ids)}]"
    if state == ERROR:
        return f"if {' / '.join(f'`{_short(t)}`' for _, t in conds)} fails to evaluate{where}"
    if len(conds) == 1:  # TRUE means the rule's condition lets it match
        kind, text = conds[0]
        holds = state == TRUE if kind == "when" else state == FALSE
        return f"{'if' if holds else 'unless'} `{_short(text)}`{where}"
    clauses = ", ".join(f"{k} {_short(t)}" for k, t in conds)
    return f"{'if' if state == TRUE else 'unless'} the conditions hold ({clauses}){where}"


def _merge(space: Space, changes: list[Change]) -> list[Change]:
    """Join boxes with the same transitions that differ on one axis only, until none do."""
    progress = True
    while progress:
        progress = False
        for k, axis in enumerate(space.axes):
            buckets: dict[tuple[Any, ...], list[Change]] = {}
            for ch in changes:
                buckets.setdefault((ch.signature, ch.cells[:k], ch.cells[k + 1 :]), []).append(ch)
            merged: list[Change] = []
            for group in buckets.values():
                if len(group) == 1:
                    merged.extend(group)
                elif not axis.is_set:
                    values = frozenset().union(*(g.cells[k].values for g in group))
                    merged.append(_join(group, (*group[0].cells[:k], Cell(values), *group[0].cells[k + 1 :])))
                    progress = True
                else:
                    joined = _merge_set(group, k)
                    progress = progress or len(joined) < len(group)
                    merged.extend(joined)
            changes = merged
    return changes


def _merge_set(group: list[Change], k: int) -> list[Change]:
    """Join boxes whose cells on set axis k together make one cell (see `_union`)."""
    items = list(group)
    i = 0
    while i < len(items):
        for j in range(i + 1, len(items)):
            cell = _union(items[i].cells[k], items[j].cells[k])
            if cell is not None:
                items[i] = _join([items[i], items[j]], (*items[i].cells[:k], cell, *items[i].cells[k + 1 :]))
                del items[j]
                i = -1  # a bigger box may now join one seen before
                break
        i += 1
    return items


def _union(a: Cell, b: Cell) -> Cell | None:
    """One set cell equal to the union of two, for the shapes the partition's splits leave:

    - a flip: `x present` ∪ `x absent` (all else equal) leaves x free;
    - a decision-list step: `some of S1 present` ∪ `all of S1 absent, some of S2 present` is
      `some of S1 ∪ S2 present` (a cell with no `some` reads `x present` as `some of {x}`).
    """
    for one, two in ((a, b), (b, a)):
        for x in one.values & two.absent:
            flipped = (one.values - {x}, one.absent | {x}, one.some)
            if flipped == (two.values, two.absent, two.some) and x not in one.some:
                return Cell(two.values, one.absent, one.some)
        for p1, s1 in _some_forms(one):
            if one.absent & s1 or two.absent != one.absent | s1:
                continue
            for p2, s2 in _some_forms(two):
                if p1 == p2 and not s1 & s2:
                    return Cell(p1, one.absent, s1 | s2)
    return None


def _some_forms(c: Cell) -> list[tuple[frozenset[str], frozenset[str]]]:
    """The ways to read a cell as (values present, some of these present)."""
    if c.some:
        return [(c.values, c.some)]
    return [(c.values - {x}, frozenset({x})) for x in c.values]


def _sort_key(space: Space, cells: Cells) -> tuple[Any, ...]:
    key: list[Any] = []
    for a, cell in zip(space.axes, cells, strict=True):
        order = {v: i for i, v in enumerate(a.values)}
        key.append((sorted(order[v] for v in cell.values | cell.some), sorted(order[v] for v in cell.absent)))
    return tuple(key)


def replay(
    old: PolicySet, new: PolicySet, lines: Iterable[RequestLine], *, examples: int = 20
) -> Replay:
    """Decide each recorded request on both revisions and count the decisions that change."""
    out = Replay()
    for item in lines:
        if item.error is not None:
            out.unreadable += 1
            continue
        out.total += 1
        o, n = outcome_of(old.decide(item.value)), outcome_of(new.decide(item.value))
        if o == n:
            continue
        out.changed += 1
        out.loosened += n.looser_than(o)
        out.transitions[(o.text(), n.text())] += 1
        if len(out.examples) < examples:
            out.examples.append((item.line, o, n))
    return out
