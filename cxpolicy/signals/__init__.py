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
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from cxpolicy.signals.config import ALL_CLASSES, DEFAULT_SCAN_PATHS, DetectorConfig, PiiSpan, phone_region
from cxpolicy.signals.cues import Candidate, TextView
from cxpolicy.signals.ids import find_at_sign, find_cued, find_tax_bank_ids
from cxpolicy.signals.injection import INDICATOR_WEIGHTS, score_injection, score_normalised
from cxpolicy.signals.normalise import Normalised, digit_view, normalise
from cxpolicy.signals.numeric import find_numeric

__all__ = [
    "ALL_CLASSES",
    "DETECTOR_KEYS",
    "INDICATOR_WEIGHTS",
    "DetectorConfig",
    "PiiSpan",
    "detect",
    "empty_signals",
    "find_candidates",
    "resolve",
    "scan_fields",
    "scan_text",
    "score_injection",
]

_DEFAULT = DetectorConfig()
_INDICATOR_ORDER = (*INDICATOR_WEIGHTS, "model", "classifier")
# The default scan paths other than `payload`, as (root, key) pairs, for scan_fields' fast path.
_DEFAULT_NOTES = tuple(tuple(p.split(".", 1)) for p in DEFAULT_SCAN_PATHS if p != "payload")

# The keys of `signals` the detectors own. A caller's other keys (an upstream fraud score)
# are kept next to them; a caller's value under one of these is replaced, so nobody can
# send `"prompt_injection": {"score": 0}` and have it believed.
DETECTOR_KEYS: frozenset[str] = frozenset({"pii", "pii_spans", "prompt_injection", "truncated", "error"})


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


def _strings(value: Any, path: str, out: list[tuple[str, str]], depth: int, limit: int) -> None:
    """Every non-empty string under `value`, with its path, depth-first in key order."""
    if len(out) >= limit:
        return
    if isinstance(value, str):
        if value:
            out.append((path, value))
    elif depth <= 0:
        return
    elif isinstance(value, Mapping):
        for k, v in value.items():
            if isinstance(k, str):
                _strings(v, f"{path}.{k}", out, depth - 1, limit)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _strings(v, f"{path}[{i}]", out, depth - 1, limit)


def scan_fields(request: Any, config: DetectorConfig | None = None) -> list[tuple[str, str]]:
    """(path, text) for every string `detect` scans in `request`, `payload.text` first.

    `config.scan_paths` names the subtrees (every string under `payload`, plus the free-text
    context fields by default); a path may name one string or an object to walk.
    """
    cfg = config or _DEFAULT
    found: list[tuple[str, str]] = []
    if not isinstance(request, Mapping):
        return found
    payload = request.get("payload")
    if (
        cfg.scan_paths is DEFAULT_SCAN_PATHS
        and type(payload) is dict
        and len(payload) <= 2
        and all(type(v) is not dict and type(v) is not list for v in payload.values())
        and not any(_field(_field(request, root), key) is not None for root, key in _DEFAULT_NOTES)
    ):
        # The common request: a payload of one or two plain fields and no context notes.
        text = payload.get("text")
        head = [("payload.text", text)] if isinstance(text, str) and text else []
        return head + [(f"payload.{k}", v) for k, v in payload.items() if k != "text" and isinstance(v, str) and v]
    for path in cfg.scan_paths:
        node: Any = request
        for part in path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        _strings(node, path, found, cfg.max_field_depth, cfg.max_fields)
    ordered = [f for f in found if f[0] == "payload.text"] + [f for f in found if f[0] != "payload.text"]
    seen: set[str] = set()
    unique: list[tuple[str, str]] = []
    for path, text in ordered:  # "payload" and "payload.text" both reach the same string
        if path not in seen:
            seen.add(path)
            unique.append((path, text))
    return unique


def _merge_injection(into: dict[str, Any], found: Mapping[str, Any]) -> None:
    if found["score"] > into["score"]:
        into["score"] = found["score"]
    if found["indicators"]:
        names = set(into["indicators"]) | set(found["indicators"])
        into["indicators"] = [n for n in _INDICATOR_ORDER if n in names]


def detect(request: Mapping[str, Any], config: DetectorConfig | None = None) -> dict[str, Any]:
    """The detector-owned `signals` for one request: PII spans and the injection score over
    every scanned field (see `scan_fields`).

    Each field is normalised first (`normalise`: invisible characters, odd digits and
    spaces, entities and escapes), and spans are reported in the field's original offsets.
    A span outside `payload.text` names its field under `"field"`. At most
    `config.max_text_chars` characters are scanned over all fields together, so a pasted
    megabyte cannot stall the decision path; `truncated` says when that cut something (a
    rule can escalate on it, since the tail was not looked at). The injection score is the
    highest over the fields. The engine keeps the caller's own `signals` keys next to these
    (every key but DETECTOR_KEYS).
    """
    cfg = config or _DEFAULT
    out = empty_signals()
    try:
        fields = scan_fields(request, cfg)
        if not fields:
            return out
        region = _field(_field(request, "customer"), "region")
        if not isinstance(region, str):
            region = cfg.default_region
        budget = cfg.max_text_chars
        classes: set[str] = set()
        spans: list[dict[str, Any]] = []
        injection = out["prompt_injection"]
        for path, text in fields:
            if budget <= 0:
                out["truncated"] = True
                break
            if len(text) > budget:
                text = text[:budget]
                out["truncated"] = True
            budget -= len(text)
            norm = normalise(text, cfg.max_rewrites)
            view = TextView(norm.text)
            found, exhausted = _scan(norm, region, cfg, view)
            if exhausted or norm.capped:
                out["truncated"] = True
            for c in found:
                classes.add(c.data_class)
                span: dict[str, Any] = {
                    "class": c.data_class,
                    "start": c.start,
                    "end": c.end,
                    "detector": c.detector,
                    "check": c.check,
                }
                if path != "payload.text":
                    span["field"] = path
                spans.append(span)
            if cfg.injection:
                found_pi = score_normalised(text, norm.text, view, cfg.classifier, cfg.uncertain)
                _merge_injection(injection, found_pi)
        out["pii"] = sorted(classes)
        out["pii_spans"] = spans
    except Exception as exc:  # a detector bug must not take the decision down with it
        out["error"] = f"detector failed: {type(exc).__name__}"
    return out


def _scan(
    norm: Normalised, region: str | None, cfg: DetectorConfig, view: TextView | None = None
) -> tuple[list[Candidate], bool]:
    """Resolved candidates of one normalised text, in the original text's offsets (`view`
    is the normalised text's view when the caller already built it), and whether a budget
    (`cfg.max_digit_groups`) stopped the scan early."""
    if view is None:
        view = TextView(norm.text)
    dnorm = digit_view(norm, view.cls, cfg.max_rewrites)
    dview = view if dnorm is norm else TextView(dnorm.text)
    exhausted: list[bool] = [True] if dnorm.capped else []
    found = find_candidates(view, region, cfg, digits=dview, to_base=dnorm.local_span, exhausted=exhausted)
    if not norm.identity or dnorm is not norm:
        mapped: list[Candidate] = []
        for c, numeric in found:
            s, e = (dnorm if numeric else norm).span(c.start, c.end)
            mapped.append(Candidate(c.priority, s, e, c.data_class, c.detector, c.check))
        cands = mapped
    else:
        cands = [c for c, _ in found]
    if len(cands) > cfg.max_candidates:
        cands.sort(key=lambda c: -c.priority)
        del cands[cfg.max_candidates :]
        exhausted.append(True)
    return resolve(cands), bool(exhausted)


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


def find_candidates(
    view: TextView,
    region: str | None,
    cfg: DetectorConfig,
    *,
    digits: TextView | None = None,
    to_base: Callable[[int, int], tuple[int, int]] | None = None,
    exhausted: list[bool] | None = None,
) -> list[tuple[Candidate, bool]]:
    """Every finding of every enabled detector, overlaps included, each with whether it is
    in `digits`' offsets (the numeric identifiers read the digit view when one is given,
    with `to_base` mapping its spans to `view`'s; phone numbers are matched on `view`).
    `exhausted` gets True appended when a budget cut the numeric scan short."""
    out: list[Candidate] = []
    vocab_region = region.strip().upper() if isinstance(region, str) else None
    text, cls = view.text, view.cls
    numeric: list[Candidate] = []
    if b"0" in cls:
        if digits is None or digits is view or to_base is None:
            cut = find_numeric(text, cls, phone_region(vocab_region), cfg, out)
        else:
            phones = (text, to_base, out)
            cut = find_numeric(digits.text, digits.cls, phone_region(vocab_region), cfg, numeric, phones)
        if cut and exhausted is not None:
            exhausted.append(True)
        find_tax_bank_ids(text, cls, cfg, out)
        find_cued(view, vocab_region, cfg, out)
    elif cfg.enabled("mrn") and not cfg.mrn_cues:
        find_cued(view, vocab_region, cfg, out)
    if b"@" in cls:
        find_at_sign(text, cls, cfg, out)
    in_digits = digits is not None and digits is not view
    return [(c, in_digits) for c in numeric] + [(c, False) for c in out]


def scan_text(text: str, *, region: str | None = None, config: DetectorConfig | None = None) -> list[PiiSpan]:
    """Spans of personal data in the whole of `text`, in order, never overlapping.

    The whole text, not a prefix: callers mask with these spans, and `max_text_chars` is a
    latency bound for deciding, not permission to store an unmasked tail. `region` is the
    customer's vocabulary region (IN, US, UK, EU…); it picks the phone-number plan and the
    day/month order of dates. The text is normalised like `detect` does, and spans are in
    `text`'s own offsets.
    """
    cfg = config or _DEFAULT
    if not isinstance(text, str) or not text:
        return []
    region = region if region is not None else cfg.default_region
    if cfg.max_digit_groups is not None or cfg.max_rewrites is not None:
        cfg = replace(cfg, max_digit_groups=None, max_rewrites=None)
    found, _ = _scan(normalise(text), region, cfg)
    return [PiiSpan(c.start, c.end, c.data_class, c.detector, c.check) for c in found]
