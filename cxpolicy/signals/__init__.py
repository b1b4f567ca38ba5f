"""Signals: what a request's text contains that its caller did not declare.

Rules decide on declared `data_classes`, but agents leak what nobody declared (a card number
typed into chat, an Aadhaar in a pasted document) and act on what they receive (an injected
"ignore your instructions"). `detect` looks at `payload.text` locally, without a model, in
microseconds, and returns the `signals` object the engine stores at `request["signals"]`:

    {"pii": ["card_pan", ...],                        # classes found, sorted
     "pii_spans": [{"class", "start", "end", "detector", "check"}, ...],
     "prompt_injection": {"score": 0.0..1.0, "indicators": [...]},
     "truncated": false}

Spans, never values: the result goes into traces and audit records. `detect` never raises;
a text it cannot read yields empty signals, and a detector failure is reported under
`"error"` (with no text in it) so a policy can treat unknown as suspicious.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cxpolicy.signals.config import ALL_CLASSES, DetectorConfig, PiiSpan
from cxpolicy.signals.cues import TextView
from cxpolicy.signals.injection import INDICATOR_WEIGHTS, score_injection, score_view
from cxpolicy.signals.pii import find_candidates, resolve, scan_text

__all__ = [
    "ALL_CLASSES",
    "INDICATOR_WEIGHTS",
    "DetectorConfig",
    "PiiSpan",
    "detect",
    "empty_signals",
    "scan_text",
    "score_injection",
]

_DEFAULT = DetectorConfig()


def empty_signals() -> dict[str, Any]:
    """Signals for a request without text: what rules see when there is nothing to scan."""
    return {
        "pii": [],
        "pii_spans": [],
        "prompt_injection": {"score": 0.0, "indicators": []},
        "truncated": False,
    }


def _field(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else None


def detect(request: Mapping[str, Any], config: DetectorConfig | None = None) -> dict[str, Any]:
    """The `signals` for one request: PII spans in `payload.text` and the injection score.

    Only the first `config.max_text_chars` characters are scanned, so a pasted megabyte
    cannot stall the decision path; `truncated` says when that happened (a rule can
    escalate on it, since the tail was not looked at).
    """
    cfg = config or _DEFAULT
    out = empty_signals()
    try:
        payload = _field(request, "payload")
        text = _field(payload, "text")
        if not isinstance(text, str) or not text:
            return out
        if len(text) > cfg.max_text_chars:
            text = text[: cfg.max_text_chars]
            out["truncated"] = True
        region = _field(_field(request, "customer"), "region")
        if not isinstance(region, str):
            region = cfg.default_region
        view = TextView(text)
        spans = resolve(find_candidates(view, region, cfg))
        if spans:
            out["pii"] = sorted({c.data_class for c in spans})
            out["pii_spans"] = [
                {
                    "class": c.data_class,
                    "start": c.start,
                    "end": c.end,
                    "detector": c.detector,
                    "check": c.check,
                }
                for c in spans
            ]
        if cfg.injection:
            out["prompt_injection"] = score_view(view)
    except Exception as exc:  # a detector bug must not take the decision down with it
        out["error"] = f"detector failed: {type(exc).__name__}"
    return out
