"""OpenTelemetry: one span per decision. Input: a request, its decision and when deciding
started. Output: a `cxpolicy.decide` span on the configured tracer, carrying what the
decision was and why (ids, effect, rules, revision) — never the customer's data.

Optional (`pip install "cxpolicy[otel]"`, `cxpolicy serve --otel`). The exporter is yours
to configure the usual OpenTelemetry way (an SDK `TracerProvider`, `opentelemetry-instrument`,
the `OTEL_*` variables); with only the API installed the spans are no-ops and cost little.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from cxpolicy.engine.decision import Decision

__all__ = ["DecisionSpans"]


class DecisionSpans:
    def __init__(self, tracer: Any = None) -> None:
        if tracer is None:
            from opentelemetry import trace

            tracer = trace.get_tracer("cxpolicy")
        self.tracer = tracer

    def record(self, request: Any, decision: Decision, started: float | None = None) -> None:
        """Emit the span; `started` is the `time.perf_counter()` reading when deciding began."""
        now_ns = time.time_ns()
        start_ns = now_ns - int((time.perf_counter() - started) * 1e9) if started is not None else now_ns
        attrs: dict[str, Any] = {
            "cxpolicy.decision_id": decision.decision_id,
            "cxpolicy.effect": decision.effect.value,
            "cxpolicy.policy_revision": decision.policy_revision,
            "cxpolicy.rules": [r.rule for r in decision.reasons],
            "cxpolicy.escalate_to": list(decision.escalate_to),
            "cxpolicy.errors": len(decision.errors),
            "cxpolicy.default_applied": decision.default_applied,
            "cxpolicy.frozen": bool(decision.reasons) and decision.reasons[0].rule.startswith("cxpolicy.freeze."),
        }
        if isinstance(request, Mapping):
            for key in ("action", "channel"):
                if isinstance(request.get(key), str):
                    attrs[f"cxpolicy.{key}"] = request[key]
            actor = request.get("actor")
            if isinstance(actor, Mapping) and isinstance(actor.get("kind"), str):
                attrs["cxpolicy.actor_kind"] = actor["kind"]
        span = self.tracer.start_span("cxpolicy.decide", start_time=start_ns, attributes=attrs)
        span.end(end_time=now_ns)
