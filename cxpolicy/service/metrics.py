"""Prometheus metrics of the decision service (`GET /metrics`).

Input: decisions and HTTP answers as the service produces them, and the engine's and audit
sink's state at scrape time. Output: metric families in a registry of the app's own.

Why two kinds: counters and histograms that the request path updates (kept cheap: label
children are resolved once and cached, since `labels()` costs more than `inc()`), and a
collector that reads the policy and audit state when Prometheus scrapes, so a reload that
happened in any thread — or before the app existed — is reported exactly, and the overdue
escalation count is a query run only when someone asks for it. docs/service.md lists them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from cxpolicy.audit import AuditSink
from cxpolicy.engine.decision import Decision
from cxpolicy.service.reload import Engine

__all__ = ["LATENCY_BUCKETS", "ServiceMetrics", "StateCollector", "exposition_registry"]

log = logging.getLogger("cxpolicy.service.app")

LATENCY_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip


class ServiceMetrics:
    """Prometheus metrics in a registry of the app's own (two apps in one process do not
    collide). Label children are resolved once and cached: `labels()` is the slow part."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.decisions = Counter(
            "cxpolicy_decisions",
            "Decisions answered, by effect and by the deciding rule (the strictest matched; "
            "`(default)` when no rule matched, `(error)` for an invalid request).",
            ["effect", "rule"],
            registry=registry,
        )
        self.decision_seconds = Histogram(
            "cxpolicy_decision_duration_seconds",
            "Time in the engine for one decision.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.http_seconds = Histogram(
            "cxpolicy_http_request_duration_seconds",
            "Time to answer an HTTP request (incl. the audit commit), by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.responses = Counter(
            "cxpolicy_http_responses",
            "HTTP responses by endpoint and status.",
            ["endpoint", "status"],
            registry=registry,
        )
        self.audit_failures = Counter(
            "cxpolicy_audit_failures",
            "Decisions withheld (503) because their audit record could not be committed.",
            registry=registry,
        )
        self._decision_children: dict[tuple[str, str], Any] = {}
        self._http_children: dict[str, Any] = {}
        self._response_children: dict[tuple[str, int], Any] = {}

    def decided(self, decision: Decision, seconds: float) -> None:
        reasons = decision.reasons
        rule = reasons[0].rule if reasons else "(default)" if decision.default_applied else "(error)"
        key = (decision.effect.value, rule)
        child = self._decision_children.get(key)
        if child is None:
            child = self._decision_children[key] = self.decisions.labels(*key)
        child.inc()
        self.decision_seconds.observe(seconds)

    def answered(self, endpoint: str, status: int, seconds: float) -> None:
        h = self._http_children.get(endpoint)
        if h is None:
            h = self._http_children[endpoint] = self.http_seconds.labels(endpoint)
        h.observe(seconds)
        key = (endpoint, status)
        c = self._response_children.get(key)
        if c is None:
            c = self._response_children[key] = self.responses.labels(endpoint, str(status))
        c.inc()


class StateCollector(Collector):
    """Policy and audit state, read at scrape time from the engine (so a reload that
    happened in any thread, or before the app existed, is counted exactly)."""

    def __init__(self, engine: Engine, audit: AuditSink | None) -> None:
        self.engine = engine
        self.audit = audit

    def collect(self) -> Iterable[Any]:
        e = self.engine
        info = GaugeMetricFamily(
            "cxpolicy_policy_info", "The policy revision serving (value 1).", labels=["revision"]
        )
        info.add_metric([e.revision], 1)
        yield info
        yield GaugeMetricFamily(
            "cxpolicy_policy_rules", "Rules in the serving policy.", e.policy.rule_count
        )
        reloads = CounterMetricFamily(
            "cxpolicy_reloads", "Policy reload attempts after the first load.", labels=["result"]
        )
        reloads.add_metric(["ok"], e.reloads_ok)
        reloads.add_metric(["failed"], e.reloads_failed)
        yield reloads
        yield GaugeMetricFamily(
            "cxpolicy_policy_last_reload_ok",
            "1 if the latest reload attempt compiled, 0 if it was rejected (the last good "
            "revision is serving and the files on disk differ from it).",
            1 if e.last_reload.ok else 0,
        )
        yield GaugeMetricFamily(
            "cxpolicy_policy_last_reload_timestamp_seconds",
            "When the latest reload attempt finished (Unix time).",
            e.last_reload.at.timestamp(),
        )
        if self.audit is None:
            return
        try:
            overdue = self.audit.overdue_count()
            stats = self.audit.stats
        except Exception:  # a scrape must not fail because the database is busy or gone
            log.warning("audit state unavailable for /metrics", exc_info=True)
            return
        yield GaugeMetricFamily(
            "cxpolicy_escalations_overdue", "Escalations past their due time, unresolved.", overdue
        )
        yield CounterMetricFamily(
            "cxpolicy_audit_commits", "Audit transactions committed (group commits).", stats.batches
        )
        yield CounterMetricFamily("cxpolicy_audit_writes", "Audit operations committed.", stats.ops)


def exposition_registry(app_registry: CollectorRegistry, state: Collector) -> CollectorRegistry:
    """The registry `/metrics` serves.

    One process: the app's own. Under `cxpolicy serve --workers N`, which points every worker
    at one `PROMETHEUS_MULTIPROC_DIR`, a scrape reaches one worker but must count all of
    them: prometheus-client's multiprocess collector sums every worker's counters and
    histograms from their files, and the policy and audit state comes from the worker that
    answered (workers reload the same files on their own, so they agree within moments).
    """
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return app_registry
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry.register(state)
    return registry
