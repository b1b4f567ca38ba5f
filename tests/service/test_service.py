"""The decision service over a real uvicorn on 127.0.0.1: endpoints, bad input, tokens,
metrics, the audit endpoints, the OpenAPI document, and `cxpolicy serve` itself."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from service_support import (
    BAD_RULES,
    REQUEST,
    policy_dir,
    rules_v,
    running_server,
    wait_for,
    write_atomic,
)

from cxpolicy.audit import AuditSink, open_sink
from cxpolicy.audit.witness import read_sightings
from cxpolicy.engine.loader import load_text
from cxpolicy.service.app import create_app
from cxpolicy.service.reload import Engine
from cxpolicy.service.schema import (
    ENDPOINTS,
    DecisionModel,
    EscalationListModel,
    PolicyInfoModel,
    ReloadResultModel,
)

TOKEN = "test-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PAN = "4111111111111111"


class Svc:
    def __init__(self, url: str, engine: Engine, policy: Path, audit: AuditSink | None) -> None:
        self.client = httpx.Client(base_url=url, timeout=10)
        self.engine = engine
        self.policy = policy
        self.audit = audit

    def decide(self, body: Any, **kw: Any) -> httpx.Response:
        return self.client.post("/v1/decide", json=body, **kw)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = self.client.get("/metrics").text
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text)
            for s in fam.samples
        }


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Svc]:
    """Audit on, admin token set: the full service."""
    root = tmp_path_factory.mktemp("svc")
    d = policy_dir(root, 1)
    engine = Engine([d])
    sink = open_sink(str(root / "audit.db"), key=None)
    app = create_app(engine, admin_token=TOKEN, audit=sink, max_batch=50)
    with running_server(app) as url:
        s = Svc(url, engine, d, sink)
        yield s
        s.client.close()
    engine.close()
    sink.close()


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Svc]:
    """No admin token, no audit: admin and audit endpoints must be off."""
    d = policy_dir(tmp_path_factory.mktemp("bare"), 1)
    engine = Engine([d])
    with running_server(create_app(engine, max_body=2048)) as url:
        s = Svc(url, engine, d, None)
        yield s
        s.client.close()
    engine.close()


def error_code(r: httpx.Response) -> str:
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and body["error"]["status"] == r.status_code
    assert "Traceback" not in r.text
    code: str = body["error"]["code"]
    return code


# ---------------------------------------------------------------------- deciding
def test_decide(svc: Svc) -> None:
    r = svc.decide(REQUEST)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    d = DecisionModel.model_validate(r.json())
    assert d.effect == "escalate" and d.escalate_to == ["desk-1"]
    assert d.policy_revision == svc.engine.revision and d.trace is None
    assert d.reasons[0].cite and d.summary.startswith("escalate")
    # The trace is an oracle of what blocked a request: a reviewer's (here admin) credential only.
    assert svc.decide(REQUEST, params={"explain": "true"}).status_code == 401
    explained = DecisionModel.model_validate(svc.decide(REQUEST, params={"explain": "true"}, headers=AUTH).json())
    assert explained.trace is not None and explained.trace.candidates


@pytest.mark.parametrize(
    "body",
    [b"{bad", b"", b'{"action": "a", "action": "b"}', b'{"x": NaN}', b"[" * 40 + b"]" * 40,
     "\udcff".encode("utf-8", "surrogatepass")],
    ids=["syntax", "empty", "duplicate-key", "nan", "too-deep", "not-utf8"],
)  # fmt: skip
def test_body_that_is_not_json_is_400(bare: Svc, body: bytes) -> None:
    r = bare.client.post("/v1/decide", content=body)
    assert r.status_code == 400
    assert error_code(r) == ("limit_exceeded" if body.startswith(b"[[") else "invalid_json")


@pytest.mark.parametrize(
    "body",
    [[REQUEST], "refund", 42, None, {}, {**REQUEST, "channel": "pigeon"},
     {**REQUEST, "actor": {"kind": None}}, {**REQUEST, "context": {"amount": "lots"}}],
    ids=["array", "string", "number", "null", "empty", "bad-value", "null-dim", "bad-type"],
)  # fmt: skip
def test_json_that_is_not_a_valid_request_escalates(bare: Svc, body: Any) -> None:
    r = bare.client.post("/v1/decide", content=json.dumps(body))
    assert r.status_code == 200
    d = DecisionModel.model_validate(r.json())
    assert d.effect == "escalate" and d.errors and d.errors[0].kind == "request"


def test_body_over_limit_is_413(bare: Svc) -> None:
    big = {**REQUEST, "payload": {"text": "x" * 4096}}
    r = bare.decide(big)
    assert r.status_code == 413 and error_code(r) == "body_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while reading
        for _ in range(10):
            yield b" " * 1024

    r = bare.client.post("/v1/decide", content=chunks())
    assert r.status_code == 413 and error_code(r) == "body_too_large"


def test_unknown_route_and_wrong_method(bare: Svc) -> None:
    r = bare.client.get("/v2/nothing")
    assert r.status_code == 404 and error_code(r) == "not_found"
    r = bare.client.get("/v1/decide")
    assert r.status_code == 405 and error_code(r) == "method_not_allowed"


def test_internal_error_is_500_json_without_internals(tmp_path: Path) -> None:
    engine = Engine([policy_dir(tmp_path)])

    def broken(request: Any, explain: bool = False) -> Any:
        raise RuntimeError("secret detail at /srv/internal.py")

    engine.decide = broken  # type: ignore[method-assign]
    with running_server(create_app(engine)) as url:
        r = httpx.post(f"{url}/v1/decide", json=REQUEST)
    assert r.status_code == 500 and error_code(r) == "internal"
    assert "secret" not in r.text and "RuntimeError" not in r.text


def test_batch(svc: Svc) -> None:
    batch = [REQUEST, {"action": "order.status"}, {**REQUEST, "action": "order.status"}, 7]
    r = svc.client.post("/v1/decide/batch", json=batch)
    assert r.status_code == 200
    out = [DecisionModel.model_validate(x) for x in r.json()]
    assert [d.effect for d in out] == ["escalate", "escalate", "allow", "escalate"]
    assert out[0].escalate_to == ["desk-1"] and out[1].errors and out[3].errors
    assert len({d.decision_id for d in out}) == 4
    assert svc.client.post("/v1/decide/batch", json=[]).json() == []
    r = svc.client.post("/v1/decide/batch", json={"requests": batch})
    assert r.status_code == 400 and error_code(r) == "invalid_batch"
    r = svc.client.post("/v1/decide/batch", json=[REQUEST] * 51)
    assert r.status_code == 413 and error_code(r) == "batch_too_large"


# ---------------------------------------------------------------------- policy & admin
def test_policy_info(svc: Svc) -> None:
    # Without a credential only the revision is shown: no file paths (issue 15).
    assert svc.client.get("/v1/policy").json() == {"revision": svc.engine.revision}
    info = PolicyInfoModel.model_validate(svc.client.get("/v1/policy", headers=AUTH).json())
    assert info.revision == svc.engine.revision and info.rule_count == 2
    assert [Path(f).name for f in info.files] == ["rules.cxp", "vocab.cxp"]
    assert info.packs == ["core"] and info.default == "allow" and not info.watching
    assert info.last_good.revision == info.revision


def test_admin_token_checks(svc: Svc, bare: Svc) -> None:
    r = svc.client.post("/v1/policy/reload")
    assert r.status_code == 401 and error_code(r) == "unauthorized"
    assert r.headers["www-authenticate"].startswith("Bearer")
    for header in (f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer", TOKEN, f"Bearer {TOKEN[:-1]}"):
        r = svc.client.post("/v1/policy/reload", headers={"Authorization": header})
        assert r.status_code == 401, header
    r = bare.client.post("/v1/policy/reload", headers=AUTH)
    assert r.status_code == 403 and error_code(r) == "admin_disabled"
    assert "CXPOLICY_ADMIN_TOKEN" in r.json()["error"]["message"]
    for path in ("/v1/escalations", "/v1/decisions/x"):
        assert bare.client.get(path, headers=AUTH).status_code == 403
        assert svc.client.get(path).status_code == 401


def test_reload_endpoint(svc: Svc) -> None:
    rules = svc.policy / "rules.cxp"
    before = svc.engine.revision
    try:
        write_atomic(rules, BAD_RULES[1])
        r = svc.client.post("/v1/policy/reload", headers=AUTH)
        assert r.status_code == 422
        res = ReloadResultModel.model_validate(r.json())
        assert not res.ok and res.revision == before and res.diagnostics
        assert "did you mean" in (res.diagnostics[0].hint or "") + res.diagnostics[0].message
        info = svc.client.get("/v1/policy", headers=AUTH).json()
        assert info["revision"] == before and info["last_reload"]["ok"] is False
        assert info["last_reload"]["diagnostics"] and info["reloads"]["failed"] >= 1
        m = svc.metrics()
        assert m[("cxpolicy_policy_last_reload_ok", ())] == 0
        assert m[("cxpolicy_reloads_total", (("result", "failed"),))] >= 1
        assert svc.decide(REQUEST).json()["policy_revision"] == before

        write_atomic(rules, rules_v(2))
        r = svc.client.post("/v1/policy/reload", headers=AUTH)
        assert r.status_code == 200 and r.json()["changed"] is True
        assert svc.decide(REQUEST).json()["escalate_to"] == ["desk-2"]
    finally:
        write_atomic(rules, rules_v(1))
        svc.engine.reload()
    assert svc.engine.revision == before


def test_health(svc: Svc, bare: Svc) -> None:
    assert svc.client.get("/healthz").json()["status"] == "ok"
    ready = svc.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["audit"] == "on"
    assert bare.client.get("/readyz").json() == {
        "status": "ok", "revision": bare.engine.revision, "audit": "off"
    }  # fmt: skip


def test_metrics(svc: Svc, bare: Svc) -> None:
    svc.decide(REQUEST)
    svc.decide({**REQUEST, "action": "order.status"})
    svc.decide({**REQUEST, "action": "card.block"})  # no rule: the default
    svc.decide([])
    m = svc.metrics()
    rev = svc.engine.revision

    def count(effect: str, rule: str) -> float:
        return m.get(("cxpolicy_decisions_total", (("effect", effect), ("rule", rule))), 0)

    assert count("escalate", "svc.refunds") >= 1 and count("allow", "svc.status") >= 1
    assert count("allow", "(default)") >= 1 and count("escalate", "(error)") >= 1
    assert m[("cxpolicy_policy_info", (("revision", rev),))] == 1
    assert m[("cxpolicy_decision_duration_seconds_count", ())] >= 4
    assert m[("cxpolicy_http_request_duration_seconds_count", (("endpoint", "decide"),))] >= 4
    assert ("cxpolicy_reloads_total", (("result", "ok"),)) in m
    assert m[("cxpolicy_policy_rules", ())] == 2
    assert ("cxpolicy_escalations_overdue", ()) in m and m[("cxpolicy_audit_writes_total", ())] > 0
    assert not any(k[0] == "cxpolicy_escalations_overdue" for k in bare.metrics())


# ---------------------------------------------------------------------- audit endpoints
def test_decisions_are_recorded_before_they_are_returned(svc: Svc) -> None:
    assert svc.audit is not None
    ids = [svc.decide(REQUEST).json()["decision_id"] for _ in range(5)]
    batch = svc.client.post("/v1/decide/batch", json=[REQUEST, {"x": 1}]).json()
    for decision_id in ids + [d["decision_id"] for d in batch]:
        assert svc.audit.get(decision_id) is not None  # committed: no wait needed
    assert svc.audit.verify().ok


def test_decision_record_and_escalation_lifecycle(svc: Svc) -> None:
    text = f"my card is {PAN}"
    d = svc.decide({**REQUEST, "payload": {"text": text}}).json()
    r = svc.client.get(f"/v1/decisions/{d['decision_id']}", headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert body["record"]["effect"] == "escalate" and body["record"]["decision_id"] == d["decision_id"]
    assert PAN not in r.text  # the audit log holds the masked request only
    (esc,) = body["escalations"]
    assert esc["queue"] == "desk-1" and esc["state"] == "open"
    listed = EscalationListModel.model_validate(
        svc.client.get("/v1/escalations", params={"state": "open"}, headers=AUTH).json()
    )
    assert esc["id"] in {e.id for e in listed.escalations}
    path = f"/v1/escalations/{esc['id']}"
    r = svc.client.post(f"{path}/resolve", json={"by": "lead"}, headers=AUTH)
    assert r.status_code == 409 and error_code(r) == "illegal_transition"
    r = svc.client.post(f"{path}/assign", json={"to": "asha", "by": "lead"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["state"] == "assigned"
    r = svc.client.post(f"{path}/resolve", json={"by": "asha", "note": "called back"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["state"] == "resolved"
    history = svc.client.get(f"/v1/decisions/{d['decision_id']}", headers=AUTH).json()["history"]
    assert [h["action"] for h in history] == ["escalation.open", "escalation.assign", "escalation.resolve"]


def test_audit_endpoint_errors(svc: Svc, tmp_path: Path) -> None:
    c = svc.client
    r = c.get("/v1/decisions/nope", headers=AUTH)
    assert r.status_code == 404 and error_code(r) == "not_found"
    r = c.post("/v1/escalations/nope/assign", json={"to": "a", "by": "b"}, headers=AUTH)
    assert r.status_code == 404
    for bad in ({"to": "a"}, {"to": "", "by": "b"}, {"to": "a", "by": "b", "x": 1}, [1]):
        r = c.post("/v1/escalations/nope/assign", json=bad, headers=AUTH)
        assert r.status_code == 400 and error_code(r) == "invalid_body", bad
    r = c.get("/v1/escalations", params={"state": "lost"}, headers=AUTH)
    assert r.status_code == 400 and error_code(r) == "invalid_state"
    for limit in ("0", "x", "10001"):
        r = c.get("/v1/escalations", params={"limit": limit}, headers=AUTH)
        assert r.status_code == 400 and error_code(r) == "invalid_limit"
    assert c.get("/v1/escalations", params={"limit": "1"}, headers=AUTH).json()["count"] <= 1
    engine = Engine([policy_dir(tmp_path)])
    with running_server(create_app(engine, admin_token=TOKEN)) as url:
        r = httpx.get(f"{url}/v1/escalations", headers=AUTH)
    assert r.status_code == 404 and error_code(r) == "audit_disabled"
    assert "--audit" in r.json()["error"]["message"]


def test_a_decision_that_cannot_be_recorded_is_withheld(tmp_path: Path) -> None:
    engine = Engine([policy_dir(tmp_path)])
    sink = open_sink(str(tmp_path / "audit.db"), key=None)
    sink.close()  # every record now fails
    with running_server(create_app(engine, audit=sink)) as url:
        r = httpx.post(f"{url}/v1/decide", json=REQUEST)
        assert r.status_code == 503 and error_code(r) == "audit_unavailable"
        assert "effect" not in r.text
        r = httpx.post(f"{url}/v1/decide/batch", json=[REQUEST])
        assert r.status_code == 503
        assert httpx.get(f"{url}/readyz").status_code == 503
        assert httpx.get(f"{url}/healthz").status_code == 200


# ---------------------------------------------------------------------- schema & docs
def test_openapi_matches_the_routes(svc: Svc) -> None:
    doc = svc.client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    served = {(ep.method.lower(), ep.path) for ep in ENDPOINTS}
    published = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert served == published
    schemas = doc["components"]["schemas"]
    for ops in doc["paths"].values():
        for op in ops.values():
            for resp in op["responses"].values():
                ref = str(resp.get("content", {}).get("application/json", {}).get("schema", {}))
                for name in schemas:
                    ref = ref.replace(f"#/components/schemas/{name}'", "")
                assert "#/components" not in ref, ref
    page = svc.client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script" not in page.text and "https://" not in page.text.replace(
        "https://json-schema.org", ""
    )
    for ep in ENDPOINTS:
        assert ep.path in page.text


def test_schema_mirrors_every_decision_shape() -> None:
    """`extra="forbid"`: a key that Decision.to_dict() grows without the schema fails here."""
    policy = load_text(
        "use core\npackage t\n"
        "rule mask { match data_class = card_pan\n decide redact as last4 }\n"
        "rule otp { match action = payment.initiate\n when context.amount > 10\n decide require_otp }\n"
        "rule broken { match action = refund.execute\n when context.nothing.deeper > 1\n"
        " decide escalate to \"q\"\n because \"b\"\n cite \"c\" }\n",
        "t.cxp",
    )
    requests = [
        {**REQUEST, "data_classes": ["card_pan"]},
        {**REQUEST, "action": "payment.initiate", "context": {"amount": 50}},
        REQUEST,
        {**REQUEST, "action": "order.status"},
        {"action": 5},
    ]
    for req in requests:
        for explain in (False, True):
            d = policy.decide(req, explain=explain)
            DecisionModel.model_validate(d.to_dict())


# ---------------------------------------------------------------------- the command
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_serve_rejects_a_bad_policy(tmp_path: Path) -> None:
    d = policy_dir(tmp_path)
    (d / "rules.cxp").write_text(BAD_RULES[0])
    p = subprocess.run(
        [sys.executable, "-m", "cxpolicy", "serve", "-p", str(d), "--port", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert p.returncode == 2 and "CXP" in p.stderr and "policy rejected" in p.stderr


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_command(tmp_path: Path, workers: int) -> None:
    d = policy_dir(tmp_path)
    port = free_port()
    env = {**os.environ, "CXPOLICY_ADMIN_TOKEN": TOKEN}
    cmd = [sys.executable, "-m", "cxpolicy", "serve", "-p", str(d), "--port", str(port),
           "--workers", str(workers), "--audit", f"sqlite:///{tmp_path}/audit.db", "--watch"]  # fmt: skip
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
        seen = {httpx.post(f"{url}/v1/decide", json=REQUEST).json()["escalate_to"][0]
                for _ in range(10)}  # fmt: skip
        assert seen == {"desk-1"}
        for _ in range(4):  # whichever worker answers the scrape counts every worker's decisions
            text = httpx.get(f"{url}/metrics").text
            counted = sum(
                s.value for fam in text_string_to_metric_families(text) for s in fam.samples
                if s.name == "cxpolicy_decisions_total" and s.labels.get("rule") == "svc.refunds"
            )  # fmt: skip
            assert counted >= 10, text
        assert httpx.post(f"{url}/v1/policy/reload", headers=AUTH).status_code == 200
        write_atomic(d / "rules.cxp", rules_v(5))  # every worker watches and reloads
        wait_for(lambda: all(httpx.post(f"{url}/v1/decide", json=REQUEST).json()["escalate_to"]
                             == ["desk-5"] for _ in range(10)), timeout=15)  # fmt: skip
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    time.sleep(0.1)
    # Keyed by default: serve made a key file (0600) beside the log, and a witness file.
    key_file = tmp_path / "audit.db.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "audit.db.witness").stat().st_size > 0
    with open_sink(f"sqlite:///{tmp_path}/audit.db") as sink:  # finds the key file itself
        result = sink.verify(witness=list(read_sightings(tmp_path / "audit.db.witness")))
        assert result.ok, result.problem
        assert len(sink.query(kind="decision")) >= 20
    with open_sink(f"sqlite:///{tmp_path}/audit.db", key=None) as unkeyed:
        assert not unkeyed.verify().ok  # a keyed log does not verify without its key


def test_devrun_prints_a_curl_that_works(tmp_path: Path) -> None:
    rulesets = tmp_path / "rulesets"
    policy_dir(rulesets, 3, name="demo")
    port = free_port()
    cmd = [sys.executable, "-m", "cxpolicy.service.devrun", "--port", str(port), "--rulesets",
           str(rulesets), "--audit", f"sqlite:///{tmp_path}/var/audit.db"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "CXPOLICY_ADMIN_TOKEN"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:  # the banner ends with the docs line
            lines.append(line)
            if "API docs:" in line or len(lines) > 50:
                break
        curl = next(x for x in lines if x.strip().startswith("curl -s http"))
        argv = shlex.split(curl)
        url, body = argv[2], argv[argv.index("-d") + 1]

        def answer() -> dict[str, Any] | None:
            try:
                r = httpx.post(url, content=body, headers={"Content-Type": "application/json"})
            except httpx.HTTPError:
                return None
            result: dict[str, Any] = r.json()
            return result

        decision = wait_for(answer, timeout=30, interval=0.1)
        # No requests.jsonl: the fallback example, a refund by an AI, which v3 escalates.
        assert decision["effect"] == "escalate" and not decision["errors"]
        assert "desk-3" in decision["escalate_to"]
        assert (tmp_path / "var" / "audit.db").exists()
        # The trace curl carries the reviewer credential it needs, and answers with a trace.
        traced = shlex.split(next(x for x in lines if "explain=true" in x).strip())
        headers = dict(h.split(": ", 1) for h in (traced[i + 1] for i, a in enumerate(traced) if a == "-H"))
        r = httpx.post(traced[2], content=traced[traced.index("-d") + 1], headers=headers)
        assert r.status_code == 200 and "trace" in r.json()
        # The banner says how to reach the console; its made-up token signs in, and the stop is there.
        console = next(x for x in lines if "console:" in x)
        token = console.split("the token ", 1)[1].split()[0]
        base = url.split("/v1/", 1)[0]
        with httpx.Client(base_url=base) as browser:
            signed = browser.post("/console/login", data={"name": "admin", "key": token}, follow_redirects=False)
            assert signed.status_code == 303
            assert "desk-3" in browser.get("/console/queues").text
            # ... and Approve works out of the box: the dev server made a grant key for the run.
            esc = decision["escalations"][0]
            page = browser.get(f"/console/escalations/{esc}").text
            csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            done = browser.post(f"/console/escalations/{esc}/approve", data={"csrf": csrf, "why": "ok"},
                                follow_redirects=True)  # fmt: skip
            assert "sent back to the agent" in done.text
    finally:
        proc.terminate()
        proc.wait(timeout=20)
