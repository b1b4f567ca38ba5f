"""Masking text per a decision's redact list: `full`, `last4`, `token`.

A `redact` decision tells the agent which data classes to hide and how; this module does the
hiding, so every caller masks the same way. The spans come from the detectors
(`cxpolicy.signals.scan_text`), re-run over the exact text being masked: spans computed for
another string (or for a prefix, as `detect` does on long texts) would leave values behind.

Styles (strictest wins when rules disagree; the engine has already combined them):

- `full`: the value becomes `[REDACTED:<class>]`.
- `last4`: letters and digits become `X` except the last four, separators kept
  (`XXXX XXXX XXXX 1111`); with `keep_bin` a card PAN also keeps its first six digits
  (PCI DSS 3.4.1: at most BIN and last four). Values that are secrets in full (CVV, PIN, OTP,
  credentials) and values too short to hide anything behind four characters are masked as
  `full` instead: "last four" of a three-digit CVV is the CVV.
- `token`: `tok_<class>_<24 hex>`, an HMAC-SHA256 of the normalised value under a key, so
  the same card gives the same token across messages (joins and de-duplication keep
  working) and nobody without the key can recompute it. An unkeyed hash of a card number
  can be reversed by enumerating the ~10^9 numbers of one BIN, so without a key this
  refuses to tokenise (`RedactionKeyError`) rather than fall back to one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cxpolicy.engine.decision import Decision, Redaction
from cxpolicy.kinds import Style
from cxpolicy.signals import ALL_CLASSES, DetectorConfig, PiiSpan, scan_text

__all__ = [
    "KEY_ENV",
    "MIN_KEY_BYTES",
    "RedactionKeyError",
    "apply",
    "mask_text",
    "mask_value",
    "styles_from",
    "token_for",
    "unmaskable",
]

KEY_ENV = "CXPOLICY_TOKEN_KEY"
# A key shorter than this is a password, not a key; HMAC with it is guessable offline.
MIN_KEY_BYTES = 16
_TOKEN_HEX = 24  # 96 bits: no collisions in practice, short enough to read in a transcript

# Shown in full even under `last4`: these are secrets, not identifiers (PCI DSS 3.3.x).
_SECRET_CLASSES = frozenset({"card_cvv", "card_pin", "card_track", "otp_code", "credential"})
# Classes whose value is a number however it is written: tokens ignore spaces and dashes.
_DIGIT_CLASSES = frozenset({"card_pan", "aadhaar", "aadhaar_vid", "us_ssn", "otp_code", "card_cvv"})
_CASELESS_CLASSES = frozenset({"email", "upi_vpa"})


class RedactionKeyError(ValueError):
    """Tokenising was asked for without a usable key."""


def resolve_key(key: bytes | str | None) -> bytes:
    """The tokenisation key: the argument, else the environment; never a default."""
    if key is None:
        env = os.environ.get(KEY_ENV)
        if not env:
            raise RedactionKeyError(
                f"the `token` style needs a key: pass key=... or set {KEY_ENV}"
                " (an unkeyed hash of a card number can be brute-forced)"
            )
        key = env
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if len(raw) < MIN_KEY_BYTES:
        raise RedactionKeyError(f"the token key is {len(raw)} bytes; use at least {MIN_KEY_BYTES} random bytes")
    return raw


def _normalise(data_class: str, value: str) -> str:
    """One spelling per value, so "4111 1111 1111 1111" and "4111-1111-1111-1111" share a token."""
    if data_class in _DIGIT_CLASSES:
        return "".join(ch for ch in value if ch.isdigit())
    if data_class == "phone":
        digits = "".join(ch for ch in value if ch.isdigit())
        return "+" + digits if value.lstrip().startswith("+") else digits
    if data_class in _CASELESS_CLASSES:
        return value.strip().lower()
    if data_class in ("pan_in", "gstin", "ifsc", "iban"):
        return "".join(value.split()).upper()
    return value.strip()


def token_for(data_class: str, value: str, key: bytes) -> str:
    """`tok_<class>_<hex>`: keyed, deterministic, bound to the class."""
    message = f"{data_class}\x00{_normalise(data_class, value)}".encode()
    digest = hmac.new(key, message, hashlib.sha256).hexdigest()[:_TOKEN_HEX]
    return f"tok_{data_class}_{digest}"


def _last4(value: str, data_class: str, keep_bin: bool) -> str:
    alnum = [i for i, ch in enumerate(value) if ch.isalnum()]
    if len(alnum) <= 8 and data_class != "card_pan":
        # Too short for "last four" to hide anything worth hiding.
        return f"[REDACTED:{data_class}]"
    keep = set(alnum[-4:])
    if keep_bin and data_class == "card_pan":
        keep.update(alnum[:6])
    return "".join(ch if (i in keep or not ch.isalnum()) else "X" for i, ch in enumerate(value))


def mask_value(
    value: str,
    data_class: str,
    style: Style | str,
    key: bytes | None = None,
    *,
    keep_bin: bool = False,
) -> str:
    """The replacement for one value. `key` must already be resolved for `token`."""
    style = Style(style)
    if style is Style.TOKEN:
        if key is None:
            raise RedactionKeyError("the `token` style needs a key")
        return token_for(data_class, value, key)
    if style is Style.LAST4 and data_class not in _SECRET_CLASSES:
        return _last4(value, data_class, keep_bin)
    return f"[REDACTED:{data_class}]"


def _span_fields(span: PiiSpan | Mapping[str, Any]) -> tuple[int, int, str]:
    if isinstance(span, PiiSpan):
        return span.start, span.end, span.data_class
    return int(span["start"]), int(span["end"]), str(span.get("class") or span.get("data_class"))


def mask_text(
    text: str,
    spans: Iterable[PiiSpan | Mapping[str, Any]],
    style_by_class: Mapping[str, Style | str],
    key: bytes | str | None = None,
    *,
    keep_bin: bool = False,
) -> str:
    """`text` with each span whose class has a style replaced by its mask.

    Spans are `scan_text` results or `detect`'s `pii_spans` dicts for this same text; spans
    of classes without a style are left as they are (the policy did not ask to hide them).
    Overlapping spans (only possible when spans from different scans are mixed) are merged
    into the first one's mask, so no character of either value survives.
    """
    styles = {c: Style(s) for c, s in style_by_class.items()}
    resolved = resolve_key(key) if Style.TOKEN in styles.values() else None
    chosen = sorted(
        (f for f in map(_span_fields, spans) if f[2] in styles and 0 <= f[0] < f[1]),
        key=lambda f: (f[0], -f[1]),
    )
    if not chosen:
        return text
    parts: list[str] = []
    pos = 0
    for start, end, data_class in chosen:
        end = min(end, len(text))
        if start < pos:
            # Overlap with the previous span: hide the rest of this one too.
            if end > pos:
                parts.append(f"[REDACTED:{data_class}]")
                pos = end
            continue
        parts.append(text[pos:start])
        parts.append(mask_value(text[start:end], data_class, styles[data_class], resolved, keep_bin=keep_bin))
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


def styles_from(decision: Decision | Iterable[Redaction]) -> dict[str, Style]:
    """Class -> style from a decision (or its redact list); the strictest style per class."""
    items = decision.redact if isinstance(decision, Decision) else decision
    out: dict[str, Style] = {}
    for r in items:
        style = Style(r.style)
        current = out.get(r.data_class)
        if current is None or style.strictness > current.strictness:
            out[r.data_class] = style
    return out


def unmaskable(decision: Decision | Iterable[Redaction]) -> list[str]:
    """Classes the decision asks to hide that no detector finds in free text (a name, an
    address): `apply` cannot mask those, so a caller showing text should say so."""
    return sorted(c for c in styles_from(decision) if c not in ALL_CLASSES)


def apply(
    text_or_payload: str | Mapping[str, Any],
    decision: Decision | Iterable[Redaction],
    key: bytes | str | None = None,
    *,
    region: str | None = None,
    keep_bin: bool = False,
    config: DetectorConfig | None = None,
) -> Any:
    """Mask a text, a payload (every string in it), or a request (every string `detect`
    scans: all of `payload` and the `scan_paths` context fields) per `decision`.

    Returns the same kind of thing it was given; mappings are copied, never changed in
    place. `region` picks the phone-number plan (a request's `customer.region` is used when
    none is given). With a `token` style and no key (argument or `CXPOLICY_TOKEN_KEY`)
    this raises `RedactionKeyError` before looking at the text, so a misconfiguration shows
    up on the first call rather than on the first card number.
    """
    styles = styles_from(decision)
    resolved = resolve_key(key) if Style.TOKEN in styles.values() else None

    def mask(text: str, where: str | None) -> str:
        if not styles or not text:
            return text
        spans = scan_text(text, region=where, config=config)
        return mask_text(text, spans, styles, resolved, keep_bin=keep_bin)

    if isinstance(text_or_payload, str):
        return mask(text_or_payload, region)
    if not isinstance(text_or_payload, Mapping):
        raise TypeError(f"apply() masks a str or a mapping, not {type(text_or_payload).__name__}")
    if "text" in text_or_payload or not isinstance(text_or_payload.get("payload"), Mapping):
        # A payload: every string in it, as `detect` scans every string of `payload`.
        return _mask_tree(text_or_payload, lambda t: mask(t, region), _MAX_DEPTH)
    customer = text_or_payload.get("customer")
    where = region
    if where is None and isinstance(customer, Mapping):
        found = customer.get("region")
        where = found if isinstance(found, str) else None
    out: dict[str, Any] = dict(text_or_payload)
    for path in (config or DetectorConfig()).scan_paths:
        _mask_path(out, path.split("."), lambda t: mask(t, where))
    return out


_MAX_DEPTH = 8


def _mask_tree(value: Any, mask: Callable[[str], str], depth: int) -> Any:
    """A copy of `value` with every string masked (mappings and lists copied, not changed)."""
    if isinstance(value, str):
        return mask(value)
    if depth <= 0:
        return value
    if isinstance(value, Mapping):
        return {k: _mask_tree(v, mask, depth - 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_tree(v, mask, depth - 1) for v in value]
    return value


def _mask_path(node: dict[str, Any], parts: list[str], mask: Callable[[str], str]) -> None:
    """Mask the subtree at `parts` under `node` (copying each mapping on the way down)."""
    head, rest = parts[0], parts[1:]
    child = node.get(head)
    if child is None:
        return
    if not rest:
        node[head] = _mask_tree(child, mask, _MAX_DEPTH)
    elif isinstance(child, Mapping):
        copy = dict(child)
        node[head] = copy
        _mask_path(copy, rest, mask)
