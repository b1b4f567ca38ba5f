"""Grants in a decision: the pre-step that verifies them and the post-step that lifts rules.

Input: a policy set, one request that carries `grants` (or a caller-set engine-only field),
the ids already spent (one-use, from the audit store). Output: the `Decision`, with
`lifted_by` on each lifted reason, `grants_used`, an `errors` entry of kind `grant` for every
grant that lifts nothing, and (with explain) a trace line per grant saying why.

Pre-step: digest the request once (RFC 8785, `digest.py`), verify each token (`tokens.py`),
then check what a signature cannot: every named rule exists and has the effect the grant's
kind lifts, the grant is not listed twice, not already spent. `context.otp_verified` is then
set from the valid `otp` grants — never from the caller. Post-step: a matched rule is lifted
when a valid grant names it and its effect is the one the grant's kind lifts; lifted rules
count as `allow` and the effect and `escalate_to` are recombined from what is left. `redact`
is never touched. The policy set's own `_decide` runs unchanged in between, so a grant can
only remove stopping rules it names from the combination: never add one, never touch others.

Requests without grants never reach this module (one dict lookup in `PolicySet.decide`).
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from cxpolicy.engine.decision import Decision, DecisionError, Reason
from cxpolicy.grants.digest import ENGINE_ONLY, DigestError, request_digest
from cxpolicy.grants.tokens import KINDS, Grant, Verification, verify
from cxpolicy.kinds import EFFECT_BY_SEVERITY, Effect, ErrorKind

if TYPE_CHECKING:
    from cxpolicy.engine.compiler import CompiledRule
    from cxpolicy.engine.policy_set import PolicySet

__all__ = ["MAX_GRANTS", "GrantCheck", "as_evaluated", "check_grants", "decide_with_grants", "needs_grant_step"]

MAX_GRANTS = 16
"""More grants than this in one request are refused (each costs a signature check)."""
_STOPPED = frozenset({"request", "limit", "internal"})  # the request was not evaluated


def needs_grant_step(request: Mapping[str, Any], keys: object) -> bool:
    """Whether `decide` must go through this module: grants, or (with grant keys configured) a
    caller-set engine-only field. Without keys no grant can prove anything, and a caller's
    `context.otp_verified` is read as sent — the behaviour before grants (see docs/grants.md)."""
    if "grants" in request:
        return True
    if keys is None:
        return False
    for parent, name in ENGINE_ONLY:
        sub = request.get(parent)
        if type(sub) is dict and name in sub:
            return True
    return False


@dataclasses.dataclass(frozen=True, slots=True)
class GrantCheck:
    """One grant of the request: its verification, and whether it may lift anything."""

    position: int
    verification: Verification
    problem: str | None  # why this grant lifts nothing (None: it is valid for this request)

    @property
    def grant(self) -> Grant | None:
        return self.verification.grant

    @property
    def valid(self) -> bool:
        return self.problem is None and self.verification.grant is not None

    @property
    def jti(self) -> str | None:
        return self.verification.jti


_RULES: weakref.WeakKeyDictionary[Any, dict[str, CompiledRule]] = weakref.WeakKeyDictionary()


def _rules_by_id(ps: PolicySet) -> dict[str, CompiledRule]:
    found = _RULES.get(ps)
    if found is None:
        found = _RULES[ps] = {r.id: r for r in ps.rules}
    return found


def check_grants(
    ps: PolicySet, request: Mapping[str, Any], *, spent: Collection[str] = (), now: float | None = None
) -> tuple[list[GrantCheck], list[DecisionError]]:
    """Verify every grant of `request` against `ps` (keys, rule names, effects). Never raises."""
    if "grants" not in request:
        return [], []
    tokens = request["grants"]
    if type(tokens) is not list:
        not_a_list = "`grants` must be a list of signed grants (strings)"
        return [], [DecisionError(ErrorKind.GRANT, not_a_list, field="grants")]
    if len(tokens) > MAX_GRANTS:
        return [], [
            DecisionError(ErrorKind.GRANT, f"`grants` lists {len(tokens)} grants; at most {MAX_GRANTS}", field="grants")
        ]
    if not tokens:
        return [], []
    try:
        digest: str | None = request_digest(request)
        digest_problem = None
    except DigestError as exc:
        digest, digest_problem = None, str(exc)
    keys = getattr(ps, "grant_keys", None)
    rules = _rules_by_id(ps)
    seen: set[str] = set()
    checks: list[GrantCheck] = []
    errors: list[DecisionError] = []
    for n, token in enumerate(tokens):
        v = verify(token, keys, digest=digest, now=now)
        problem = v.problem
        if problem is None and digest_problem is not None:
            problem = digest_problem
        g = v.grant
        if problem is None and g is not None:
            problem = _rule_problem(g, rules)
            if problem is None and g.jti in seen:
                problem = "the same grant is listed twice"
            if problem is None and g.jti in spent:
                problem = "already used: a grant is one-use"
            seen.add(g.jti)
        checks.append(GrantCheck(n, v, problem))
        if problem is not None:
            who = f"grant {v.jti}" if v.jti else f"grants[{n}]"
            errors.append(DecisionError(ErrorKind.GRANT, f"{who} lifts nothing: {problem}", field=f"grants[{n}]"))
    return checks, errors


def _rule_problem(g: Grant, rules: Mapping[str, CompiledRule]) -> str | None:
    wanted = KINDS[g.kind]
    for rid in g.rules:
        r = rules.get(rid)
        if r is None:
            return f"it names rule `{rid[:120]}`, which this policy set does not have"
        if r.effect.value != wanted:
            return f"an {g.kind} grant lifts only `{wanted}` rules; `{rid}` is `{r.effect.value}`"
    return None


def _evaluated_request(request: Mapping[str, Any], otp_proven: bool, enforced: bool) -> dict[str, Any]:
    """The request the rules see: no grants; engine-only fields as the grants prove them
    (left as sent when no grant key is configured: nothing could prove them then)."""
    out = {k: v for k, v in request.items() if k != "grants"}
    if not enforced:
        return out
    for parent, name in ENGINE_ONLY:
        sub = out.get(parent)
        if type(sub) is dict:
            sub = {k: v for k, v in sub.items() if k != name}
        elif sub is None and otp_proven and parent not in out:
            sub = {}
        else:
            continue
        if otp_proven:
            sub[name] = True
        out[parent] = sub
    return out


def as_evaluated(ps: PolicySet, request: dict[str, Any], *, spent: Collection[str] = ()) -> dict[str, Any]:
    """The request as the rules see it once its grants are checked (for explain's stories)."""
    checks, _ = check_grants(ps, request, spent=spent)
    otp = any(c.valid and c.grant is not None and c.grant.kind == "otp" for c in checks)
    return _evaluated_request(request, otp, getattr(ps, "grant_keys", None) is not None)


def decide_with_grants(
    ps: PolicySet,
    request: dict[str, Any],
    explain: bool = False,
    detect: bool = False,
    *,
    spent: Collection[str] = (),
    now: float | None = None,
) -> Decision:
    """`PolicySet.decide` for a request with grants; `spent`: grant ids the audit store has used."""
    checks, grant_errors = check_grants(ps, request, spent=spent, now=now)
    enforced = getattr(ps, "grant_keys", None) is not None
    for parent, name in ENGINE_ONLY:
        sub = request.get(parent)
        if enforced and type(sub) is dict and name in sub:
            grant_errors.append(
                DecisionError(
                    ErrorKind.GRANT,
                    f"`{parent}.{name}` is set by the engine from valid otp grants; the caller's value was ignored",
                    field=f"{parent}.{name}",
                )
            )
    valid = [c for c in checks if c.valid]
    otp_proven = any(c.grant is not None and c.grant.kind == "otp" for c in valid)
    decision = ps._decide(_evaluated_request(request, otp_proven, enforced), explain, detect)
    evaluated = not any(e.kind in _STOPPED for e in decision.errors)
    lifts: dict[str, str] = {}  # rule id → the grant id that lifts it
    for c in valid:
        g = c.grant
        assert g is not None
        for rid in g.rules:
            lifts.setdefault(rid, g.jti)
    reasons: list[Reason] = []
    lifted_by_grant: dict[str, list[str]] = {}
    for r in decision.reasons:
        jti = lifts.get(r.rule) if evaluated else None
        if jti is not None and r.effect.value in KINDS.values():
            r = dataclasses.replace(r, lifted_by=jti)
            lifted_by_grant.setdefault(jti, []).append(r.rule)
        reasons.append(r)
    used = tuple(
        c.grant.jti
        for c in valid
        if c.grant is not None and evaluated and (c.grant.jti in lifted_by_grant or c.grant.kind == "otp")
    )
    effect, queues = decision.effect, decision.escalate_to
    if lifted_by_grant:
        effect, queues = _recombine(ps, reasons)
    out = Decision(
        decision.decision_id,
        effect,
        decision.redact,
        queues,
        tuple(reasons) if lifted_by_grant else decision.reasons,
        (*decision.errors, *grant_errors) if grant_errors else decision.errors,
        decision.policy_revision,
        decision.default_applied,
        decision.trace,
        decision.signals,
        used,
        tuple(checks),
    )
    if explain and decision.trace is not None:
        lines = tuple(_trace_entry(c, lifted_by_grant, evaluated) for c in checks)
        combination = decision.trace.combination
        if lifted_by_grant:
            combination += (
                f"; grants lifted {sum(len(v) for v in lifted_by_grant.values())} rule(s), "
                f"which count as allow: `{effect.value}`"
            )
        out.trace = dataclasses.replace(decision.trace, grants=lines, combination=combination)
    return out


def _recombine(ps: PolicySet, reasons: list[Reason]) -> tuple[Effect, tuple[str, ...]]:
    """The effect and queues with lifted rules counted as `allow` (redact is untouched)."""
    top = 0
    queues: list[str] = []
    rules = _rules_by_id(ps)
    for r in reasons:
        if r.lifted_by is not None:
            continue
        top = max(top, r.effect.severity)
        if r.effect is Effect.ESCALATE:
            q = rules[r.rule].queue if r.rule in rules else None
            if q is not None and q not in queues:
                queues.append(q)
    return EFFECT_BY_SEVERITY[top], tuple(queues)


def _trace_entry(c: GrantCheck, lifted: Mapping[str, list[str]], evaluated: bool) -> dict[str, Any]:
    g = c.grant
    entry: dict[str, Any] = {"position": c.position, "jti": c.jti, "valid": c.valid}
    if g is not None:
        entry.update(kind=g.kind, rules=list(g.rules), decision=g.decision, exp=g.exp, iss=g.iss)
        if g.by is not None:
            entry["by"] = g.by
    if not c.valid:
        entry["note"] = f"lifts nothing: {c.problem}"
        return entry
    assert g is not None
    done = lifted.get(g.jti, [])
    entry["lifted"] = done
    if not evaluated:
        entry["note"] = "lifts nothing: the request is invalid, so no rule was evaluated"
    elif done:
        others = [r for r in g.rules if r not in done]
        entry["note"] = f"lifted {', '.join(done)}" + (
            f"; {', '.join(others)} did not match (or another grant lifted it)" if others else ""
        )
    else:
        entry["note"] = "none of the rules it names matched"
    if g.kind == "otp":
        entry["note"] += "; as a valid otp grant it set context.otp_verified"
    return entry
