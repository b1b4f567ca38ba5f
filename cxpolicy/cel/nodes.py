"""The flat CEL syntax tree the compiler, the field collector and the renderer share.

Input: built by `syntax.parse` from cel-python's Lark tree, or read back from a precompiled
pack (`cxpolicy.engine.precompiled`). Output: frozen nodes with offsets into the text.
Kept apart from syntax.py so that compiling a known tree imports neither cel-python nor Lark
(together ~50 ms of a cold CLI start, and ~350 ms to build cel-python's parser).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "And",
    "Binary",
    "Call",
    "Comprehension",
    "Cond",
    "Has",
    "Ident",
    "Index",
    "ListLit",
    "Lit",
    "MapLit",
    "Node",
    "Opaque",
    "OptIndex",
    "OptItem",
    "OptSelect",
    "Or",
    "Select",
    "Unary",
    "field_path",
    "read_path",
]


@dataclass(frozen=True, slots=True)
class Node:
    """A span (`start`, `end`: offsets into the expression text) shared by every node."""

    start: int
    end: int

    def children(self) -> tuple[Node, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class Lit(Node):
    value: Any  # None, bool, int, float or str


@dataclass(frozen=True, slots=True)
class Ident(Node):
    name: str
    bound: bool  # a macro's iteration variable rather than a request field


@dataclass(frozen=True, slots=True)
class Select(Node):
    operand: Node
    field: str

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True)
class Index(Node):
    operand: Node
    key: Node

    def children(self) -> tuple[Node, ...]:
        return (self.operand, self.key)


@dataclass(frozen=True, slots=True)
class Has(Node):
    operand: Node
    field: str

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True)
class Call(Node):
    function: str
    target: Node | None  # the receiver of a method call
    args: tuple[Node, ...]

    def children(self) -> tuple[Node, ...]:
        return self.args if self.target is None else (self.target, *self.args)


@dataclass(frozen=True, slots=True)
class Comprehension(Node):
    macro: str  # all, exists, exists_one, filter, map, transformList, transformMap
    target: Node
    var: str
    args: tuple[Node, ...]  # the predicate or transform; map may also take a filter first
    # The second variable of a two-variable comprehension (`m.all(k, v, ...)`): then `var`
    # is the list index or map key and `var2` the element or value. Compiled path only.
    var2: str | None = None

    def children(self) -> tuple[Node, ...]:
        return (self.target, *self.args)


@dataclass(frozen=True, slots=True)
class Unary(Node):
    op: str  # "!" or "-"
    operand: Node

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True)
class Binary(Node):
    op: str  # arithmetic, comparison or "in"
    left: Node
    right: Node

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True)
class And(Node):
    left: Node
    right: Node

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True)
class Or(Node):
    left: Node
    right: Node

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True)
class Cond(Node):
    test: Node
    then: Node
    other: Node

    def children(self) -> tuple[Node, ...]:
        return (self.test, self.then, self.other)


@dataclass(frozen=True, slots=True)
class ListLit(Node):
    items: tuple[Node, ...]

    def children(self) -> tuple[Node, ...]:
        return self.items


@dataclass(frozen=True, slots=True)
class MapLit(Node):
    entries: tuple[tuple[Node, Node], ...]

    def children(self) -> tuple[Node, ...]:
        return tuple(part for entry in self.entries for part in entry)


@dataclass(frozen=True, slots=True)
class OptSelect(Node):
    """`operand.?field`: an optional of the entry (cel-go's optional syntax)."""

    operand: Node
    field: str

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True)
class OptIndex(Node):
    """`operand[?key]`: an optional of the entry or element."""

    operand: Node
    key: Node

    def children(self) -> tuple[Node, ...]:
        return (self.operand, self.key)


@dataclass(frozen=True, slots=True)
class OptItem(Node):
    """`?expr` as a list element or map key: included only when the optional has a value."""

    expr: Node

    def children(self) -> tuple[Node, ...]:
        return (self.expr,)


@dataclass(frozen=True, slots=True)
class Opaque(Node):
    """A construct left to cel-python; `reason` says which, for `repr` and debugging."""

    reason: str
    parts: tuple[Node, ...]

    def children(self) -> tuple[Node, ...]:
        return self.parts




def read_path(node: Node) -> tuple[Ident, tuple[str, ...]] | None:
    """Like `field_path`, but through optional steps too (`context.?limits.daily`): the path
    an expression reads, for `fields` and `render`, where absence is not an error. The
    compiler keeps `field_path`, whose steps must all be present."""
    keys: list[str] = []
    while True:
        if isinstance(node, Select | OptSelect):
            keys.append(node.field)
            node = node.operand
        elif isinstance(node, Index | OptIndex) and isinstance(node.key, Lit) and type(node.key.value) is str:
            keys.append(node.key.value)
            node = node.operand
        else:
            break
    if isinstance(node, Ident):
        keys.reverse()
        return node, tuple(keys)
    return None


def field_path(node: Node) -> tuple[Ident, tuple[str, ...]] | None:
    """`a.b["c"]` as its root identifier and keys; None when the chain is not a plain path.

    Constant string indexes count as keys, so `context["amount"]` and `context.amount` are
    the same field for the compiler, `fields` and `render`.
    """
    keys: list[str] = []
    while True:
        if isinstance(node, Select):
            keys.append(node.field)
            node = node.operand
        elif isinstance(node, Index) and isinstance(node.key, Lit) and type(node.key.value) is str:
            keys.append(node.key.value)
            node = node.operand
        else:
            break
    if isinstance(node, Ident):
        keys.reverse()
        return node, tuple(keys)
    return None
