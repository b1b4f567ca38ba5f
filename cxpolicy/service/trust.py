"""Facts the caller may not choose (LANGUAGE.md §10): a request body and trusted bindings in,
the request the engine decides and the `untrusted` errors out.

A caller's credential may bind fields (the agent gateway's key binds `actor.kind = "ai"` and
its `channel`), and a verified subject token binds `customer.*`, `context.identity_verified`
and `context.consents` (cxpolicy.service.subject). A bound value replaces whatever the body
says; a body that says something else is not merely corrected but reported, because a caller
that contradicts its own credential is either broken or attacking: the decision escalates,
with an `errors` entry of kind `untrusted` naming the field.

`apply_bound` is pure and `decide_trusted` never raises, so the property "a contradicting
body value is never less strict than the bound value" can be tested on the engine alone
(tests/service/test_trust.py).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from cxpolicy.engine.decision import Decision, DecisionError
from cxpolicy.kinds import Effect, ErrorKind

__all__ = ["UNTRUSTED", "apply_bound", "decide_applied", "decide_trusted", "merge_bound"]

UNTRUSTED = ErrorKind.UNTRUSTED  # the DecisionError kind (LANGUAGE.md §10)
_MISSING = object()


def _get(obj: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(obj, dict) or part not in obj:
            return _MISSING
        obj = obj[part]
    return obj


def _set(obj: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        nxt = obj.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            obj[part] = nxt
        obj = nxt
    obj[path[-1]] = copy.deepcopy(value)


def _same(a: Any, b: Any) -> bool:
    # JSON equality with types: `true` is not `1`, `1` equals `1.0` (as CEL compares numbers).
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def merge_bound(*sources: Mapping[str, Any]) -> tuple[dict[str, Any], list[DecisionError]]:
    """One set of bindings from several trusted sources (credential, subject token).

    Two trusted sources that disagree on a field are a configuration fault; the first value
    is kept and the disagreement is reported as `untrusted` so the request escalates.
    """
    out: dict[str, Any] = {}
    errors: list[DecisionError] = []
    for source in sources:
        for path, value in source.items():
            if path in out and not _same(out[path], value):
                errors.append(
                    DecisionError(UNTRUSTED, f"trusted sources disagree on `{path}`", field=path)
                )
                continue
            out[path] = value
    return out, errors


def apply_bound(request: Any, bound: Mapping[str, Any]) -> tuple[Any, list[DecisionError]]:
    """The request with every bound field set to its bound value, and one `untrusted` error
    per field the body gave a different value. A non-object request is returned unchanged
    (the engine rejects it); the caller's object is never mutated."""
    if not bound or not isinstance(request, dict):
        return request, []
    out = dict(request)
    for key in {p.split(".", 1)[0] for p in bound}:  # copy only the branches we write into
        if isinstance(out.get(key), dict):
            out[key] = copy.deepcopy(out[key])
    errors: list[DecisionError] = []
    for dotted in sorted(bound):
        path = tuple(dotted.split("."))
        value = bound[dotted]
        said = _get(request, path)
        if said is not _MISSING and not _same(said, value):
            errors.append(
                DecisionError(
                    UNTRUSTED,
                    f"`{dotted}` is bound by the caller's credential or subject token; the request "
                    f"body contradicts it",
                    field=dotted,
                )
            )
        _set(out, path, value)
    return out, errors


def decide_trusted(
    decide: Callable[[Any, bool], Decision],
    request: Any,
    bound: Mapping[str, Any],
    explain: bool = False,
    errors: list[DecisionError] | None = None,
) -> Decision:
    """Decide `request` with `bound` applied (`decide` is a `PolicySet.decide` or
    `Engine.decide`); contradictions, and any `errors` passed in (e.g. from an invalid
    subject token), escalate. Never raises."""
    return decide_applied(decide, request, bound, explain, errors)[1]


def decide_applied(
    decide: Callable[[Any, bool], Decision],
    request: Any,
    bound: Mapping[str, Any],
    explain: bool = False,
    errors: list[DecisionError] | None = None,
) -> tuple[Any, Decision, list[DecisionError]]:
    """`decide_trusted`, also returning the request as decided (bound fields applied) and the
    `untrusted` problems that escalated it — what the audit records, and what a re-decision
    (a grant spent meanwhile) must escalate again."""
    applied, found = apply_bound(request, bound)
    found = [*(errors or ()), *found]
    decision = decide(applied, explain)
    if found:
        decision = replace(decision, effect=Effect.ESCALATE, errors=(*decision.errors, *found))
    return applied, decision, found
