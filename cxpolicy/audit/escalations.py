"""Escalations: the human follow-up that every `escalate` decision promises.

Input: escalate decisions and a person's actions on them. Output: escalation rows and their state changes.

An escalation that nobody picks up is the failure regulators ask about (RBI's 30-day
Ombudsman clock, GDPR Art 22(3) human intervention, AI Act Art 14 oversight), so each one
carries a due time from its queue's SLA and moves through exactly one path:

    open ──assign──▶ assigned ──resolve──▶ resolved
                      │  ▲
                      └──┘ reassign (to someone else)

Everything here is pure: the sink calls `open_escalations` and `transition` inside its write
transaction and appends the returned event to the hash chain, so each transition is itself
an audit record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import orjson

from cxpolicy.audit.records import canonical_json, format_time, parse_time
from cxpolicy.engine.decision import Decision, new_decision_id
from cxpolicy.kinds import Effect

__all__ = [
    "DEFAULT_SLA",
    "STATES",
    "UNASSIGNED_QUEUE",
    "Escalation",
    "EscalationError",
    "IllegalTransition",
    "SlaPolicy",
    "UnknownEscalation",
    "open_escalations",
    "parse_duration",
    "transition",
]

STATES = ("open", "assigned", "resolved")
UNASSIGNED_QUEUE = "unassigned-queue"
DEFAULT_SLA = timedelta(hours=4)

# state -> states it may move to (assigned -> assigned is a reassignment).
OUTCOMES = ("approve", "deny")
"""A reviewer's outcomes: approve issues a grant (LANGUAGE.md §9), deny closes with a reason."""
_ALLOWED: dict[str, frozenset[str]] = {
    "open": frozenset({"assigned"}),
    "assigned": frozenset({"assigned", "resolved"}),
    "resolved": frozenset(),
}


class EscalationError(Exception):
    """Base of the errors an escalation command can report to a person."""


class UnknownEscalation(EscalationError, KeyError):
    def __str__(self) -> str:
        return f"no escalation with id {self.args[0]!r}"


class IllegalTransition(EscalationError):
    """The requested move is not on the open → assigned → resolved path."""


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """`30m`, `4h`, `2d`, `1w`, or a number of seconds: how SLAs are written in config."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return timedelta(seconds=float(text))
    match = _DURATION.match(str(text))
    if match is None:
        raise ValueError(f"not a duration (try 30m, 4h, 2d): {text!r}")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2).lower()])


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """Time to resolve, per queue, with a default for queues not listed."""

    default: timedelta = DEFAULT_SLA
    queues: Mapping[str, timedelta] | None = None

    def due(self, queue: str, opened: datetime) -> datetime:
        sla = (self.queues or {}).get(queue, self.default)
        return opened + sla

    @classmethod
    def parse(cls, specs: str | Iterable[str]) -> SlaPolicy:
        """From `QUEUE=DURATION` items (`fraud-desk=30m`, `default=2h`), as `serve --sla`
        and `CXPOLICY_SLA` (comma-separated) give them."""
        items = [p for p in (specs.split(",") if isinstance(specs, str) else specs) if p.strip()]
        queues: dict[str, str] = {}
        default: str | None = None
        for item in items:
            name, sep, value = item.partition("=")
            if not sep or not name.strip() or not value.strip():
                raise ValueError(f"an SLA is QUEUE=DURATION (e.g. fraud-desk=30m), not {item!r}")
            if name.strip() == "default":
                default = value.strip()
            else:
                queues[name.strip()] = value.strip()
        config: dict[str, Any] = {"queues": queues}
        if default is not None:
            config["default"] = default
        return cls.from_mapping(config)

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> SlaPolicy:
        """From config such as `{"default": "4h", "queues": {"fraud-desk": "30m"}}`."""
        default = parse_duration(config.get("default", DEFAULT_SLA))
        queues = {str(q): parse_duration(v) for q, v in (config.get("queues") or {}).items()}
        for name, value in [("default", default), *queues.items()]:
            if value <= timedelta(0):
                raise ValueError(f"SLA for {name} must be positive")
        return cls(default=default, queues=queues)


@dataclass(frozen=True, slots=True)
class Escalation:
    """One escalation to one queue; its history is in the audit chain, this is its state."""

    id: str
    decision_id: str
    queue: str
    reasons: tuple[Mapping[str, Any], ...]
    opened_at: str
    due_at: str
    state: str = "open"
    assigned_to: str | None = None
    assigned_by: str | None = None
    assigned_at: str | None = None
    resolved_by: str | None = None
    resolved_at: str | None = None
    note: str | None = None

    def overdue(self, now: datetime) -> bool:
        """Not resolved and past its due time (assignment does not stop the clock)."""
        return self.state != "resolved" and parse_time(self.due_at) < now

    def to_dict(self) -> dict[str, Any]:
        """JSON shape for the CLI and `GET /v1/escalations`."""
        return {
            "id": self.id,
            "decision_id": self.decision_id,
            "queue": self.queue,
            "reasons": [dict(r) for r in self.reasons],
            "state": self.state,
            "opened_at": self.opened_at,
            "due_at": self.due_at,
            "assigned_to": self.assigned_to,
            "assigned_by": self.assigned_by,
            "assigned_at": self.assigned_at,
            "resolved_by": self.resolved_by,
            "resolved_at": self.resolved_at,
            "note": self.note,
        }

    def event(self, action: str, by: str | None, previous: str | None) -> dict[str, Any]:
        """The `detail` of the chain record for a transition into the current state."""
        return {
            "escalation_id": self.id,
            "queue": self.queue,
            "transition": action,
            "from": previous,
            "to": self.state,
            "by": by,
            "assigned_to": self.assigned_to,
            "due_at": self.due_at,
            "note": self.note if action in ("resolve", *OUTCOMES) else None,
            "reasons": [dict(r) for r in self.reasons] if action == "open" else None,
        }


def escalation_reasons(decision: Decision) -> tuple[dict[str, Any], ...]:
    """The matched rules that asked for the escalation (all reasons if none did: a default
    or a request error escalated it)."""
    winners = [r for r in decision.reasons if r.effect is Effect.ESCALATE] or list(decision.reasons)
    out = [{"rule": r.rule, "because": r.because, "cite": list(r.cite)} for r in winners]
    if not out:
        why = "default" if decision.default_applied else "errors"
        out = [{"rule": None, "because": why, "cite": []}]
    return tuple(out)


def open_escalations(decision: Decision, opened: datetime, sla: SlaPolicy) -> list[Escalation]:
    """One escalation per queue of an `escalate` decision; none for any other effect."""
    if decision.effect is not Effect.ESCALATE:
        return []
    queues = list(dict.fromkeys(decision.escalate_to)) or [UNASSIGNED_QUEUE]
    reasons = escalation_reasons(decision)
    return [
        Escalation(
            id=new_decision_id(),
            decision_id=decision.decision_id,
            queue=q,
            reasons=reasons,
            opened_at=format_time(opened),
            due_at=format_time(sla.due(q, opened)),
        )
        for q in queues
    ]


def transition(
    esc: Escalation,
    action: str,
    *,
    by: str,
    at: datetime,
    to: str | None = None,
    note: str | None = None,
) -> Escalation:
    """Apply `assign` (needs `to`) or `resolve` (with an optional note); raise
    `IllegalTransition` for anything off the path, so the caller can tell the person why."""
    if not by or not by.strip():
        raise IllegalTransition("say who is acting (by)")
    when = format_time(at)
    if action == "assign":
        if not to or not to.strip():
            raise IllegalTransition("assign needs someone to assign to")
        _check(esc, "assigned")
        if esc.state == "assigned" and esc.assigned_to == to:
            raise IllegalTransition(f"escalation {esc.id} is already assigned to {to}")
        return replace(esc, state="assigned", assigned_to=to, assigned_by=by, assigned_at=when)
    if action == "resolve":
        _check(esc, "resolved")
        return replace(esc, state="resolved", resolved_by=by, resolved_at=when, note=note)
    if action in OUTCOMES:
        # A reviewer's decision closes it from open or assigned: whoever approves or denies
        # owns the outcome, so an open escalation is assigned to them in the same step.
        if esc.state == "resolved":
            raise IllegalTransition(f"escalation {esc.id} is already resolved; cannot {action} it")
        if not note or not note.strip():
            raise IllegalTransition(f"{action} needs a reason (why), for the audit and for the agent to relay")
        owner = esc.assigned_to or by
        return replace(
            esc,
            state="resolved",
            assigned_to=owner,
            assigned_by=esc.assigned_by or by,
            assigned_at=esc.assigned_at or when,
            resolved_by=by,
            resolved_at=when,
            note=note,
        )
    raise IllegalTransition(f"unknown transition {action!r} (assign, resolve, approve or deny)")


def _check(esc: Escalation, target: str) -> None:
    if target not in _ALLOWED[esc.state]:
        hint = {
            ("open", "resolved"): "assign it first: every resolution has an owner",
            ("resolved", "assigned"): "it is already resolved",
            ("resolved", "resolved"): "it is already resolved",
        }.get((esc.state, target), "")
        raise IllegalTransition(
            f"escalation {esc.id} is {esc.state}; cannot move it to {target}" + (f" ({hint})" if hint else "")
        )


def count_overdue(escalations: Iterable[Escalation], now: datetime) -> int:
    return sum(1 for e in escalations if e.overdue(now))


# How an escalation is stored, shared by every store (SQLite, PostgreSQL): the columns in order,
# a row back to an Escalation, an Escalation to a row, and the filtered listing.
ESC_COLUMNS = (
    "id, decision_id, queue, reasons, opened_at, due_at, state, assigned_to, assigned_by, "
    "assigned_at, resolved_by, resolved_at, note"
)


def escalation_from_row(row: tuple[Any, ...]) -> Escalation:
    (eid, did, queue, reasons, opened, due, state, ato, aby, aat, rby, rat, note) = row
    return Escalation(eid, did, queue, tuple(orjson.loads(reasons)), opened, due, state,
                      ato, aby, aat, rby, rat, note)  # fmt: skip


def escalation_values(esc: Escalation) -> tuple[Any, ...]:
    """The values of `ESC_COLUMNS` for one escalation."""
    reasons = canonical_json([dict(r) for r in esc.reasons]).decode()
    return (esc.id, esc.decision_id, esc.queue, reasons, esc.opened_at, esc.due_at, esc.state,
            esc.assigned_to, esc.assigned_by, esc.assigned_at, esc.resolved_by, esc.resolved_at,
            esc.note)  # fmt: skip


def select_escalations(
    state: str | None, queue: str | None, decision_id: str | None, *, placeholder: str
) -> tuple[str, list[Any]]:
    """The SELECT listing escalations, oldest first; `placeholder` is the driver's marker."""
    where: list[str] = []
    args: list[Any] = []
    for column, value in (("state", state), ("queue", queue), ("decision_id", decision_id)):
        if value is not None:
            where.append(f"{column} = {placeholder}")
            args.append(value)
    sql = f"SELECT {ESC_COLUMNS} FROM escalations"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + " ORDER BY opened_at, id", args
