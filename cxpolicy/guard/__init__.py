"""`Guard`: the enforcement point an agent framework calls before every tool.

Input: the subject (customer, actor, channel, session — from the host's login or a subject
token, never from the model), the tool's name and the model's arguments, and any grants the
call resumes with. Output: an `Outcome` — `run` (with the arguments masked as the decision
says), `otp_required` or `approval_required` (with the challenge and escalation ids a
resume needs), or `denied` — and a customer-safe message that never names a rule or clause.

The guard writes the audit record itself when deciding in-process (and consumes grants once,
in the same transaction), re-decides every resumed or edited call, and is idempotent while a
call is paused: a framework that replays a node (LangGraph re-runs it from the top on
resume) gets the same pause back, with no second decision recorded and no second escalation.
With a `cxpolicy.Client` as the decider the service records and consumes instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import orjson

from cxpolicy.engine.decision import Decision
from cxpolicy.grants.challenge import challenge_for
from cxpolicy.guard.tools import ToolError, ToolMap, ToolSpec
from cxpolicy.kinds import Effect

__all__ = ["MESSAGES", "Guard", "Outcome", "ToolError", "ToolMap", "ToolSpec"]

Kind = Literal["run", "otp_required", "approval_required", "denied"]

MESSAGES: dict[str, str] = {
    "run": "",
    "otp_required": "For your security, we need to confirm it's you with a one-time code first.",
    "approval_required": "A member of our team needs to review this before it goes ahead. We'll be in touch shortly.",
    "denied": "Sorry, I can't do that here. A member of our team can help you with it.",
}
"""What the agent may tell the customer, per outcome: no rule ids, no clause text."""


class Decider(Protocol):
    def decide(self, request: Any, explain: bool = False) -> Decision: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: Kind
    decision: Decision
    request: Mapping[str, Any]
    args: Mapping[str, Any] = field(default_factory=dict)
    message: str = ""
    challenge: Mapping[str, Any] | None = None

    @property
    def run(self) -> bool:
        return self.kind == "run"

    @property
    def escalations(self) -> tuple[str, ...]:
        return self.decision.escalations


_BROKEN = frozenset({"request", "limit", "internal", "untrusted"})


def _kind(decision: Decision) -> Kind:
    if decision.effect in (Effect.ALLOW, Effect.REDACT):
        return "run"
    if decision.effect is Effect.REQUIRE_OTP:
        return "otp_required"
    stopped_by_rule = any(r.effect is Effect.ESCALATE and r.lifted_by is None for r in decision.reasons)
    # A request that could not be decided (invalid, over a limit, contradicting trusted facts)
    # is denied; a spent or mismatched grant only means the approval is still to come.
    broken = any(e.kind in _BROKEN for e in decision.errors)
    return "approval_required" if stopped_by_rule and not broken else "denied"


class Guard:
    """`Guard(policy_or_client, tools, audit=sink)`; `check(subject, tool, args, grants=[...])`."""

    def __init__(self, decider: Decider, tools: ToolMap, *, audit: Any = None, redact_key: bytes | None = None) -> None:
        self.decider = decider
        self.tools = tools
        self.audit = audit
        self.redact_key = redact_key
        self._paused: dict[str, Outcome] = {}
        self._lock = threading.Lock()

    def check(
        self, subject: Mapping[str, Any], tool: str, args: Mapping[str, Any], grants: Sequence[str] = ()
    ) -> Outcome:
        """The outcome of one tool call; never raises (an unknown tool, a bound argument that
        differs from the subject, or any failure is `denied`)."""
        try:
            request = self.tools.request(subject, tool, args)
        except ToolError as exc:
            from cxpolicy.engine.decision import DecisionError, new_decision_id
            from cxpolicy.kinds import ErrorKind

            refused = Decision(
                new_decision_id(), Effect.ESCALATE, (), (), (),
                (DecisionError(ErrorKind.REQUEST, str(exc)),), "guard",
            )  # fmt: skip
            return Outcome("denied", refused, {}, message=MESSAGES["denied"])
        key = self._key(subject, tool, request)
        if not grants:
            with self._lock:
                paused = self._paused.get(key)
            if paused is not None:  # a replayed node: the same pause, nothing recorded again
                return paused
        if grants:
            request = {**request, "grants": list(grants)}
        decision = self._decide(request)
        kind = _kind(decision)
        clean = {k: v for k, v in request.items() if k != "grants"}
        out = Outcome(
            kind,
            decision,
            clean,
            args=self._masked(args, decision) if kind == "run" else {},
            message=MESSAGES[kind],
            challenge=challenge_for(decision, clean) if kind in ("otp_required", "approval_required") else None,
        )
        with self._lock:
            if kind in ("otp_required", "approval_required"):
                self._paused[key] = out
            else:
                self._paused.pop(key, None)
        return out

    async def acheck(
        self, subject: Mapping[str, Any], tool: str, args: Mapping[str, Any], grants: Sequence[str] = ()
    ) -> Outcome:
        """`check` for asyncio hosts (the decision and the audit commit run in a thread)."""
        return await asyncio.to_thread(self.check, subject, tool, args, grants)

    def redact_output(self, result: Any, outcome: Outcome) -> Any:
        """A tool's result masked as the call's decision says (text, or every string of a mapping)."""
        if not outcome.decision.redact or not isinstance(result, str | Mapping):
            return result
        from cxpolicy.signals.redact import apply

        return apply(result, outcome.decision, self.redact_key)

    # ------------------------------------------------------------------ internals
    def _decide(self, request: Mapping[str, Any]) -> Decision:
        from cxpolicy.engine.policy_set import PolicySet

        if self.audit is not None and isinstance(self.decider, PolicySet):
            from cxpolicy.grants.consume import decide_once

            return decide_once(self.decider, request, self.audit.record)
        return self.decider.decide(request)

    def _masked(self, args: Mapping[str, Any], decision: Decision) -> Mapping[str, Any]:
        if not decision.redact:
            return dict(args)
        from cxpolicy.signals.redact import apply

        masked = apply(dict(args), decision, self.redact_key)
        return dict(masked) if isinstance(masked, Mapping) else dict(args)

    @staticmethod
    def _key(subject: Mapping[str, Any], tool: str, request: Mapping[str, Any]) -> str:
        session = subject.get("session") or subject.get("customer")
        body = orjson.dumps({"s": session, "t": tool, "r": request}, option=orjson.OPT_SORT_KEYS, default=str)
        return hashlib.sha256(body).hexdigest()
