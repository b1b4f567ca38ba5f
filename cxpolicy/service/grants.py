"""The service's grant endpoints: approve / deny an escalation, issue an OTP grant, read an
escalation, and the `challenge` a stopped decision carries (LANGUAGE.md §9).

Input: HTTP requests (a reviewer's or an issuer's credential, checked by `service/auth.py`).
Output: JSON answers; an approval's token is handed out only after the approval, the grant's
`issue` record and the escalation's closing are committed in one audit transaction.

Why the digest comes from the audit record: the reviewer approves what the agent asked, not
what someone re-sends; the decision record of a stopped action stores the grant digest of
its request (`grant_digest`), so the grant names exactly that request.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cxpolicy.engine.decision import Decision
from cxpolicy.grants import GrantSigner, issue, liftable_rules, request_digest
from cxpolicy.grants.approvals import APPROVAL_TTL
from cxpolicy.grants.challenge import CHALLENGE_TTL, challenge_for, decision_time
from cxpolicy.grants.digest import DigestError

__all__ = ["APPROVAL_TTL", "CHALLENGE_TTL", "approve", "challenge", "deny", "escalation", "handlers", "issue_grant"]

OTP_TTL = 5 * 60


def challenge(decision: Decision, request: Any) -> dict[str, Any]:
    """What a client needs to resume a stopped action: escalation ids and the challenge."""
    out: dict[str, Any] = {}
    if decision.escalations:
        out["escalations"] = list(decision.escalations)
    found = challenge_for(decision, request)
    if found is not None:
        out["challenge"] = found
    return out


def _signer(svc: Any, iss: str) -> GrantSigner:
    from cxpolicy.service.app import ApiError

    keys = svc.engine.grant_keys
    if keys is None or not keys.hmac:
        raise ApiError(503, "no_grant_key", "this service has no HS256 grant key, so it cannot issue grants")
    kid, secret = keys.hmac[0]
    return GrantSigner(secret, "HS256", kid, iss)


async def _body(svc: Any, request: Request) -> dict[str, Any]:
    from cxpolicy.engine.requests import MAX_DEPTH
    from cxpolicy.service.app import ApiError, _parse, _read_body

    value = _parse(await _read_body(request, svc.max_body), svc.max_body, MAX_DEPTH)
    if not isinstance(value, dict):
        raise ApiError(400, "invalid_body", "the body must be a JSON object")
    return value


def _text(body: dict[str, Any], name: str, *, required: bool = True, limit: int = 4000) -> str | None:
    from cxpolicy.service.app import ApiError

    v = body.get(name)
    if v is None and not required:
        return None
    if not isinstance(v, str) or not v.strip() or len(v) > limit:
        raise ApiError(400, "invalid_body", f"`{name}` must be a non-empty string (at most {limit} characters)")
    return v.strip()


async def approve(svc: Any, request: Request) -> Response:
    """`POST /v1/escalations/{id}/approve` {"why"}: close it approved and answer the grant."""
    from cxpolicy.grants.approvals import ApprovalError, approve_escalation
    from cxpolicy.service.app import ApiError, _audit_call, _json

    caller = svc._require(request, _role("REVIEW"))
    sink = _sink(svc)
    body = await _body(svc, request)
    why = _text(body, "why") or ""
    esc_id = request.path_params["escalation_id"]
    signer = _signer(svc, "cxpolicy-review")

    def run() -> dict[str, Any]:
        try:
            done = approve_escalation(sink, esc_id, signer=signer, by=caller.name, why=why, policy=svc.engine.policy)
        except ApprovalError as exc:
            raise ApiError(409, "nothing_to_lift", str(exc)) from None
        svc.outbox[esc_id] = done.token  # also for the stopped agent to pick up
        return done.to_dict()

    return _json(await _audit_call(run))


async def deny(svc: Any, request: Request) -> Response:
    """`POST /v1/escalations/{id}/deny` {"why"}: close it denied; `why` is what the agent relays."""
    from cxpolicy.service.app import _audit_call, _json

    caller = svc._require(request, _role("REVIEW"))
    sink = _sink(svc)
    body = await _body(svc, request)
    why = _text(body, "why") or ""
    esc_id = request.path_params["escalation_id"]
    closed = await _audit_call(lambda: sink.decide_outcome(esc_id, "deny", by=caller.name, why=why))
    return _json({"escalation": closed.to_dict(), "outcome": "denied", "why": closed.note})


async def issue_grant(svc: Any, request: Request) -> Response:
    """`POST /v1/grants` {"kind", "decision_id", "request"} for an issuer (the OTP service):
    decide the request now and sign a grant naming its matched rules of the kind's effect."""
    from cxpolicy.service.app import ApiError, _audit_call, _json

    caller = svc._require(request, _role("ISSUE"))
    body = await _body(svc, request)
    kind = body.get("kind")
    if kind not in ("otp", "approval"):
        raise ApiError(400, "invalid_body", "`kind` must be otp or approval")
    decision_id = _text(body, "decision_id", limit=100) or ""
    req = body.get("request")
    if not isinstance(req, dict):
        raise ApiError(400, "invalid_body", "`request` must be the JSON request that was stopped")
    born = decision_time(decision_id)
    if born is None or time.time() > born + CHALLENGE_TTL:
        raise ApiError(409, "challenge_expired", f"decision {decision_id!r} is unknown or older than its challenge")
    policy = svc.engine.policy
    decision = policy.decide({k: v for k, v in req.items() if k != "grants"})
    rules = liftable_rules(decision, kind)
    if not rules:
        what = f"no matched rule a {kind} grant lifts (effect {decision.effect.value})"
        raise ApiError(409, "nothing_to_lift", f"the request has {what}")
    try:
        digest = request_digest(req)
    except DigestError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    signer = _signer(svc, caller.name)
    now = time.time()
    ttl = OTP_TTL if kind == "otp" else APPROVAL_TTL
    by = caller.name if kind == "approval" else None
    token = issue(signer, kind=kind, decision=decision_id, digest=digest, rules=rules, ttl=ttl, by=by, now=now)
    if svc.audit is not None:
        from cxpolicy.grants.tokens import Grant

        grant = Grant(_claim(token, "jti"), kind, decision_id, digest, tuple(rules), int(now), int(now) + ttl,
                      signer.iss, by)  # fmt: skip
        await _audit_call(lambda: svc.audit.record_grant_issue(grant, by=caller.name))
    return _json({"grant": token, "kind": kind, "rules": rules, "expires_at": int(now) + ttl})


def escalation_state(sink: Any, esc_id: str) -> dict[str, Any] | None:
    """An escalation as the chain tells it: state, outcome (approved/denied), the grant's id
    and the decision that used it, and its history; None for an unknown id."""
    esc = sink.get_escalation(esc_id)
    if esc is None:
        return None
    events = []
    for r in sink.history(esc.decision_id):
        d = r.detail_object()
        if isinstance(d, dict) and (d.get("escalation_id") == esc_id or d.get("grant_kind") == "approval"):
            events.append(r.to_dict())
    outcome = next((e["detail"].get("transition") for e in reversed(events)
                    if e["detail"].get("transition") in ("approve", "deny")), None)  # fmt: skip
    grant_id = next((e["detail"].get("grant") for e in events if e["detail"].get("grant")), None)
    used = sink.grant_use(grant_id) if grant_id else None
    return {
        "escalation": esc.to_dict(),
        "outcome": {"approve": "approved", "deny": "denied"}.get(outcome or ""),
        "grant_id": grant_id,
        "executed_by": used["used_by"] if used else None,
        "history": events,
    }


async def escalation(svc: Any, request: Request) -> Response:
    """`GET /v1/escalations/{id}`: its state, its history in the chain, and the grant's fate."""
    from cxpolicy.service.app import ApiError, _audit_call, _json

    svc._require(request, _role("REVIEW"))
    sink = _sink(svc)
    esc_id = request.path_params["escalation_id"]

    def read() -> dict[str, Any] | None:
        return escalation_state(sink, esc_id)

    out = await _audit_call(read)
    if out is None:
        raise ApiError(404, "not_found", f"no escalation {esc_id!r}")
    return _json(out)


async def pickup(svc: Any, request: Request) -> Response:
    """`GET /v1/escalations/{id}/outcome`: what the agent that was stopped learns — still
    waiting, denied (with the reason to tell the customer), or approved with the grant to
    retry with. The grant is handed out once (it is a bearer proof), from this process's
    outbox, where an approval made here (the console or `/approve`) put it.

    The caller must show `?digest=` — the `challenge.digest` its stopped decision carried — so
    knowing an escalation id is not enough to take another agent's grant or read its outcome."""
    import hmac

    from cxpolicy.service.app import ApiError, _audit_call, _json

    if not svc.callers.decide_open or request.headers.get("authorization"):
        svc._require(request, _role("DECIDE"))
    sink = _sink(svc)
    esc_id = request.path_params["escalation_id"]
    shown = request.query_params.get("digest") or ""

    def read() -> dict[str, Any] | None:
        state = escalation_state(sink, esc_id)
        if state is None:
            return None
        rec = sink.get(state["escalation"]["decision_id"])
        detail = rec.detail_object() if rec is not None else None
        want = detail.get("grant_digest") if isinstance(detail, dict) else None
        if not want or not hmac.compare_digest(str(want).encode(), shown.encode()):
            return None  # the same answer as an unknown id: nothing to learn by guessing
        return state

    state = await _audit_call(read)
    if state is None:
        raise ApiError(404, "not_found", f"no escalation {esc_id!r} for that digest (send ?digest= from the challenge)")
    esc = state["escalation"]
    out: dict[str, Any] = {"escalation_id": esc_id, "state": esc["state"], "outcome": state["outcome"]}
    if state["outcome"] == "denied":
        out["why"] = esc.get("note")
    elif state["outcome"] == "approved":
        token = svc.outbox.pop(esc_id, None)
        out["grant"] = token
        if token is None:
            out["note"] = "the grant was already picked up (or was approved in another process)"
    return _json(out, 200 if state["outcome"] else 202)


def _sink(svc: Any) -> Any:
    from cxpolicy.service.app import ApiError

    if svc.audit is None:
        raise ApiError(404, "audit_disabled", "escalations need the audit log: start with --audit sqlite:///audit.db")
    return svc.audit


def _claim(token: str, name: str) -> str:
    from cxpolicy.grants import inspect

    return str(inspect(token)["claims"][name])


def _role(name: str) -> Any:
    from cxpolicy.service.auth import Role

    return Role[name]


def handlers(svc: Any) -> dict[str, Callable[[Request], Awaitable[Response]]]:
    """The routes of this module, by endpoint name (service/schema.py ENDPOINTS)."""

    def bind(fn: Callable[[Any, Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            return await fn(svc, request)

        return handler

    return {
        "approve": bind(approve),
        "deny": bind(deny),
        "issue_grant": bind(issue_grant),
        "escalation_outcome": bind(pickup),
        "escalation": bind(escalation),
    }
