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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cxpolicy.analysis import ERROR, FALSE, TRUE, Cell, Cells, Outcome, Region, SideRule, Space, outcome_of, partition
from cxpolicy.effects import Effect
from cxpolicy.engine import PolicySet
from cxpolicy.requests import RequestLine

__all__ = ["DECISION", "Change", "DiffReport", "Replay", "Transition", "diff", "replay"]

MAX_MERGE = 5000  # beyond this many changed boxes, print them as found rather than merge


@dataclass(frozen=True)
class Transition:
    """One way one aspect of the outcome changes, with the rules that make the difference.

    The aspect is `decision` (effect, queues, validity) or a data class (its masking style):
    reporting them apart keeps a changed mask on `card_pan` one line, instead of repeating it
    in every box where the effect happens to differ for other reasons.
    """

    aspect: str
    old: str
    new: str
    rules: tuple[str, ...] = ()  # "+id" now matches, "-id" no longer does, "~id" decides otherwise
    loosens: bool = False

    def text(self) -> str:
        tail = f" ({', '.join(_rule_word(r) for r in self.rules)})" if self.rules else ""
        head = "" if self.aspect == DECISION else f"redact {self.aspect}: "
        return f"{head}{self.old} → {self.new}{tail}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "aspect": self.aspect,
            "old": self.old,
            "new": self.new,
            "rules": list(self.rules),
            "loosens": self.loosens,
        }


DECISION = "decision"


def _rule_word(r: str) -> str:
    return {"+": "+ rule ", "-": "- rule ", "~": "~ rule "}[r[0]] + r[1:]


@dataclass
class Change:
    """A box of the space where one aspect of the outcome changes: `(transition, condition)`
    pairs, the condition None when the transition happens whatever the conditions say."""

    aspect: str
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
        return (self.aspect, self.transitions, self.partial)


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
    """Every region of the dimension space where OLD and NEW decide differently."""
    space = Space(old, new)
    changes: list[Change] = []
    regions = 0
    for region in partition(space):
        regions += 1
        if not region.pruned and region.changed:
            changes.extend(_changes(space, region))
    if merge and len(changes) <= MAX_MERGE:
        changes = _merge(space, changes)
    changes.sort(key=lambda c: (c.aspect != DECISION, c.aspect, _sort_key(space, c.cells)))
    by_id = [{r.id: _as_written(r) for r in rules} for rules in space.sides]
    added = [i for i in by_id[1] if i not in by_id[0]]
    removed = [i for i in by_id[0] if i not in by_id[1]]
    modified = [i for i in by_id[0] if i in by_id[1] and by_id[0][i] != by_id[1][i]]
    return DiffReport(space, changes, space.size(space.top()), regions, added, removed, modified)


def _as_written(r: SideRule) -> tuple[Any, ...]:
    """A rule as its author reads it: a rule whose text did not change is not "modified",
    even when a vocabulary change widens what `!=` accepts (the regions show that)."""
    constraints = tuple(sorted((c.dimension.name, c.op, c.values) for c in r.rule.checked.constraints))
    return (constraints, r.cond_key, *r.fingerprint[2:])


def _changes(space: Space, region: Region) -> list[Change]:
    per_aspect: dict[str, dict[Transition | None, list[tuple[int, ...]]]] = {}
    for assignment, (o, n) in region.outcomes.items():
        found = dict(_transitions(region, assignment)) if o != n else {}
        for aspect in (DECISION, *sorted({c for c, _ in o.redact | n.redact})):
            per_aspect.setdefault(aspect, {}).setdefault(found.get(aspect), []).append(assignment)
    every = len(region.outcomes)
    out: list[Change] = []
    for aspect, groups in per_aspect.items():
        pairs = [
            (t, None if len(assignments) == every else _condition(space, region, assignments))
            for t, assignments in groups.items()
            if t is not None
        ]
        if pairs:
            pairs.sort(key=lambda tc: (tc[1] or "", tc[0].text()))
            out.append(Change(aspect, region.cells, region.size, tuple(pairs), region.partial))
    return out


def _transitions(region: Region, assignment: tuple[int, ...]) -> list[tuple[str, Transition]]:
    o, n = region.outcomes[assignment]
    matched = region.matched[assignment]
    out: list[tuple[str, Transition]] = []
    if (o.effect, o.queues, o.invalid) != (n.effect, n.queues, n.invalid):
        def decides(r: SideRule, outcome: Outcome) -> bool:
            rule = r.rule
            return rule.severity == outcome.effect.severity or (
                rule.effect is Effect.ESCALATE and rule.queue is not None
            )

        notes = _notes(region, matched, (o, n), decides, lambda r: (r.rule.effect, r.rule.queue))
        t = Transition(DECISION, _decision_text(o), _decision_text(n), notes, n.effect.severity < o.effect.severity)
        out.append((DECISION, t))
    old, new = dict(o.redact), dict(n.redact)
    for c in sorted(old.keys() | new.keys()):
        if old.get(c) == new.get(c):
            continue

        def masks(r: SideRule, outcome: Outcome, c: str = c) -> bool:
            rule = r.rule
            if rule.effect is not Effect.REDACT:
                return False
            return c in (rule.redact_classes if rule.redact_classes is not None else rule.implicit_classes)

        a, b = old.get(c), new.get(c)
        loosens = a is not None and (b is None or b.strictness < a.strictness)
        t = Transition(c, a.value if a else "not masked", b.value if b else "not masked",
                       _notes(region, matched, (o, n), masks, lambda r: r.fingerprint[3]), loosens)
        out.append((c, t))
    return out


def _notes(
    region: Region,
    matched: tuple[list[SideRule], list[SideRule]],
    outcomes: tuple[Outcome, Outcome],
    relevant: Callable[[SideRule, Outcome], bool],
    meaning: Callable[[SideRule], Any],
) -> tuple[str, ...]:
    """`+id` for a rule that now takes part and did not, `-id` the reverse, `~id` for a rule
    that matches in both but now decides differently."""
    found = [{r.id: r for r in m} for m in matched]
    notes: list[str] = []
    for side in (1, 0):
        for r in matched[side]:
            if not relevant(r, outcomes[side]):
                continue
            other = found[1 - side].get(r.id)
            if other is None and r.id not in region.maybe[1 - side]:
                note = ("+" if side == 1 else "-") + r.id
            elif other is not None and meaning(other) != meaning(r):
                note = "~" + r.id
            else:
                continue
            if note not in notes:
                notes.append(note)
    return tuple(notes)


def _decision_text(o: Outcome) -> str:
    return Outcome(o.effect, frozenset(), o.queues, o.invalid, o.default).text()


def _condition(space: Space, region: Region, assignments: list[tuple[int, ...]]) -> str:
    """In words, the condition outcomes under which a transition happens."""
    n = len(region.variables)
    fixed = [i for i in range(n) if len({a[i] for a in assignments}) == 1]
    free = 1
    for i in range(n):
        free *= 1 if i in fixed else len(region.domains[i])
    if region.partial or not fixed or len(assignments) != free:
        names = ", ".join(_label(space, v) for v in region.variables)
        return f"for some outcomes of {names}"
    return " and ".join(_state_text(space, region.variables[i], assignments[0][i]) for i in fixed)


def _label(space: Space, key: tuple[Any, ...]) -> str:
    conds: tuple[tuple[str, str], ...] = key[0]
    ids = sorted({r.id for rules in space.sides for r in rules if r.cond_key == key})
    return f"{', '.join(f'`{k} {t}`' for k, t in conds)} [{', '.join(ids)}]"


def _state_text(space: Space, key: tuple[Any, ...], state: int) -> str:
    """A condition variable's state in the author's words: `if context.amount <= 500`."""
    conds: tuple[tuple[str, str], ...] = key[0]
    ids = sorted({r.id for rules in space.sides for r in rules if r.cond_key == key})
    where = f" [{', '.join(ids)}]"
    if state == ERROR:
        return f"if {' / '.join(f'`{t}`' for _, t in conds)} fails to evaluate{where}"
    if len(conds) == 1:  # TRUE means the rule's condition lets it match
        kind, text = conds[0]
        holds = state == TRUE if kind == "when" else state == FALSE
        return f"{'if' if holds else 'unless'} `{text}`{where}"
    clauses = ", ".join(f"{k} {t}" for k, t in conds)
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
                    cells = (*group[0].cells[:k], Cell(values), *group[0].cells[k + 1 :])
                    merged.append(replace(group[0], cells=cells, size=sum(g.size for g in group)))
                    progress = True
                else:
                    joined = _merge_set(group, k)
                    progress = progress or len(joined) < len(group)
                    merged.extend(joined)
            changes = merged
    return changes


def _merge_set(group: list[Change], k: int) -> list[Change]:
    """Two boxes whose set cells differ only in one value being present vs absent join into
    one box where that value is free."""
    items = list(group)
    i = 0
    while i < len(items):
        a = items[i].cells[k]
        for j in range(i + 1, len(items)):
            b = items[j].cells[k]
            flipped = a.values ^ b.values
            if len(flipped) == 1 and flipped == a.absent ^ b.absent:
                cell = Cell(a.values & b.values, a.absent & b.absent)
                cells = (*items[i].cells[:k], cell, *items[i].cells[k + 1 :])
                items[i] = replace(items[i], cells=cells, size=items[i].size + items[j].size)
                del items[j]
                break
        else:
            i += 1
    return items


def _sort_key(space: Space, cells: Cells) -> tuple[Any, ...]:
    key: list[Any] = []
    for a, cell in zip(space.axes, cells, strict=True):
        order = {v: i for i, v in enumerate(a.values)}
        key.append((sorted(order[v] for v in cell.values), sorted(order[v] for v in cell.absent)))
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


def describe_rules(ids: Sequence[str]) -> str:
    return ", ".join(ids) if ids else "none"
