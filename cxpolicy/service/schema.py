"""The service's boundary: pydantic models, the endpoint table, and the OpenAPI document.

Input: nothing at run time but `Decision.to_dict()` and friends. Output: the JSON Schema of
every body the service reads or writes, and the OpenAPI 3.1 document served at
`/openapi.json` and rendered at `/docs`.

Why separate models: the engine's `Decision` is a slotted dataclass on the hot path and stays
the one source of truth for the decision's shape; these models *mirror* its `to_dict()` for
documentation and for clients that want a schema. They forbid extra keys, so the test that
validates real decisions against them fails the moment `to_dict()` grows a field the schema
does not publish. The service never validates a decision request with pydantic: what a valid
request is depends on the loaded vocabulary, and the engine answers an invalid one with an
`escalate` decision (LANGUAGE.md §5), which a 422 from a validator would not be.

The endpoint table (`ENDPOINTS`) is what `cxpolicy.service.app` builds its routes from, so the
published API and the served one cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from cxpolicy.fleet.models import (
    AnomaliesModel,
    FreezeBodyModel,
    FreezeListModel,
    FreezeModel,
    LiftBodyModel,
    StatusModel,
)
from cxpolicy.kinds import Effect, Style

__all__ = [
    "ENDPOINTS",
    "DecisionModel",
    "Endpoint",
    "RequestModel",
    "decision_json_schema",
    "openapi",
    "render_docs",
]

API_VERSION = "1"
_JSON = "application/json"


class _Out(BaseModel):
    """A response body: exactly these keys (drift from the dataclasses fails the tests)."""

    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------- decisions (§6)
class RedactionModel(_Out):
    data_class: str = Field(description="A value of the data-class dimension, e.g. `card_pan`.")
    style: Style = Field(description="How to mask it; strictest wins: full > token > last4.")


class ReasonModel(_Out):
    rule: str = Field(description="Rule id, `package.name`.")
    effect: Effect
    because: str | None = Field(description="The rule's human sentence, if it has one.")
    cite: list[str] = Field(description="Cited texts (regulations, internal policies).")
    lifted_by: str | None = Field(default=None, description="The grant id that lifted this rule (§9).")


class DecisionErrorModel(_Out):
    kind: Literal["request", "condition", "limit", "grant", "untrusted", "internal"] = Field(
        description="`request`: invalid request, no rule evaluated; `condition`: a rule's "
        "condition failed and the fail-safe decided; `limit`; `internal` (a bug, reported)."
    )
    message: str
    field: str | None = Field(default=None, description="The request field at fault.")
    rule: str | None = Field(default=None, description="The rule whose condition failed.")


class TraceConstraintModel(_Out):
    constraint: str
    seen: str
    holds: bool


class TraceConditionModel(_Out):
    kind: Literal["when", "unless"]
    condition: str
    with_values: str = Field(description="The condition with the request's values substituted.")
    value: bool | None
    error: str | None = None
    at: str | None = Field(default=None, description="`file:line:col` of the condition.")


class TraceRuleModel(_Out):
    rule: str
    effect: Effect
    matched: bool
    at: str
    constraints: list[TraceConstraintModel]
    conditions: list[TraceConditionModel]
    note: str


class TraceModel(_Out):
    rules_in_policy: int
    candidates: list[TraceRuleModel] = Field(description="Every rule the index proposed.")
    combination: str = Field(description="How the final effect was combined.")
    detections: list[dict[str, Any]] | None = None
    request_errors: list[str] | None = None
    grants: list[dict[str, Any]] | None = Field(default=None, description="Each grant: valid or why not.")


class WantedGrantModel(_Out):
    kind: Literal["otp", "approval"]
    rules: list[str] = Field(description="The matched rules a grant of this kind would lift.")


class ChallengeModel(_Out):
    """What a client needs to resume a stopped action with a grant (LANGUAGE.md §9)."""

    decision_id: str
    digest: str | None = Field(description="`sha256:` of the RFC 8785 request a grant must name.")
    kind: Literal["otp", "approval"] = Field(description="The grant kind the final effect wants.")
    wanted: list[WantedGrantModel]
    expires_at: int = Field(description="Seconds since the epoch; no grant is issued for it after.")


class DecisionModel(_Out):
    """What the engine answers (LANGUAGE.md §6). Obey `effect`; the rest says why."""

    decision_id: str = Field(description="UUIDv7, time-ordered; the key of the audit record.")
    effect: Effect = Field(description="allow < redact < require_otp < escalate (strictest wins).")
    redact: list[RedactionModel]
    escalate_to: list[str] = Field(description="Queues to hand over to, when escalating.")
    reasons: list[ReasonModel] = Field(description="Every matched rule, strictest first.")
    errors: list[DecisionErrorModel]
    policy_revision: str = Field(description="`sha256:…` of the policy set that decided.")
    default_applied: bool = Field(description="No rule matched; the policy's default applied.")
    summary: str = Field(description="Why, in one sentence.")
    trace: TraceModel | None = Field(default=None, description="Only with `?explain=true`.")
    grants_used: list[str] | None = Field(default=None, description="Grant ids this decision used (one-use).")
    escalations: list[str] | None = Field(default=None, description="Escalations a stopped action opened.")
    challenge: ChallengeModel | None = Field(default=None, description="How to resume a stopped action.")


# ---------------------------------------------------------------------- requests (§2)
class _In(BaseModel):
    model_config = ConfigDict(extra="allow")


class ActorModel(_In):
    kind: str = Field(description="A value of the `actor` dimension: `ai` or `human`.")
    id: str | None = None
    roles: list[str] | None = None


class CustomerModel(_In):
    id: str | None = None
    segment: str | None = None
    risk_tier: str | None = Field(default=None, description="low, medium, high, critical.")
    region: str | None = None


class PayloadModel(_In):
    text: str | None = Field(default=None, description="Text the agent sends or received.")
    direction: str | None = None


class RequestModel(_In):
    """One action an agent is about to take (LANGUAGE.md §2). Which values are valid depends
    on the loaded vocabulary: the engine checks them and answers an invalid request with an
    `escalate` decision and `errors`, never with a 4xx."""

    action: str = Field(examples=["refund.execute"])
    channel: str | None = Field(default=None, examples=["chat"])
    actor: ActorModel | None = None
    customer: CustomerModel | None = None
    data_classes: list[str] | None = Field(default=None, examples=[["card_pan"]])
    context: dict[str, Any] | None = Field(default=None, examples=[{"amount": 12000}])
    payload: PayloadModel | None = None


# ---------------------------------------------------------------------- policy & health
class DiagnosticModel(_Out):
    code: str = Field(description="Stable code, e.g. CXP101 (docs/diagnostics.md).")
    severity: Literal["error", "warning", "info"]
    message: str
    file: str
    line: int
    col: int
    end_line: int
    end_col: int
    hint: str | None


class ReloadResultModel(_Out):
    ok: bool
    changed: bool = Field(description="A new revision started serving.")
    revision: str = Field(description="The revision serving after this attempt.")
    previous: str | None
    trigger: Literal["initial", "manual", "watch"]
    at: str = Field(description="UTC, ISO 8601.")
    duration_ms: float
    rule_count: int
    error: str | None
    diagnostics: list[DiagnosticModel]


class PolicyInfoModel(_Out):
    revision: str
    rule_count: int
    files: list[str] = Field(description="The policy's own files, in load order.")
    packs: list[str] = Field(description="Shipped packs loaded (by --pack or `use`).")
    default: Effect
    watching: bool
    reloads: dict[str, int] = Field(description="Counts of `ok` and `failed` reload attempts.")
    last_reload: ReloadResultModel = Field(description="The latest attempt, failed or not.")
    last_good: ReloadResultModel = Field(description="The attempt that loaded `revision`.")


class HealthModel(_Out):
    status: Literal["ok", "unavailable"]
    revision: str | None = None
    audit: Literal["on", "off", "unavailable"] | None = None
    reason: str | None = None


class ErrorDetailModel(_Out):
    status: int
    code: str = Field(description="Stable, machine-readable: invalid_json, body_too_large, …")
    message: str


class ErrorModel(_Out):
    error: ErrorDetailModel


# ---------------------------------------------------------------------- audit (issue 7)
class ActorRefModel(_Out):
    kind: str | None
    id: str | None


class AuditRecordModel(_Out):
    seq: int
    kind: Literal["decision", "escalation"]
    decision_id: str
    time: str
    policy_revision: str | None
    effect: str | None
    rules: list[str]
    cites: list[str]
    escalate_to: list[str]
    actor: ActorRefModel
    channel: str | None
    region: str | None
    action: str | None
    request_sha256: str | None
    request: Any = Field(description="The request with every sensitive data class masked.")
    detail: Any
    prev_hash: str
    hash: str


class EscalationModel(_Out):
    id: str
    decision_id: str
    queue: str
    reasons: list[dict[str, Any]]
    state: Literal["open", "assigned", "resolved"]
    opened_at: str
    due_at: str
    assigned_to: str | None
    assigned_by: str | None
    assigned_at: str | None
    resolved_by: str | None
    resolved_at: str | None
    note: str | None


class DecisionRecordModel(_Out):
    record: AuditRecordModel
    history: list[AuditRecordModel] = Field(description="Escalation events, in chain order.")
    escalations: list[EscalationModel]


class EscalationListModel(_Out):
    escalations: list[EscalationModel]
    count: int


class OutcomeResultModel(_Out):
    escalation_id: str
    state: str = Field(description="open, assigned or resolved")
    outcome: str | None = Field(description="approved, denied, or null while a person has not decided")
    why: str | None = Field(default=None, description="When denied: what the agent may tell the customer.")
    grant: str | None = Field(default=None, description="When approved: the one-use grant, handed out once.")
    note: str | None = None


class OutcomeModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    why: str = Field(min_length=1, max_length=4000, description="The reason; a denial's is relayed.")


class GrantRequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["otp", "approval"]
    decision_id: str = Field(description="The decision that stopped the action.")
    request: dict[str, Any] = Field(description="The stopped request, exactly as it was sent.")


class GrantModel(_Out):
    grant: str = Field(description="A compact JWS; put it in the retried request's `grants`.")
    kind: Literal["otp", "approval"]
    rules: list[str]
    expires_at: int


class ApprovalModel(_Out):
    grant: str
    grant_id: str
    escalation: EscalationModel
    outcome: Literal["approved"]
    expires_at: int
    rules: list[str]


class DenialModel(_Out):
    escalation: EscalationModel
    outcome: Literal["denied"]
    why: str | None


class EscalationDetailModel(_Out):
    escalation: EscalationModel
    outcome: Literal["approved", "denied"] | None
    grant_id: str | None
    executed_by: str | None = Field(description="The decision that used the approval's grant.")
    history: list[AuditRecordModel]


class AssignModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    to: str = Field(min_length=1, max_length=200, description="Who takes it over.")
    by: str = Field(min_length=1, max_length=200, description="Who is assigning.")


class ResolveModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    by: str = Field(min_length=1, max_length=200)
    note: str | None = Field(default=None, max_length=4000, description="Masked before storing.")


# ---------------------------------------------------------------------- explain story
class StoryItemModel(_Out):
    kind: Literal["constraint", "when", "unless"]
    text: str
    seen: str = Field(description="The values it saw: `12000 <= 500 → false`.")
    holds: bool
    error: str | None = None
    at: str | None = None


class StoryCiteModel(_Out):
    name: str | None
    text: str | None


class RuleStoryModel(_Out):
    rule: str
    effect: Effect
    escalate_to: str | None
    at: str
    because: str | None
    cite: list[StoryCiteModel]
    matched: bool
    items: list[StoryItemModel]


class ChangeModel(_Out):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    path: str
    from_: Any = Field(alias="from")
    to: Any
    kind: str


class CounterfactualModel(_Out):
    changes: list[ChangeModel]
    text: str = Field(description='"with context.otp_verified = true this would be `allow`"')
    decision: DecisionModel


class ExplanationModel(_Out):
    """`POST /v1/explain`: the decision, each matched rule's story, why the effect won, near
    misses (rules one constraint or condition away) and verified counterfactuals."""

    decision: DecisionModel
    matched: list[RuleStoryModel]
    why: str
    near_misses: list[RuleStoryModel]
    counterfactuals: list[CounterfactualModel]
    searched: int = Field(description="Requests re-decided while looking for counterfactuals.")


# ---------------------------------------------------------------------- endpoint table
@dataclass(frozen=True, slots=True)
class Endpoint:
    """One route: what the service serves and what the OpenAPI document says about it."""

    name: str
    method: str
    path: str
    summary: str
    responses: dict[int, type[BaseModel] | str]
    body: type[BaseModel] | None = None
    body_is_list: bool = False
    response_is_list: bool = False
    admin: bool = False
    audit: bool = False
    query: dict[str, str] = field(default_factory=dict)
    description: str = ""


_BAD = {400: ErrorModel, 413: ErrorModel}
_AUDIT = {401: ErrorModel, 403: ErrorModel, 404: ErrorModel, 503: ErrorModel}

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "decide", "POST", "/v1/decide", "Decide one request",
        {200: DecisionModel, **_BAD, 503: ErrorModel}, body=RequestModel,
        query={"explain": "`true` adds the trace: every candidate rule and what it saw."},
        description="A body that is not JSON is a 400; JSON that is not a valid request is a "
        "200 with an `escalate` decision and `errors`. With an audit log configured the "
        "decision is returned only once its record is committed (503 if that fails).",
    ),
    Endpoint(
        "decide_batch", "POST", "/v1/decide/batch", "Decide a list of requests",
        {200: DecisionModel, **_BAD, 503: ErrorModel}, body=RequestModel, body_is_list=True,
        response_is_list=True, query={"explain": "`true` adds the trace to every decision."},
        description="A JSON array of requests → an array of decisions in the same order. "
        "The number of requests is bounded (413 beyond it).",
    ),
    Endpoint(
        "policy", "GET", "/v1/policy", "The policy serving now, and the last reload",
        {200: PolicyInfoModel},
        description="If the files on disk failed to compile, `last_reload.ok` is false with "
        "every diagnostic, and `revision` is still the last good one.",
    ),
    Endpoint(
        "reload", "POST", "/v1/policy/reload", "Recompile the policy files now",
        {200: ReloadResultModel, 401: ErrorModel, 403: ErrorModel, 422: ReloadResultModel},
        admin=True,
        description="422 when the files do not compile: the previous revision keeps serving.",
    ),
    Endpoint("healthz", "GET", "/healthz", "Liveness", {200: HealthModel}),
    Endpoint(
        "readyz", "GET", "/readyz", "Readiness: a policy is loaded and the audit log is usable",
        {200: HealthModel, 503: HealthModel},
    ),
    Endpoint("metrics", "GET", "/metrics", "Prometheus metrics", {200: "text/plain"}),
    Endpoint(
        "decision_record", "GET", "/v1/decisions/{decision_id}",
        "The audit record of one decision",
        {200: DecisionRecordModel, **_AUDIT}, admin=True, audit=True,
    ),
    Endpoint(
        "escalations", "GET", "/v1/escalations", "List escalations",
        {200: EscalationListModel, 400: ErrorModel, **_AUDIT}, admin=True, audit=True,
        query={"state": "open, assigned or resolved", "queue": "one queue",
               "overdue": "`true`: only those past their due time",
               "limit": "at most this many (default 1000, at most 10000)"},
    ),
    Endpoint(
        "assign", "POST", "/v1/escalations/{escalation_id}/assign", "Assign an escalation",
        {200: EscalationModel, 400: ErrorModel, 409: ErrorModel, **_AUDIT}, body=AssignModel,
        admin=True, audit=True, description="409 when the move is not open → assigned.",
    ),
    Endpoint(
        "resolve", "POST", "/v1/escalations/{escalation_id}/resolve", "Resolve an escalation",
        {200: EscalationModel, 400: ErrorModel, 409: ErrorModel, **_AUDIT}, body=ResolveModel,
        admin=True, audit=True, description="409 unless it is assigned (every resolution "
        "has an owner).",
    ),
    Endpoint(
        "status", "GET", "/v1/status", "This replica: revision, bundle, last reload, freezes",
        {200: StatusModel}, description="What `cxpolicy fleet status` compares across replicas "
        "(docs/operations.md).",
    ),
    Endpoint(
        "freezes", "GET", "/v1/freezes", "Active freezes and the history of every freeze and unfreeze",
        {200: FreezeListModel, 401: ErrorModel, 403: ErrorModel, 404: ErrorModel}, admin=True,
    ),
    Endpoint(
        "freeze_create", "POST", "/v1/freezes", "Freeze an action, tool, agent, channel or region",
        {201: FreezeModel, 400: ErrorModel, 401: ErrorModel, 403: ErrorModel, 404: ErrorModel},
        body=FreezeBodyModel, admin=True,
        description="Every replica reading the same freeze store escalates matching requests "
        "until it is lifted.",
    ),
    Endpoint(
        "freeze_lift", "POST", "/v1/freezes/{freeze_id}/lift", "Lift (unfreeze) one freeze",
        {200: FreezeModel, 400: ErrorModel, 401: ErrorModel, 403: ErrorModel, 404: ErrorModel},
        body=LiftBodyModel, admin=True,
    ),
    Endpoint(
        "anomalies", "GET", "/v1/anomalies", "Anomalous rates flagged by this replica",
        {200: AnomaliesModel},
    ),
    Endpoint(
        "escalation", "GET", "/v1/escalations/{escalation_id}", "One escalation, its outcome and grant",
        {200: EscalationDetailModel, **_AUDIT}, audit=True,
        description="A reviewer's credential. `executed_by` is the decision that used the grant.",
    ),
    Endpoint(
        "approve", "POST", "/v1/escalations/{escalation_id}/approve", "Approve: close it and issue a grant",
        {200: ApprovalModel, 400: ErrorModel, 409: ErrorModel, **_AUDIT}, body=OutcomeModel, audit=True,
        description="A reviewer's credential. The grant lifts the escalation's rules for exactly the "
        "stopped request, once, for a few minutes (LANGUAGE.md §9).",
    ),
    Endpoint(
        "deny", "POST", "/v1/escalations/{escalation_id}/deny", "Deny: close it with a reason",
        {200: DenialModel, 400: ErrorModel, 409: ErrorModel, **_AUDIT}, body=OutcomeModel, audit=True,
    ),
    Endpoint(
        "escalation_outcome", "GET", "/v1/escalations/{escalation_id}/outcome",
        "For the stopped agent: still waiting, denied (with why), or approved with its grant",
        {200: OutcomeResultModel, 202: OutcomeResultModel, 401: ErrorModel, 403: ErrorModel, 404: ErrorModel},
        query={"digest": "the `challenge.digest` of the stopped decision (required)"},
        description="A decide credential (or none, when the service has no callers), and the "
        "stopped decision's `challenge.digest`. The grant is handed out once; retry the stopped "
        "request with it in `grants`.",
    ),
    Endpoint(
        "issue_grant", "POST", "/v1/grants", "Issue a grant (an issuer such as the OTP service)",
        {200: GrantModel, 400: ErrorModel, 401: ErrorModel, 403: ErrorModel, 409: ErrorModel, 503: ErrorModel},
        body=GrantRequestModel,
        description="An issuer's credential. Decides the request now and names its matched rules "
        "of the kind's effect; 409 when there is nothing to lift or the challenge expired.",
    ),
    Endpoint(
        "explain", "POST", "/v1/explain", "Explain a decision: the story, near misses, a counterfactual",
        {200: ExplanationModel, **_BAD, 401: ErrorModel, 403: ErrorModel}, body=RequestModel, admin=True,
        description="Decides the request (nothing is recorded in the audit log) and tells why: "
        "what each matched rule saw, why the effect won, rules that missed by one clause, and "
        "the smallest change to the request that gives a less strict effect, checked by deciding it.",
    ),
    Endpoint("openapi", "GET", "/openapi.json", "This document", {200: "application/json"}),
    Endpoint("docs", "GET", "/docs", "The API reference as a page", {200: "text/html"}),
)

_MODELS: tuple[type[BaseModel], ...] = (
    DecisionModel, RequestModel, PolicyInfoModel, ReloadResultModel, HealthModel, ErrorModel,
    DecisionRecordModel, EscalationListModel, EscalationModel, AssignModel, ResolveModel,
    StatusModel, FreezeListModel, FreezeModel, FreezeBodyModel, LiftBodyModel, AnomaliesModel,
    OutcomeModel, GrantRequestModel, GrantModel, ApprovalModel, DenialModel, EscalationDetailModel,
    OutcomeResultModel,
    ExplanationModel,
)  # fmt: skip


def _components() -> dict[str, Any]:
    # Request bodies are documented as they are read, responses as they are written.
    pairs: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        (m, "validation" if m in (RequestModel, AssignModel, ResolveModel, OutcomeModel, GrantRequestModel)
        else "serialization")
        for m in _MODELS
    ]
    _, top = models_json_schema(pairs, ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = top.get("$defs", {})
    return schemas


def _ref(model: type[BaseModel], as_list: bool = False) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"type": "array", "items": ref} if as_list else ref


def _operation(ep: Endpoint) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": ep.name, "summary": ep.summary}
    if ep.description:
        op["description"] = ep.description
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _path_params(ep.path)
    ]
    params += [
        {"name": q, "in": "query", "required": False, "description": d}
        | {"schema": {"type": "string"}}
        for q, d in ep.query.items()
    ]
    if params:
        op["parameters"] = params
    if ep.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(ep.body, ep.body_is_list)}},
        }
    responses: dict[str, Any] = {}
    for status, what in sorted(ep.responses.items()):
        if isinstance(what, str):
            responses[str(status)] = {"description": what, "content": {what: {}}}
            continue
        schema = _ref(what, ep.response_is_list and status == 200)
        responses[str(status)] = {
            "description": _STATUS_TEXT.get(status, what.__name__),
            "content": {"application/json": {"schema": schema}},
        }
    op["responses"] = responses
    if ep.admin:
        op["security"] = [{"adminToken": []}]
    return op


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


_STATUS_TEXT = {
    200: "OK",
    400: "The body is not acceptable JSON (or not the expected shape)",
    401: "Missing or wrong bearer token",
    403: "Admin endpoints are disabled: CXPOLICY_ADMIN_TOKEN is not set",
    404: "Not found (or the audit log is not configured)",
    409: "The escalation cannot make that move",
    413: "Body or batch over the configured limit",
    422: "The policy files do not compile",
    503: "Not ready, or the audit log could not commit the record",
}


def openapi(*, title: str = "cxpolicy decision service", version: str = "0.1.0") -> dict[str, Any]:
    """The OpenAPI 3.1 document for `ENDPOINTS` (served at `/openapi.json`)."""
    paths: dict[str, dict[str, Any]] = {}
    for ep in ENDPOINTS:
        paths.setdefault(ep.path, {})[ep.method.lower()] = _operation(ep)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Check every AI-agent action against the policy before taking it. "
            "Every decision names the policy revision that made it.",
        },
        "paths": paths,
        "components": {
            "schemas": _components(),
            "securitySchemes": {
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The value of CXPOLICY_ADMIN_TOKEN on the server.",
                }
            },
        },
    }


def decision_json_schema() -> dict[str, Any]:
    """The published JSON Schema of a decision (draft 2020-12), self-contained."""
    schema = DecisionModel.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema



def render_docs(doc: Mapping[str, Any]) -> str:
    """A self-contained HTML page for the OpenAPI document: no scripts, no CDN."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{escape(doc['info']['title'])}</title><style>",
        "body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}",
        "code,pre{font:13px ui-monospace,monospace}",
        "pre{background:#f5f5f5;padding:.6rem;overflow:auto}",
        ".m{display:inline-block;width:4rem;font-weight:bold}.admin{color:#a40}",
        "details{margin:.3rem 0}</style></head><body>",
        f"<h1>{escape(doc['info']['title'])}</h1><p>{escape(doc['info']['description'])}</p>",
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a> (OpenAPI 3.1).</p>",
        "<h2>Endpoints</h2>",
    ]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            admin = " <span class='admin'>admin token</span>" if "security" in op else ""
            parts.append(
                f"<h3><span class='m'>{method.upper()}</span>"
                f"<code>{escape(path)}</code>{admin}</h3>"
                f"<p>{_text(op['summary'])}. {_text(op.get('description', ''))}</p><ul>"
            )
            for p in op.get("parameters", []):
                what = _text(p.get("description", ""))
                parts.append(f"<li><code>{escape(p['name'])}</code> ({p['in']}) {what}</li>")
            body = op.get("requestBody", {}).get("content", {}).get(_JSON, {}).get("schema")
            if body:
                parts.append(f"<li>body: {_schema_link(body)}</li>")
            for status, r in op["responses"].items():
                schema = r.get("content", {}).get(_JSON, {}).get("schema")
                media = next(iter(r.get("content", {})), "")
                shown = _schema_link(schema) if schema else escape(media)
                parts.append(f"<li>{status} {escape(r['description'])}: {shown}</li>")
            parts.append("</ul>")
    parts.append("<h2>Schemas</h2>")
    for name, schema in doc["components"]["schemas"].items():
        text = orjson.dumps(schema, option=orjson.OPT_INDENT_2).decode()
        parts.append(
            f"<details id='{escape(name)}'><summary><code>{escape(name)}</code></summary>"
            f"<pre>{escape(text)}</pre></details>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def _text(markdown: str) -> str:
    """Escaped text with `backticks` shown as code (the descriptions are written for both)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(markdown))


def _schema_link(schema: Mapping[str, Any]) -> str:
    ref = schema.get("$ref") or schema.get("items", {}).get("$ref", "")
    name = ref.rsplit("/", 1)[-1]
    array = "array of " if "items" in schema else ""
    return f"{array}<a href='#{escape(name)}'><code>{escape(name)}</code></a>"


if __name__ == "__main__":  # `python -m cxpolicy.service.schema [openapi]` prints the published schema
    import sys

    doc = openapi() if sys.argv[1:] == ["openapi"] else decision_json_schema()
    sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
