"""The console's pages and form actions (see `cxpolicy.service.console`).

Input: HTTP requests from a reviewer's browser. Output: HTML rendered from templates/, or a
redirect after a form post (post/redirect/get, so a reload never repeats an approval).
Reads and writes go to the audit sink in a worker thread; nothing here blocks the loop.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from cxpolicy.audit import AuditSink, IllegalTransition, UnknownEscalation
from cxpolicy.audit.base import Query
from cxpolicy.audit.escalations import Escalation
from cxpolicy.audit.records import AuditRecord, parse_time
from cxpolicy.audit.sink import ChainedSink
from cxpolicy.service.auth import Role
from cxpolicy.service.console.sessions import COOKIE, LoginThrottle, Session, SessionSigner

__all__ = ["Console"]

_HERE = Path(__file__).parent
_FORM_LIMIT = 16_384
LIVE_STATES = ("open", "assigned")
SECRET_ENV = "CXPOLICY_CONSOLE_SECRET"
_CSV_COLUMNS = ("seq", "time", "decision_id", "kind", "effect", "action", "channel", "region", "rules", "escalate_to")


class Refused(Exception):
    """A console action that cannot be done, with the message the reviewer sees."""


def _secret(service: Any) -> bytes:
    env = os.environ.get(SECRET_ENV)
    if env:
        return env.encode()
    audit = getattr(service, "audit", None)
    if isinstance(audit, ChainedSink) and audit.subkey("console-session") is not None:
        key = audit.subkey("console-session")
        assert key is not None
        return key
    return os.urandom(32)  # one worker: sessions last as long as the process


class Console:
    """Routes and handlers; one per service."""

    def __init__(self, service: Any) -> None:
        self.svc = service
        self.sessions = SessionSigner(_secret(service))
        self.throttle = LoginThrottle()
        self.env = Environment(
            loader=FileSystemLoader(_HERE / "templates"),
            autoescape=select_autoescape(default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["pretty"] = lambda v: orjson.dumps(v, option=orjson.OPT_INDENT_2).decode()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/console", self.home, methods=["GET"]),
            Route("/console/login", self.login_page, methods=["GET"]),
            Route("/console/login", self.login, methods=["POST"]),
            Route("/console/logout", self.logout, methods=["POST"]),
            Route("/console/queues", self.queues, methods=["GET"]),
            Route("/console/escalations/{escalation_id}", self.escalation, methods=["GET"]),
            Route("/console/escalations/{escalation_id}/{action}", self.act, methods=["POST"]),
            Route("/console/audit", self.audit, methods=["GET"]),
            Route("/console/audit/verify", self.verify, methods=["POST"]),
            Route("/console/audit/export", self.export, methods=["GET"]),
            Route("/console/static/console.css", self.css, methods=["GET"]),
        ]

    # ------------------------------------------------------------------ plumbing
    def _page(self, template: str, request: Request, status: int = 200, **ctx: Any) -> HTMLResponse:
        session = ctx.pop("session", None) or self._session(request)
        html = self.env.get_template(template).render(session=session, flash=request.query_params.get("flash"), **ctx)
        headers = {
            "Content-Security-Policy": "default-src 'self'; form-action 'self'; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store",
        }
        return HTMLResponse(html, status_code=status, headers=headers)

    def _session(self, request: Request) -> Session | None:
        return self.sessions.read(request.cookies.get(COOKIE))

    def _signed_in(self, request: Request) -> Session:
        session = self._session(request)
        if session is None:
            raise _Redirect("/console/login?" + urlencode({"next": request.url.path}))
        return session

    async def _form(self, request: Request, session: Session | None) -> dict[str, str]:
        body = await request.body()
        if len(body) > _FORM_LIMIT:
            raise Refused("the form is too large")
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if session is not None and not SessionSigner.csrf_ok(session, form.get("csrf")):
            raise _Forbidden("this form has expired or did not come from the console: reload the page and try again")
        return form

    def _sink(self) -> AuditSink:
        sink: AuditSink | None = getattr(self.svc, "audit", None)
        if sink is None:
            raise Refused("the audit log is off: start the service with --audit to work escalations")
        return sink

    async def _enter(
        self, request: Request, *, form: bool = False
    ) -> tuple[Session, AuditSink, dict[str, str]] | Response:
        """The signed-in reviewer, the audit sink and (for a post) the checked form — or the
        page that says why not: sign in (303), no audit log (503), a forged form (403)."""
        try:
            session = self._signed_in(request)
        except _Redirect as redirect:
            return redirect.response()
        try:
            sink = self._sink()
        except Refused as exc:
            return self._page("error.html", request, 503, message=str(exc))
        fields: dict[str, str] = {}
        if form:
            try:
                fields = await self._form(request, session)
            except _Forbidden as exc:
                return self._page("error.html", request, 403, message=str(exc))
            except Refused as exc:
                return self._page("error.html", request, 400, message=str(exc))
        return session, sink, fields

    # ------------------------------------------------------------------ sign-in
    async def home(self, request: Request) -> Response:
        target = "/console/queues" if self._session(request) else "/console/login"
        return RedirectResponse(target, status_code=303)

    async def login_page(self, request: Request) -> Response:
        return self._page("login.html", request, next=_safe_next(request.query_params.get("next")))

    async def login(self, request: Request) -> Response:
        try:
            form = await self._form(request, None)
        except Refused as exc:
            return self._page("login.html", request, 400, error=str(exc), next="/console/queues")
        name, key = form.get("name", "").strip(), form.get("key", "")
        nxt = _safe_next(form.get("next"))
        client = f"ip:{request.client.host if request.client else '?'}"
        if self.throttle.locked(f"name:{name}", client):
            return self._page(
                "login.html", request, 429, error="Too many failed sign-ins: try again in 15 minutes.", next=nxt
            )
        caller = self.svc.callers.authenticate({"authorization": f"Bearer {key}"}) if key else None
        if caller is None or caller.name != name or not caller.has(Role.REVIEW):
            self.throttle.failed(f"name:{name}", client)
            return self._page("login.html", request, 401, error="Wrong name or key.", next=nxt, name=name)
        self.throttle.succeeded(f"name:{name}", client)
        _session, cookie = self.sessions.issue(caller.name)
        resp = RedirectResponse(nxt, status_code=303)
        resp.set_cookie(
            COOKIE,
            cookie,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/console",
            max_age=8 * 3600,
        )
        return resp

    async def logout(self, request: Request) -> Response:
        session = self._session(request)
        if session is not None:
            try:
                await self._form(request, session)
            except _Forbidden as exc:
                return self._page("error.html", request, 403, message=str(exc))
            self.sessions.revoke(session)
        resp = RedirectResponse("/console/login?flash=Signed+out.", status_code=303)
        resp.delete_cookie(COOKIE, path="/console")
        return resp

    # ------------------------------------------------------------------ queues
    async def queues(self, request: Request) -> Response:
        entered = await self._enter(request)
        if isinstance(entered, Response):
            return entered
        session, sink, _ = entered
        q = request.query_params
        filters = {k: (q.get(k) or "").strip() for k in ("queue", "action", "channel", "region")}

        def read() -> dict[str, Any]:
            now = datetime.now(UTC)
            live = [e for e in sink.escalations() if e.state in LIVE_STATES]
            counts = Counter(e.queue for e in live)
            every = [_row(esc, sink.get(esc.decision_id), now) for esc in live]  # one read each
            rows = [r for r in every if all(not v or r.get(k) == v for k, v in filters.items())]
            rows.sort(key=lambda r: (not r["overdue"], r["due_at"]))
            options = {k: sorted({str(r[k]) for r in every if r[k]}) for k in ("action", "channel", "region")}
            return {"rows": rows, "counts": sorted(counts.items()), "options": options}

        data = await run_in_threadpool(read)
        return self._page("queues.html", request, session=session, filters=filters, **data)

    # ------------------------------------------------------------------ one escalation
    async def escalation(self, request: Request) -> Response:
        entered = await self._enter(request)
        if isinstance(entered, Response):
            return entered
        session, sink, _ = entered
        esc_id = request.path_params["escalation_id"]
        want_trace = request.query_params.get("trace") == "1"

        def read() -> dict[str, Any] | None:
            esc = sink.get_escalation(esc_id)
            if esc is None:
                return None
            rec = sink.get(esc.decision_id)
            history = sink.history(esc.decision_id)
            request_obj = rec.request_object() if rec is not None else None
            detail = rec.detail_object() if rec is not None else {}
            trace = None
            if want_trace and isinstance(request_obj, dict):
                # Re-decided now, on the masked request: what the current policy makes of it.
                d = self.svc.engine.policy.decide(request_obj, explain=True)
                trace = d.trace.to_dict() if d.trace is not None else None
            return {
                "esc": esc,
                "rec": rec,
                "request_obj": request_obj,
                "detail": detail if isinstance(detail, dict) else {},
                "history": [_event(r) for r in history],
                "trace": trace,
                "live": esc.state in LIVE_STATES,
            }

        data = await run_in_threadpool(read)
        if data is None:
            return self._page("error.html", request, 404, session=session, message=f"No escalation {esc_id}.")
        return self._page("escalation.html", request, session=session, **data)

    async def act(self, request: Request) -> Response:
        entered = await self._enter(request, form=True)
        if isinstance(entered, Response):
            return entered
        session, sink, form = entered
        esc_id = request.path_params["escalation_id"]
        action = request.path_params["action"]
        back = f"/console/escalations/{esc_id}"

        def run() -> str:
            text = (form.get("why") or form.get("note") or "").strip()
            if action == "assign":
                sink.assign(esc_id, to=session.name, by=session.name)
                return "Assigned to you."
            if action == "resolve":
                sink.resolve(esc_id, by=session.name, note=text or None)
                return "Resolved."
            if action == "approve":
                if not text:
                    raise Refused("say why you approve (it is recorded)")
                return approve(self.svc, sink, esc_id, by=session.name, why=text)
            if action == "deny":
                if not text:
                    raise Refused("give the reason the agent will tell the customer")
                return deny(self.svc, sink, esc_id, by=session.name, why=text)
            raise Refused(f"unknown action {action!r}")

        try:
            message = await run_in_threadpool(run)
        except (IllegalTransition, Refused) as exc:
            return RedirectResponse(back + "?" + urlencode({"flash": f"Not done: {exc}"}), status_code=303)
        except UnknownEscalation:
            return self._page("error.html", request, 404, session=session, message=f"No escalation {esc_id}.")
        return RedirectResponse(back + "?" + urlencode({"flash": message}), status_code=303)

    # ------------------------------------------------------------------ audit view
    def _audit_rows(self, sink: AuditSink, params: Any) -> list[AuditRecord]:
        since = _time(params.get("since"))
        until = _time(params.get("until"))
        decision = (params.get("decision") or "").strip() or None
        q = Query(
            since=since,
            until=until,
            action=(params.get("action") or "").strip() or None,
            kind=None if decision else "decision",
            decision_id=decision,
            limit=None if (params.get("customer") or params.get("queue")) else 200,
            newest_first=True,
        )
        customer = (params.get("customer") or "").strip()
        queue = (params.get("queue") or "").strip()
        out: list[AuditRecord] = []
        for rec in sink.iter_records(q):
            req = rec.request_object()
            cust = req.get("customer") if isinstance(req, dict) else None
            if customer and not (isinstance(cust, dict) and str(cust.get("id")) == customer):
                continue
            if queue and queue not in rec.escalate_to:
                continue
            out.append(rec)
            if len(out) >= 200:
                break
        return out

    async def audit(self, request: Request) -> Response:
        entered = await self._enter(request)
        if isinstance(entered, Response):
            return entered
        session, sink, _ = entered
        params = request.query_params
        try:
            rows = await run_in_threadpool(self._audit_rows, sink, params)
        except ValueError as exc:
            return self._page("audit.html", request, 400, session=session, rows=[], params=params, error=str(exc))
        export = urlencode({k: v for k, v in params.items() if v})
        return self._page("audit.html", request, session=session, rows=rows, params=params, export=export)

    async def verify(self, request: Request) -> Response:
        entered = await self._enter(request, form=True)
        if isinstance(entered, Response):
            return entered
        session, sink, _ = entered
        result = await run_in_threadpool(sink.verify)
        return self._page("audit.html", request, session=session, rows=[], params={}, verify=result)

    async def export(self, request: Request) -> Response:
        entered = await self._enter(request)
        if isinstance(entered, Response):
            return entered
        _session, sink, _ = entered
        fmt = request.query_params.get("format", "jsonl")
        rows = await run_in_threadpool(self._audit_rows, sink, request.query_params)
        if fmt == "csv":
            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow(_CSV_COLUMNS)
            for rec in rows:
                row = rec.to_dict()
                w.writerow([" ".join(v) if isinstance(v, list) else v for v in (row.get(c) for c in _CSV_COLUMNS)])
            return Response(
                buf.getvalue(),
                media_type="text/csv",
                headers={"Content-Disposition": 'attachment; filename="cxpolicy-audit.csv"'},
            )
        body = b"".join(orjson.dumps(r.to_dict()) + b"\n" for r in rows)
        return Response(
            body,
            media_type="application/x-ndjson",
            headers={"Content-Disposition": 'attachment; filename="cxpolicy-audit.jsonl"'},
        )

    async def css(self, request: Request) -> Response:
        return FileResponse(_HERE / "static" / "console.css", media_type="text/css")


class _Redirect(Exception):
    def __init__(self, to: str) -> None:
        self.to = to

    def response(self) -> Response:
        return RedirectResponse(self.to, status_code=303)


class _Forbidden(Refused):
    """A form post without the session's CSRF token."""


def approve(service: Any, sink: AuditSink, esc_id: str, *, by: str, why: str) -> str:
    """Approve: close the escalation and issue the grant the agent resumes with (LANGUAGE.md
    §9), bound to exactly the stopped request; the agent picks it up once at
    `GET /v1/escalations/{id}/outcome`."""
    from cxpolicy.grants.approvals import ApprovalError, approve_escalation
    from cxpolicy.service.app import ApiError
    from cxpolicy.service.grants import _signer

    try:
        signer = _signer(service, "cxpolicy-console")
    except ApiError as exc:
        raise Refused(exc.message) from None
    try:
        done = approve_escalation(sink, esc_id, signer=signer, by=by, why=why, policy=service.engine.policy)
    except ApprovalError as exc:
        raise Refused(str(exc)) from None
    service.outbox[esc_id] = done.token
    return (
        f"Approved. Grant {done.grant.jti} was sent back to the agent: its retry of exactly this "
        "request is allowed once, for the next 15 minutes."
    )


def deny(service: Any, sink: AuditSink, esc_id: str, *, by: str, why: str) -> str:
    """Deny: close the escalation with the reason the agent relays to the customer."""
    sink.decide_outcome(esc_id, "deny", by=by, why=why)
    return "Denied. The agent will tell the customer your reason."


def _safe_next(value: str | None) -> str:
    """Only a path inside the console: `next` must not become an open redirect."""
    if value and value.startswith("/console/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console/queues"


def _time(value: str | None) -> datetime | None:
    value = (value or "").strip()
    return parse_time(value) if value else None


def _row(esc: Escalation, rec: AuditRecord | None, now: datetime) -> dict[str, Any]:
    due = parse_time(esc.due_at)
    opened = parse_time(esc.opened_at)
    age = now - opened
    return {
        "id": esc.id,
        "queue": esc.queue,
        "state": esc.state,
        "assigned_to": esc.assigned_to,
        "due_at": esc.due_at,
        "overdue": esc.overdue(now),
        "age": _duration(age.total_seconds()),
        "due_in": _duration((due - now).total_seconds()),
        "action": rec.action if rec else None,
        "channel": rec.channel if rec else None,
        "region": rec.region if rec else None,
        "because": next((str(r.get("because")) for r in esc.reasons if r.get("because")), ""),
    }


def _duration(seconds: float) -> str:
    sign = "-" if seconds < 0 else ""
    s = abs(int(seconds))
    if s < 3600:
        return f"{sign}{s // 60}m"
    if s < 86400:
        return f"{sign}{s // 3600}h {s % 3600 // 60}m"
    return f"{sign}{s // 86400}d {s % 86400 // 3600}h"


def _event(rec: AuditRecord) -> dict[str, Any]:
    detail = rec.detail_object()
    d = detail if isinstance(detail, dict) else {}
    what = rec.action or rec.kind
    if rec.kind == "escalation":
        what = f"{d.get('transition', '?')} ({d.get('from') or '—'} → {d.get('to')})"
    return {"seq": rec.seq, "time": rec.time, "kind": rec.kind, "what": what, "by": rec.actor_id, "effect": rec.effect,
            "note": d.get("note") or d.get("why")}  # fmt: skip
