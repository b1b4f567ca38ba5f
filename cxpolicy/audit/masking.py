"""Mask a request before it is stored: the audit log must never hold a raw PAN, CVV, Aadhaar
or PHI (PCI DSS 3.3/3.4, HIPAA 164.312, DPDP s.8(5)).

Input: a request and its decision. Output: a copy safe to store (masked values).

An audit log is kept for years and read by many people, so it must be safe even when the
request was not: a PAN pasted into a free-text field, a CVV under an unexpected key. Three
independent nets, any one of which masks a value:

(a) keys that name sensitive data (`card_number`, `cvv`, `aadhaar`, `diagnosis`, ...): every
    string or number under them is replaced, whatever it looks like;
(b) shapes: runs of 12 or more digits (cards are 12–19, Aadhaar 12, its VID 16), US SSNs,
    and 3–6 digit values written right after a word like "cvv", "pin" or "otp";
(c) the detectors of `cxpolicy.signals` when that package is importable: every span they
    report in a string is masked (checksummed PANs, Aadhaar, phone numbers, ...).

Booleans and null are never masked (`context.otp_verified` stays replayable), nor are keys
that describe sensitive data rather than hold it (`card_type`, `pan_present`, `otp_attempts`).
A masked value is replaced by `[MASKED:<why>]` so a reader sees that something was there.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["MASK", "mask_request", "mask_text", "sensitive_key"]

MASK = "[MASKED:{}]"

# Tokens of a key (split on `_`, `-`, `.`, spaces and camelCase) that mark its value as
# sensitive data. Matching is per token, so `pin` hits `card_pin` but not `pincode`.
_SENSITIVE_TOKENS = frozenset(
    {
        # cardholder data and sensitive authentication data (PCI DSS)
        "pan", "card", "cardnumber", "ccnumber", "cc", "cvv", "cvv2", "cvc", "cvc2", "cvn",
        "csc", "pin", "track", "track1", "track2", "expiry", "cardholder",
        # credentials
        "otp", "password", "passwd", "passcode", "secret", "credential", "credentials",
        # national and account identifiers
        "aadhaar", "aadhar", "vid", "ssn", "iban", "upi", "vpa", "ifsc", "gstin",
        # PHI (HIPAA Safe Harbor identifiers and health information)
        "mrn", "diagnosis", "diagnoses", "medication", "medications", "prescription",
        "lab", "dob", "birthdate", "patient", "icd", "icd10", "beneficiary",
    }
)  # fmt: skip
_SENSITIVE_KEYS = frozenset(
    {"account_number", "accountnumber", "full_name", "first_name", "last_name", "health_plan_id"}
)
# A last token like these means the key describes sensitive data instead of holding it.
_DESCRIPTIVE_SUFFIXES = frozenset(
    {
        "verified", "required", "attempts", "count", "status", "enabled", "present", "type",
        "brand", "network", "last4", "masked", "valid", "checked", "sent", "ok", "class",
        "classes", "style", "kind",
    }
)  # fmt: skip

_KEY_SPLIT = re.compile(r"[^a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

# 12+ digits, optionally grouped by single spaces or dashes: 4111 1111 1111 1111, 2345-6789-0123.
_LONG_DIGITS = re.compile(r"(?<!\d)\d(?:[ -]?\d){11,}(?!\d)")
_THREE_DIGITS = re.compile(r"\d\D{0,3}\d\D{0,3}\d")
_US_SSN = re.compile(r"(?<!\d)\d{3}[ -]\d{2}[ -]\d{4}(?!\d)")
# "cvv 123", "CVV: 1234", "pin is 4321", "otp - 558812": mask the digits after the word.
_LABELLED_CODE = re.compile(
    r"(?i)\b(cvv2?|cvc2?|cvn|csc|security\s+code|pin|otp|passcode)\b(\W{0,4}(?:is\W{0,3})?)(\d{3,6})(?!\d)"
)

Span = tuple[int, int, str]
Scanner = Callable[[str], list[Span]]
RegionScanner = Callable[[str, str | None], list[Span]]


def sensitive_key(key: str) -> bool:
    """True when a key names data that must be masked whole (`cardNumber`, `cvv`, `dob`)."""
    return _key_reason(key) is not None


@functools.lru_cache(maxsize=4096)
def _key_reason(key: str) -> str | None:
    """The masking reason for a sensitive key, else None. Cached: requests repeat their keys,
    and a key is a name, never a value (values are not cached)."""
    lowered = key.lower()
    if lowered in _SENSITIVE_KEYS:
        return lowered
    tokens = [t for t in _KEY_SPLIT.split(_CAMEL.sub("_", key).lower()) if t]
    if not tokens or tokens[-1] in _DESCRIPTIVE_SUFFIXES:
        return None
    return next((t for t in tokens if t in _SENSITIVE_TOKENS), None)


def _load_scanner() -> RegionScanner | None:
    """`cxpolicy.signals.scan_text` adapted to (start, end, class) spans, or None.

    The detectors are written separately; any failure to import them (missing, half-written)
    leaves nets (a) and (b), which alone cover PAN, CVV and Aadhaar shapes.
    """
    try:
        signals = importlib.import_module("cxpolicy.signals")
    except Exception:
        return None
    scan = getattr(signals, "scan_text", None)
    if not callable(scan):
        return None

    def scanner(text: str, region: str | None = None) -> list[Span]:
        spans: list[Span] = []
        found = scan(text, region=region) if region else scan(text)
        for item in found:
            if isinstance(item, Mapping):
                start, end = item.get("start"), item.get("end")
                cls = item.get("data_class") or item.get("class") or "pii"
            else:
                start, end = getattr(item, "start", None), getattr(item, "end", None)
                cls = getattr(item, "data_class", None) or getattr(item, "cls", None) or "pii"
            if isinstance(start, int) and isinstance(end, int) and 0 <= start < end:
                spans.append((start, min(end, len(text)), str(cls)))
        return spans

    return scanner


_scanner: RegionScanner | None = None
_scanner_loaded = False


def _get_scanner() -> RegionScanner | None:
    global _scanner, _scanner_loaded
    if not _scanner_loaded:
        _scanner = _load_scanner()
        _scanner_loaded = True
    return _scanner


def _worth_scanning(text: str) -> bool:
    """Detectors look for identifiers and prose; a short bare token (`refund.execute`) has
    neither, and skipping it keeps masking cheap on the hot path."""
    if len(text) < 6:
        return False
    return any(c.isdigit() or c.isspace() or c == "@" for c in text)


def mask_text(text: str, *, scanner: Scanner | None = None, use_signals: bool = True) -> str:
    """Mask sensitive shapes inside free text, leaving the rest readable."""
    spans: list[Span] = []
    scan: Scanner | None = scanner
    if scan is None and use_signals:
        found = _get_scanner()
        scan = (lambda t: found(t, None)) if found is not None else None
    if scan is not None and _worth_scanning(text):
        # A detector bug must not stop the record; nets (a) and (b) still run.
        with contextlib.suppress(Exception):
            spans.extend(scan(text))
    if _THREE_DIGITS.search(text) is not None:  # every shape below has at least 3 digits
        spans.extend(_shape_spans(text))
    if not spans:
        return text
    return _apply_spans(text, spans)


def _shape_spans(text: str) -> list[Span]:
    """Net (b) over the text as the detectors read it: the same normalisation (no zero-width
    or soft hyphens, every script's digits, "4111.1111…" grouped like "4111 1111…"), with
    spans mapped back to `text`. Without the detectors' package, the raw text is read."""
    view, to_orig = text, None
    with contextlib.suppress(Exception):
        norm = importlib.import_module("cxpolicy.signals.normalise")
        digits = norm.digit_view(norm.normalise(text))
        view, to_orig = digits.text, digits.span
    found = [(m.start(), m.end(), "digits") for m in _LONG_DIGITS.finditer(view)]
    found.extend((m.start(), m.end(), "us_ssn") for m in _US_SSN.finditer(view))
    found.extend((m.start(3), m.end(3), "code") for m in _LABELLED_CODE.finditer(view))
    if to_orig is None or view == text:
        return found
    out: list[Span] = []
    for start, end, cls in found:
        s, e = to_orig(start, end)
        out.append((s, e, cls))
    return out


def _apply_spans(text: str, spans: list[Span]) -> str:
    """Replace the union of possibly overlapping spans; the first class seen names a merge."""
    spans.sort(key=lambda s: (s[0], -s[1]))
    merged: list[list[Any]] = []
    for start, end, cls in spans:
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end, cls])
    out: list[str] = []
    pos = 0
    for start, end, cls in merged:
        out.append(text[pos:start])
        out.append(MASK.format(cls))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _mask_number(value: int | float) -> int | float | str:
    digits = sum(c.isdigit() for c in repr(value))
    return MASK.format("digits") if digits >= 12 else value


def mask_request(request: Mapping[str, Any], *, scanner: Scanner | None = None) -> Any:
    """A deep copy of `request` with every sensitive value masked (see the module docstring).

    `scanner` replaces the `cxpolicy.signals` detectors (tests use it); by default they are
    used when importable.
    """
    scan = scanner
    if scan is None and (found := _get_scanner()) is not None:
        customer = request.get("customer")
        region = customer.get("region") if isinstance(customer, Mapping) else None
        # The region picks phone-number plans and date orders in the detectors.
        where = region if isinstance(region, str) else None
        scan = lambda t: found(t, where)  # noqa: E731
    return _mask(request, None, scan)


def _mask(value: Any, under: str | None, scan: Scanner | None) -> Any:
    """`under` is the reason when an enclosing key named sensitive data, else None.
    Exact-type checks first: this runs on every leaf of every request on the hot path."""
    kind = type(value)
    if kind is str:
        if under is not None:
            return MASK.format(under)
        return mask_text(value, scanner=scan, use_signals=False)
    if kind is bool or value is None:
        return value
    if kind is int or kind is float:
        return MASK.format(under) if under is not None else _mask_number(value)
    if kind is dict or isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = str(k)
            name = mask_text(key, use_signals=False) if _THREE_DIGITS.search(key) else key
            out[name] = _mask(v, under or _key_reason(key), scan)
        return out
    if kind is list or isinstance(value, (list, tuple)):
        return [_mask(v, under, scan) for v in value]
    if under is not None:
        return MASK.format(under)
    if isinstance(value, (int, float)):
        return _mask_number(value)
    # Anything else cannot come from JSON; store its masked text form rather than fail.
    return mask_text(str(value), scanner=scan, use_signals=False)
