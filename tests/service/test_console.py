"""The reviewer's console over HTTP: sign-in, sessions, CSRF, queues, one escalation, audit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.service.console_support import AGENT_KEY, PAN, REVIEWER, REVIEWER_KEY, console_app, stopped_request
from tests.service_support import running_server


@pytest.fixture
def client(tmp_path: Path) -> Iterator[httpx.Client]:
    with running_server(console_app(tmp_path)) as url, httpx.Client(base_url=url, timeout=10) as c:
        yield c


def _sign_in(c: httpx.Client, name: str = REVIEWER, key: str = REVIEWER_KEY) -> None:
    r = c.post("/console/login", data={"name": name, "key": key, "next": "/console/queues"}, follow_redirects=False)
    assert r.status_code == 303, r.text


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "the page has no CSRF token"
    return m.group(1)


def _stop(c: httpx.Client) -> str:
    d = c.post("/v1/decide", json=stopped_request()).json()
    assert d["effect"] == "escalate"
    return str(d["decision_id"])


def _escalation_link(c: httpx.Client) -> str:
    html = c.get("/console/queues").text
    m = re.search(r'href="(/console/escalations/[^"]+)"', html)
    assert m, html
    return m.group(1)


def test_pages_need_a_signed_in_reviewer(client: httpx.Client) -> None:
    for path in ("/console/queues", "/console/audit", "/console/escalations/x"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login")


def test_sign_in_sets_a_safe_cookie_and_refuses_wrong_or_non_reviewer_keys(client: httpx.Client) -> None:
    assert client.post("/console/login", data={"name": REVIEWER, "key": "nope"}).status_code == 401
    # an agent's key (decide role) is not a reviewer's, even with its own name
    assert client.post("/console/login", data={"name": "gateway", "key": AGENT_KEY}).status_code == 401
    # the right key under another name is refused too
    assert client.post("/console/login", data={"name": "mallory", "key": REVIEWER_KEY}).status_code == 401
    r = client.post("/console/login", data={"name": REVIEWER, "key": REVIEWER_KEY}, follow_redirects=False)
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    assert REVIEWER_KEY.lower() not in cookie


def test_repeated_failures_lock_the_name_out(client: httpx.Client) -> None:
    for _ in range(5):
        assert client.post("/console/login", data={"name": REVIEWER, "key": "guess"}).status_code == 401
    r = client.post("/console/login", data={"name": REVIEWER, "key": REVIEWER_KEY})
    assert r.status_code == 429 and "Too many" in r.text


def test_open_redirects_are_refused(client: httpx.Client) -> None:
    r = client.post(
        "/console/login", data={"name": REVIEWER, "key": REVIEWER_KEY, "next": "//evil.example/"},
        follow_redirects=False,
    )  # fmt: skip
    assert r.headers["location"] == "/console/queues"


def test_a_stop_appears_in_its_queue_masked_and_can_be_assigned(client: httpx.Client) -> None:
    decision_id = _stop(client)
    _sign_in(client)
    queues = client.get("/console/queues").text
    assert "desk-1" in queues and "refund.execute" in queues
    page = client.get(_escalation_link(client))
    html = page.text
    assert decision_id in html and "version 1" in html  # the because
    assert "Test policy: every refund by an AI is approved by a person" in html  # the cite text
    assert "card_pan" in html  # the detected signal
    assert PAN not in html and PAN[-8:] not in html.replace(" ", "")  # never the raw number
    assert "Content-Security-Policy" in page.headers or "content-security-policy" in page.headers
    link = _escalation_link(client)
    r = client.post(link + "/assign", data={"csrf": _csrf(html)}, follow_redirects=True)
    assert "Assigned to you" in r.text and "assigned" in r.text
    assert f"by {REVIEWER}" in r.text  # the history names the reviewer


def test_posts_without_csrf_or_session_are_refused(client: httpx.Client) -> None:
    _stop(client)
    _sign_in(client)
    link = _escalation_link(client)
    r = client.post(link + "/assign", data={}, follow_redirects=False)
    assert r.status_code == 403
    r = client.post(link + "/assign", data={"csrf": "forged"}, follow_redirects=False)
    assert r.status_code == 403
    assert "open" in client.get(link).text  # nothing changed
    client.cookies.clear()
    r = client.post(link + "/assign", data={"csrf": "x"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")


def test_illegal_transitions_are_refused_with_a_message(client: httpx.Client) -> None:
    _stop(client)
    _sign_in(client)
    link = _escalation_link(client)
    html = client.get(link).text
    r = client.post(link + "/resolve", data={"csrf": _csrf(html), "note": "x"}, follow_redirects=True)
    assert "Not done" in r.text and "assign it first" in r.text


def test_logout_revokes_the_session(client: httpx.Client) -> None:
    _sign_in(client)
    html = client.get("/console/queues").text
    stolen = {"cookie": f"cxpolicy_console={client.cookies.get('cxpolicy_console')}"}
    with httpx.Client(base_url=str(client.base_url)) as other:
        assert other.get("/console/queues", headers=stolen, follow_redirects=False).status_code == 200
        client.post("/console/logout", data={"csrf": _csrf(html)}, follow_redirects=False)
        assert other.get("/console/queues", headers=stolen, follow_redirects=False).status_code == 303


def test_audit_search_verify_and_export(client: httpx.Client) -> None:
    decision_id = _stop(client)
    _sign_in(client)
    html = client.get("/console/audit", params={"decision": decision_id}).text
    assert decision_id in html and PAN not in html
    assert client.get("/console/audit", params={"customer": "C-1"}).text.count(decision_id) >= 1
    assert decision_id not in client.get("/console/audit", params={"customer": "C-404"}).text
    r = client.post("/console/audit/verify", data={"csrf": _csrf(html)})
    assert "Chain verified" in r.text
    csv_text = client.get("/console/audit/export", params={"format": "csv"}).text
    assert csv_text.splitlines()[0].startswith("seq,time,decision_id") and decision_id in csv_text
    jsonl = client.get("/console/audit/export", params={"format": "jsonl"}).text
    assert decision_id in jsonl and PAN not in jsonl


def test_approve_hands_the_agent_a_grant_that_works_once(client: httpx.Client) -> None:
    stopped = client.post("/v1/decide", json=stopped_request()).json()
    (esc_id,) = stopped["escalations"]
    outcome = {"digest": stopped["challenge"]["digest"]}
    # an escalation id alone (another agent guessing or reading it) learns nothing
    assert client.get(f"/v1/escalations/{esc_id}/outcome").status_code == 404
    assert client.get(f"/v1/escalations/{esc_id}/outcome", params={"digest": "sha256:" + "0" * 64}).status_code == 404
    waiting = client.get(f"/v1/escalations/{esc_id}/outcome", params=outcome)
    assert waiting.status_code == 202 and waiting.json()["outcome"] is None
    _sign_in(client)
    link = f"/console/escalations/{esc_id}"
    html = client.get(link).text
    assert (
        "Not done" in client.post(link + "/approve", data={"csrf": _csrf(html), "why": ""}, follow_redirects=True).text
    )
    page = client.post(
        link + "/approve", data={"csrf": _csrf(html), "why": "customer confirmed by phone"}, follow_redirects=True
    )
    assert "Approved" in page.text and "sent back to the agent" in page.text
    assert f"by {REVIEWER}" in page.text  # the history names who approved
    picked = client.get(f"/v1/escalations/{esc_id}/outcome", params=outcome).json()
    assert picked["outcome"] == "approved" and picked["grant"]
    assert client.get(f"/v1/escalations/{esc_id}/outcome", params=outcome).json()["grant"] is None  # once
    retry = client.post("/v1/decide", json={**stopped_request(), "grants": [picked["grant"]]}).json()
    assert retry["effect"] == "allow" and retry["reasons"][0]["lifted_by"]
    again = client.post("/v1/decide", json={**stopped_request(), "grants": [picked["grant"]]}).json()
    assert again["effect"] == "escalate" and any("already used" in e["message"] for e in again["errors"])
    other = client.post("/v1/decide", json={**stopped_request(amount=3000), "grants": [picked["grant"]]}).json()
    assert other["effect"] == "escalate"  # approved for 300, not for 3000


def test_deny_relays_the_reason_to_the_agent(client: httpx.Client) -> None:
    stopped = client.post("/v1/decide", json=stopped_request()).json()
    (esc_id,) = stopped["escalations"]
    _sign_in(client)
    link = f"/console/escalations/{esc_id}"
    html = client.get(link).text
    page = client.post(
        link + "/deny", data={"csrf": _csrf(html), "why": "refunds to this card are paused"}, follow_redirects=True
    )
    assert "Denied" in page.text
    told = client.get(f"/v1/escalations/{esc_id}/outcome", params={"digest": stopped["challenge"]["digest"]}).json()
    assert told["outcome"] == "denied" and told["why"] == "refunds to this card are paused"
    assert "grant" not in told or told["grant"] is None
