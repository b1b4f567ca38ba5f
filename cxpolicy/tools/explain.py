"""Explain one decision as a short story a policy author (or an auditor) can read.

Input: a `PolicySet` and one request. Output: an `Explanation` — every matched rule with its
clause and the values that made each constraint and condition true or false; why the final
effect won; the near misses (rules that failed on exactly one constraint or condition, which
is where a surprising decision usually hides); and a counterfactual: the smallest change to
the request that gives a less strict effect, found by search and checked by re-deciding
before it is printed, so it is never a guess.

The engine's trace says what the index looked at; this module looks at every rule, because
"why did rule X not fire?" is the question people ask, and X is often not a candidate.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cxpolicy.engine.compiler import CompiledRule
from cxpolicy.engine.decision import Decision
from cxpolicy.engine.evaluation import Seen, dimension_value, rule_verdict, seen
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.grants.apply import as_evaluated, needs_grant_step
from cxpolicy.kinds import Effect, ErrorKind

__all__ = ["Change", "Counterfactual", "Explanation", "Item", "RuleStory", "as_decided", "evaluate_rule", "explain"]

_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")
_STRING = re.compile(r"\"((?:[^\"\\]|\\.)*)\"|'((?:[^'\\]|\\.)*)'")


@dataclass(frozen=True)
class Item:
    """A constraint or condition of a rule as this request saw it."""

    kind: str  # constraint | when | unless
    text: str
    seen: str  # the values: `customer.risk_tier = high`, `12000 <= 500 → false`
    holds: bool  # whether it lets the rule match (a failed condition: by the fail-safe)
    error: str | None = None
    location: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "text": self.text, "seen": self.seen, "holds": self.holds}
        if self.error:
            out["error"] = self.error
        if self.location:
            out["at"] = self.location
        return out


@dataclass
class RuleStory:
    rule: CompiledRule
    matched: bool
    items: list[Item]

    @property
    def failing(self) -> list[Item]:
        return [i for i in self.items if not i.holds]

    def to_dict(self) -> dict[str, Any]:
        r = self.rule
        return {
            "rule": r.id,
            "effect": r.effect.value,
            "escalate_to": r.queue,
            "at": r.location,
            "because": r.checked.because,
            "cite": [{"name": n, "text": t} for n, t in r.checked.cites],
            "matched": self.matched,
            "items": [i.to_dict() for i in self.items],
        }


@dataclass(frozen=True)
class Change:
    """One field of the request set to another value."""

    path: str
    old: Any  # the value before (`_ABSENT` when the field was not there)
    new: Any
    kind: str  # bool | number | string | list | ordered | set | dimension
    cost: int

    def text(self) -> str:
        if self.kind == "set":
            verb = "with" if self.new else "without"
            return f"{verb} {self.old} in {self.path}"
        if self.kind in ("dimension", "ordered"):  # a vocabulary value, written as in a rule
            return f"with {self.path} = {self.new}"
        return f"with {self.path} = {_json(self.new)}"


@dataclass(frozen=True)
class Counterfactual:
    changes: tuple[Change, ...]
    decision: Decision

    def text(self) -> str:
        what = " and ".join(c.text() for c in self.changes)
        return f"{what} this would be {_effect_text(self.decision)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": [{"path": c.path, "from": _plain(c.old), "to": c.new, "kind": c.kind} for c in self.changes],
            "text": self.text(),
            "decision": self.decision.to_dict(include_trace=False),
        }


@dataclass
class Explanation:
    request: Any
    decision: Decision
    stories: list[RuleStory] = field(default_factory=list)
    counterfactuals: list[Counterfactual] = field(default_factory=list)
    searched: int = 0  # requests re-decided while looking for counterfactuals

    @property
    def matched(self) -> list[RuleStory]:
        order = {r.rule: i for i, r in enumerate(self.decision.reasons)}
        return sorted((s for s in self.stories if s.matched), key=lambda s: order.get(s.rule.id, len(order)))

    @property
    def near_misses(self) -> list[RuleStory]:
        """Rules that did not match because of exactly one constraint or condition."""
        near = [s for s in self.stories if not s.matched and len(s.failing) == 1]
        top = self.decision.effect.severity

        def interest(s: RuleStory) -> int:  # a condition away beats another value, beats another action
            item = s.failing[0]
            return 0 if item.kind != "constraint" else 2 if item.seen.startswith("action =") else 1

        def changes(s: RuleStory) -> bool:
            if self.decision.default_applied:
                return s.rule.effect is not self.decision.effect
            return s.rule.severity > top

        return sorted(near, key=lambda s: (not changes(s), interest(s), -s.rule.severity, s.rule.index))

    @property
    def invalid(self) -> bool:
        return any(e.kind == ErrorKind.REQUEST for e in self.decision.errors)

    def why(self) -> str:
        """Why the final effect won, in one or two sentences."""
        d = self.decision
        if self.invalid:
            return "The request is invalid, so no rule was evaluated; it escalates (an error never loosens a decision)."
        if d.default_applied:
            return f"No rule matched, so the policy set's default `{d.effect.value}` applies."
        by_effect: dict[Effect, list[str]] = {}
        lifted = {r.rule: r.lifted_by for r in d.reasons if r.lifted_by is not None}
        for s in self.matched:
            by_effect.setdefault(Effect.ALLOW if s.rule.id in lifted else s.rule.effect, []).append(s.rule.id)
        ranked = sorted(by_effect, key=lambda e: -e.severity)
        winner = ", ".join(by_effect[ranked[0]])
        if len(ranked) == 1:
            text = f"Every matched rule says `{d.effect.value}` ({winner})."
        else:
            losers = "; ".join(f"`{e.value}` ({', '.join(by_effect[e])})" for e in ranked[1:])
            text = f"Most restrictive wins: `{d.effect.value}` ({winner}) outranks {losers}."
        if d.redact:
            masks = ", ".join(f"{r.data_class} as {r.style.value}" for r in d.redact)
            text += f" Whatever the effect, the matched redact rules mask {masks}."
        if lifted:
            names = ", ".join(f"{r} by {g}" for r, g in lifted.items())
            text += f" Lifted by grants (they count as allow): {names}."
        failsafe = [e.rule for e in d.errors if e.kind == ErrorKind.CONDITION and e.rule]
        if failsafe:
            text += f" A condition failed to evaluate in {', '.join(dict.fromkeys(failsafe))}; the fail-safe decided."
        return text

    def to_dict(self) -> dict[str, Any]:
        out = {
            "decision": self.decision.to_dict(include_trace=False),
            "matched": [s.to_dict() for s in self.matched],
            "why": self.why(),
            "near_misses": [s.to_dict() for s in self.near_misses],
            "counterfactuals": [c.to_dict() for c in self.counterfactuals],
            "searched": self.searched,
        }
        if self.decision.trace is not None and self.decision.trace.grants:
            out["grants"] = [dict(g) for g in self.decision.trace.grants]
        return out


def explain(policy: PolicySet, request: Any, *, alternatives: int = 4) -> Explanation:
    """The decision for `request`, every rule's story, and verified counterfactuals."""
    decision = policy.decide(request, explain=True)
    out = Explanation(request, decision)
    if not isinstance(request, dict) or out.invalid:
        return out
    if needs_grant_step(request, policy.grant_keys):  # the rules saw otp_verified as grants prove it
        request = as_evaluated(policy, request)
    seen, act = as_decided(policy, request, decision)
    matched = {r.rule for r in decision.reasons}
    out.stories = [evaluate_rule(policy, r, seen, act, r.id in matched) for r in policy.rules]
    out.counterfactuals, out.searched = _search(policy, request, decision, out.stories, alternatives)
    return out


def as_decided(
    policy: PolicySet, request: dict[str, Any], decision: Decision
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request as the engine saw it deciding `decision` (what constraints read, what
    conditions read): `evaluation.seen` with the signals the detectors found, if they ran."""
    s = seen(policy.vocabulary, request, decision.signals)
    return dict(s.request), dict(s.activation)


def evaluate_rule(
    policy: PolicySet, r: CompiledRule, request: Mapping[str, Any], act: Mapping[str, Any], matched: bool
) -> RuleStory:
    """Every constraint and condition of one rule against the request, run or not."""
    verdict = rule_verdict(r, Seen(request, act))
    items: list[Item] = [
        Item("constraint", c.constraint.text, c.seen, c.holds, location=str(c.constraint.span))
        for c in verdict.constraints
    ]
    for cc in verdict.conditions:
        value = cc.value
        shown = "error" if value is None else str(value).lower()
        # A failed condition holds by the fail-safe (LANGUAGE.md §5) for a stricter-than-allow rule.
        items.append(Item(cc.condition.kind, cc.condition.text, f"{cc.rendered} → {shown}", cc.holds(r), cc.error,
                          str(cc.condition.span)))
    return RuleStory(r, matched, items)


# ------------------------------------------------------------------------ counterfactuals
_ABSENT: Any = type("_Absent", (), {"__repr__": lambda self: "absent"})()


def _search(
    policy: PolicySet, request: dict[str, Any], decision: Decision, stories: Sequence[RuleStory], keep: int
) -> tuple[list[Counterfactual], int]:
    """Single-field changes first; pairs of the most relevant ones only if no single one works.

    Every candidate is decided for real; only those that come out less strict are kept, so a
    counterfactual is a checked fact about the policy, not an inference from the trace.
    """
    top = decision.effect.severity
    if top == 0:
        return [], 0
    relevant = _relevant_paths(stories, top)
    candidates = sorted(
        _candidates(policy, request, stories),
        key=lambda c: (c.path not in relevant, c.cost, c.path, _distance(c), json.dumps(c.new, default=str)),
    )
    action = policy.vocabulary.dimensions.get("action")
    what = action.path_text if action is not None else None  # another action is another question
    found: list[Counterfactual] = []
    tried = 0
    for change in candidates:
        tried += 1
        d = policy.decide(_apply(request, (change,)))
        if d.effect.severity < top and not d.errors:
            found.append(Counterfactual((change,), d))
    if not any(cf.changes[0].path != what for cf in found):
        near = [c for c in candidates if c.path in relevant and c.path != what][:24]
        for i, a in enumerate(near):
            for b in near[i + 1 :]:
                if a.path == b.path:
                    continue
                tried += 1
                d = policy.decide(_apply(request, (a, b)))
                if d.effect.severity < top and not d.errors:
                    found.append(Counterfactual((a, b), d))
    found.sort(key=lambda cf: (any(c.path == what for c in cf.changes), len(cf.changes),
                               any(c.path not in relevant for c in cf.changes), sum(c.cost for c in cf.changes),
                               cf.decision.effect.severity))
    seen: set[tuple[Any, ...]] = set()
    unique: list[Counterfactual] = []
    for cf in found:  # one per field: the nearest value, then the loosest outcome, says it best
        key = tuple(c.path for c in cf.changes)
        if key not in seen:
            seen.add(key)
            unique.append(cf)
    return unique[: keep + 1], tried


def _distance(c: Change) -> float:
    if c.kind == "number" and isinstance(c.old, int | float) and not isinstance(c.old, bool):
        return abs(float(c.new) - float(c.old))
    return 0.0


def _relevant_paths(stories: Sequence[RuleStory], top: int) -> set[str]:
    """Fields read by the rules that hold the decision where it is (the strictest matched)."""
    paths: set[str] = set()
    for s in stories:
        if s.matched and s.rule.severity == top:
            paths |= {c.dimension.path_text for c in s.rule.checked.constraints}
            paths |= {f for cc in s.rule.conditions for f in cc.expression.fields}
    return paths


def _candidates(policy: PolicySet, request: dict[str, Any], stories: Sequence[RuleStory]) -> Iterator[Change]:
    vocab = policy.vocabulary
    for d in vocab.dimensions.values():
        current = dimension_value(request, d)
        if d.is_set:
            present = list(current) if isinstance(current, list) else []
            named = {v for r in policy.rules for c in r.checked.constraints if c.dimension is d for v in c.values}
            for v in present:
                yield Change(d.path_text, v, False, "set", 2)
            for v in sorted(named - set(present)):
                yield Change(d.path_text, v, True, "set", 3)
            continue
        for i, v in enumerate(d.values):
            if v == current:
                continue
            if d.is_ordered and current in d.values:
                yield Change(d.path_text, current, v, "ordered", 2 + abs(i - d.values.index(current)))
            else:
                yield Change(d.path_text, current, v, "dimension", 6 if d.name == "action" else 4)
    # Fields the conditions read: flip booleans, cross numeric thresholds, try the literals.
    reads: dict[str, list[str]] = {}
    for r in policy.rules:
        for cc in r.conditions:
            for f in cc.expression.fields:
                reads.setdefault(f, []).append(cc.text)
    for a in vocab.attributes.values():
        reads.setdefault(a.path_text, [])
    dimension_paths = {d.path_text for d in vocab.dimensions.values()}
    for path, texts in sorted(reads.items()):
        if path in dimension_paths:  # already tried with every value of its vocabulary
            continue
        current = _get(request, path)
        attr = vocab.attributes.get(path)
        if current is _ABSENT and attr is not None and attr.has_default:
            current = attr.default
        kind = attr.type if attr is not None else "any" if current is _ABSENT else _kind(current)
        if kind == "bool" or isinstance(current, bool):
            yield Change(path, current, not current if isinstance(current, bool) else True, "bool", 0)
            continue
        near = [t for t in texts if path in t]
        numbers = sorted({float(m) for t in near for m in _NUMBER.findall(t)})
        strings = sorted({a or b for t in near for a, b in _STRING.findall(t)})
        if current is _ABSENT and attr is None:  # unknown type: what the conditions compare it with
            yield Change(path, current, True, "bool", 1)
            yield Change(path, current, False, "bool", 1)
        if kind in ("number", "int", "any"):
            for n in numbers:
                for x in (n, n - 1, n + 1):
                    value = int(x) if x == int(x) else x
                    if value != current and (kind != "int" or isinstance(value, int)):
                        yield Change(path, current, value, "number", 1)
        if kind in ("string", "any"):
            for text in strings:
                if text != current:
                    yield Change(path, current, text, "string", 1)
        if kind == "list":
            have = list(current) if isinstance(current, list) else []
            for text in [t for t in strings if t not in have]:
                yield Change(path, current, [*have, text], "list", 1)


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    return "list" if isinstance(v, list) else "map" if isinstance(v, dict) else "any"


def _get(request: Mapping[str, Any], path: str) -> Any:
    cur: Any = request
    for k in path.split("."):
        if not isinstance(cur, dict) or k not in cur:
            return _ABSENT
        cur = cur[k]
    return cur


def _apply(request: dict[str, Any], changes: Sequence[Change]) -> dict[str, Any]:
    out = copy.deepcopy(request)
    for c in changes:
        keys = c.path.split(".")
        cur = out
        for k in keys[:-1]:
            nxt = cur.get(k)
            if not isinstance(nxt, dict):
                nxt = cur[k] = {}
            cur = nxt
        if c.kind == "set":
            values = [v for v in cur.get(keys[-1], []) if v != c.old]
            cur[keys[-1]] = [*values, c.old] if c.new else values
        else:
            cur[keys[-1]] = c.new
    return out


def _json(v: Any) -> str:
    return "absent" if v is _ABSENT else json.dumps(v, ensure_ascii=False)


def _plain(v: Any) -> Any:
    return None if v is _ABSENT else v


def _effect_text(d: Decision) -> str:
    out = f"`{d.effect.value}`"
    if d.escalate_to and d.effect is Effect.ESCALATE:
        out += f" (to {', '.join(d.escalate_to)})"
    return out


# ------------------------------------------------------------------------------- rendering
def render_text(e: Explanation, *, color: bool = False) -> str:
    """The story, for a terminal: decision, matched rules, why, near misses, counterfactual."""

    def bold(s: str) -> str:
        return f"\x1b[1m{s}\x1b[0m" if color else s

    d = e.decision
    queue = f" to {', '.join(d.escalate_to)}" if d.escalate_to and d.effect is Effect.ESCALATE else ""
    out = [bold(f"decision: {d.effect.value}{queue}"), f"  {d.summary}"]
    if e.invalid:
        out += ["", bold("the request is invalid")]
        out += [f"  ✗ {err}" for err in d.errors if err.kind == ErrorKind.REQUEST]
        out += ["", bold("why"), f"  {e.why()}"]
        return "\n".join(out)
    signals = d.signals or {}
    pii, injection = signals.get("pii") or [], (signals.get("prompt_injection") or {}).get("score", 0.0)
    if pii or injection:
        found = [f"data classes {', '.join(pii)}"] if pii else []
        found += [f"prompt injection (score {injection:.2f})"] if injection else []
        out += ["", f"detected in the payload: {'; '.join(found)}"]
    matched = e.matched
    out += ["", bold(f"matched rules ({len(matched)})" if matched else "matched rules: none")]
    for s in matched:
        out += _story_lines(s, "●")
    grants = d.trace.grants if d.trace is not None else ()
    if grants:
        out += ["", bold(f"grants ({len(grants)})")]
        for g in grants:
            mark = "✓" if g.get("valid") else "✗"
            name = g.get("jti") or f"#{g.get('position')}"
            out.append(f"  {mark} {g.get('kind') or '?'} grant {name}: {g['note']}")
    out += ["", bold(f"why {d.effect.value}"), f"  {e.why()}"]
    near = e.near_misses
    changing = [s for s in near if _would_be(e, s) is not d.effect]
    if changing:
        out += ["", bold("near misses that would change the decision (one constraint or condition away)")]
        for s in changing[:8]:
            out += _story_lines(s, "○", only_failing=True)
            out.append(f"      had it matched, the decision would be `{_would_be(e, s).value}`")
        if len(changing) > 8:
            out.append(f"  … and {len(changing) - 8} more (--format json lists them all)")
    others = [s.rule.id for s in near if _would_be(e, s) is d.effect]
    if others:
        shown = ", ".join(others[:6]) + (f" and {len(others) - 6} more" if len(others) > 6 else "")
        out += ["", f"{len(others)} other near miss(es) would not change the effect: {shown}"]
    out += ["", bold("counterfactual")]
    if d.effect is Effect.ALLOW:
        out.append("  already `allow`: nothing is less strict")
    elif not e.counterfactuals:
        out.append(f"  no change of one or two fields gives a less strict effect ({e.searched} requests tried)")
    else:
        first, *rest = e.counterfactuals
        out.append(f"  {first.text()}")
        out.append(f"    (checked by deciding the changed request: {first.decision.summary})")
        if rest:
            out.append("  also:")
            out += [f"    {cf.text()}" for cf in rest]
    return "\n".join(out)


def _would_be(e: Explanation, s: RuleStory) -> Effect:
    """The effect had this rule matched too (with the default, it would replace it)."""
    if e.decision.default_applied:
        return s.rule.effect
    return max(e.decision.effect, s.rule.effect, key=lambda x: x.severity)


def _story_lines(s: RuleStory, mark: str, *, only_failing: bool = False) -> list[str]:
    r = s.rule
    target = f' to "{r.queue}"' if r.queue and r.effect is Effect.ESCALATE else ""
    out = [f"  {mark} {r.id} → {r.effect.value}{target}   ({r.location})"]
    if not only_failing:
        if r.checked.because:
            out.append(f"      because {r.checked.because}")
        for name, text in r.checked.cites:
            out.append(f"      cite    {name + ': ' if name else ''}{text}")
    items = s.failing if only_failing else s.items
    width = min(40, max((len(_item_head(i)) for i in items), default=0))
    for i in items:
        head = _item_head(i)
        mark_ = "✓" if i.holds else "✗"
        tail = f"   ({i.error})" if i.error else ""
        if len(head) > width:  # a long condition: its values go on the next line
            out += [f"      {mark_} {head}", f"          → {i.seen}{tail}"]
        else:
            out.append(f"      {mark_} {head.ljust(width)}   {i.seen}{tail}")
    return out


def _item_head(i: Item) -> str:
    return i.text if i.kind == "constraint" else f"{i.kind} {i.text}"
