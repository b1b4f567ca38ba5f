"""Grants through `cxpolicy serve` (a real process) and the grant endpoints in-process:
stop → approve over HTTP → retry allowed once → the same grant again stopped; the audit log
verifies and links the stopping, the using and the refusing decision."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cxpolicy.audit import open_sink
from cxpolicy.grants import GrantKeys
from cxpolicy.service.app import create_app
from cxpolicy.service.reload import Engine
from tests.grants.support import POLICY, REFUND, SECRET
from tests.service_support import running_server, wait_for

TOKEN = "review-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _policy_dir(tmp_path: Path) -> Path:
    d = tmp_path / "policy"
    d.mkdir()
    (d / "policy.cxp").write_text(POLICY)
    return d


def test_stop_approve_retry_once_through_cxpolicy_serve(tmp_path: Path) -> None:
    d, port, db = _policy_dir(tmp_path), _free_port(), tmp_path / "audit.db"
    env = {**os.environ, "CXPOLICY_ADMIN_TOKEN": TOKEN, "CXPOLICY_GRANT_KEY": SECRET.decode()}
    cmd = [sys.executable, "-m", "cxpolicy", "serve", "-p", str(d), "--port", str(port), "--audit", f"sqlite:///{db}"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                return False

        wait_for(ready, timeout=30, interval=0.1)
        stopped = httpx.post(f"{url}/v1/decide", json=REFUND).json()
        assert stopped["effect"] == "escalate"
        (esc_id,) = stopped["escalations"]
        ch = stopped["challenge"]
        assert ch["decision_id"] == stopped["decision_id"] and ch["kind"] == "approval"
        assert ch["wanted"] == [{"kind": "approval", "rules": ["t.g.ai_refund_needs_person"]}]
        assert ch["digest"].startswith("sha256:") and ch["expires_at"] > time.time()
        assert httpx.post(f"{url}/v1/escalations/{esc_id}/approve", json={"why": "x"}).status_code == 401
        approved = httpx.post(f"{url}/v1/escalations/{esc_id}/approve", json={"why": "customer verified"}, headers=AUTH)
        assert approved.status_code == 200, approved.text
        grant = approved.json()["grant"]
        again = httpx.post(f"{url}/v1/escalations/{esc_id}/approve", json={"why": "twice"}, headers=AUTH)
        assert again.status_code == 409  # already resolved: no second grant
        retry = httpx.post(f"{url}/v1/decide", json={**REFUND, "grants": [grant]}).json()
        assert retry["effect"] == "allow" and retry["grants_used"] == [approved.json()["grant_id"]]
        assert retry["reasons"][0]["lifted_by"] == approved.json()["grant_id"]
        replay = httpx.post(f"{url}/v1/decide", json={**REFUND, "grants": [grant]}).json()
        assert replay["effect"] == "escalate" and "grants_used" not in replay
        assert any("already used" in e["message"] for e in replay["errors"])
        other = httpx.post(f"{url}/v1/decide", json={**REFUND, "context": {"amount": 30000}, "grants": [grant]}).json()
        assert other["effect"] == "escalate"
        detail = httpx.get(f"{url}/v1/escalations/{esc_id}", headers=AUTH).json()
        assert detail["outcome"] == "approved" and detail["executed_by"] == retry["decision_id"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    verify = subprocess.run(
        [sys.executable, "-m", "cxpolicy", "audit", "verify", str(db)], capture_output=True, text=True
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    with open_sink(f"sqlite:///{db}", key=None) as sink:
        events = {r.action: r for r in sink.history(stopped["decision_id"])}
        assert {"escalation.open", "escalation.approve", "grant.issue", "grant.use", "grant.refuse"} <= set(events)
        assert events["grant.use"].detail_object()["used_by"] == retry["decision_id"]
        refused = {
            r.detail_object()["refused_in"] for r in sink.history(stopped["decision_id"]) if r.action == "grant.refuse"
        }
        assert refused == {replay["decision_id"], other["decision_id"]}
        assert events["escalation.approve"].detail_object()["grant"] == approved.json()["grant_id"]
        assert grant not in (sink.get(retry["decision_id"]) or pytest.fail("no record")).request


@pytest.fixture
def app_url(tmp_path: Path) -> Any:
    d = _policy_dir(tmp_path)
    engine = Engine([str(d)], grant_keys=GrantKeys.from_secret(SECRET))
    audit = open_sink(f"sqlite:///{tmp_path / 'a.db'}", key=None)
    with running_server(create_app(engine, admin_token=TOKEN, audit=audit, close_on_shutdown=True)) as url:
        yield url


def test_deny_closes_with_the_reason_and_issues_nothing(app_url: str) -> None:
    stopped = httpx.post(f"{app_url}/v1/decide", json=REFUND).json()
    (esc_id,) = stopped["escalations"]
    assert httpx.post(f"{app_url}/v1/escalations/{esc_id}/deny", json={}, headers=AUTH).status_code == 400
    r = httpx.post(f"{app_url}/v1/escalations/{esc_id}/deny", json={"why": "outside policy"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["outcome"] == "denied" and r.json()["why"] == "outside policy"
    assert "grant" not in r.json()
    assert httpx.post(f"{app_url}/v1/escalations/{esc_id}/approve", json={"why": "x"}, headers=AUTH).status_code == 409
    detail = httpx.get(f"{app_url}/v1/escalations/{esc_id}", headers=AUTH).json()
    assert detail["outcome"] == "denied" and detail["grant_id"] is None
    assert httpx.get(f"{app_url}/v1/escalations/nope", headers=AUTH).status_code == 404


def test_issuer_grant_for_an_otp_challenge(app_url: str) -> None:
    big = {"action": "pay", "actor": {"kind": "ai"}, "context": {"amount": 9000}}
    stopped = httpx.post(f"{app_url}/v1/decide", json=big).json()
    assert stopped["effect"] == "require_otp" and stopped["challenge"]["kind"] == "otp"
    body = {"kind": "otp", "decision_id": stopped["decision_id"], "request": big}
    assert httpx.post(f"{app_url}/v1/grants", json=body).status_code == 401
    r = httpx.post(f"{app_url}/v1/grants", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["rules"] == ["t.g.pay_needs_otp", "t.g.pay_static_otp"]
    ok = httpx.post(f"{app_url}/v1/decide", json={**big, "grants": [r.json()["grant"]]}).json()
    assert ok["effect"] == "allow" and ok["grants_used"]
    nothing = {"kind": "approval", "decision_id": stopped["decision_id"], "request": big}
    assert httpx.post(f"{app_url}/v1/grants", json=nothing, headers=AUTH).status_code == 409
    stale = {**body, "decision_id": "00000000-0000-7000-8000-000000000000"}
    assert httpx.post(f"{app_url}/v1/grants", json=stale, headers=AUTH).status_code == 409
