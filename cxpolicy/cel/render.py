"""Which request fields an expression reads, and the expression re-written with their values.

A trace must explain a decision in the author's own words (LANGUAGE.md §6):
`context.amount <= 500` became `12000 <= 500`. So rendering splices values into the source
text at the spans of the field references instead of printing a tree back: comments,
quotes and spacing stay as written. Reading the fields again, independently of evaluation,
keeps the hot path free of bookkeeping and lets `render` work the same for both paths.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cxpolicy.cel.nodes import Has, Node, read_path

__all__ = ["Reference", "collect", "format_value", "render"]


@dataclass(frozen=True, slots=True)
class Reference:
    """A field read at `text[start:end]`; `has_field` set for `has(root.keys.has_field)`."""

    start: int
    end: int
    root: str
    keys: tuple[str, ...]
    has_field: str | None = None


def collect(node: Node) -> tuple[frozenset[str], frozenset[str], tuple[Reference, ...]]:
    """The dotted paths read, the top-level names they start from, and where they appear.

    Only request fields count: a macro's variable (`r` in `roles.exists(r, r == "x")`) is
    not a field, but the list it ranges over is.
    """
    fields: set[str] = set()
    roots: set[str] = set()
    references: list[Reference] = []
    pending = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, Has):
            found = read_path(current.operand)
            if found is not None and not found[0].bound:
                root, keys = found[0].name, found[1]
                fields.add(".".join((root, *keys, current.field)))
                roots.add(root)
                references.append(Reference(current.start, current.end, root, keys, current.field))
                continue
        else:
            found = read_path(current)
            if found is not None:
                ident, keys = found
                if not ident.bound:
                    fields.add(".".join((ident.name, *keys)))
                    roots.add(ident.name)
                    references.append(Reference(current.start, current.end, ident.name, keys))
                continue
        pending.extend(current.children())
    references.sort(key=lambda r: r.start)
    return frozenset(fields), frozenset(roots), tuple(references)


_MISSING = object()


def render(text: str, references: tuple[Reference, ...], activation: Any) -> str:
    """`text` with each field reference replaced by the value found; never raises."""
    try:
        parts: list[str] = []
        position = 0
        for reference in references:
            parts.append(text[position : reference.start])
            parts.append(_render_reference(reference, activation))
            position = reference.end
        parts.append(text[position:])
        return "".join(parts)
    except Exception:  # a trace must never break a decision
        return text


def _render_reference(reference: Reference, activation: Any) -> str:
    is_map = isinstance(activation, Mapping)
    value = activation.get(reference.root, _MISSING) if is_map else _MISSING
    path = reference.root
    if value is _MISSING:
        return f"<missing {path}>"
    for key in reference.keys:
        path = f"{path}.{key}"
        value = value.get(key, _MISSING) if isinstance(value, Mapping) else _MISSING
        if value is _MISSING:
            return f"<missing {path}>"
    if reference.has_field is not None:
        if not isinstance(value, Mapping):
            return f"<error has({path}.{reference.has_field}): {path} is not a map>"
        return "true" if reference.has_field in value else "false"
    return format_value(value)


_MAX_TEXT = 60
_MAX_ITEMS = 8
_MAX_DEPTH = 3


def format_value(value: Any, depth: int = 0) -> str:
    """A short CEL-literal rendering: long strings and big containers are cut with `…`."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        shown = value if len(value) <= _MAX_TEXT else value[: _MAX_TEXT - 1] + "…"
        return json.dumps(shown, ensure_ascii=False)
    if isinstance(value, list | tuple):
        if depth >= _MAX_DEPTH:
            return "[…]" if value else "[]"
        items = [format_value(v, depth + 1) for v in value[:_MAX_ITEMS]]
        if len(value) > _MAX_ITEMS:
            items.append("…")
        return "[" + ", ".join(items) + "]"
    if isinstance(value, Mapping):
        if depth >= _MAX_DEPTH:
            return "{…}" if value else "{}"
        entries = [
            f"{format_value(k, depth + 1)}: {format_value(v, depth + 1)}" for k, v in list(value.items())[:_MAX_ITEMS]
        ]
        if len(value) > _MAX_ITEMS:
            entries.append("…")
        return "{" + ", ".join(entries) + "}"
    text = repr(value)
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"
