"""Decision, Reason, Trace: the one definition of what the engine answers (LANGUAGE.md §6).

Input: what `PolicySet.decide` found. Output: the `Decision` objects and their JSON (`to_dict`).

The engine builds these on the hot path, so they are plain slotted dataclasses, not pydantic
models; reasons are prebuilt per rule at compile time and shared between decisions. The
service's pydantic models and the published JSON Schema mirror `Decision.to_dict()`.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from cxpolicy.kinds import ConditionKind, Effect, ErrorKind, Style

__all__ = [
    "Decision",
    "DecisionError",
    "Reason",
    "Redaction",
    "Trace",
    "TraceCondition",
    "TraceConstraint",
    "TraceRule",
    "new_decision_id",
]


class _Entropy(threading.local):
    """Random bytes from the OS, fetched 4 KiB at a time per thread (one system call per 409
    ids instead of one per id); a forked child starts with a fresh buffer, so two worker
    processes never hand out the same bytes."""

    def __init__(self) -> None:
        self.buf = b""
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.buf):
            self.buf = os.urandom(4096)
            self.pos = 0
        start = self.pos
        self.pos = start + n
        return self.buf[start : start + n]


_entropy = _Entropy()


def _reset_after_fork() -> None:
    global _entropy
    _entropy = _Entropy()


os.register_at_fork(after_in_child=_reset_after_fork)


def new_decision_id() -> str:
    """A UUIDv7 (RFC 9562): time-ordered, so audit records sort by creation without a clock column."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(_entropy.take(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a (12 bits)
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b (62 bits)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True, slots=True)
class Reason:
    """One matched rule, as it travels into the decision: built once per rule at compile time."""

    rule: str
    effect: Effect
    because: str | None
    cite: tuple[str, ...]
    cite_names: tuple[str | None, ...] = ()
    location: str = ""
    lifted_by: str | None = None  # the grant id that lifted this rule (LANGUAGE.md §9)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule,
            "effect": self.effect.value,
            "because": self.because,
            "cite": list(self.cite),
        }
        if self.lifted_by is not None:
            out["lifted_by"] = self.lifted_by
        return out


@dataclass(frozen=True, slots=True)
class Redaction:
    data_class: str
    style: Style

    def to_dict(self) -> dict[str, str]:
        return {"data_class": self.data_class, "style": self.style.value}


@dataclass(frozen=True, slots=True)
class DecisionError:
    """Something that went wrong while deciding; the decision itself stays safe (LANGUAGE.md §5).

    kind: `request` (the request is invalid: no rule was evaluated), `condition` (a rule's
    condition failed; the fail-safe decided whether the rule matched), `limit` (a resource
    limit was exceeded), `grant` (a grant that lifts nothing, or a caller-set field only a
    grant may prove), `internal` (a bug: reported, never raised).
    """

    kind: ErrorKind
    message: str
    field: str | None = None
    rule: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        if self.rule is not None:
            out["rule"] = self.rule
        return out

    def __str__(self) -> str:
        where = self.rule or self.field
        return f"{where}: {self.message}" if where else self.message


@dataclass(frozen=True, slots=True)
class TraceConstraint:
    """One constraint of a candidate rule and the request value it saw."""

    text: str
    seen: str
    holds: bool

    def to_dict(self) -> dict[str, Any]:
        return {"constraint": self.text, "seen": self.seen, "holds": self.holds}


@dataclass(frozen=True, slots=True)
class TraceCondition:
    """One `when`/`unless` with its values substituted: `12000 <= 500` → false."""

    kind: ConditionKind
    text: str
    rendered: str
    value: bool | None
    error: str | None
    location: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "condition": self.text,
            "with_values": self.rendered,
            "value": self.value,
        }
        if self.error is not None:
            out["error"] = self.error
        if self.location:
            out["at"] = self.location
        return out


@dataclass(frozen=True, slots=True)
class TraceRule:
    rule: str
    effect: Effect
    matched: bool
    constraints: tuple[TraceConstraint, ...]
    conditions: tuple[TraceCondition, ...]
    note: str
    location: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "effect": self.effect.value,
            "matched": self.matched,
            "at": self.location,
            "constraints": [c.to_dict() for c in self.constraints],
            "conditions": [c.to_dict() for c in self.conditions],
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class Trace:
    """Everything the engine looked at; built only when `explain=True` (the hot path pays nothing)."""

    rule_count: int
    candidates: tuple[TraceRule, ...]
    combination: str
    detections: tuple[Mapping[str, Any], ...] = ()
    request_errors: tuple[str, ...] = ()
    grants: tuple[Mapping[str, Any], ...] = ()  # each grant: valid or why not, what it lifted

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rules_in_policy": self.rule_count,
            "candidates": [c.to_dict() for c in self.candidates],
            "combination": self.combination,
        }
        if self.detections:
            out["detections"] = [dict(d) for d in self.detections]
        if self.grants:
            out["grants"] = [dict(g) for g in self.grants]
        if self.request_errors:
            out["request_errors"] = list(self.request_errors)
        return out


@dataclass(slots=True)
class Decision:
    """The engine's answer. `effect` is what the caller must obey; the rest says why."""

    decision_id: str
    effect: Effect
    redact: tuple[Redaction, ...]
    escalate_to: tuple[str, ...]
    reasons: tuple[Reason, ...]
    errors: tuple[DecisionError, ...]
    policy_revision: str
    default_applied: bool = False
    trace: Trace | None = None
    signals: Mapping[str, Any] | None = field(default=None, repr=False)
    grants_used: tuple[str, ...] = ()  # ids of the grants this decision used (one-use, §9)
    grant_checks: tuple[Any, ...] = field(default=(), repr=False)  # grants.apply.GrantCheck, for the audit
    escalations: tuple[str, ...] = field(default=(), repr=False)  # ids the audit sink opened for it

    @property
    def summary(self) -> str:
        """Why, in one sentence."""
        return summarise(self)

    def to_dict(self, *, include_trace: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "decision_id": self.decision_id,
            "effect": self.effect.value,
            "redact": [r.to_dict() for r in self.redact],
            "escalate_to": list(self.escalate_to),
            "reasons": [r.to_dict() for r in self.reasons],
            "errors": [e.to_dict() for e in self.errors],
            "policy_revision": self.policy_revision,
            "default_applied": self.default_applied,
            "summary": self.summary,
        }
        if self.grants_used:
            out["grants_used"] = list(self.grants_used)
        if include_trace and self.trace is not None:
            out["trace"] = self.trace.to_dict()
        return out

    def to_json(self, *, include_trace: bool = True) -> str:
        return orjson.dumps(self.to_dict(include_trace=include_trace)).decode()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        """The `Decision` a decision service answered (`to_dict`'s JSON), so code that obeys a
        decision works the same in-process and over HTTP. The trace stays with the JSON (it is
        for people); escalation ids a stopped answer carries are kept. Raises `ValueError` on
        anything that is not a decision (an unknown effect or style, a missing field)."""
        try:
            return cls(
                decision_id=str(data["decision_id"]),
                effect=Effect(data["effect"]),
                redact=tuple(Redaction(str(r["data_class"]), Style(r["style"])) for r in data.get("redact") or ()),
                escalate_to=tuple(str(q) for q in data.get("escalate_to") or ()),
                reasons=tuple(
                    Reason(
                        rule=str(r["rule"]),
                        effect=Effect(r["effect"]),
                        because=r.get("because"),
                        cite=tuple(str(c) for c in r.get("cite") or ()),
                        lifted_by=r.get("lifted_by"),
                    )
                    for r in data.get("reasons") or ()
                ),
                errors=tuple(
                    DecisionError(ErrorKind(e["kind"]), str(e["message"]), e.get("field"), e.get("rule"))
                    for e in data.get("errors") or ()
                ),
                policy_revision=str(data["policy_revision"]),
                default_applied=bool(data.get("default_applied", False)),
                grants_used=tuple(str(g) for g in data.get("grants_used") or ()),
                escalations=tuple(str(e) for e in data.get("escalations") or ()),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a decision: {exc!r}") from None


def summarise(d: Decision) -> str:
    """One sentence a customer-service lead can read: the effect and the rule(s) that won."""
    effect = d.effect.value
    if d.errors and any(e.kind in (ErrorKind.REQUEST, ErrorKind.LIMIT, ErrorKind.INTERNAL) for e in d.errors):
        first = d.errors[0]
        return f"{effect}: the request could not be evaluated safely ({first})."
    if d.default_applied:
        return f"{effect}: no rule matched, so the policy set's default applies."
    winners = [r for r in d.reasons if r.effect is d.effect and r.lifted_by is None]
    if not winners and d.grants_used:
        return f"{effect} because grant(s) {', '.join(d.grants_used)} lifted every rule that stopped it."
    names = ", ".join(r.rule for r in winners[:3]) + (" and others" if len(winners) > 3 else "")
    because = next((r.because for r in winners if r.because), None)
    tail = f" — {because.rstrip('.')}" if because else ""
    queue = f" (to {', '.join(d.escalate_to)})" if d.escalate_to and d.effect is Effect.ESCALATE else ""
    classes = ""
    if d.effect is Effect.REDACT and d.redact:
        classes = " (mask " + ", ".join(f"{r.data_class} as {r.style.value}" for r in d.redact) + ")"
    return f"{effect}{queue}{classes} because {names} matched{tail}."


_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_.:\-]{0,39}")
_DIGIT_RUN = re.compile(r"\d{4}")


def echoable(value: object) -> bool:
    """Whether a value the vocabulary rejected may be repeated in an error message or stored
    in the audit log: a short identifier-like token such as a misspelt action, yes; anything
    that could be a card number, a phone number or free text an agent was steered into
    sending, no (it is then described by its length, or stored as a digest)."""
    return isinstance(value, str) and _TOKEN.fullmatch(value) is not None and _DIGIT_RUN.search(value) is None
