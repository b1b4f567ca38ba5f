"""Engine: `PolicySet.decide(request)` — validate, index, run conditions, combine.

Input: a request (any JSON value). Output: a `Decision`, never an exception.

The hot path: no pydantic, no logging, no allocation it can avoid. A request is validated
against the vocabulary (an invalid one escalates without evaluating any rule, LANGUAGE.md §5),
the index gives the candidate rules in one AND per dimension, conditions run only on
candidates, and the most restrictive matched effect wins. Nothing raises out of `decide()`:
a bug becomes an `internal` error and the safe effect.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cxpolicy.engine.compiler import CompiledRule
from cxpolicy.engine.decision import (
    Decision,
    DecisionError,
    Reason,
    Redaction,
    Trace,
    TraceCondition,
    TraceConstraint,
    TraceRule,
    echoable,
    new_decision_id,
)
from cxpolicy.engine.defaults import compile_defaults
from cxpolicy.engine.evaluation import MISSING as _MISSING
from cxpolicy.engine.evaluation import Seen, condition_verdict, constraint_holds, lookup, rule_verdict, with_defaults
from cxpolicy.engine.index import DimensionIndex, RuleIndex
from cxpolicy.grants.apply import decide_with_grants, needs_grant_step
from cxpolicy.kinds import EFFECT_BY_SEVERITY, Effect, ErrorKind, Style
from cxpolicy.lang.checker import CheckedPolicy, CheckedTest
from cxpolicy.lang.source import Diagnostic, SourceFile
from cxpolicy.lang.vocabulary import AttributeDef, Vocabulary, did_you_mean, type_matches
from cxpolicy.limits import MAX_SET_VALUES

if TYPE_CHECKING:
    from cxpolicy.grants.tokens import GrantKeys

__all__ = ["PolicySet", "condition_verdict", "constraint_holds"]

assert len(EFFECT_BY_SEVERITY) == 4  # `_combine` keeps one list of reasons per severity
Detector = Callable[[Mapping[str, Any]], Mapping[str, Any]]


class PolicySet:
    """A compiled, immutable policy set. Build it with `cxpolicy.load()`."""

    def __init__(
        self,
        checked: CheckedPolicy,
        rules: Sequence[CompiledRule],
        index: RuleIndex,
        revision: str,
        *,
        packs: Sequence[str] = (),
        detector: Detector | None = None,
    ):
        self.checked = checked
        self.rules: tuple[CompiledRule, ...] = tuple(rules)
        self.index = index
        self.revision = revision
        self.vocabulary: Vocabulary = checked.vocabulary
        self.default: Effect = checked.default
        self.default_queue: str | None = checked.default_queue
        self.packs: tuple[str, ...] = tuple(packs)
        self.detector = detector
        self.grant_keys: GrantKeys | None = None  # keys that verify `grants` (LANGUAGE.md §9)
        self.warnings: list[Diagnostic] = []  # non-fatal diagnostics from compiling
        data_dim = checked.vocabulary.data_dimension
        self._data_slot = next(
            (s for s, d in enumerate(index.dimensions) if data_dim is not None and d.name == data_dim.name), None
        )
        attrs = list(checked.vocabulary.attributes.values())
        self._attr_checks: tuple[AttributeDef, ...] = tuple(attrs)
        # Per attribute: its getter and the exact JSON types that certainly match its declared
        # type (anything else goes through `type_matches`, which has the final word).
        self._attr_plan: tuple[tuple[AttributeDef, Getter, tuple[type, ...]], ...] = tuple(
            (a, _getter(a.path), _CERTAIN_TYPES.get(a.type, ())) for a in attrs
        )
        # Per dimension slot: a getter specialised to the length of its path.
        self._get: tuple[Getter, ...] = tuple(_getter(d.path) for d in index.dimensions)
        self._attr_defaults: tuple[AttributeDef, ...] = tuple(a for a in attrs if a.has_default)
        self._fill_defaults = compile_defaults(self._attr_defaults)  # engine/defaults.py
        self._redactions: dict[tuple[str, Style], Redaction] = {}
        # What `_combine` needs from a matched `redact [...]` rule, resolved once per rule:
        # (data class, strictness of the rule's style, the shared Redaction).
        self._redact_plans: dict[int, tuple[tuple[str, int, Redaction], ...]] = {
            r.index: tuple((c, r.style.strictness, self._redaction(c, r.style)) for c in r.redact_classes)
            for r in self.rules
            if r.effect is Effect.REDACT and r.redact_classes is not None
        }
        self._default_queues: tuple[str, ...] = (
            (self.default_queue,) if self.default_queue and self.default is Effect.ESCALATE else ()
        )

    # ------------------------------------------------------------------ public surface
    @property
    def sources(self) -> list[SourceFile]:
        return self.checked.sources

    @property
    def tests(self) -> list[CheckedTest]:
        return self.checked.tests

    @property
    def rule_count(self) -> int:
        return len(self.rules)

    def rule(self, rule_id: str) -> CompiledRule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def decide(self, request: Any, explain: bool = False, *, detect: bool | None = None) -> Decision:
        """Decide one request. Never raises: any failure is reported in `errors` and escalates."""
        try:
            detect = self.detector is not None if detect is None else detect
            if type(request) is dict and needs_grant_step(request, self.grant_keys):  # grants: verify, then lift (§9)
                return decide_with_grants(self, request, explain, detect)
            return self._decide(request, explain, detect)
        except Exception as exc:  # a bug in cxpolicy must not become an unsafe answer
            return self._failed(
                (DecisionError(ErrorKind.INTERNAL, f"internal error while deciding: {type(exc).__name__}: {exc}"),),
                explain,
            )

    def reject(self, message: str, *, kind: ErrorKind = ErrorKind.REQUEST, explain: bool = False) -> Decision:
        """The decision for input that never became a request (bad JSON, too large): escalate."""
        return self._failed((DecisionError(kind, message),), explain)

    # ------------------------------------------------------------------ the hot path
    def _decide(self, request: Any, explain: bool, detect: bool) -> Decision:
        if type(request) is not dict and not isinstance(request, dict):
            kind = "null" if request is None else type(request).__name__
            kind = {"list": "array", "str": "string", "int": "number", "float": "number"}.get(kind, kind)
            error = DecisionError(ErrorKind.REQUEST, f"a request must be a JSON object, got {kind}")
            return self._failed((error,), explain)
        signals: Mapping[str, Any] | None = None
        extra_classes: Sequence[str] = ()
        if detect and self.detector is not None:
            signals = self.detector(request)
            request = {**request, "signals": _merged_signals(request.get("signals"), signals)}
            extra_classes = signals.get("pii", ())
        errors: list[DecisionError] | None = None
        index = self.index
        by = index.by
        if by is None:
            part = index.partitions[""]
        else:
            value = self._get[by.slot](request)
            if value is _MISSING and by.default is not None:
                value = by.default
            found = index.partitions.get(value) if type(value) is str else None
            if found is None:
                errors = [_missing_error(by, value) if value is _MISSING or value is None else _value_error(by, value)]
                found = index.any_partition()
            part = found
        # The common part (rules that do not constrain the partition dimension) is scanned in
        # step with the partition: same dimensions in the same order, same request values.
        common = index.common
        mask = part.all_rules
        cmask = common.all_rules if common is not None else 0
        cplain = common.plain if common is not None else ()
        csets = common.sets if common is not None else ()
        get = self._get
        for k, d in enumerate(part.plain):
            value = get[d.slot](request)
            if value is _MISSING or value is None:
                if value is _MISSING and d.default is not None:
                    mask &= d.buckets[d.default]
                    if cmask:
                        cmask &= cplain[k].buckets[d.default]
                    continue
                errors = errors or []
                errors.append(_missing_error(d, value))
                continue
            bucket = d.buckets.get(value) if type(value) is str else None
            if bucket is None:
                errors = errors or []
                errors.append(_value_error(d, value))
                continue
            mask &= bucket
            if cmask:
                cmask &= cplain[k].buckets[value]
        data_classes: list[str] = []
        set_values: dict[int, list[str]] = {}
        for k, d in enumerate(part.sets):
            value = get[d.slot](request)
            if value is _MISSING:
                value = []
            elif type(value) is not list:
                errors = errors or []
                errors.append(
                    DecisionError(
                        ErrorKind.REQUEST,
                        f"`{d.path_text}` must be a list of {d.name} values; got {_json_kind(value)}",
                        field=d.path_text,
                    )
                )
                continue
            if len(value) > MAX_SET_VALUES:  # each unknown value costs a did-you-mean search
                errors = errors or []
                errors.append(
                    DecisionError(
                        ErrorKind.LIMIT,
                        f"`{d.path_text}` lists {len(value)} values; the limit is {MAX_SET_VALUES}",
                        field=d.path_text,
                    )
                )
                continue
            pos = d.free
            neg = 0
            for v in value:
                p = d.positive.get(v) if type(v) is str else None
                if p is None:
                    errors = errors or []
                    errors.append(_value_error(d, v, in_set=True))
                    continue
                pos |= p
                neg |= d.negative[v]
            if d.slot == self._data_slot and extra_classes and not errors:
                # Classes the detectors found count as declared (only vocabulary values; the
                # request's own values are validated above, so they are all hashable strings).
                detected = [c for c in extra_classes if type(c) is str and c in d.positive and c not in value]
                if detected:
                    value = [*value, *dict.fromkeys(detected)]
                    for v in detected:
                        pos |= d.positive[v]
                        neg |= d.negative[v]
            mask &= pos & ~neg
            if cmask and not errors:
                cd = csets[k]
                cpos = cd.free
                cneg = 0
                for v in value:
                    cpos |= cd.positive[v]
                    cneg |= cd.negative[v]
                cmask &= cpos & ~cneg
            set_values[d.slot] = value
            if d.slot == self._data_slot:
                data_classes = value
        activation = request
        need_defaults = False
        for a, get_attr, certain in self._attr_plan:
            v = get_attr(request)
            if v is _MISSING:
                need_defaults = need_defaults or a.has_default
                continue
            if type(v) not in certain and not type_matches(a.type, v):
                errors = errors or []
                errors.append(
                    DecisionError(
                        ErrorKind.REQUEST,
                        f"`{a.path_text}` must be {_article(a.type)}; got {_json_kind(v)}",
                        field=a.path_text,
                    )
                )
        if errors:
            return self._failed(tuple(errors), explain)
        if need_defaults:  # only then can filling defaults change anything
            fill = self._fill_defaults
            activation = with_defaults(request, self._attr_defaults) if explain or fill is None else fill(request)

        rules = self.rules
        residuals = part.residuals
        matched: list[CompiledRule] = []
        cond_errors: list[DecisionError] | None = None
        members = part.rules
        local = [members[i] for i in _set_bits(mask)]
        if cmask and common is not None:
            shared = common.rules
            local = sorted([*local, *(shared[i] for i in _set_bits(cmask))])
            if common.residuals:
                residuals = {**residuals, **common.residuals}
        candidates: list[int] | None = local if explain else None
        for i in local:
            r = rules[i]
            if residuals and i in residuals and not _residuals_hold(residuals[i], set_values):
                continue
            if r.whens or r.unlesses:
                ok, err = condition_verdict(r, activation)
                if err is not None:
                    cond_errors = cond_errors or []
                    cond_errors.append(DecisionError(ErrorKind.CONDITION, err, rule=r.id))
                if not ok:
                    continue
            matched.append(r)
        decision = self._combine(matched, data_classes, tuple(cond_errors or ()))
        decision.signals = signals
        if explain:
            decision.trace = self._trace(candidates or [], matched, request, activation, decision, signals, set_values)
        return decision

    def _combine(
        self, matched: list[CompiledRule], data_classes: Sequence[str], errors: tuple[DecisionError, ...]
    ) -> Decision:
        if not matched:
            return Decision(new_decision_id(), self.default, (), self._default_queues, (), errors, self.revision, True)
        if len(matched) == 1 and matched[0].effect is not Effect.REDACT:
            r = matched[0]
            queue = (r.queue,) if r.queue is not None and r.effect is Effect.ESCALATE else ()
            return Decision(new_decision_id(), r.effect, (), queue, (r.reason,), errors, self.revision, False)
        # Reasons strictest first, then in load order (`matched` is in load order): one list per
        # severity instead of a sort.
        by_severity: tuple[list[Reason], ...] = ([], [], [], [])
        styles: dict[str, tuple[int, Redaction]] = {}
        queues: list[str] = []
        plans = self._redact_plans
        for r in matched:
            by_severity[r.severity].append(r.reason)
            if r.effect is Effect.REDACT:
                plan = plans.get(r.index)
                if plan is None:  # `redact` without a list: the request's classes the rule matched
                    strict = r.style.strictness
                    plan = tuple(
                        (c, strict, self._redaction(c, r.style)) for c in data_classes if c in r.implicit_classes
                    )
                for c, strict, red in plan:
                    prev = styles.get(c)
                    if prev is None or strict > prev[0]:
                        styles[c] = (strict, red)
            elif r.queue is not None and r.effect is Effect.ESCALATE and r.queue not in queues:
                queues.append(r.queue)
        top = 3
        while not by_severity[top]:
            top -= 1
        reasons: tuple[Reason, ...] = (*by_severity[3], *by_severity[2], *by_severity[1], *by_severity[0])
        redact = tuple(red for _, red in styles.values())
        return Decision(
            new_decision_id(),
            EFFECT_BY_SEVERITY[top],
            redact,
            tuple(queues),
            reasons,
            errors,
            self.revision,
            False,
        )

    def _redaction(self, data_class: str, style: Style) -> Redaction:
        key = (data_class, style)
        r = self._redactions.get(key)
        if r is None:
            r = self._redactions[key] = Redaction(data_class, style)
        return r

    def _failed(self, errors: tuple[DecisionError, ...], explain: bool) -> Decision:
        d = Decision(new_decision_id(), Effect.ESCALATE, (), (), (), errors, self.revision, False)
        if explain:
            d.trace = Trace(
                rule_count=len(self.rules),
                candidates=(),
                combination="the request is invalid, so no rule was evaluated; escalate (LANGUAGE.md §5)",
                request_errors=tuple(str(e) for e in errors),
            )
        return d

    # ------------------------------------------------------------------ explain (slow path)
    def _trace(
        self,
        candidates: list[int],
        matched: list[CompiledRule],
        request: Mapping[str, Any],
        activation: Mapping[str, Any],
        decision: Decision,
        signals: Mapping[str, Any] | None,
        set_values: Mapping[int, list[str]],
    ) -> Trace:
        matched_ids = {r.index for r in matched}
        # Set dimensions as the engine saw them: with the classes the detectors found.
        effective = {self.index.dimensions[slot].name: v for slot, v in set_values.items()}
        looked_at = Seen(request, activation)
        out: list[TraceRule] = []
        for i in candidates:
            r = self.rules[i]
            verdict = rule_verdict(r, looked_at, set_values=effective)
            constraints = tuple(TraceConstraint(c.constraint.text, c.seen, c.holds) for c in verdict.constraints)
            conds = [
                TraceCondition(c.condition.kind, c.condition.text, c.rendered, c.value, c.error, str(c.condition.span))
                for c in verdict.conditions
            ]
            ok = i in matched_ids
            note = _rule_note(r, ok, conds)
            out.append(TraceRule(r.id, r.effect, ok, constraints, tuple(conds), note, r.location))
        detections: tuple[Mapping[str, Any], ...] = ()
        if signals:
            detections = tuple(signals.get("pii_spans", ()))
            pi = signals.get("prompt_injection")
            if isinstance(pi, Mapping) and pi.get("indicators"):
                detections = (*detections, {"prompt_injection": dict(pi)})
        return Trace(len(self.rules), tuple(out), _combination(decision, matched, self), detections)


Getter = Callable[[Any], Any]
_CERTAIN_TYPES: dict[str, tuple[type, ...]] = {
    "number": (int, float),
    "int": (int,),
    "string": (str,),
    "bool": (bool,),
    "list": (list,),
    "map": (dict,),
}


def _getter(path: tuple[str, ...]) -> Getter:
    """`lookup` for one path, without the loop: most paths have one or two keys."""
    if len(path) == 1:
        (k,) = path

        def get1(request: Any) -> Any:
            return request.get(k, _MISSING) if type(request) is dict else _MISSING

        return get1
    if len(path) == 2:
        k0, k1 = path

        def get2(request: Any) -> Any:
            if type(request) is not dict:
                return _MISSING
            sub = request.get(k0, _MISSING)
            return sub.get(k1, _MISSING) if type(sub) is dict else _MISSING

        return get2
    return lambda request: lookup(request, path)


def _set_bits(m: int) -> list[int]:
    """The positions of the set bits of m, ascending.

    Peeling the lowest bit (`m & -m`, `m ^= low`) costs three operations on the whole int per
    bit, which is quadratic for a wide mask with many bits set; above a few machine words the
    binary text of the int is scanned instead (one C-level pass plus one `find` per bit).
    """
    out: list[int] = []
    if m.bit_length() <= 256:
        while m:
            low = m & -m
            out.append(low.bit_length() - 1)
            m ^= low
        return out
    text = bin(m)[:1:-1]  # least significant bit first
    find = text.find
    i = find("1")
    while i >= 0:
        out.append(i)
        i = find("1", i + 1)
    return out


def _residuals_hold(checks: Sequence[tuple[int, frozenset[str]]], set_values: Mapping[int, list[str]]) -> bool:
    """The extra positive constraints on a set dimension that the index could not express."""
    return all(not values.isdisjoint(set_values.get(slot, ())) for slot, values in checks)


def _rule_note(r: CompiledRule, ok: bool, conds: list[TraceCondition]) -> str:
    if not r.conditions:
        return "matched: all constraints hold" if ok else "did not match"
    errs = [c for c in conds if c.error]
    if errs and ok:
        return f"matched by the fail-safe: a condition failed and `{r.effect.value}` is stricter than allow"
    if errs and not ok and r.effect is Effect.ALLOW:
        return "did not match: a condition failed, and an `allow` rule never matches on an error"
    return "matched: constraints and conditions hold" if ok else "did not match: a condition decided against it"


def _combination(d: Decision, matched: list[CompiledRule], ps: PolicySet) -> str:
    if d.default_applied:
        return f"no rule matched; the policy set's default `{ps.default.value}` applies"
    sev = sorted({r.effect.value for r in matched}, key=lambda e: -Effect(e).severity)
    return f"{len(matched)} rule(s) matched with effects {', '.join(sev)}; most restrictive wins: `{d.effect.value}`"


def _json_kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return f"the number {v}" if abs(v) < 10_000 else "a number"  # never a card number
    if isinstance(v, str):
        return f'the string "{v}"' if echoable(v) else f"a string of {len(v)} characters"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def _article(type_name: str) -> str:
    return {"int": "an integer", "any": "any value", "map": "an object", "list": "a list"}.get(
        type_name, f"a {type_name}"
    )


def _one_of(d: DimensionIndex) -> str:
    vals = d.values[:10]
    more = ", …" if len(d.values) > 10 else ""
    return ", ".join(vals) + more


def _missing_error(d: DimensionIndex, value: Any) -> DecisionError:
    what = "is null" if value is None else "is missing"
    return DecisionError(
        ErrorKind.REQUEST,
        f"`{d.path_text}` {what}: dimension `{d.name}` needs one of {_one_of(d)}",
        field=d.path_text,
    )


def _value_error(d: DimensionIndex, value: Any, *, in_set: bool = False) -> DecisionError:
    if type(value) is not str:
        what = f"an element of `{d.path_text}`" if in_set else f"`{d.path_text}`"
        return DecisionError(
            ErrorKind.REQUEST,
            f"{what} must be a string naming a {d.name} value; got {_json_kind(value)}",
            field=d.path_text,
        )
    hint = did_you_mean(value, d.values)
    tail = f"; did you mean `{hint}`?" if hint else f"; expected one of {_one_of(d)}"
    shown = f"`{value}`" if echoable(value) else f"a value of {len(value)} characters"
    return DecisionError(
        ErrorKind.REQUEST,
        f"`{d.path_text}` has {shown}, which is not a value of dimension `{d.name}`{tail}",
        field=d.path_text,
    )


# The `signals` keys the detectors own (cxpolicy.signals.DETECTOR_KEYS, kept equal by a test;
# not imported, so the engine does not load the detectors it may never run).
_DETECTOR_KEYS = frozenset({"pii", "pii_spans", "prompt_injection", "truncated", "error"})


def _merged_signals(caller: Any, detected: Mapping[str, Any]) -> Mapping[str, Any]:
    """The caller's own `signals` keys (an upstream `fraud_score`) plus every detector-owned key.

    Detector keys always come from the detectors, so a caller cannot send
    `"prompt_injection": {"score": 0}` and have it believed; any other key the caller sent
    stays, so rules reading it still work with detection on.
    """
    if not isinstance(caller, Mapping) or not caller:
        return detected
    out = {k: v for k, v in caller.items() if k not in _DETECTOR_KEYS}
    out.update(detected)
    return out
