"""One OpenTelemetry span per decision, with what was decided and nothing the customer said."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fleet_support import REQUESTS, write_policy
from service_support import running_server

from cxpolicy.fleet.service import Fleet
from cxpolicy.fleet.tracing import DecisionSpans
from cxpolicy.service.app import create_app
from cxpolicy.service.reload import Engine

sdk = pytest.importorskip("opentelemetry.sdk.trace", reason="opentelemetry-sdk not installed")


def test_a_span_per_decision(tmp_path: Path) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    fleet = Fleet(replica="r", spans=DecisionSpans(provider.get_tracer("test")))
    app = create_app(Engine([write_policy(tmp_path / "p")]), fleet=fleet)
    secret = {**REQUESTS[3], "payload": {"text": "my card is 4111 1111 1111 1111"}}
    with running_server(app) as url:
        one = httpx.post(f"{url}/v1/decide", json=secret).json()
        batch = httpx.post(f"{url}/v1/decide/batch", json=REQUESTS[:2]).json()
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["cxpolicy.decide"] * 3
    by_id = {s.attributes["cxpolicy.decision_id"]: s for s in spans}
    assert set(by_id) == {one["decision_id"], *(d["decision_id"] for d in batch)}
    s = by_id[one["decision_id"]]
    assert s.attributes["cxpolicy.effect"] == one["effect"] == "escalate"
    assert list(s.attributes["cxpolicy.rules"]) == [r["rule"] for r in one["reasons"]]
    assert s.attributes["cxpolicy.action"] == "refund.execute"
    assert s.start_time <= s.end_time
    assert not any("4111" in str(v) for sp in spans for v in sp.attributes.values())
