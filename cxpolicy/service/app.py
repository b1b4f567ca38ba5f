"""The HTTP decision service: an ASGI app (Starlette) over an `Engine`, served by uvicorn.

Input: HTTP requests. Output: JSON decisions (orjson), policy state, Prometheus metrics, the
OpenAPI document. `create_app(engine)` builds it; `cxpolicy serve` runs it (its
`create_app_from_env` is the factory uvicorn's multi-process mode calls in each worker).

Why it is shaped this way:

- **Safe on bad input.** A body that is not JSON (or is ambiguous JSON: duplicate keys, NaN,
  deep nesting — `cxpolicy.engine.requests.parse_request`) is a 400; JSON that is not a valid
  request is a 200 with an `escalate` decision and `errors`, so a client that reads only
  `effect` stays safe; a body over the limit is a 413, read no further than the limit. Every
  error is JSON, and nothing returns a traceback: a catch-all handler answers 500 with no
  internals and logs the exception server-side.
- **No unaudited decision.** With an audit sink, a decision is returned only after its record
  is committed: `AuditSink.record` runs in a worker thread (the event loop keeps serving),
  and the sink's group-commit writer puts the records of concurrent requests in one
  transaction; a batch hands all its records over at once (`arecord`). If the commit fails
  the answer is a 503, never the decision.
- **Admin endpoints are off unless configured.** Reload and the audit endpoints (which hold
  customer records, masked) need `Authorization: Bearer <CXPOLICY_ADMIN_TOKEN>`, compared
  through `cxpolicy.service.auth.Callers` (digests, constant time); without a configured
  token they answer 403.
- **Routes come from `cxpolicy.service.schema.ENDPOINTS`**, the same table the OpenAPI document is
  generated from, so the published API cannot drift from the served one.
- **Hot path:** one attribute read for the policy, one `decide`, one orjson dump, two
  metric updates with pre-resolved label children. No pydantic on the decide path.
- **Facts the caller may not choose** (LANGUAGE.md §10, `cxpolicy.service.trust`): the
  caller's credential and the subject token bind request fields; a body that contradicts
  them escalates with an `untrusted` error. `?explain` needs the `review` role, and
  `/v1/policy` shows only the revision without it (an oracle of which rule blocked a
  request, and server file paths, are not for every caller).
- **One heavy request cannot stall the rest:** a body over `INLINE_BYTES` and every batch
  are decided in a worker thread (at most `HEAVY_THREADS` at once), a batch holds each item
  to the single-request body limit and stops deciding after `cpu_budget` seconds of CPU
  (the rest escalate with a `limit` error); connection-level limits live in `guard.py`.
  A client that disconnects mid-request is one log line, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

import anyio
import anyio.to_thread
import orjson
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from cxpolicy.audit import AuditSink, IllegalTransition, SinkClosed, UnknownEscalation
from cxpolicy.audit.grants import GrantAlreadyUsed
from cxpolicy.engine.decision import Decision, DecisionError
from cxpolicy.engine.requests import MAX_DEPTH, BadRequest, parse_request
from cxpolicy.fleet import service as fleet_service
from cxpolicy.fleet.service import Fleet
from cxpolicy.grants.consume import SpentInMemory
from cxpolicy.kinds import Effect, ErrorKind
from cxpolicy.limits import SERVICE_BATCH_CPU_SECONDS, SERVICE_MAX_BATCH, SERVICE_MAX_BODY, SERVICE_MAX_HEADERS
from cxpolicy.service.auth import AuthError, Caller, Callers, Role
from cxpolicy.service.explain import explain_dict, with_vocabulary
from cxpolicy.service.grants import handlers as grant_handlers
from cxpolicy.service.guard import PEER_KEY
from cxpolicy.service.metrics import ServiceMetrics, StateCollector, exposition_registry
from cxpolicy.service.reload import Engine
from cxpolicy.service.schema import ENDPOINTS, AssignModel, ResolveModel, openapi, render_docs
from cxpolicy.service.shadow import Shadow
from cxpolicy.service.trust import decide_applied, merge_bound

__all__ = ["DEFAULT_MAX_BATCH", "DEFAULT_MAX_BODY", "ApiError", "create_app"]

log = logging.getLogger("cxpolicy.service.app")

DEFAULT_MAX_BODY = SERVICE_MAX_BODY  # the defaults live with every other bound in limits.py
DEFAULT_MAX_BATCH = SERVICE_MAX_BATCH
ESCALATION_STATES = ("open", "assigned", "resolved")
# After an audit commit fails, /readyz reports "unavailable" for this long, so a load
# balancer drains this replica; then real traffic probes the audit log again.
AUDIT_UNREADY_SECONDS = 5.0
# Single decisions waiting for their audit commit at once, per worker (each holds a thread).
AUDIT_THREADS = 256
_JSON = "application/json"
# Bodies up to this size are decided on the event loop (a thread hop costs more than they
# do); larger ones, and batches, in a worker thread, at most HEAVY_THREADS at a time.
INLINE_BYTES = 4096
HEAVY_THREADS = 1
#: CPU seconds one batch may spend deciding; later items escalate with a `limit` error.
DEFAULT_CPU_BUDGET = SERVICE_BATCH_CPU_SECONDS
MAX_HEADERS = SERVICE_MAX_HEADERS
SWITCH_INTERVAL = 0.0002  # seconds; see lifespan
_Trust = tuple[dict[str, Any], list[DecisionError]]


class ApiError(Exception):
    """An error answer: `{"error": {"status", "code", "message"}}` with the given status."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=_JSON, headers=headers)


def _error(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    body = {"error": {"status": status, "code": code, "message": message}}
    return _json(body, status, headers)


def flag(value: str | None) -> bool:
    """A yes/no setting from a query parameter or an environment variable: 1, true, yes, on."""
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


class _Service:
    """The handlers, with the state they share."""

    def __init__(
        self,
        engine: Engine,
        *,
        admin_token: str | None,
        audit: AuditSink | None,
        max_body: int,
        max_batch: int,
        max_batch_body: int,
        registry: CollectorRegistry,
        callers: Callers | None = None,
        subject: Any = None,
        cpu_budget: float = DEFAULT_CPU_BUDGET,
        shadow: Shadow | None = None,
    ) -> None:
        self.engine = engine
        self.shadow = shadow
        self.callers = callers if callers is not None else Callers.from_admin_token(admin_token)
        self.subject = subject  # a cxpolicy.service.subject.SubjectVerifier, or None
        self.cpu_budget = cpu_budget
        self._heavy: anyio.CapacityLimiter | None = None  # made on the loop
        self.audit = audit
        self.max_body = max_body
        self.max_batch = max_batch
        self.max_batch_body = max_batch_body
        self.metrics = ServiceMetrics(registry)
        state = StateCollector(engine, audit)
        registry.register(state)
        self.exposition = exposition_registry(registry, state)
        self.stopping = False
        self.audit_failed_at: float | None = None
        self._audit_threads: anyio.CapacityLimiter | None = None  # made on the loop
        self.spent = SpentInMemory()  # one-use without an audit store (this process only)
        self.outbox: dict[str, str] = {}  # escalation id -> the approval grant, until the agent picks it up
        self.openapi_bytes = b""
        self.openapi_revision: str | None = None  # the policy revision openapi_bytes describes
        self.docs_html: str | None = None
        self.fleet: Fleet | None = None  # set by create_app (cxpolicy.fleet.service)

    # ------------------------------------------------------------------ decisions
    async def decide(self, request: Request) -> Response:
        # Normally answered by _DecideFastPath before routing; kept as the routed version.
        explain = flag(request.query_params.get("explain"))
        trust = self.trust(request.headers, request.scope.get("state", {}).get(PEER_KEY), explain)
        body = await _read_body(request, self.max_body)
        data = await self.decide_bytes(body, explain, trust)
        return Response(data, media_type=_JSON)

    def trust(self, headers: Mapping[str, str], peer: str | None, explain: bool) -> _Trust:
        """The fields this request's caller and subject token bind, and `untrusted` errors;
        an ApiError (401/403) when the credential is missing, wrong or lacks the role."""
        caller: Caller | None = None
        if not self.callers.decide_open or headers.get("authorization") or peer:
            caller = self._require_headers(headers, Role.DECIDE, peer)
        if explain:  # the trace is an oracle of what blocked the request: reviewers only
            caller = self._require_headers(headers, Role.REVIEW, peer)
        if self.subject is not None:
            subject_bound, errors = self.subject.bound(headers)
        else:
            subject_bound, errors = {"subject.verified": False}, []
        bound, disagree = merge_bound(caller.bound if caller else {}, subject_bound)
        return bound, errors + disagree

    def _heavy_limiter(self) -> anyio.CapacityLimiter:
        if self._heavy is None:
            self._heavy = anyio.CapacityLimiter(HEAVY_THREADS)
        return self._heavy

    async def decide_bytes(self, body: bytes, explain: bool, trust: _Trust | None = None) -> bytes:
        """The whole of `POST /v1/decide` after the body is read: JSON in, JSON out."""
        bound, errors = trust if trust is not None else ({}, [])
        decide = self.engine.decide
        max_body = self.max_body

        def work() -> tuple[Any, Decision, list[DecisionError]]:
            # What was decided is the request with its trusted facts applied: that is what the
            # audit log records and what a grant's digest binds (so a retry matches its stop).
            return decide_applied(decide, _parse(body, max_body, MAX_DEPTH), bound, explain, errors)

        t0 = time.perf_counter()
        if len(body) <= INLINE_BYTES:
            value, decision, problems = work()
        else:  # parsing and detection over a long text: off the event loop
            value, decision, problems = await anyio.to_thread.run_sync(work, limiter=self._heavy_limiter())
        if self.fleet is not None:
            decision = self.fleet.after(value, decision, t0)  # freezes, anomaly counts, spans
        self.metrics.decided(decision, time.perf_counter() - t0)
        if decision.grants_used or decision.grant_checks:  # one-use: consume, or decide again
            decision = await self._record_with_grants(self.engine.policy, value, decision, explain, problems)
        elif self.audit is not None:
            await self._record([(value, decision)])
        if self.shadow is not None:
            self.shadow.observe(value, decision)
        if self.fleet is not None and self.fleet.stream is not None:
            self.fleet.stream.emit(value, decision)  # answered (and audited): now logged out
        return orjson.dumps(self._answer(decision, value))

    async def decide_batch(self, request: Request) -> Response:
        explain = flag(request.query_params.get("explain"))
        bound, errors = self.trust(request.headers, request.scope.get("state", {}).get(PEER_KEY), explain)
        body = await _read_body(request, self.max_batch_body)
        value = await anyio.to_thread.run_sync(
            _parse, body, self.max_batch_body, MAX_DEPTH + 1, limiter=self._heavy_limiter()
        )
        if not isinstance(value, list):
            raise ApiError(400, "invalid_batch", "a batch is a JSON array of requests")
        if len(value) > self.max_batch:
            raise ApiError(
                413, "batch_too_large", f"{len(value)} requests; the limit is {self.max_batch}"
            )
        policy = self.engine.policy  # one revision decides the whole batch
        metrics = self.metrics
        max_item, budget, fleet = self.max_body, self.cpu_budget, self.fleet

        def run() -> list[Decision]:  # in a worker thread: the event loop keeps serving
            start = time.thread_time()
            out: list[Decision] = []
            for item in value:
                t0 = time.perf_counter()
                size = len(orjson.dumps(item))
                if size > max_item:  # each item is held to the limit of /v1/decide
                    d = policy.reject(
                        f"this batch item is {size} bytes; each request is limited to {max_item}",
                        kind=ErrorKind.LIMIT, explain=explain,
                    )
                elif time.thread_time() - start > budget:
                    d = policy.reject(
                        f"the batch spent its CPU budget of {budget:g}s; this item was not decided",
                        kind=ErrorKind.LIMIT, explain=explain,
                    )
                else:
                    n = len(out)
                    applied[n], d, problems[n] = decide_applied(policy.decide, item, bound, explain, errors)
                if fleet is not None:
                    d = fleet.after(item, d, t0)
                metrics.decided(d, time.perf_counter() - t0)
                out.append(d)
            return out

        applied: list[Any] = list(value)  # each item as decided, trusted facts applied
        problems: list[list[DecisionError]] = [[] for _ in value]  # what escalated each as untrusted
        decisions = await anyio.to_thread.run_sync(run, limiter=self._heavy_limiter())
        value = applied
        for i, d in enumerate(decisions):  # grants are consumed one decision at a time
            if d.grants_used or d.grant_checks:
                decisions[i] = await self._record_with_grants(policy, value[i], d, explain, problems[i])
        if self.shadow is not None:
            for item, d in zip(value, decisions, strict=True):
                self.shadow.observe(item, d)
        if self.audit is not None:
            plain = [(v, d) for v, d in zip(value, decisions, strict=True) if not (d.grants_used or d.grant_checks)]
            if plain:
                await self._record(plain)
        if self.fleet is not None and self.fleet.stream is not None:
            for item, d in zip(value, decisions, strict=True):
                self.fleet.stream.emit(item, d)
        data = await anyio.to_thread.run_sync(
            lambda: orjson.dumps([self._answer(d, v) for d, v in zip(decisions, value, strict=True)]),
            limiter=self._heavy_limiter(),
        )
        return Response(data, media_type=_JSON)

    async def _record_with_grants(
        self, policy: Any, applied: Any, decision: Decision, explain: bool, problems: list[DecisionError]
    ) -> Decision:
        """Record a decision that used grants; if one was spent first, decide again (grants/consume.py)
        on the request as decided (trusted facts applied), and still escalate what they contradicted."""
        from cxpolicy.grants.consume import adecide_once

        async def record(v: Any, d: Decision) -> None:
            if self.audit is None:
                self.spent.record(v, d)
            else:
                await self._record([(v, d)])

        final = await adecide_once(policy, applied, record, explain=explain, first=decision)
        if problems and final is not decision:  # a re-decision must not drop what the facts contradicted
            final = replace(final, effect=Effect.ESCALATE, errors=(*final.errors, *problems))
        return final

    def _answer(self, decision: Decision, request: Any) -> dict[str, Any]:
        """The decision's JSON; a stopped one also says how to resume (escalations, challenge)."""
        out = decision.to_dict()
        if decision.effect.severity >= 2:
            from cxpolicy.service.grants import challenge

            out.update(challenge(decision, request))
        return out

    async def _record(self, pairs: list[tuple[Any, Decision]]) -> None:
        assert self.audit is not None
        audit = self.audit
        try:
            if len(pairs) == 1:
                # One decision: `record` (masking, encoding, then waiting for the commit) in a
                # worker thread, so the event loop keeps serving meanwhile. Measured against
                # `arecord` (masking on the loop): up to 1.7x the audited throughput here, for
                # more CPU per decision; the limiter lets the writer batch beyond anyio's 40.
                v, d = pairs[0]
                if self._audit_threads is None:
                    self._audit_threads = anyio.CapacityLimiter(AUDIT_THREADS)
                await anyio.to_thread.run_sync(
                    audit.record,
                    v if isinstance(v, dict) else {"non_object_request": v},
                    d,
                    limiter=self._audit_threads,
                )
            else:  # a batch hands the writer all its records at once: no thread per record
                await asyncio.gather(
                    *(
                        audit.arecord(v if isinstance(v, dict) else {"non_object_request": v}, d)
                        for v, d in pairs
                    )
                )
        except GrantAlreadyUsed:
            raise
        except Exception as exc:
            self.audit_failed_at = time.monotonic()
            self.metrics.audit_failures.inc(len(pairs))
            log.error("audit commit failed; withholding %d decision(s): %r", len(pairs), exc)
            raise ApiError(
                503,
                "audit_unavailable",
                "the decision could not be recorded in the audit log, so it is withheld; retry",
            ) from None

    # ------------------------------------------------------------------ policy
    async def policy(self, request: Request) -> Response:
        e = self.engine
        p = e.policy
        try:
            self._require(request, Role.REVIEW)
        except ApiError as exc:
            if exc.status >= 500 or request.headers.get("authorization"):
                raise  # a wrong credential is refused; no credential sees the revision only
            return _json({"revision": p.revision})
        return _json(
            {
                "revision": p.revision,
                "rule_count": p.rule_count,
                "files": [s.path for s in p.sources if not s.shipped],
                "packs": sorted({s.pack for s in p.sources if s.pack}),
                "default": p.default.value,
                "watching": e.watching,
                "reloads": {"ok": e.reloads_ok, "failed": e.reloads_failed},
                "last_reload": e.last_reload.to_dict(),
                "last_good": e.last_good.to_dict(),
            }
        )

    async def reload(self, request: Request) -> Response:
        self._admin(request)
        result = await run_in_threadpool(self.engine.reload)
        return _json(result.to_dict(), 200 if result.ok else 422)

    # ------------------------------------------------------------------ health & docs
    async def healthz(self, request: Request) -> Response:
        return _json({"status": "ok", "revision": self.engine.revision})

    async def readyz(self, request: Request) -> Response:
        audit = "off"
        if self.stopping:
            return _json({"status": "unavailable", "reason": "shutting down"}, 503)
        if self.audit is not None:
            failed = self.audit_failed_at
            if failed is not None and time.monotonic() - failed < AUDIT_UNREADY_SECONDS:
                body = {"status": "unavailable", "audit": "unavailable",
                        "reason": "an audit commit failed in the last few seconds"}  # fmt: skip
                return _json(body, 503)
            try:
                await run_in_threadpool(self.audit.get, "readiness-probe")
            except Exception as exc:
                reason = f"audit log unavailable: {type(exc).__name__}"
                body = {"status": "unavailable", "audit": "unavailable", "reason": reason}
                return _json(body, 503)
            audit = "on"
        return _json({"status": "ok", "revision": self.engine.revision, "audit": audit})

    async def metrics_text(self, request: Request) -> Response:
        data = await run_in_threadpool(generate_latest, self.exposition)
        return Response(data, media_type="text/plain; version=0.0.4; charset=utf-8")

    async def openapi(self, request: Request) -> Response:
        policy = self.engine.policy  # the request schema is the serving policy's vocabulary
        if policy.revision != self.openapi_revision:
            self.openapi_bytes = orjson.dumps(with_vocabulary(openapi(), policy))
            self.openapi_revision = policy.revision
        return Response(self.openapi_bytes, media_type=_JSON)

    async def explain(self, request: Request) -> Response:
        self._admin(request)  # review role: the admin token until caller roles exist
        value = _parse(await _read_body(request, self.max_body), self.max_body, MAX_DEPTH)
        return _json(await run_in_threadpool(explain_dict, self.engine.policy, value))

    async def docs(self, request: Request) -> Response:
        if self.docs_html is None:
            self.docs_html = render_docs(openapi())
        return HTMLResponse(self.docs_html)

    # ------------------------------------------------------------------ audit
    def _sink(self, request: Request) -> AuditSink:
        self._admin(request)
        if self.audit is None:
            raise ApiError(
                404,
                "audit_disabled",
                "the audit log is not configured: start the service with "
                "--audit sqlite:///path/to/audit.db",
            )
        return self.audit

    async def decision_record(self, request: Request) -> Response:
        sink = self._sink(request)
        decision_id = request.path_params["decision_id"]

        def read() -> dict[str, Any] | None:
            rec = sink.get(decision_id)
            if rec is None:
                return None
            return {
                "record": rec.to_dict(),
                "history": [r.to_dict() for r in sink.history(decision_id) if r.seq != rec.seq],
                "escalations": [e.to_dict() for e in sink.escalations(decision_id=decision_id)],
            }

        out = await _audit_call(read)
        if out is None:
            raise ApiError(404, "not_found", f"no decision {decision_id!r} in the audit log")
        return _json(out)

    async def escalations(self, request: Request) -> Response:
        sink = self._sink(request)
        q = request.query_params
        state = q.get("state") or None
        if state is not None and state not in ESCALATION_STATES:
            allowed = ", ".join(ESCALATION_STATES)
            raise ApiError(400, "invalid_state", f"state must be one of {allowed}")
        queue = q.get("queue") or None
        overdue = flag(q.get("overdue"))
        try:
            limit = int(q.get("limit") or 1000)
        except ValueError:
            limit = 0
        if not 1 <= limit <= 10_000:
            raise ApiError(400, "invalid_limit", "limit must be a whole number from 1 to 10000")

        def read() -> list[dict[str, Any]]:
            items = sink.overdue() if overdue else sink.escalations(state=state, queue=queue)
            if overdue:
                items = [e for e in items if (state is None or e.state == state)
                         and (queue is None or e.queue == queue)]  # fmt: skip
            return [e.to_dict() for e in items[:limit]]

        items = await _audit_call(read)
        return _json({"escalations": items, "count": len(items)})

    async def assign(self, request: Request) -> Response:
        sink = self._sink(request)
        body = await self._admin_body(request, AssignModel)
        assert isinstance(body, AssignModel)
        esc_id = request.path_params["escalation_id"]
        esc = await _audit_call(lambda: sink.assign(esc_id, to=body.to, by=body.by))
        return _json(esc.to_dict())

    async def resolve(self, request: Request) -> Response:
        sink = self._sink(request)
        body = await self._admin_body(request, ResolveModel)
        assert isinstance(body, ResolveModel)
        esc_id = request.path_params["escalation_id"]
        esc = await _audit_call(lambda: sink.resolve(esc_id, by=body.by, note=body.note))
        return _json(esc.to_dict())

    async def _admin_body(self, request: Request, model: type[BaseModel]) -> BaseModel:
        value = _parse(await _read_body(request, self.max_body), self.max_body, MAX_DEPTH)
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()
            )
            raise ApiError(400, "invalid_body", problems) from None

    def _require(self, request: Request, role: Role) -> Caller:
        """The authenticated caller of `request` if it holds `role` (else a 401/403)."""
        return self._require_headers(request.headers, role, request.scope.get("state", {}).get(PEER_KEY))

    def _require_headers(self, headers: Mapping[str, str], role: Role, peer: str | None = None) -> Caller:
        try:
            return self.callers.require(headers, role, peer)
        except AuthError as exc:
            challenge = {"WWW-Authenticate": 'Bearer realm="cxpolicy"'} if exc.status == 401 else None
            raise ApiError(exc.status, exc.code, exc.message, challenge) from None

    def _admin(self, request: Request) -> None:
        self._require(request, Role.ADMIN)


async def _audit_call(fn: Callable[[], Any]) -> Any:
    """Run a blocking audit read/transition in a worker thread; map its errors to answers."""
    try:
        return await run_in_threadpool(fn)
    except UnknownEscalation as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except IllegalTransition as exc:
        raise ApiError(409, "illegal_transition", str(exc)) from None
    except SinkClosed:
        raise ApiError(503, "audit_unavailable", "the audit log is closed") from None


async def _read_body(request: Request, limit: int) -> bytes:
    return await _receive_body(request.scope, request.receive, limit)


_CLOSE = {"Connection": "close"}
"""On an answer given before the body was read to its end: the rest of that body must not be
read as the next request on the connection, so the connection closes after the answer."""


async def _receive_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The body, refusing (413) as soon as it is known to exceed `limit` bytes: from the
    declared Content-Length before reading anything, else while reading."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                size = int(value)
            except ValueError:
                raise ApiError(
                    400, "invalid_content_length", "Content-Length is not a number"
                ) from None
            if size > limit:
                raise ApiError(413, "body_too_large", f"body is {size} bytes; the limit is {limit}", _CLOSE)
            break
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise ApiError(413, "body_too_large", f"body is over the limit of {limit} bytes", _CLOSE)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _parse(body: bytes, limit: int, depth: int) -> Any:
    try:
        return parse_request(body, max_bytes=limit, max_depth=depth)
    except BadRequest as exc:
        # `limit`: acceptable JSON over a resource bound (nesting, items per container).
        code = "limit_exceeded" if getattr(exc, "kind", "request") == "limit" else "invalid_json"
        raise ApiError(400, code, str(exc)) from None


class _DecideFastPath:
    """`POST /v1/decide` answered before Starlette's exception middleware, router, `Request`
    and `Response` objects: together they cost more CPU per call than the decision itself
    (measured with bench/service_bench.py). The behaviour is the routed handler's — the same
    `decide_bytes`, the same JSON errors and metrics; anything unexpected still reaches the
    catch-all 500 handler, which sits outside this middleware. Every other request, and any
    other method on this path (405), goes through Starlette as usual."""

    def __init__(self, app: ASGIApp, service: _Service) -> None:
        self.app = app
        self.svc = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(scope["headers"]) > MAX_HEADERS:
            await _Raw(431, "too_many_headers", f"more than {MAX_HEADERS} headers")(scope, receive, send)
            return
        if scope["type"] != "http" or scope["path"] != "/v1/decide" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        svc = self.svc
        t0 = time.perf_counter()
        headers = [(b"content-type", b"application/json")]
        try:
            query = scope.get("query_string", b"")
            explain = bool(query) and flag(dict(parse_qsl(query.decode("latin-1"))).get("explain"))
            trust = svc.trust(Headers(scope=scope), scope.get("state", {}).get(PEER_KEY), explain)
            body = await _receive_body(scope, receive, svc.max_body)
            status, data = 200, await svc.decide_bytes(body, explain, trust)
        except ClientDisconnect:
            _disconnected(scope)
            return
        except ApiError as exc:
            status = exc.status
            data = orjson.dumps({"error": {"status": status, "code": exc.code, "message": exc.message}})
            headers += [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
        headers.append((b"content-length", str(len(data)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})
        svc.metrics.answered("decide", status, time.perf_counter() - t0)


def _disconnected(scope: Scope) -> None:
    client = scope.get("client") or ("?", 0)
    log.info("client %s:%s disconnected during %s %s", client[0], client[1], scope.get("method"), scope.get("path"))


class _Raw:
    """A JSON error answered straight to ASGI (before routing)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.data = orjson.dumps({"error": {"status": status, "code": code, "message": message}})
        self.status = status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(self.data)).encode())]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.data})


def _instrument(
    name: str, handler: Callable[[Request], Awaitable[Response]], metrics: ServiceMetrics
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler: latency and status per endpoint, and ApiError → its JSON answer."""

    async def endpoint(request: Request) -> Response:
        t0 = time.perf_counter()
        try:
            response = await handler(request)
        except ApiError as exc:
            response = _error(exc.status, exc.code, exc.message, exc.headers)
        except ClientDisconnect:  # nobody to answer: one line, no traceback
            _disconnected(request.scope)
            return Response(status_code=499)
        metrics.answered(name, response.status_code, time.perf_counter() - t0)
        return response

    return endpoint


def create_app(
    engine: Engine,
    *,
    admin_token: str | None = None,
    audit: AuditSink | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_batch_body: int | None = None,
    registry: CollectorRegistry | None = None,
    close_on_shutdown: bool = False,
    console: bool = True,
    shadow: Shadow | None = None,
    callers: Callers | None = None,
    subject: Any = None,
    cpu_budget: float = DEFAULT_CPU_BUDGET,
    fleet: Fleet | None = None,
) -> Starlette:
    """The decision service over `engine`.

    `admin_token` enables the admin endpoints (None or empty: disabled; `cxpolicy serve`
    passes `CXPOLICY_ADMIN_TOKEN`). `audit` records every decision before it is returned.
    `max_body` bounds a single request's body; a batch body may be `max_batch_body` bytes
    (default 64 × max_body) holding at most `max_batch` requests. With `close_on_shutdown`
    the app closes the engine and the sink when the server stops. `console` serves the
    reviewer's console at `/console` (docs/console.md). With `shadow`, every
    decision is also made by a candidate revision in the background and differences logged
    (`cxpolicy.service.shadow`); the answer is always the live decision. `callers` (from a callers
    file) replaces `admin_token`; `subject` verifies subject tokens; `cpu_budget` bounds the
    CPU seconds of one batch. `fleet` adds freezes and
    anomaly signals (cxpolicy.fleet; `/v1/status` is served either way).
    """
    if max_body < 1 or max_batch < 1:
        raise ValueError("max_body and max_batch must be positive")
    svc = _Service(
        engine,
        admin_token=admin_token,
        audit=audit,
        max_body=max_body,
        max_batch=max_batch,
        max_batch_body=max_batch_body or max_body * 64,
        registry=registry or CollectorRegistry(),
        shadow=shadow,
        callers=callers,
        subject=subject,
        cpu_budget=cpu_budget,
    )
    if fleet is not None:
        svc.fleet = fleet
        fleet.attach(svc)
    handlers: dict[str, Callable[[Request], Awaitable[Response]]] = {
        "decide": svc.decide,
        "decide_batch": svc.decide_batch,
        "policy": svc.policy,
        "reload": svc.reload,
        "healthz": svc.healthz,
        "readyz": svc.readyz,
        "metrics": svc.metrics_text,
        "decision_record": svc.decision_record,
        "escalations": svc.escalations,
        "assign": svc.assign,
        "resolve": svc.resolve,
        **grant_handlers(svc),
        "openapi": svc.openapi,
        "explain": svc.explain,
        "docs": svc.docs,
        **fleet_service.handlers(svc),
    }
    missing = {ep.name for ep in ENDPOINTS} ^ set(handlers)
    if missing:  # the endpoint table and the handlers must name the same routes
        raise RuntimeError(f"endpoints without handler (or the reverse): {sorted(missing)}")
    routes: list[BaseRoute] = [
        Route(ep.path, _instrument(ep.name, handlers[ep.name], svc.metrics), methods=[ep.method])
        for ep in ENDPOINTS
    ]
    if console:
        from cxpolicy.service.console import console_routes

        routes += console_routes(svc)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Heavy decisions run in worker threads; with CPython's default 5 ms GIL switch
        # interval the event loop waits up to 5 ms for each of the several GIL hand-offs a
        # small request needs. A shorter interval keeps small decisions fast under load
        # (bench/abuse_bench.py) at a small cost in throughput of the heavy ones.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
        yield
        svc.stopping = True
        if shadow is not None:
            await run_in_threadpool(shadow.close)
        if close_on_shutdown:
            await run_in_threadpool(engine.close)
            if fleet is not None:
                await run_in_threadpool(fleet.close)
            if audit is not None:
                await run_in_threadpool(audit.close)

    app = Starlette(
        routes=routes,
        middleware=[Middleware(_DecideFastPath, service=svc)],
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
    )
    app.state.service = svc
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = {
        404: f"no route {request.url.path}; see /docs",
        405: f"{request.method} is not allowed on {request.url.path}",
    }.get(exc.status_code, str(exc.detail))
    return _error(exc.status_code, code, message, exc.headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    # The server logs the traceback (uvicorn does, once); the client learns nothing inside.
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return _error(500, "internal", "internal error; the server log has the details")
