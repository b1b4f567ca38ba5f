"""Tool maps: which action a tool is, and which of its arguments become which request fields.

Input: a TOML file (or a mapping) declaring each tool once. Output: `ToolMap`, which turns a
tool call `(subject, tool, args)` into a request — and nothing else the model wrote reaches
it. A model that adds `otp_verified` or a `context` argument changes nothing, because only
the arguments the map names are read, and only into the fields it names.

    [tools.refund]
    action = "refund.execute"
    args = { amount = "context.amount", note = "payload.text" }
    data_classes = ["card_pan"]              # what the tool touches, whatever it is asked
    same_as_subject = { customer_id = "customer.id" }   # must equal the session's customer

Unknown tools are refused (the guard denies them): an agent cannot invent a tool the policy
was not told about.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxpolicy.engine.evaluation import lookup

__all__ = ["ToolError", "ToolMap", "ToolSpec"]

# Request fields a tool argument may fill. The subject's fields (customer, actor, channel,
# session) come from the host, never from an argument; `context.otp_verified` and every
# other engine-only field are not in this list.
_WRITABLE_ROOTS = ("context.", "payload.")


class ToolError(ValueError):
    """A tool map that cannot be right, or a call it refuses (unknown tool, a bound argument
    that differs from the subject)."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    action: str
    args: Mapping[str, str] = field(default_factory=dict)  # argument -> request path
    data_classes: tuple[str, ...] = ()
    same_as_subject: Mapping[str, str] = field(default_factory=dict)  # argument -> subject path

    def __post_init__(self) -> None:
        for arg, path in self.args.items():
            if not path.startswith(_WRITABLE_ROOTS) or path.count(".") < 1 or path.endswith("."):
                raise ToolError(
                    f"tool {self.name}: argument {arg!r} maps to {path!r}; a tool argument may fill "
                    "only context.* or payload.* (the subject comes from the host)"
                )
            if path == "context.otp_verified":
                raise ToolError(f"tool {self.name}: context.otp_verified is set only by a grant")


def _put(tree: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = tree
    for part in parents:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[leaf] = value


class ToolMap:
    """The declared tools; `request(subject, tool, args)` builds the request for a call."""

    def __init__(self, tools: Mapping[str, ToolSpec]) -> None:
        self.tools = dict(tools)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ToolMap:
        tools = data.get("tools")
        if not isinstance(tools, Mapping) or not tools:
            raise ToolError("a tool map needs a [tools.NAME] table per tool")
        out: dict[str, ToolSpec] = {}
        for name, spec in tools.items():
            if not isinstance(spec, Mapping) or not isinstance(spec.get("action"), str):
                raise ToolError(f"tool {name}: `action` (a string) is required")
            unknown = set(spec) - {"action", "args", "data_classes", "same_as_subject"}
            if unknown:
                raise ToolError(f"tool {name}: unknown keys {sorted(unknown)}")
            out[str(name)] = ToolSpec(
                name=str(name),
                action=spec["action"],
                args={str(k): str(v) for k, v in (spec.get("args") or {}).items()},
                data_classes=tuple(str(c) for c in spec.get("data_classes") or ()),
                same_as_subject={str(k): str(v) for k, v in (spec.get("same_as_subject") or {}).items()},
            )
        return cls(out)

    @classmethod
    def load(cls, path: str | Path) -> ToolMap:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ToolError(f"{path}: {exc}") from None
        return cls.from_mapping(data)

    def request(self, subject: Mapping[str, Any], tool: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """The request for this call: the subject's fields, the tool's action and data
        classes, and the mapped arguments — nothing else from `args`."""
        spec = self.tools.get(tool)
        if spec is None:
            raise ToolError(f"unknown tool {tool!r}: it is not in the tool map")
        for arg, path in spec.same_as_subject.items():
            if arg in args and args[arg] != lookup(dict(subject), path.split(".")):  # MISSING never equals
                raise ToolError(f"argument {arg!r} must be the session's {path}")
        request: dict[str, Any] = {
            k: (dict(v) if isinstance(v, Mapping) else v)
            for k, v in subject.items()
            if k in ("channel", "actor", "customer", "session", "region")
        }
        request["action"] = spec.action
        if spec.data_classes:
            request["data_classes"] = list(spec.data_classes)
        for arg, path in spec.args.items():
            if arg in args:
                _put(request, path, args[arg])
        return request
