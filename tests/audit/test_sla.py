"""SLA settings per queue, as `serve --sla` and CXPOLICY_SLA give them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from test_audit_support import make_decision, make_request

from cxpolicy.audit import SlaPolicy, open_service_sink
from cxpolicy.audit.records import parse_time
from cxpolicy.kinds import Effect


def test_parse_queue_durations_and_default() -> None:
    sla = SlaPolicy.parse(["fraud-desk=30m", "default=2h"])
    assert sla.default == timedelta(hours=2)
    assert sla.queues == {"fraud-desk": timedelta(minutes=30)}
    assert SlaPolicy.parse("a=1h,b=2d").queues == {"a": timedelta(hours=1), "b": timedelta(days=2)}
    for bad in ("fraud-desk", "=30m", "x=", "x=soon", "x=-5m"):
        with pytest.raises(ValueError):
            SlaPolicy.parse([bad])


def test_the_service_sink_reads_the_sla_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXPOLICY_SLA", "fraud=30m,default=1h")
    monkeypatch.delenv("CXPOLICY_AUDIT_KEY", raising=False)
    with open_service_sink(str(tmp_path / "audit.db"), witness="none") as sink:
        sink.record(make_request(1), make_decision(Effect.ESCALATE, escalate_to=("fraud", "other")))
        due = {e.queue: parse_time(e.due_at) - parse_time(e.opened_at) for e in sink.escalations()}
    assert due == {"fraud": timedelta(minutes=30), "other": timedelta(hours=1)}
