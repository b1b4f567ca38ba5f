"""Shared builders for the audit tests (no tests here).

Decisions are built directly from `cxpolicy.engine.decision`, so the audit tests do not depend on
the engine. Requests carry real-shaped test values: the Luhn-valid test PAN 4111 1111 1111
1111 and a Verhoeff-valid Aadhaar-shaped number.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cxpolicy.engine.decision import Decision, DecisionError, Reason, Redaction, new_decision_id
from cxpolicy.kinds import Effect, Style

KEY = b"test-audit-key-0123456789abcdef"
PAN = "4111111111111111"
PAN_SPACED = "4111 1111 1111 1111"
AADHAAR = "234123412346"  # Verhoeff-valid, Aadhaar-shaped
AADHAAR_SPACED = "2341 2341 2346"
CVV = "737"
T0 = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)


def make_decision(
    effect: Effect = Effect.ALLOW,
    *,
    escalate_to: tuple[str, ...] = (),
    rules: tuple[str, ...] = ("bank.refunds.small",),
    decision_id: str | None = None,
    errors: tuple[DecisionError, ...] = (),
) -> Decision:
    reasons = tuple(
        Reason(rule=r, effect=effect, because=f"{r} applies", cite=(f"CITE-{i}",))
        for i, r in enumerate(rules)
    )
    redact = (Redaction("card_pan", Style.LAST4),) if effect is Effect.REDACT else ()
    return Decision(
        decision_id=decision_id or new_decision_id(),
        effect=effect,
        redact=redact,
        escalate_to=escalate_to,
        reasons=reasons,
        errors=errors,
        policy_revision="sha256:" + "ab" * 32,
    )


def make_request(i: int = 0, **extra: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "action": "refund.execute",
        "channel": "chat",
        "actor": {"kind": "ai", "id": f"agent-{i % 7}", "roles": ["tier1"]},
        "customer": {"id": f"C-{i}", "segment": "retail", "risk_tier": "high", "region": "IN"},
        "data_classes": ["card_pan"],
        "context": {"amount": 100 + i, "currency": "INR", "otp_verified": False},
        "payload": {"text": f"refund request number {i}"},
    }
    request.update(extra)
    return request


def sensitive_request() -> dict[str, Any]:
    """A request that carries a PAN, a CVV, an Aadhaar number and PHI in every kind of place."""
    return make_request(
        1,
        payload={
            "text": f"My card is {PAN_SPACED}, cvv {CVV}, aadhaar {AADHAAR_SPACED}. "
            "Diagnosis on file."
        },
        context={
            "amount": 12000,
            "otp_verified": True,
            "card_number": PAN,
            "cvv": int(CVV),
            "aadhaar": AADHAAR,
            "note": f"customer read out {PAN} twice",
        },
        patient={"mrn": "MRN-99812", "diagnosis": "type 2 diabetes mellitus"},
        cards=[{"pan": PAN}, PAN],
    )


class Clock:
    """A settable clock for the sink: no test depends on the wall clock."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now = self.now + timedelta(**kw)


def raw(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection with the append-only triggers dropped: what an attacker
    with file access could do."""
    conn = sqlite3.connect(path, isolation_level=None)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    return conn


def db_bytes(path: Path) -> bytes:
    """Every byte SQLite keeps for this database: the file, its WAL and shared memory."""
    out = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = Path(str(path) + suffix)
        if p.exists():
            out += p.read_bytes()
    return out
