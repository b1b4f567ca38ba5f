"""Vocabulary: the dimensions rules match on and the attributes conditions read.

Input: every `dimension`, `extend dimension` and `attribute` declaration of a policy set (they
are global to it and may appear in any file, in any order). Output: a `Vocabulary`, plus
diagnostics for duplicates, unknown extensions and ill-typed defaults.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cxpolicy.kinds import DimensionKind
from cxpolicy.lang import ast, codes
from cxpolicy.lang.source import Diagnostic, Span

__all__ = [
    "ATTRIBUTE_TYPES",
    "DATA_CLASSES_PATH",
    "AttributeDef",
    "DimensionDef",
    "Vocabulary",
    "build_vocabulary",
    "did_you_mean",
    "type_matches",
]

DATA_CLASSES_PATH = "data_classes"
ATTRIBUTE_TYPES = ("string", "number", "int", "bool", "list", "map", "any")


def type_matches(type_name: str, value: Any) -> bool:
    """JSON value against a declared attribute type; `null` never matches (LANGUAGE.md §5)."""
    if value is None:
        return False
    if type_name == "any":
        return True
    if type_name == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if type_name == "number":
        return isinstance(value, int | float)
    if type_name == "int":
        return isinstance(value, int)
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "list":
        return isinstance(value, list)
    if type_name == "map":
        return isinstance(value, dict)
    return False


def suggest(word: str, choices: Iterable[str], otherwise: str | None = None) -> str | None:
    """The did-you-mean hint for an unknown name (`did you mean `x`?`), else `otherwise`."""
    close = did_you_mean(word, choices)
    return f"did you mean `{close}`?" if close else otherwise


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    pool = list(choices)
    close = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in pool}
        if word.lower() in lowered:
            return lowered[word.lower()]
        return None
    return close[0]


class DimensionShape:
    """What a dimension's declaration and its index (engine/index.py) share: the dotted path
    and the kind tests, written once."""

    __slots__ = ()
    path: tuple[str, ...]
    kind: DimensionKind

    @property
    def path_text(self) -> str:
        return ".".join(self.path)

    @property
    def is_set(self) -> bool:
        return self.kind == DimensionKind.SET

    @property
    def is_ordered(self) -> bool:
        return self.kind == DimensionKind.ORDERED


@dataclass
class DimensionDef(DimensionShape):
    name: str
    path: tuple[str, ...]
    kind: DimensionKind
    values: list[str]
    default: str | None
    span: Span
    extensions: list[Span] = field(default_factory=list)

    def position(self, value: str) -> int:
        return self.values.index(value)


@dataclass(frozen=True)
class AttributeDef:
    path: tuple[str, ...]
    type: str
    default: Any
    has_default: bool
    span: Span

    @property
    def path_text(self) -> str:
        return ".".join(self.path)


@dataclass
class Vocabulary:
    dimensions: dict[str, DimensionDef]
    attributes: dict[str, AttributeDef]

    @property
    def data_dimension(self) -> DimensionDef | None:
        """The set dimension read from `data_classes`: what `redact` lists name."""
        for d in self.dimensions.values():
            if d.is_set and d.path_text == DATA_CLASSES_PATH:
                return d
        return None


def build_vocabulary(modules: Sequence[ast.Module], diags: list[Diagnostic]) -> Vocabulary:
    dims: dict[str, DimensionDef] = {}
    attrs: dict[str, AttributeDef] = {}
    extends: list[ast.ExtendDimension] = []
    for m in modules:
        for item in m.items:
            if isinstance(item, ast.Dimension):
                _declare_dimension(item, dims, diags)
            elif isinstance(item, ast.ExtendDimension):
                extends.append(item)
            elif isinstance(item, ast.Attribute):
                _declare_attribute(item, attrs, diags)
    for ext in extends:
        d = dims.get(ext.name)
        if d is None:
            diags.append(
                codes.CXP205(
                    f"`extend dimension {ext.name}`: no dimension `{ext.name}` is declared",
                    ext.name_span,
                    suggest(ext.name, dims, "declare it with `dimension NAME at PATH: {...}`"),
                )
            )
            continue
        d.extensions.append(ext.span)
        for v in ext.values:
            if v.text in d.values:
                diags.append(
                    codes.CXP206(
                        f"value `{v.text}` is already in dimension `{d.name}`",
                        v.span,
                    )
                )
                continue
            d.values.append(v.text)
    _check_dimension_defaults(dims, diags)
    return Vocabulary(dims, attrs)


def _declare_dimension(item: ast.Dimension, dims: dict[str, DimensionDef], diags: list[Diagnostic]) -> None:
    if item.name in dims:
        first = dims[item.name].span
        diags.append(
            codes.CXP204(
                f"dimension `{item.name}` is declared twice (first at {first})",
                item.name_span,
                "use `extend dimension` to add values to an existing dimension",
            )
        )
        return
    values: list[str] = []
    for v in item.values:
        if v.text in values:
            diags.append(
                codes.CXP206(f"value `{v.text}` is listed twice in `{item.name}`", v.span)
            )
            continue
        values.append(v.text)
    path = tuple((item.path or item.name).split("."))
    default = item.default.text if item.default is not None else None
    dims[item.name] = DimensionDef(item.name, path, item.kind, values, default, item.span)
    if default is not None and item.kind == DimensionKind.SET:
        diags.append(
            codes.CXP207(
                f"set dimension `{item.name}` cannot have a default (an absent set is empty)",
                item.default.span if item.default else item.span,
            )
        )


def _check_dimension_defaults(dims: Mapping[str, DimensionDef], diags: list[Diagnostic]) -> None:
    for d in dims.values():
        if d.default is not None and not d.is_set and d.default not in d.values:
            diags.append(
                codes.CXP207(
                    f"default `{d.default}` of dimension `{d.name}` is not one of its values",
                    d.span,
                    suggest(d.default, d.values),
                )
            )


def _declare_attribute(item: ast.Attribute, attrs: dict[str, AttributeDef], diags: list[Diagnostic]) -> None:
    if item.type not in ATTRIBUTE_TYPES:
        diags.append(
            codes.CXP210(
                f"unknown attribute type `{item.type}`; expected one of {', '.join(ATTRIBUTE_TYPES)}",
                item.type_span,
                suggest(item.type, ATTRIBUTE_TYPES),
            )
        )
        return
    if item.has_default and not type_matches(item.type, item.default):
        diags.append(
            codes.CXP211(
                f"default of `{item.path}` does not have type `{item.type}`: got {_json(item.default)}",
                item.span,
            )
        )
        return
    prev = attrs.get(item.path)
    if prev is not None:
        if prev.type != item.type or prev.default != item.default or prev.has_default != item.has_default:
            diags.append(
                codes.CXP212(
                    f"attribute `{item.path}` is declared again differently (first at {prev.span})",
                    item.span,
                    "declare an attribute once, or identically",
                )
            )
        return
    attrs[item.path] = AttributeDef(tuple(item.path.split(".")), item.type, item.default, item.has_default, item.span)


def _json(v: Any) -> str:
    import json

    return json.dumps(v)
