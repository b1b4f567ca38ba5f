"""Detection reads every string field, keeps the caller's own signals, and is on by default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import cxpolicy
from cxpolicy.engine.loader import load_text
from cxpolicy.kinds import Effect
from cxpolicy.signals import DETECTOR_KEYS, DetectorConfig, detect, scan_fields
from cxpolicy.signals.redact import apply

CARD = "4111 1111 1111 1111"
FRAUD_RULE = """
dimension action: {refund.execute}
package t
default allow
rule high_fraud_escalates {
  match   action = refund.execute
  when    has(signals.fraud_score) && signals.fraud_score >= 0.8
  decide  escalate
  because "An upstream fraud score this high needs a person"
}
"""


def _request(**extra: Any) -> dict[str, Any]:
    req: dict[str, Any] = {
        "action": "refund.execute",
        "channel": "chat",
        "actor": {"kind": "ai", "id": "a1"},
        "customer": {"segment": "retail", "risk_tier": "low", "region": "IN"},
        "payload": {"text": "please refund my order"},
    }
    req.update(extra)
    return req


@pytest.mark.parametrize(
    "where",
    [
        ("payload", "body"),
        ("payload", "html"),
        ("payload", "subject"),
        ("context", "note"),
        ("customer", "notes"),
    ],
)
def test_pii_outside_payload_text_is_found(where: tuple[str, str]) -> None:
    req = _request()
    req.setdefault(where[0], {})[where[1]] = f"my card is {CARD}"
    out = detect(req)
    assert out["pii"] == ["card_pan"]
    (span,) = out["pii_spans"]
    assert span["field"] == f"{where[0]}.{where[1]}"
    assert req[where[0]][where[1]][span["start"] : span["end"]] == CARD


def test_attachments_text_is_scanned_and_paths_are_configurable() -> None:
    req = _request(payload={"text": "see attached", "attachments": [{"name": "a.txt", "text": f"card {CARD}"}]})
    out = detect(req)
    assert [s["field"] for s in out["pii_spans"]] == ["payload.attachments[0].text"]
    only_text = DetectorConfig(scan_paths=("payload.text",))
    assert detect(req, only_text)["pii"] == []
    custom = DetectorConfig(scan_paths=("payload.text", "context.agent_summary"))
    req["context"] = {"agent_summary": f"customer read out {CARD}"}
    assert detect(req, custom)["pii"] == ["card_pan"]


def test_payload_text_is_scanned_first_and_the_budget_covers_all_fields() -> None:
    req = _request(payload={"body": "x" * 50, "text": f"card {CARD}"})
    assert scan_fields(req)[0][0] == "payload.text"
    out = detect(req, DetectorConfig(max_text_chars=30))
    assert out["pii"] == ["card_pan"] and out["truncated"] is True


def test_caller_signals_survive_detection_and_detector_keys_do_not() -> None:
    policy = load_text(FRAUD_RULE, detect=True)
    risky = _request(signals={"fraud_score": 0.9})
    assert policy.decide(risky).effect is Effect.ESCALATE
    assert policy.decide(_request(signals={"fraud_score": 0.1})).effect is Effect.ALLOW
    # With the detectors running, the caller cannot pre-empt their keys.
    spoof = _request(
        payload={"text": f"card {CARD}"}, signals={"fraud_score": 0.1, "pii": [], "prompt_injection": {"score": 0}}
    )
    seen = policy.decide(spoof, explain=True)
    assert seen.effect is Effect.ALLOW
    assert seen.trace is not None
    assert [d.get("class") for d in seen.trace.detections if "class" in d] == ["card_pan"]


def test_detector_keys_match_the_engines_copy() -> None:
    from cxpolicy.engine import policy_set
    from cxpolicy.tools import testing

    assert policy_set._DETECTOR_KEYS == DETECTOR_KEYS
    assert testing._DETECTED == DETECTOR_KEYS


def test_detection_is_on_by_default_in_the_python_api(tmp_path: Path) -> None:
    (tmp_path / "p.cxp").write_text(FRAUD_RULE, encoding="utf-8")
    policy = cxpolicy.load([tmp_path])
    assert policy.detector is not None
    assert cxpolicy.load([tmp_path], detect=False).detector is None
    assert load_text(FRAUD_RULE).detector is not None


def test_apply_masks_every_string_field_whatever_was_declared() -> None:
    from cxpolicy.engine.decision import Redaction
    from cxpolicy.kinds import Style

    req = _request(
        payload={"text": "hi", "body": f"card {CARD}", "attachments": [{"text": f"again {CARD}"}]},
        context={"note": f"agent saw {CARD}"},
    )
    masked = apply(req, [Redaction("card_pan", Style.FULL)])
    assert CARD not in str(masked)
    assert masked["payload"]["body"] == "card [REDACTED:card_pan]"
    assert masked["context"]["note"] == "agent saw [REDACTED:card_pan]"
    assert req["payload"]["body"] == f"card {CARD}"  # the input is not changed in place
