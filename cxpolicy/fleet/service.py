"""What the decision service adds for a fleet: decisions in, frozen decisions and fleet state out.

Input: every (request, decision) the service makes; operator calls to the fleet endpoints.
Output: the decision with active freezes applied (`Fleet.after`), `/v1/status`,
`/v1/freezes` (list, create, lift), `/v1/anomalies`, and the fleet's Prometheus metrics.

Why it is shaped this way: `cxpolicy.service.app` stays the decision service; it calls
`Fleet.after` once per decision (with no freeze active and no anomaly detector that is one
attribute read and a method call) and routes the fleet endpoints to `handlers(service)`.
`/v1/status` works without a `Fleet` too (a replica serving plain files still has a
revision and a last reload), so `cxpolicy fleet status` can compare any replicas.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from cxpolicy.engine.decision import Decision
from cxpolicy.fleet.freeze import FreezeError, FreezeStore, FreezeWatcher, apply_freezes
from cxpolicy.fleet.models import FreezeBodyModel, LiftBodyModel
from cxpolicy.service.auth import Role

if TYPE_CHECKING:
    from cxpolicy.fleet.anomalies import AnomalyDetector
    from cxpolicy.fleet.stream import DecisionStream
    from cxpolicy.fleet.tracing import DecisionSpans
    from cxpolicy.service.app import _Service
    from cxpolicy.service.reload import Engine

__all__ = ["Fleet", "default_replica_name", "handlers", "replica_status"]

_JSON = "application/json"
log = logging.getLogger("cxpolicy.fleet.service")


def default_replica_name() -> str:
    return os.environ.get("CXPOLICY_REPLICA") or f"{socket.gethostname()}:{os.getpid()}"


class Fleet:
    """The fleet parts one replica runs: a freeze watcher and an anomaly detector (either optional)."""

    def __init__(
        self,
        *,
        replica: str | None = None,
        freezes: FreezeWatcher | None = None,
        anomalies: AnomalyDetector | None = None,
        stream: DecisionStream | None = None,
        spans: DecisionSpans | None = None,
    ) -> None:
        self.replica = replica or default_replica_name()
        self.freezes = freezes
        self.anomalies = anomalies
        self.stream = stream  # the service emits each decision once it is answered
        self.spans = spans
        self._frozen: Any = None  # a Counter child once attached to a service
        if anomalies is not None and freezes is not None:
            anomalies.bind_freezer(self._auto_freeze)

    @property
    def store(self) -> FreezeStore | None:
        return self.freezes.store if self.freezes is not None else None

    def after(self, request: Any, decision: Decision, started: float | None = None) -> Decision:
        """The decision as this replica must answer it: escalated if a freeze covers it.
        `started` (perf_counter when deciding began) times the OpenTelemetry span."""
        watcher = self.freezes
        if watcher is not None:
            current = watcher.current
            if current:
                matched = current.match(request)
                if matched:
                    decision = apply_freezes(decision, matched)
                    if self._frozen is not None:
                        self._frozen.inc()
        if self.anomalies is not None:
            self.anomalies.observe(request, decision)  # never raises
        if self.spans is not None:
            try:
                self.spans.record(request, decision, started)
            except Exception:  # a tracing exporter's bug must not fail a decision
                log.exception("decision span failed")
        return decision

    def _auto_freeze(self, kind: str, value: str, reason: str) -> None:
        watcher = self.freezes
        if watcher is None:
            return
        if any(f.kind == kind and f.value == value for f in watcher.current.freezes):
            return  # already frozen (by anyone): one freeze is enough
        watcher.store.create(kind, value, reason, f"anomaly-detector@{self.replica}", source="anomaly")
        watcher.refresh()

    def attach(self, svc: _Service) -> None:
        """Register metrics with the service's registries."""
        self._frozen = Counter(
            "cxpolicy_frozen_decisions",
            "Decisions escalated because an operator (or an auto-freeze) froze what they cover.",
            registry=svc.metrics.registry,
        )
        collector = _FleetCollector(self)
        svc.metrics.registry.register(collector)
        if svc.exposition is not svc.metrics.registry:
            svc.exposition.register(collector)

    def close(self) -> None:
        if self.freezes is not None:
            self.freezes.close()
        if self.stream is not None:
            self.stream.flush(5)  # a clean stop sends what it can; the rest stays spooled
            self.stream.close()


class _FleetCollector(Collector):
    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def collect(self) -> Iterable[Any]:
        w = self.fleet.freezes
        if w is not None:
            active = GaugeMetricFamily(
                "cxpolicy_freezes_active", "Active freezes this replica enforces, by kind.", labels=["kind"]
            )
            counts: dict[str, int] = {}
            for f in w.current.freezes:
                counts[f.kind] = counts.get(f.kind, 0) + 1
            for kind, n in sorted(counts.items()):
                active.add_metric([kind], n)
            yield active
            version = w.current.version
            yield GaugeMetricFamily("cxpolicy_freeze_version", "Freeze store version this replica holds.", version)
            yield GaugeMetricFamily(
                "cxpolicy_freeze_store_ok", "1 if the last read of the freeze store worked.", 0 if w.last_error else 1
            )
        if self.fleet.anomalies is not None:
            yield from self.fleet.anomalies.metrics()


def replica_status(svc: _Service) -> dict[str, Any]:
    """What `/v1/status` answers: everything `cxpolicy fleet status` compares."""
    engine: Engine = svc.engine
    fleet: Fleet | None = getattr(svc, "fleet", None)
    p = engine.policy
    bundle_status = getattr(engine, "status", None)
    out: dict[str, Any] = {
        "replica": fleet.replica if fleet is not None else default_replica_name(),
        "revision": p.revision,
        "rule_count": p.rule_count,
        "bundle": bundle_status() if callable(bundle_status) else None,
        "last_reload": engine.last_reload.to_dict(),
        "last_good": engine.last_good.to_dict(),
        "reloads": {"ok": engine.reloads_ok, "failed": engine.reloads_failed},
        "freeze": fleet.freezes.status() if fleet is not None and fleet.freezes is not None else None,
        "anomalies": len(fleet.anomalies.active()) if fleet is not None and fleet.anomalies is not None else None,
        "stream": fleet.stream.status() if fleet is not None and fleet.stream is not None else None,
    }
    return out


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=_JSON)


def handlers(svc: _Service) -> dict[str, Callable[[Request], Awaitable[Response]]]:
    """The fleet endpoints' handlers, by endpoint name (see `cxpolicy.service.schema`)."""
    from cxpolicy.service.app import ApiError

    def store() -> tuple[Fleet, FreezeStore]:
        fleet: Fleet | None = getattr(svc, "fleet", None)
        if fleet is None or fleet.store is None:
            raise ApiError(404, "freeze_disabled", "no freeze store: start the service with --freeze-store URL")
        return fleet, fleet.store

    def who(caller_name: str, named: str | None) -> str:
        return f"{named} (via {caller_name})" if named else caller_name

    async def status(request: Request) -> Response:
        return _json(replica_status(svc))

    async def freezes(request: Request) -> Response:
        svc._require(request, Role.ADMIN)
        fleet, st = store()
        history = await run_in_threadpool(st.history, 1000)
        assert fleet.freezes is not None
        return _json({**fleet.freezes.status(), "history": history})

    async def freeze_create(request: Request) -> Response:
        caller = svc._require(request, Role.ADMIN)
        fleet, st = store()
        data = await svc._admin_body(request, FreezeBodyModel)
        assert isinstance(data, FreezeBodyModel)
        try:
            f = await run_in_threadpool(st.create, data.kind, data.value, data.reason, who(caller.name, data.by))
        except FreezeError as exc:
            raise ApiError(400, "invalid_freeze", str(exc)) from None
        if fleet.freezes is not None:
            await run_in_threadpool(fleet.freezes.refresh)  # this replica enforces it at once
        return _json(f.to_dict(), 201)

    async def freeze_lift(request: Request) -> Response:
        caller = svc._require(request, Role.ADMIN)
        fleet, st = store()
        data = await svc._admin_body(request, LiftBodyModel)
        assert isinstance(data, LiftBodyModel)
        fid = request.path_params["freeze_id"]
        by = who(caller.name, data.by)
        try:
            lifted = await run_in_threadpool(lambda: st.lift(by=by, reason=data.reason, freeze_id=fid))
        except FreezeError as exc:
            raise ApiError(404, "not_found", str(exc)) from None
        if fleet.freezes is not None:
            await run_in_threadpool(fleet.freezes.refresh)
        return _json(lifted[0].to_dict())

    async def anomalies(request: Request) -> Response:
        fleet: Fleet | None = getattr(svc, "fleet", None)
        if fleet is None or fleet.anomalies is None:
            return _json({"enabled": False, "anomalies": [], "recent": []})
        return _json({"enabled": True, **fleet.anomalies.report()})

    return {
        "status": status,
        "freezes": freezes,
        "freeze_create": freeze_create,
        "freeze_lift": freeze_lift,
        "anomalies": anomalies,
    }
