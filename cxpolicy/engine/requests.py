
"""Reading requests from the outside world (CLI files, stdin, HTTP bodies) safely.

Input: bytes or text from a file, stdin or an HTTP body. Output: JSON values (`RequestLine`s),
or `BadRequest` saying why not.

JSON is parsed strictly: duplicate keys, NaN/Infinity (also as `1e999`), integers outside the
64-bit range and lone UTF-16 surrogates (`"\\ud800"`) are rejected, because each lets two
readers of the same bytes see different requests (a duplicate key is a classic way to smuggle
a second value past a validator; a lone surrogate is not a Unicode character, and strict
encoders such as orjson, and so the audit log, refuse to write it or a wider integer back). The
size, the nesting depth and the items per container are bounded (`cxpolicy.limits`), which
is what bounds the work of every later stage. A rejected input becomes an `escalate`
decision with a clear error (`BadRequest.kind`: `request`, or `limit` for a resource limit),
never an exception.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cxpolicy.kinds import ErrorKind
from cxpolicy.limits import MAX_CONTAINER_ITEMS, MAX_DEPTH, MAX_REQUEST_BYTES

__all__ = [
    "MAX_CONTAINER_ITEMS",
    "MAX_DEPTH",
    "MAX_REQUEST_BYTES",
    "BadRequest",
    "RequestLine",
    "iter_requests",
    "parse_request",
]

# A surrogate code point in decoded text is always a lone one: JSON's escaped pairs decode to
# one astral character. Valid UTF-8 cannot encode a surrogate, but json.loads decodes bytes
# with "surrogatepass", so the 3-byte form (ED A0..BF xx) gets through unless looked for.
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
_INF = float("inf")
_INT_MIN = -(2**63)
_UINT_MAX = 2**64 - 1


class BadRequest(ValueError):
    """The bytes are not an acceptable JSON document; the message says why.

    `kind` is `limit` when a resource limit was exceeded (size, depth, items), else `request`:
    the decision's error kind, so a caller can tell an oversized input from a malformed one.
    """

    def __init__(self, message: str, kind: ErrorKind = ErrorKind.REQUEST) -> None:
        super().__init__(message)
        self.kind = kind


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise BadRequest(f"duplicate key `{k}` in a JSON object")
        out[k] = v
    return out


def _no_constants(name: str) -> Any:
    raise BadRequest(f"`{name}` is not valid JSON (numbers must be finite)")


def _finite_float(text: str) -> float:
    # `1e999` is valid JSON syntax, but Python reads it as infinity: refused like `Infinity`.
    value = float(text)
    if value in (_INF, -_INF):
        raise BadRequest(f"number `{text[:40]}` is too large to be represented (numbers must be finite)")
    return value


def _int64(text: str) -> int:
    # CEL integers are 64-bit, and the audit log's canonical JSON refuses anything wider. The
    # length test comes first: int() of more than 4,300 digits raises ValueError (and costs
    # quadratic time below that), which json.loads would let escape.
    value = int(text) if len(text) <= 21 else _UINT_MAX + 1
    if not _INT_MIN <= value <= _UINT_MAX:
        raise BadRequest(f"integer `{text[:40]}` is outside the 64-bit range")
    return value


def _check_shape(value: Any, max_depth: int, max_items: int, surrogates: bool) -> None:
    """Depth, items per container and (when `surrogates`) lone surrogates, in one walk.

    Iterative (no recursion-limit games) and stopping at the first violation. The top-level
    container is exempt from `max_items`: it is the request object itself, or a batch whose
    length the service checks against its own limit.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if d > max_depth:
            raise BadRequest(f"request nests deeper than {max_depth} levels", ErrorKind.LIMIT)
        if isinstance(v, dict):
            if d > 1 and len(v) > max_items:
                message = f"an object in the request has {len(v)} members; the limit is {max_items}"
                raise BadRequest(message, ErrorKind.LIMIT)
            if surrogates and any(_SURROGATE.search(k) for k in v):
                raise _lone_surrogate()
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            if d > 1 and len(v) > max_items:
                raise BadRequest(f"an array in the request has {len(v)} items; the limit is {max_items}",
                                 ErrorKind.LIMIT)
            stack.extend((x, d + 1) for x in v)
        elif surrogates and isinstance(v, str) and _SURROGATE.search(v):
            raise _lone_surrogate()


def _lone_surrogate() -> BadRequest:
    return BadRequest("request contains a lone UTF-16 surrogate (such as `\\ud800`), which is not a Unicode character")


def parse_request(
    data: str | bytes,
    *,
    max_bytes: int = MAX_REQUEST_BYTES,
    max_depth: int = MAX_DEPTH,
    max_items: int = MAX_CONTAINER_ITEMS,
) -> Any:
    """One JSON value, strictly. Raises BadRequest with a message fit for a decision's errors."""
    if isinstance(data, str):
        # Text read with errors="surrogateescape" (a CLI's stdin) may hold lone surrogates;
        # they are counted, then refused, rather than crashing the encoder.
        raw = data.encode("utf-8", "surrogatepass")
        surrogates = _SURROGATE.search(data) is not None or _SURROGATE_ESCAPE.search(raw) is not None
    else:
        raw = data
        surrogates = _SURROGATE_ESCAPE.search(data) is not None
    if len(raw) > max_bytes:
        raise BadRequest(f"request is {len(raw)} bytes; the limit is {max_bytes}", ErrorKind.LIMIT)
    try:
        value = json.loads(
            data,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constants,
            parse_float=_finite_float,
            parse_int=_int64,
        )
    except BadRequest:
        raise
    except RecursionError:
        raise BadRequest(f"request nests deeper than {max_depth} levels", ErrorKind.LIMIT) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"not valid JSON: {exc}") from None
    _check_shape(value, max_depth, max_items, surrogates)
    return value


@dataclass(frozen=True, slots=True)
class RequestLine:
    line: int
    value: Any
    error: str | None
    kind: ErrorKind = ErrorKind.REQUEST  # `request`, or `limit` for a resource limit


def _is_complete_json(line: str) -> bool:
    """Whether one line is a whole JSON value on its own (then the input is JSON-lines)."""
    try:
        json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        return False
    return True


def iter_requests(text: str) -> Iterator[RequestLine]:
    """One JSON document (possibly pretty-printed), or JSON-lines (one request per non-blank line)."""
    lines = [(n, ln) for n, ln in enumerate(text.splitlines(), 1) if ln.strip()]
    if not lines:
        return
    if len(lines) > 1:
        try:
            yield RequestLine(lines[0][0], parse_request(text), None)
            return
        except BadRequest as whole:
            if not _is_complete_json(lines[0][1]):
                yield RequestLine(lines[0][0], None, str(whole), whole.kind)
                return
    for n, line in lines:
        try:
            yield RequestLine(n, parse_request(line), None)
        except BadRequest as exc:
            yield RequestLine(n, None, f"line {n}: {exc}", exc.kind)
