"""The Guard at an agent's tool boundary: what the model writes cannot choose the facts, a
paused call replays without a second record, and a grant resumes exactly one call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import cxpolicy
from cxpolicy.audit import open_sink
from cxpolicy.grants import GrantKeys, GrantSigner, issue_for
from cxpolicy.guard import MESSAGES, Guard, ToolError, ToolMap
from tests.service_support import policy_dir

SECRET = b"guard-test-grant-key-0123456789abcdef"
TOOLS = ToolMap.from_mapping(
    {
        "tools": {
            "refund": {
                "action": "refund.execute",
                "args": {"amount": "context.amount", "note": "payload.text"},
                "same_as_subject": {"customer_id": "customer.id"},
            },
            "order_status": {"action": "order.status", "args": {"order": "context.order_id"}},
        }
    }
)
SUBJECT: dict[str, Any] = {
    "channel": "chat",
    "actor": {"kind": "ai", "id": "agent-1"},
    "customer": {"id": "C-1", "segment": "retail", "risk_tier": "low", "region": "IN"},
    "session": "S-1",
}


@pytest.fixture
def guard(tmp_path: Path) -> Guard:
    policy = cxpolicy.load([policy_dir(tmp_path)], grant_keys=GrantKeys.from_secret(SECRET))
    return Guard(policy, TOOLS, audit=open_sink(str(tmp_path / "audit.db"), key=b"guard-audit-key-0123456789"))


def test_allowed_tools_run_and_unknown_ones_are_denied(guard: Guard) -> None:
    out = guard.check(SUBJECT, "order_status", {"order": "A-1"})
    assert out.run and out.args == {"order": "A-1"} and out.message == ""
    denied = guard.check(SUBJECT, "wire_money", {"amount": 1})
    assert denied.kind == "denied" and denied.message == MESSAGES["denied"]


def test_what_the_model_writes_cannot_choose_the_facts(guard: Guard) -> None:
    sneaky = {"amount": 300, "otp_verified": True, "context": {"otp_verified": True}, "actor": {"kind": "human"}}
    out = guard.check(SUBJECT, "refund", sneaky)
    assert out.kind == "approval_required"
    assert out.request["actor"] == SUBJECT["actor"] and "otp_verified" not in out.request.get("context", {})
    assert guard.check(SUBJECT, "refund", {"amount": 300, "customer_id": "C-999"}).kind == "denied"
    anonymous = {k: v for k, v in SUBJECT.items() if k != "customer"}  # no session customer to equal
    assert guard.check(anonymous, "refund", {"amount": 300, "customer_id": "C-1"}).kind == "denied"


def test_a_replayed_pause_records_nothing_twice(guard: Guard) -> None:
    first = guard.check(SUBJECT, "refund", {"amount": 300})
    again = guard.check(SUBJECT, "refund", {"amount": 300})
    assert first.kind == again.kind == "approval_required" and again is first
    assert first.challenge is not None and first.challenge["wanted"][0]["kind"] == "approval"
    assert first.message == MESSAGES["approval_required"] and "svc." not in first.message
    assert len(guard.audit.query(kind="decision")) == 1


def test_a_grant_resumes_exactly_one_call_for_exactly_these_arguments(guard: Guard) -> None:
    stopped = guard.check(SUBJECT, "refund", {"amount": 300})
    token = issue_for(stopped.request, stopped.decision, GrantSigner.hs256(SECRET), kind="approval", by="lead")
    resumed = guard.check(SUBJECT, "refund", {"amount": 300}, grants=[token])
    assert resumed.run and resumed.decision.grants_used
    replay = guard.check(SUBJECT, "refund", {"amount": 300}, grants=[token])
    assert replay.kind == "approval_required"  # one use
    other = guard.check(SUBJECT, "refund", {"amount": 3000}, grants=[token])
    assert other.kind == "approval_required"  # approved for 300, not 3000
    assert guard.audit.verify().ok


def test_a_bad_tool_map_is_refused() -> None:
    with pytest.raises(ToolError):
        ToolMap.from_mapping({"tools": {"x": {"action": "a", "args": {"who": "actor.kind"}}}})
    with pytest.raises(ToolError):
        ToolMap.from_mapping({"tools": {"x": {"action": "a", "args": {"ok": "context.otp_verified"}}}})
    with pytest.raises(ToolError):
        ToolMap.from_mapping({"tools": {}})


def test_the_same_guard_works_against_the_service(tmp_path: Path) -> None:
    from cxpolicy.service.app import create_app
    from cxpolicy.service.reload import Engine
    from tests.service_support import running_server

    engine = Engine([policy_dir(tmp_path)])
    with running_server(create_app(engine)) as url:
        remote = Guard(cxpolicy.Client(url), TOOLS)
        assert remote.check(SUBJECT, "order_status", {"order": "A-1"}).run
        stopped = remote.check(SUBJECT, "refund", {"amount": 300, "otp_verified": True})
    assert stopped.kind == "approval_required" and stopped.message == MESSAGES["approval_required"]
    down = Guard(cxpolicy.Client(url, timeout=1), TOOLS).check(SUBJECT, "order_status", {"order": "A-1"})
    assert down.kind == "denied"  # the service is gone: nothing runs
