"""The .cxp abstract syntax tree: frozen, slotted dataclasses, each carrying its Span.

Input: what the parser builds. Output: the node types the vocabulary and check stages read.

Equality ignores spans (`field(compare=False)`), so a formatter round trip can be checked by
comparing trees: parse(fmt(x)) == parse(x).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cxpolicy.kinds import ConditionKind, DimensionKind, Op
from cxpolicy.lang.source import Span

__all__ = [
    "Attribute",
    "CiteDecl",
    "CiteRef",
    "Condition",
    "Constraint",
    "DefaultDecl",
    "Dimension",
    "EffectSpec",
    "Expect",
    "ExtendDimension",
    "Item",
    "Module",
    "Package",
    "Rule",
    "Scope",
    "TestBlock",
    "Use",
    "Value",
]

_UNKNOWN = Span("<unknown>", 1, 1, 1, 1)


def _nospan() -> Any:
    """A span field that equality and repr ignore (each class needs its own Field object)."""
    return field(default=_UNKNOWN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Value:
    """A dimension value as written: an identifier or a quoted string."""

    text: str
    quoted: bool = False
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class Package:
    name: str
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class Use:
    name: str
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class Constraint:
    """`dim OP value` or `dim in [values]` / `dim not in [values]`; op is one of
    `=`, `!=`, `<`, `<=`, `>`, `>=`, `in`, `not in`."""

    dimension: str
    op: Op
    values: tuple[Value, ...]
    span: Span = _nospan()
    dim_span: Span = _nospan()

    def text(self) -> str:
        vals = ", ".join(_value_text(v) for v in self.values)
        if self.op in ("in", "not in"):
            return f"{self.dimension} {self.op} [{vals}]"
        return f"{self.dimension} {self.op} {vals}"


def _value_text(v: Value) -> str:
    if v.quoted:
        import json

        return json.dumps(v.text, ensure_ascii=False)
    return v.text


@dataclass(frozen=True, slots=True)
class Scope:
    constraints: tuple[Constraint, ...]
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class EffectSpec:
    """What `decide` (or `default`) says: effect, redact classes (None = implicit), style, queue."""

    effect: str
    classes: tuple[Value, ...] | None = None
    style: str | None = None
    queue: str | None = None
    span: Span = _nospan()
    style_span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class DefaultDecl:
    effect: EffectSpec
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class CiteDecl:
    name: str
    text: str
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class Dimension:
    name: str
    path: str | None
    kind: DimensionKind
    values: tuple[Value, ...]
    default: Value | None = None
    span: Span = _nospan()
    name_span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class ExtendDimension:
    name: str
    values: tuple[Value, ...]
    span: Span = _nospan()
    name_span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class Attribute:
    path: str
    type: str
    default: Any = None
    has_default: bool = False
    span: Span = _nospan()
    type_span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class Condition:
    kind: ConditionKind
    text: str  # the CEL text as written
    cel: str = field(default="", compare=False, repr=False)  # comments blanked, same length
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class CiteRef:
    """A cite in a rule: a declared name or an inline text."""

    name: str | None
    text: str | None
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    matches: tuple[Constraint, ...]
    conditions: tuple[Condition, ...]
    decides: tuple[EffectSpec, ...]
    because: tuple[str, ...]
    cites: tuple[CiteRef, ...]
    span: Span = _nospan()
    name_span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class Expect:
    kind: str  # "effect" | "rules" | "rules_includes" | "rules_excludes" | "redact" | "escalate_to"
    values: tuple[Value, ...]
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class TestBlock:
    __test__ = False  # not a pytest test class

    name: str
    requests: tuple[Any, ...]
    expects: tuple[Expect, ...]
    span: Span = _nospan()


Item = Package | Use | Scope | DefaultDecl | CiteDecl | Dimension | ExtendDimension | Attribute | Rule | TestBlock


@dataclass(frozen=True, slots=True)
class Module:
    """One .cxp file."""

    file: str
    items: tuple[Item, ...]
    span: Span = _nospan()

    @property
    def package(self) -> str | None:
        return next((i.name for i in self.items if isinstance(i, Package)), None)
