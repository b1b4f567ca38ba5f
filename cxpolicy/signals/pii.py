"""Personal-data scan: runs the detectors and settles overlapping findings.

The detectors are gated by what the text contains (no digit, no numeric identifier; no `@`,
no email), so the common short message without personal data costs a couple of regex
passes. Several detectors may read the same characters ("9876543210@ybl" holds a phone
number inside a VPA; a 16-digit number can pass both Luhn and Verhoeff); the strongest
reading wins, and the rest are dropped, so a character belongs to at most one span and a
masker never has to nest replacements.
"""

from __future__ import annotations

from bisect import bisect_right

from cxpolicy.signals.config import DetectorConfig, PiiSpan, phone_region
from cxpolicy.signals.cues import Candidate, TextView
from cxpolicy.signals.ids import find_at_sign, find_cued, find_tax_bank_ids
from cxpolicy.signals.numeric import find_numeric

__all__ = ["find_candidates", "resolve", "scan_text"]

_DEFAULT = DetectorConfig()


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
