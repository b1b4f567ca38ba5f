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

The detectors are gated by what the text contains (no digit: no numeric identifier; no `@`:
no email), so a short message without personal data costs a couple of passes. Several
detectors may read the same characters ("9876543210@ybl" holds a phone number inside a VPA;
a 16-digit number can pass both Luhn and Verhoeff); the strongest reading wins and the rest
are dropped, so a character belongs to at most one span and a masker never nests
replacements. Modules: numeric.py (digit identifiers), ids.py (tax/bank codes, email/VPA,
cued values), cues.py (labels, text views), injection.py + phrases.py (the injection score),
config.py (settings, spans).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from typing import Any

from cxpolicy.signals.config import ALL_CLASSES, DetectorConfig, PiiSpan, phone_region
from cxpolicy.signals.cues import Candidate, TextView
from cxpolicy.signals.ids import find_at_sign, find_cued, find_tax_bank_ids
from cxpolicy.signals.injection import INDICATOR_WEIGHTS, score_injection, score_view
from cxpolicy.signals.numeric import find_numeric

__all__ = [
    "ALL_CLASSES",
    "INDICATOR_WEIGHTS",
    "DetectorConfig",
    "PiiSpan",
    "detect",
    "empty_signals",
    "find_candidates",
    "resolve",
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


def resolve(candidates: list[Candidate]) -> list[Candidate]:
    """Non-overlapping candidates, strongest first when they compete, returned in text order.

    Greedy by priority, then by length (the longer reading explains more of the text).
    Kept spans are disjoint and kept sorted, so each overlap test is one bisection: a text
    stuffed with thousands of card numbers resolves in n log n, not n squared.
    """
    if len(candidates) <= 1:
        return list(candidates)
    ordered = sorted(candidates, key=lambda c: (-c.priority, c.start - c.end, c.start))
    starts: list[int] = []
    kept: list[Candidate] = []
    for c in ordered:
        i = bisect_right(starts, c.start)
        if i > 0 and kept[i - 1].end > c.start:
            continue
        if i < len(kept) and kept[i].start < c.end:
            continue
        starts.insert(i, c.start)
        kept.insert(i, c)
    return kept


def find_candidates(view: TextView, region: str | None, cfg: DetectorConfig) -> list[Candidate]:
    """Every finding of every enabled detector, overlaps included."""
    out: list[Candidate] = []
    vocab_region = region.strip().upper() if isinstance(region, str) else None
    text, cls = view.text, view.cls
    if b"0" in cls:
        find_numeric(text, cls, phone_region(vocab_region), cfg, out)
        find_tax_bank_ids(text, cls, cfg, out)
        find_cued(view, vocab_region, cfg, out)
    elif cfg.enabled("mrn") and not cfg.mrn_cues:
        find_cued(view, vocab_region, cfg, out)
    if b"@" in cls:
        find_at_sign(text, cls, cfg, out)
    return out


def scan_text(text: str, *, region: str | None = None, config: DetectorConfig | None = None) -> list[PiiSpan]:
    """Spans of personal data in the whole of `text`, in order, never overlapping.

    The whole text, not a prefix: callers mask with these spans, and `max_text_chars` is a
    latency bound for deciding, not permission to store an unmasked tail. `region` is the
    customer's vocabulary region (IN, US, UK, EU…); it picks the phone-number plan and the
    day/month order of dates.
    """
    cfg = config or _DEFAULT
    if not isinstance(text, str) or not text:
        return []
    region = region if region is not None else cfg.default_region
    found = resolve(find_candidates(TextView(text), region, cfg))
    return [PiiSpan(c.start, c.end, c.data_class, c.detector, c.check) for c in found]
