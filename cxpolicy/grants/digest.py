"""The canonical request digest a grant is bound to (LANGUAGE.md §9).

Input: a request (plain JSON values). Output: `sha256:` + hex of the RFC 8785 (JCS) canonical
JSON of the request without `grants`, `signals` and the fields only the engine may set
(`ENGINE_ONLY`). Two requests that differ in any field a rule could read have different
digests; the same request written with other key order or number spelling (`1.0` vs `1`)
has the same one, which is why a canonical form and not the caller's bytes is hashed.

Encoding is the `rfc8785` package (ECMAScript number formatting, UTF-16 key order). A value
RFC 8785 cannot say exactly (NaN, an integer beyond ±2^53 that would round to a neighbour)
raises `DigestError`: a request that cannot be canonicalised can never match a grant.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["ENGINE_ONLY", "EXCLUDED_TOP_LEVEL", "DigestError", "canonical_request", "request_digest", "strip_request"]

EXCLUDED_TOP_LEVEL: frozenset[str] = frozenset({"grants", "signals", "subject"})
"""Top-level fields outside the digest: the proofs themselves, what detectors compute, and
what the service sets from authenticated context (`subject.*`, LANGUAGE.md §10) — an OTP
service asking for a grant sends the request as the agent wrote it, without those."""

ENGINE_ONLY: tuple[tuple[str, str], ...] = (("context", "otp_verified"),)
"""Fields only a valid grant may set (`context.otp_verified`): a caller's value is dropped."""


class DigestError(ValueError):
    """The request holds a value RFC 8785 cannot encode exactly; no grant can match it."""


def strip_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """The request as a grant names it: without grants, signals and engine-only fields.

    Never mutates the caller's objects (only the dicts on an engine-only path are copied).
    """
    out = {k: v for k, v in request.items() if k not in EXCLUDED_TOP_LEVEL}
    for parent, name in ENGINE_ONLY:
        sub = out.get(parent)
        if isinstance(sub, dict) and name in sub:
            out[parent] = {k: v for k, v in sub.items() if k != name}
    return out


_SAFE_INT = 2**53 - 1


def _orjson_is_jcs(value: Any, depth: int = 0) -> bool:
    """Whether orjson (sorted keys) writes exactly RFC 8785 for `value`: no floats (JCS spells
    `1.0` as `1` and uses ECMAScript exponents), integers within ±(2^53 - 1), ASCII keys (so
    orjson's key order equals JCS's UTF-16 order). Strings are escaped identically (only the
    quote, the backslash and control characters, as lowercase u00xx escapes);
    tests/grants/test_tokens.py holds the two encoders equal on generated values."""
    t = type(value)
    if t is str or t is bool or value is None:
        return True
    if t is int:
        return bool(-_SAFE_INT <= value <= _SAFE_INT)
    if depth > 64:
        return False
    if t is dict:
        for k, v in value.items():
            if type(k) is not str or not k.isascii() or not _orjson_is_jcs(v, depth + 1):
                return False
        return True
    if t is list:
        return all(_orjson_is_jcs(v, depth + 1) for v in value)
    return False


def canonical_request(request: Mapping[str, Any]) -> bytes:
    """RFC 8785 bytes of the stripped request; `DigestError` when it cannot be encoded exactly.

    The common request (strings, small integers, ASCII keys) is written by orjson, ~5x faster
    than the pure-Python `rfc8785` encoder, which writes everything else (floats above all)."""
    import rfc8785

    stripped = strip_request(request)
    if _orjson_is_jcs(stripped):
        try:
            return orjson.dumps(stripped, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # e.g. a lone surrogate: let rfc8785 report it
            pass
    try:
        return rfc8785.dumps(stripped)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError) as exc:
        raise DigestError(f"the request cannot be canonicalised (RFC 8785): {exc}") from exc


def request_digest(request: Mapping[str, Any]) -> str:
    """`sha256:<hex>` of `canonical_request(request)`; raises `DigestError`."""
    return "sha256:" + hashlib.sha256(canonical_request(request)).hexdigest()
