"""Escalations: one per queue of every `escalate` decision, SLA due times, the
open → assigned → resolved path, illegal moves refused, and every move in the chain."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from test_audit_support import T0, Clock, make_decision, make_request

from cxpolicy.audit import (
    UNASSIGNED_QUEUE,
    IllegalTransition,
    SlaPolicy,
    UnknownEscalation,
)
from cxpolicy.audit.escalations import open_escalations, parse_duration, transition
from cxpolicy.audit.sink import ChainedSink
from cxpolicy.audit.sqlite import SQLiteStore
from cxpolicy.kinds import Effect

SLA = SlaPolicy.from_mapping({"default": "4h", "queues": {"fraud-desk": "30m"}})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sink(tmp_path: Path, clock: Clock) -> ChainedSink:
    s = ChainedSink(SQLiteStore(tmp_path / "audit.db"), sla=SLA, clock=clock)
    yield s  # type: ignore[misc]
    s.close()


def test_parse_duration() -> None:
    assert parse_duration("30m") == timedelta(minutes=30)
    assert parse_duration("4h") == timedelta(hours=4)
    assert parse_duration("2d") == timedelta(days=2)
    assert parse_duration(90) == timedelta(seconds=90)
    with pytest.raises(ValueError):
        parse_duration("soon")
    with pytest.raises(ValueError):
        SlaPolicy.from_mapping({"default": "0s"})


def test_only_escalate_opens_and_one_per_queue() -> None:
    assert open_escalations(make_decision(Effect.REQUIRE_OTP), T0, SLA) == []
    escs = open_escalations(
        make_decision(Effect.ESCALATE, escalate_to=("fraud-desk", "refunds-desk", "fraud-desk")),
        T0,
        SLA,
    )
    assert [e.queue for e in escs] == ["fraud-desk", "refunds-desk"]
    assert escs[0].due_at == "2024-01-01T09:30:00.000000Z"
    assert escs[1].due_at == "2024-01-01T13:00:00.000000Z"
    assert len({e.id for e in escs}) == 2
    (default,) = open_escalations(make_decision(Effect.ESCALATE), T0, SLA)
    assert default.queue == UNASSIGNED_QUEUE


def test_state_machine_pure() -> None:
    (esc,) = open_escalations(make_decision(Effect.ESCALATE), T0, SLA)
    with pytest.raises(IllegalTransition, match="assign it first"):
        transition(esc, "resolve", by="alice", at=T0)
    with pytest.raises(IllegalTransition):
        transition(esc, "assign", by="lead", at=T0, to="")
    with pytest.raises(IllegalTransition):
        transition(esc, "assign", by=" ", at=T0, to="alice")
    with pytest.raises(IllegalTransition, match="unknown transition"):
        transition(esc, "reopen", by="lead", at=T0)
    assigned = transition(esc, "assign", by="lead", at=T0, to="alice")
    assert (assigned.state, assigned.assigned_to, assigned.assigned_by) == (
        "assigned",
        "alice",
        "lead",
    )
    with pytest.raises(IllegalTransition, match="already assigned"):
        transition(assigned, "assign", by="lead", at=T0, to="alice")
    reassigned = transition(assigned, "assign", by="lead", at=T0, to="bob")
    assert reassigned.assigned_to == "bob"
    done = transition(reassigned, "resolve", by="bob", at=T0, note="refunded")
    assert (done.state, done.resolved_by, done.note) == ("resolved", "bob", "refunded")
    for action, to in (("assign", "carol"), ("resolve", None)):
        with pytest.raises(IllegalTransition, match="already resolved"):
            transition(done, action, by="x", at=T0, to=to)


def test_sink_lifecycle_is_audited(sink: ChainedSink, clock: Clock) -> None:
    d = make_decision(Effect.ESCALATE, escalate_to=("fraud-desk",), rules=("bank.fraud.velocity",))
    sink.record(make_request(), d)
    (esc,) = sink.escalations(state="open")
    assert esc.decision_id == d.decision_id
    assert esc.reasons[0]["rule"] == "bank.fraud.velocity"
    assert esc.opened_at == "2024-01-01T09:00:00.000000Z"

    clock.advance(minutes=5)
    assigned = sink.assign(esc.id, to="alice", by="lead.carol")
    assert assigned.assigned_at == "2024-01-01T09:05:00.000000Z"
    with pytest.raises(IllegalTransition):
        sink.assign(esc.id, to="alice", by="lead.carol")
    clock.advance(minutes=10)
    resolved = sink.resolve(esc.id, by="alice", note="customer confirmed; card blocked")
    with pytest.raises(IllegalTransition):
        sink.resolve(esc.id, by="alice")
    with pytest.raises(UnknownEscalation):
        sink.assign("no-such-id", to="alice", by="lead")

    stored = sink.get_escalation(esc.id)
    assert stored == resolved
    assert stored is not None and stored.resolved_at == "2024-01-01T09:15:00.000000Z"
    events = sink.history(d.decision_id)
    assert [r.action for r in events] == [
        "refund.execute",
        "escalation.open",
        "escalation.assign",
        "escalation.resolve",
    ]
    moves = [(r.detail_object()["from"], r.detail_object()["to"]) for r in events[1:]]
    assert moves == [(None, "open"), ("open", "assigned"), ("assigned", "resolved")]
    assert [(r.actor_kind, r.actor_id) for r in events[1:]] == [
        ("system", None),
        ("human", "lead.carol"),
        ("human", "alice"),
    ]
    assert sink.verify().ok


def test_failed_transition_writes_nothing(sink: ChainedSink) -> None:
    sink.record(make_request(), make_decision(Effect.ESCALATE))
    (esc,) = sink.escalations()
    before = len(sink.query())
    with pytest.raises(IllegalTransition):
        sink.resolve(esc.id, by="alice")
    assert len(sink.query()) == before
    assert sink.get_escalation(esc.id) == esc


def test_overdue_and_count(sink: ChainedSink, clock: Clock) -> None:
    sink.record(make_request(), make_decision(Effect.ESCALATE, escalate_to=("fraud-desk",)))
    sink.record(make_request(), make_decision(Effect.ESCALATE, escalate_to=("refunds-desk",)))
    assert sink.overdue_count() == 0
    clock.advance(minutes=31)
    assert [e.queue for e in sink.overdue()] == ["fraud-desk"]
    fraud = sink.overdue()[0]
    sink.assign(fraud.id, to="alice", by="lead")
    assert sink.overdue_count() == 1  # assignment does not stop the clock
    clock.advance(hours=4)
    assert sink.overdue_count() == 2
    sink.resolve(fraud.id, by="alice")
    assert [e.queue for e in sink.overdue()] == ["refunds-desk"]
    assert sink.overdue_count(T0) == 0


def test_filters(sink: ChainedSink) -> None:
    sink.record(make_request(), make_decision(Effect.ESCALATE, escalate_to=("a", "b")))
    sink.record(make_request(), make_decision(Effect.ESCALATE, escalate_to=("b",)))
    assert len(sink.escalations(queue="b")) == 2
    assert len(sink.escalations(queue="a", state="open")) == 1
    first = sink.escalations(queue="a")[0]
    sink.assign(first.id, to="x", by="y")
    assert len(sink.escalations(state="open")) == 2
    assert len(sink.escalations(state="assigned")) == 1
    assert len(sink.escalations(decision_id=first.decision_id)) == 2
    assert first.to_dict()["queue"] == "a"


def test_resolve_note_is_masked(sink: ChainedSink) -> None:
    sink.record(make_request(), make_decision(Effect.ESCALATE))
    (esc,) = sink.escalations()
    sink.assign(esc.id, to="alice", by="lead")
    done = sink.resolve(esc.id, by="alice", note="card 4111 1111 1111 1111 reissued")
    assert done.note is not None and "4111" not in done.note
