"""Detector settings, and the span type every detector reports.

Settings live in one frozen object so that a policy service can build it once at start-up
and share it between threads; compiled MRN patterns are cached per pattern tuple for the
same reason (compiling on every request would cost more than the scan).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

__all__ = [
    "ALL_CLASSES",
    "DEFAULT_MRN_CUES",
    "DEFAULT_MRN_PATTERNS",
    "DEFAULT_SCAN_PATHS",
    "DetectorConfig",
    "PiiSpan",
    "compiled_mrn_patterns",
    "phone_region",
]

# Every data class a detector can report, in the REGULATIONS.md vocabulary.
ALL_CLASSES: frozenset[str] = frozenset(
    {
        "card_pan",
        "card_cvv",
        "otp_code",
        "aadhaar",
        "aadhaar_vid",
        "pan_in",
        "gstin",
        "ifsc",
        "upi_vpa",
        "iban",
        "us_ssn",
        "phone",
        "email",
        "dob",
        "mrn",
        "ip_address",
    }
)

# Hospitals format MRNs their own way, so these defaults only catch the labelled forms
# ("MRN: 00123456", "medical record no. AB-1234567"); deployments add their own shapes.
# Each pattern's group 1 (or the whole match when it has no group) is the span reported.
DEFAULT_MRN_PATTERNS: tuple[str, ...] = (
    r"(?i)\bMRN\b[ \t]{0,3}(?:no\.?|number|#)?[ \t]{0,3}[:#\-]?[ \t]{0,3}"
    r"([A-Z]{0,3}-?[0-9]{5,12})\b",
    r"(?i)\bmedical[ \t]record[ \t](?:no\.?|number|#)[ \t]{0,3}[:#\-]?[ \t]{0,3}"
    r"([A-Z]{0,3}-?[0-9]{5,12})\b",
)

# The MRN patterns run only when one of these lower-case substrings is in the text; an empty
# tuple runs them on every text (for patterns with no label word).
DEFAULT_MRN_CUES: tuple[str, ...] = ("mrn", "medical record")

# Where `detect` looks: every string under `payload` (text, body, html, subject, attachments'
# text...) and the free-text fields callers put next to it.
DEFAULT_SCAN_PATHS: tuple[str, ...] = (
    "payload",
    "context.note",
    "context.notes",
    "context.comment",
    "context.description",
    "customer.notes",
    "customer.note",
)

# Vocabulary regions that are not ISO 3166 countries: phonenumbers cannot parse a national
# number for them, so only numbers written with a leading + are reported there.
_REGION_ALIASES = {"UK": "GB", "EU": None, "EEA": None, "GLOBAL": None}


def phone_region(region: str | None) -> str | None:
    """The phonenumbers region for a vocabulary region (one region only: scanning under many
    regions is what makes phone matching over-report)."""
    if not region or not isinstance(region, str):
        return None
    upper = region.strip().upper()
    if upper in _REGION_ALIASES:
        return _REGION_ALIASES[upper]
    return upper if len(upper) == 2 and upper.isalpha() else None


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """What to scan for and how far.

    max_text_chars bounds the work `detect` does per request (a 1 MB paste must not stall the
    decision path); `scan_text`, which masks, ignores it because masking a prefix would leak
    the rest. mrn_patterns are the deployment's MRN shapes (group 1, or the whole match, is
    the span) and run only when one of mrn_cues is in the text; patterns are the caller's
    own, so keeping them linear-time is the caller's job. default_region is used when the
    request has no customer.region. classes limits which data classes are reported (None:
    all). context_chars is how far back a cue word ("card", "order no") may sit from the
    value it qualifies. injection turns the prompt-injection score off. scan_paths are the
    request subtrees whose strings are scanned (every string under each, at most max_fields
    strings max_field_depth levels deep): PII in `payload.body` or `context.note` leaks as
    surely as in `payload.text`. max_candidates caps the findings one text may produce
    before overlaps are settled (strongest kept), so a hostile text costs a bounded amount.
    max_digit_groups and max_rewrites bound what `detect` reads of one text (digit groups
    classified, normalisation rewrites): past them the rest is not read and `truncated` is
    set, so 64 KB of digits or entities costs milliseconds; `scan_text` (masking) ignores
    both, since masking part of a text would store the rest unmasked. classifier is an
    optional heavier injection model the deployment already runs (normalised text in,
    probability out); it is called only when the cheap score falls inside `uncertain`, and
    its probability then replaces that score (a classifier that raises is ignored).
    """

    max_text_chars: int = 64 * 1024
    mrn_patterns: tuple[str, ...] = DEFAULT_MRN_PATTERNS
    mrn_cues: tuple[str, ...] = DEFAULT_MRN_CUES
    default_region: str | None = None
    classes: frozenset[str] | None = None
    context_chars: int = 32
    injection: bool = True
    scan_paths: tuple[str, ...] = DEFAULT_SCAN_PATHS
    max_fields: int = 256
    max_field_depth: int = 8
    max_candidates: int = 4096
    max_digit_groups: int | None = 128
    max_rewrites: int | None = 256
    classifier: Callable[[str], float] | None = None
    uncertain: tuple[float, float] = (0.2, 0.8)

    def enabled(self, data_class: str) -> bool:
        return self.classes is None or data_class in self.classes


@lru_cache(maxsize=64)
def compiled_mrn_patterns(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


@dataclass(frozen=True, slots=True, order=True)
class PiiSpan:
    """Where a value is, never the value: spans travel into traces and audit records, so
    they must be safe to log."""

    start: int
    end: int
    data_class: str = field(compare=False)
    detector: str = field(compare=False)
    check: str = field(compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "class": self.data_class,
            "start": self.start,
            "end": self.end,
            "detector": self.detector,
            "check": self.check,
        }
