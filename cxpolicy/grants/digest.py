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

__all__ = ["ENGINE_ONLY", "EXCLUDED_TOP_LEVEL", "DigestError", "canonical_request", "request_digest", "strip_request"]

EXCLUDED_TOP_LEVEL: frozenset[str] = frozenset({"grants", "signals"})
"""Top-level fields outside the digest: the proofs themselves, and what detectors compute."""

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


def canonical_request(request: Mapping[str, Any]) -> bytes:
    """RFC 8785 bytes of the stripped request; `DigestError` when it cannot be encoded exactly."""
    import rfc8785

    try:
        return rfc8785.dumps(strip_request(request))
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError) as exc:
        raise DigestError(f"the request cannot be canonicalised (RFC 8785): {exc}") from exc


def request_digest(request: Mapping[str, Any]) -> str:
    """`sha256:<hex>` of `canonical_request(request)`; raises `DigestError`."""
    return "sha256:" + hashlib.sha256(canonical_request(request)).hexdigest()
