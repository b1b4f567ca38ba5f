"""The JSON Schema of a request for a loaded vocabulary (draft 2020-12).

Input: a compiled `PolicySet`. Output: a JSON Schema object describing the requests it
decides: each dimension path with its declared values (`enum`; a set dimension is an array
of them), each attribute with its type and default, and `required` for every plain dimension
without a default (the engine answers a request missing one with `escalate` and an error).

Why: an integrator reads the schema, not the .cxp files. The service's generic request
model says `action` is a string; this one lists the actions the serving policy knows and
marks `channel` required when the policy requires it. Other fields stay allowed
(`additionalProperties`), because conditions may read what the vocabulary does not declare.
"""

from __future__ import annotations

from typing import Any

from cxpolicy.engine.policy_set import PolicySet

__all__ = ["SCHEMA_DIALECT", "request_schema"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "number": {"type": "number"},
    "int": {"type": "integer"},
    "bool": {"type": "boolean"},
    "list": {"type": "array"},
    "map": {"type": "object"},
    "any": {},
}


def request_schema(policy: PolicySet, *, title: str = "cxpolicy request") -> dict[str, Any]:
    """The schema; `$id`-free and self-contained, so it can be embedded in OpenAPI as is."""
    root: dict[str, Any] = _object()
    root["title"] = title
    root["description"] = (
        "One action an agent is about to take (LANGUAGE.md §2), for the vocabulary of policy "
        f"revision {policy.revision}. A request that does not fit is answered with `escalate`."
    )
    vocab = policy.vocabulary
    for d in vocab.dimensions.values():
        values = list(d.values)
        if d.is_set:
            leaf: dict[str, Any] = {"type": "array", "items": {"enum": values}, "uniqueItems": True}
            leaf["description"] = f"dimension `{d.name}` (a set): any of its values"
        else:
            leaf = {"enum": values}
            kind = "ordered, lowest first" if d.is_ordered else "one value"
            leaf["description"] = f"dimension `{d.name}` ({kind})"
            if d.default is not None:
                leaf["default"] = d.default
        _place(root, d.path, leaf, required=not d.is_set and d.default is None)
    for attr in vocab.attributes.values():
        if _at(root, attr.path) is not None:
            continue  # a dimension already describes it
        leaf = dict(_TYPES.get(attr.type, {}))
        leaf["description"] = f"attribute ({attr.type})"
        if attr.has_default:
            leaf["default"] = attr.default
        _place(root, attr.path, leaf, required=False)
    root["$schema"] = SCHEMA_DIALECT
    return root


def _object() -> dict[str, Any]:
    return {"type": "object", "properties": {}, "additionalProperties": True}


def _at(node: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    for key in path:
        props = node.get("properties")
        if not isinstance(props, dict) or key not in props:
            return None
        node = props[key]
    return node


def _place(root: dict[str, Any], path: tuple[str, ...], leaf: dict[str, Any], *, required: bool) -> None:
    """Put `leaf` at `path`, making the objects above it; a required leaf makes them required."""
    node = root
    for key in path[:-1]:
        props = node.setdefault("properties", {})
        child = props.get(key)
        if child is None or child.get("type") != "object":
            child = props[key] = _object() | {k: v for k, v in (child or {}).items() if k in ("description",)}
        if required:
            _require(node, key)
        node = child
    node.setdefault("properties", {})[path[-1]] = leaf
    if required:
        _require(node, path[-1])


def _require(node: dict[str, Any], key: str) -> None:
    req: list[str] = node.setdefault("required", [])
    if key not in req:
        req.append(key)
