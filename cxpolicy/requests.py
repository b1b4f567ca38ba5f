"""Reading requests from the outside world (CLI files, stdin, HTTP bodies) safely.

JSON is parsed strictly: duplicate keys, NaN/Infinity and nesting deeper than `MAX_DEPTH` are
rejected, because each lets two readers of the same bytes see different requests (a
duplicate key is a classic way to smuggle a second value past a validator). A rejected input
becomes an `escalate` decision with a clear error, never an exception.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_REQUEST_BYTES", "BadRequest", "RequestLine", "iter_requests", "parse_request"]

MAX_REQUEST_BYTES = 1024 * 1024
MAX_DEPTH = 32


class BadRequest(ValueError):
    """The bytes are not an acceptable JSON document; the message says why."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise BadRequest(f"duplicate key `{k}` in a JSON object")
        out[k] = v
    return out


def _no_constants(name: str) -> Any:
    raise BadRequest(f"`{name}` is not valid JSON (numbers must be finite)")


def _depth(value: Any, limit: int) -> int:
    """Nesting depth, stopping early once past `limit` (iterative: no recursion limit games)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if d > deepest:
            deepest = d
            if deepest > limit:
                return deepest
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return deepest


def parse_request(data: str | bytes, *, max_bytes: int = MAX_REQUEST_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """One JSON value, strictly. Raises BadRequest with a message fit for a decision's errors."""
    size = len(data.encode() if isinstance(data, str) else data)
    if size > max_bytes:
        raise BadRequest(f"request is {size} bytes; the limit is {max_bytes}")
    try:
        value = json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except BadRequest:
        raise
    except RecursionError:
        raise BadRequest(f"request nests deeper than {max_depth} levels") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"not valid JSON: {exc}") from None
    if _depth(value, max_depth) > max_depth:
        raise BadRequest(f"request nests deeper than {max_depth} levels")
    return value


@dataclass(frozen=True, slots=True)
class RequestLine:
    line: int
    value: Any
    error: str | None


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
                yield RequestLine(lines[0][0], None, str(whole))
                return
    for n, line in lines:
        try:
            yield RequestLine(n, parse_request(line), None)
        except BadRequest as exc:
            yield RequestLine(n, None, f"line {n}: {exc}")
