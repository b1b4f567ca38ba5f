"""The fleet endpoints' boundary: pydantic models of what they read and answer.

Input: nothing at run time but the dicts `Freeze.to_dict()`, `FreezeWatcher.status()`,
`Anomaly.to_dict()` and `replica_status()` build. Output: the JSON Schemas the OpenAPI
document publishes (`cxpolicy.service.schema` lists them), and validation of the two request
bodies. Response models forbid extra keys, so a test that validates real answers fails the
moment a dict grows a key the schema does not publish.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AnomaliesModel",
    "FreezeBodyModel",
    "FreezeListModel",
    "FreezeModel",
    "LiftBodyModel",
    "StatusModel",
]

Kind = Literal["action", "tool", "agent", "channel", "region"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FreezeModel(_Out):
    id: str
    kind: Kind
    value: str
    reason: str = Field(description="Why, as the operator wrote it; shown in every frozen decision.")
    created_by: str
    created_at: str
    source: Literal["operator", "anomaly"]
    active: bool
    lifted_by: str | None
    lifted_at: str | None
    lift_reason: str | None


class FreezeEventModel(_Out):
    seq: int
    freeze_id: str
    event: Literal["freeze", "unfreeze"]
    kind: Kind
    value: str
    by: str
    reason: str
    at: str


class FreezeStateModel(_Out):
    store: str = Field(description="The freeze store (a DSN's password masked).")
    version: int = Field(description="Store version this replica holds; replicas that agree hold the same.")
    active: list[FreezeModel]
    observed_at: str | None = Field(description="When this replica first saw this version.")
    last_sync: str | None
    last_error: str | None = Field(description="Set while the store is unreadable (the freezes held are kept).")


class FreezeListModel(FreezeStateModel):
    history: list[FreezeEventModel] = Field(description="Every freeze and unfreeze, newest first.")


class FreezeBodyModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    kind: Kind
    value: str = Field(min_length=1, max_length=200, examples=["refund.execute"])
    reason: str = Field(min_length=1, max_length=2000, description="Why: recorded and shown in decisions.")
    by: str | None = Field(default=None, max_length=200, description="On whose behalf (recorded with the caller).")


class LiftBodyModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    reason: str = Field(min_length=1, max_length=2000)
    by: str | None = Field(default=None, max_length=200)


class AnomalyModel(_Out):
    dimension: Literal["agent", "action", "channel", "queue"]
    value: str
    signal: Literal["escalation", "otp", "redaction", "injection", "condition_error", "grant_refusal"]
    window_end: str
    count: int
    decisions: int
    expected: float
    method: Literal["poisson", "zscore"]
    score: float


class AnomaliesModel(_Out):
    enabled: bool
    anomalies: list[AnomalyModel] = Field(description="Keys flagged in the last judged window.")
    recent: list[AnomalyModel]
    window_seconds: float | None = None
    windows_judged: int | None = None
    keys_dropped: int | None = None


class StatusModel(_Out):
    replica: str
    revision: str
    rule_count: int
    bundle: dict[str, Any] | None = Field(description="Source, verification, the bundle serving, the last refusal.")
    last_reload: dict[str, Any]
    last_good: dict[str, Any]
    reloads: dict[str, int]
    freeze: FreezeStateModel | None
    anomalies: int | None
    stream: dict[str, Any] | None
