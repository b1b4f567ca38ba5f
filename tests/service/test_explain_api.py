"""`POST /v1/explain` (admin token) and /openapi.json describing the loaded vocabulary."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cxpolicy.service.app import create_app
from cxpolicy.service.reload import Engine
from cxpolicy.service.schema import ExplanationModel
from tests.conftest import ROOT
from tests.service_support import running_server

TOKEN = "explain-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
REFUND: dict[str, Any] = {
    "action": "refund.execute",
    "channel": "chat",
    "actor": {"kind": "ai"},
    "customer": {"segment": "retail", "risk_tier": "low", "region": "IN"},
    "context": {"amount": 12000},
}


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    engine = Engine([ROOT / "rulesets" / "bank"])
    with running_server(create_app(engine, admin_token=TOKEN)) as url, httpx.Client(base_url=url, timeout=10) as c:
        yield c
    engine.close()


def test_explain_tells_the_story_near_misses_and_a_counterfactual(client: httpx.Client) -> None:
    r = client.post("/v1/explain", json=REFUND, headers=AUTH)
    assert r.status_code == 200, r.text
    doc = r.json()
    ExplanationModel.model_validate(doc)  # the published shape, exactly
    assert doc["decision"]["effect"] == "escalate"
    assert doc["matched"] and all(s["matched"] for s in doc["matched"])
    assert doc["why"]
    assert doc["counterfactuals"], "a less strict effect is reachable by changing the request"
    best = doc["counterfactuals"][0]
    assert best["decision"]["effect"] != "escalate" and best["changes"]


def test_explain_needs_the_admin_token(client: httpx.Client) -> None:
    assert client.post("/v1/explain", json=REFUND).status_code == 401
    assert client.post("/v1/explain", json=REFUND, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_explain_of_a_bad_request_escalates_and_says_why(client: httpx.Client) -> None:
    r = client.post("/v1/explain", json={"action": 5}, headers=AUTH)
    assert r.status_code == 200
    assert r.json()["decision"]["effect"] == "escalate" and r.json()["decision"]["errors"]
    assert client.post("/v1/explain", content=b"{not json", headers=AUTH).status_code == 400


def test_explain_is_off_without_a_token(tmp_path: Path) -> None:
    engine = Engine([ROOT / "rulesets" / "bank"])
    try:
        with running_server(create_app(engine)) as url:
            assert httpx.post(url + "/v1/explain", json=REFUND, headers=AUTH).status_code == 403
    finally:
        engine.close()


def test_openapi_describes_the_loaded_vocabulary(client: httpx.Client) -> None:
    doc = client.get("/openapi.json").json()
    req = doc["components"]["schemas"]["RequestModel"]
    assert "refund.execute" in req["properties"]["action"]["enum"]
    assert {"action", "channel"} <= set(req["required"])
    assert req["properties"]["customer"]["properties"]["risk_tier"]["enum"][0] == "low"
    assert "/v1/explain" in doc["paths"]


def test_openapi_follows_a_reload(tmp_path: Path) -> None:
    policy = tmp_path / "p.cxp"
    policy.write_text("use core\npackage t\nrule r {\n  match action = faq.answer\n  decide allow\n}\n")
    engine = Engine([tmp_path])
    try:
        with running_server(create_app(engine)) as url:
            before = httpx.get(url + "/openapi.json").json()["components"]["schemas"]["RequestModel"]
            assert "fax" not in before["properties"]["channel"]["enum"]
            policy.write_text(policy.read_text() + "extend dimension channel: {fax}\n")
            assert engine.reload().ok
            after = httpx.get(url + "/openapi.json").json()["components"]["schemas"]["RequestModel"]
            assert "fax" in after["properties"]["channel"]["enum"]
    finally:
        engine.close()
