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
  with `hmac.compare_digest`; without a configured token they answer 403.
- **Routes come from `cxpolicy.service.schema.ENDPOINTS`**, the same table the OpenAPI document is
  generated from, so the published API cannot drift from the served one.
- **Hot path:** one attribute read for the policy, one `decide`, one orjson dump, two
  metric updates with pre-resolved label children. No pydantic on the decide path.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import anyio
import anyio.to_thread
import orjson
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from cxpolicy.audit import AuditSink, IllegalTransition, SinkClosed, UnknownEscalation
from cxpolicy.engine.decision import Decision
from cxpolicy.engine.requests import MAX_DEPTH, BadRequest, parse_request
from cxpolicy.limits import SERVICE_MAX_BATCH, SERVICE_MAX_BODY
from cxpolicy.service.explain import explain_dict, with_vocabulary
from cxpolicy.service.metrics import ServiceMetrics, StateCollector, exposition_registry
from cxpolicy.service.reload import Engine
from cxpolicy.service.schema import ENDPOINTS, AssignModel, ResolveModel, openapi, render_docs

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


def _flag(value: str | None) -> bool:
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
    ) -> None:
        self.engine = engine
        self.admin_token = (admin_token or "").encode() or None
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
        self.openapi_bytes = b""
        self.openapi_revision: str | None = None  # the policy revision openapi_bytes describes
        self.docs_html: str | None = None

    # ------------------------------------------------------------------ decisions
    async def decide(self, request: Request) -> Response:
        # Normally answered by _DecideFastPath before routing; kept as the routed version.
        body = await _read_body(request, self.max_body)
        data = await self.decide_bytes(body, _flag(request.query_params.get("explain")))
        return Response(data, media_type=_JSON)

    async def decide_bytes(self, body: bytes, explain: bool) -> bytes:
        """The whole of `POST /v1/decide` after the body is read: JSON in, JSON out."""
        value = _parse(body, self.max_body, MAX_DEPTH)
        t0 = time.perf_counter()
        decision = self.engine.decide(value, explain)
        self.metrics.decided(decision, time.perf_counter() - t0)
        if self.audit is not None:
            await self._record([(value, decision)])
        return orjson.dumps(decision.to_dict())

    async def decide_batch(self, request: Request) -> Response:
        explain = _flag(request.query_params.get("explain"))
        body = await _read_body(request, self.max_batch_body)
        value = _parse(body, self.max_batch_body, MAX_DEPTH + 1)
        if not isinstance(value, list):
            raise ApiError(400, "invalid_batch", "a batch is a JSON array of requests")
        if len(value) > self.max_batch:
            raise ApiError(
                413, "batch_too_large", f"{len(value)} requests; the limit is {self.max_batch}"
            )
        policy = self.engine.policy  # one revision decides the whole batch
        metrics = self.metrics
        decisions: list[Decision] = []
        for item in value:
            t0 = time.perf_counter()
            d = policy.decide(item, explain)
            metrics.decided(d, time.perf_counter() - t0)
            decisions.append(d)
            if len(decisions) % 64 == 0:
                await asyncio.sleep(0)  # let other requests in during a long batch
        if self.audit is not None:
            await self._record(list(zip(value, decisions, strict=True)))
        return _json([d.to_dict() for d in decisions])

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
        overdue = _flag(q.get("overdue"))
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

    def _admin(self, request: Request) -> None:
        if self.admin_token is None:
            raise ApiError(
                403,
                "admin_disabled",
                "admin endpoints are disabled: "
                "set CXPOLICY_ADMIN_TOKEN on the server to enable them",
            )
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="cxpolicy"'}
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorized", "send `Authorization: Bearer <token>`", challenge)
        if not hmac.compare_digest(token.strip().encode(), self.admin_token):
            raise ApiError(401, "unauthorized", "the bearer token is not valid", challenge)


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
                raise ApiError(413, "body_too_large", f"body is {size} bytes; the limit is {limit}")
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
            raise ApiError(413, "body_too_large", f"body is over the limit of {limit} bytes")
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
        if scope["type"] != "http" or scope["path"] != "/v1/decide" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        svc = self.svc
        t0 = time.perf_counter()
        headers = [(b"content-type", b"application/json")]
        try:
            body = await _receive_body(scope, receive, svc.max_body)
            query = scope.get("query_string", b"")
            explain = bool(query) and _flag(dict(parse_qsl(query.decode("latin-1"))).get("explain"))
            status, data = 200, await svc.decide_bytes(body, explain)
        except ApiError as exc:
            status = exc.status
            data = orjson.dumps({"error": {"status": status, "code": exc.code, "message": exc.message}})
            headers += [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
        headers.append((b"content-length", str(len(data)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})
        svc.metrics.answered("decide", status, time.perf_counter() - t0)


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
) -> Starlette:
    """The decision service over `engine`.

    `admin_token` enables the admin endpoints (None or empty: disabled; `cxpolicy serve`
    passes `CXPOLICY_ADMIN_TOKEN`). `audit` records every decision before it is returned.
    `max_body` bounds a single request's body; a batch body may be `max_batch_body` bytes
    (default 64 × max_body) holding at most `max_batch` requests. With `close_on_shutdown`
    the app closes the engine and the sink when the server stops.
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
    )
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
        "openapi": svc.openapi,
        "explain": svc.explain,
        "docs": svc.docs,
    }
    missing = {ep.name for ep in ENDPOINTS} ^ set(handlers)
    if missing:  # the endpoint table and the handlers must name the same routes
        raise RuntimeError(f"endpoints without handler (or the reverse): {sorted(missing)}")
    routes = [
        Route(ep.path, _instrument(ep.name, handlers[ep.name], svc.metrics), methods=[ep.method])
        for ep in ENDPOINTS
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        svc.stopping = True
        if close_on_shutdown:
            await run_in_threadpool(engine.close)
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
