"""A decision service with an audit log, one reviewer and one agent, for the console tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from cxpolicy.audit import open_sink
from cxpolicy.grants import GrantKeys
from cxpolicy.service.app import create_app
from cxpolicy.service.auth import Caller, Callers, Role
from cxpolicy.service.reload import Engine
from tests.service_support import REQUEST, policy_dir

REVIEWER, REVIEWER_KEY = "alice", "alice-review-key-0123456789"
AGENT_KEY = "agent-decide-key-0123456789"
PAN = "4111111111111111"


GRANT_SECRET = b"console-test-grant-key-0123456789abcdef"


def console_app(tmp_path: Path) -> Starlette:
    engine = Engine([policy_dir(tmp_path)], detect=True, grant_keys=GrantKeys.from_secret(GRANT_SECRET))
    sink = open_sink(str(tmp_path / "audit.db"), key=b"console-test-audit-key-0123456789")
    app = create_app(engine, audit=sink, close_on_shutdown=True)
    app.state.service.callers = Callers(
        [
            (REVIEWER_KEY, Caller(REVIEWER, frozenset({Role.REVIEW}))),
            (AGENT_KEY, Caller("gateway", frozenset({Role.DECIDE}))),
        ]
    )
    return app


def stopped_request(**context: Any) -> dict[str, Any]:
    """A refund by an AI (the test policy escalates it), carrying a card number in its text."""
    return {
        **REQUEST,
        "context": {"amount": 300, **context},
        "payload": {"text": f"please refund to card {PAN[:4]} {PAN[4:8]} {PAN[8:12]} {PAN[12:]}"},
    }
