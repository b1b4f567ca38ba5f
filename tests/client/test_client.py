"""`Client` and `Decision.from_dict`: the service's answer is the in-process decision, and a
service that is down, slow or wrong never lets an action through."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

import cxpolicy
from cxpolicy.engine.decision import Decision
from cxpolicy.kinds import Effect
from cxpolicy.service.app import create_app
from cxpolicy.service.reload import Engine
from tests.service_support import REQUEST, policy_dir, running_server


def _same(a: Decision, b: Decision) -> None:
    assert (a.effect, a.redact, a.escalate_to, a.errors, a.policy_revision) == (
        b.effect, b.redact, b.escalate_to, b.errors, b.policy_revision,
    )  # fmt: skip
    assert [(r.rule, r.effect, r.because, r.cite) for r in a.reasons] == [
        (r.rule, r.effect, r.because, r.cite) for r in b.reasons
    ]


def test_from_dict_round_trips_every_decision_shape(tmp_path: Path) -> None:
    policy = cxpolicy.load([policy_dir(tmp_path)])
    for req in (REQUEST, {**REQUEST, "action": "order.status"}, {**REQUEST, "action": "no.such"}, {}):
        d = policy.decide(req)
        back = Decision.from_dict(d.to_dict())
        _same(back, d)
        assert back.summary == d.summary and back.decision_id == d.decision_id


@pytest.mark.parametrize(
    "bad", [{}, {"effect": "allow"}, {"decision_id": "x", "effect": "maybe", "policy_revision": "r"}]
)
def test_from_dict_refuses_what_is_not_a_decision(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Decision.from_dict(bad)


def test_the_client_gives_the_services_decision(tmp_path: Path) -> None:
    d = policy_dir(tmp_path)
    with running_server(create_app(Engine([d]))) as url:
        remote = cxpolicy.Client(url).decide(REQUEST)
    local = cxpolicy.load([d]).decide(REQUEST)
    _same(remote, local)
    assert remote.effect is Effect.ESCALATE and remote.escalate_to == ("desk-1",)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Liar(BaseHTTPRequestHandler):
    body = b'{"effect": "allow"}'  # says allow, but is not a decision
    status = 200

    def do_POST(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize(("status", "body"), [(200, b'{"effect": "allow"}'), (200, b"not json"), (500, b"{}")])
def test_a_wrong_answer_escalates(status: int, body: bytes) -> None:
    handler = type("H", (_Liar,), {"status": status, "body": body})
    server = HTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        d = cxpolicy.Client(f"http://127.0.0.1:{server.server_address[1]}").decide(REQUEST)
    finally:
        server.shutdown()
    assert d.effect is Effect.ESCALATE and d.errors[0].kind == "internal"


def test_an_unreachable_service_escalates() -> None:
    d = cxpolicy.Client(f"http://127.0.0.1:{_free_port()}", timeout=1).decide(REQUEST)
    assert d.effect is Effect.ESCALATE and "unreachable" in d.errors[0].message
    assert cxpolicy.Client("http://127.0.0.1:1").decide({"x": float("nan")}).effect is Effect.ESCALATE
