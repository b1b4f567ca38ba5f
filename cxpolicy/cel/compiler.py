"""The syntax tree compiled to nested Python closures: the hot path of every decision.

Each closure takes the activation (the request as plain JSON values) and returns a value or
raises `CelEvalError`; Python exceptions are free to set up and cost only when raised, so
errors-as-exceptions keeps the common path free of result wrapping. `&&`, `||`, `?:` and the
macros catch errors where CEL lets a value absorb them (`false && error` is false).

Speed comes from specialisation rather than cleverness:

* a field path (`context.amount`) is one closure doing `a["context"]["amount"]`, with the
  careful walk that explains the failure only on the error path;
* chains of `&&` / `||` become one n-ary closure, unrolled for two operands;
* comparisons with a literal get their own closures (in `operations`).

A construct without a compiled form raises `Unsupported`; the caller then runs the whole
expression on cel-python instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cxpolicy.cel import operations, runtime
from cxpolicy.cel.errors import CelEvalError
from cxpolicy.cel.nodes import (
    And,
    Binary,
    Call,
    Comprehension,
    Cond,
    Has,
    Ident,
    Index,
    ListLit,
    Lit,
    MapLit,
    Node,
    OptIndex,
    OptItem,
    OptSelect,
    Or,
    Select,
    Unary,
    field_path,
)
from cxpolicy.cel.runtime import OptionalValue, no_overload

__all__ = ["Fn", "Unsupported", "compile_node"]

Fn = operations.Fn


class Unsupported(Exception):
    """The node has no compiled form; the expression must run on cel-python."""


def compile_node(node: Node) -> Fn:
    handler = _HANDLERS.get(type(node))
    if handler is None:
        raise Unsupported(type(node).__name__)
    return handler(node)


# ----------------------------------------------------------------------------- fields, names


def _path_error(activation: Any, root: Ident, keys: tuple[str, ...]) -> CelEvalError:
    """Walk the path again, slowly, to say which step failed."""
    field = None if root.bound else root.name
    try:
        value = activation[root.name]
    except KeyError:
        return CelEvalError(f"undeclared reference to '{root.name}'", field)
    path = root.name
    for key in keys:
        dotted = f"{path}.{key}"
        if type(value) is not dict:
            return CelEvalError(
                f"{path} is {runtime.type_name(value)}, which has no field '{key}'",
                None if root.bound else dotted,
            )
        if key not in value:
            return CelEvalError(f"missing field {dotted}", None if root.bound else dotted)
        value = value[key]
        path = dotted
    return CelEvalError(f"cannot read {path}")  # pragma: no cover - the fast path succeeded


def _compile_path(root: Ident, keys: tuple[str, ...]) -> Fn:
    name = root.name
    lookup_errors = (KeyError, TypeError, IndexError)
    if not keys:

        def ident(a: Any) -> Any:
            try:
                return a[name]
            except KeyError:
                raise _path_error(a, root, keys) from None

        return ident
    if len(keys) == 1:
        (k0,) = keys

        def path1(a: Any) -> Any:
            try:
                return a[name][k0]
            except lookup_errors:
                raise _path_error(a, root, keys) from None

        return path1
    if len(keys) == 2:
        k0, k1 = keys

        def path2(a: Any) -> Any:
            try:
                return a[name][k0][k1]
            except lookup_errors:
                raise _path_error(a, root, keys) from None

        return path2

    def path_n(a: Any) -> Any:
        try:
            value = a[name]
            for key in keys:
                value = value[key]
            return value
        except lookup_errors:
            raise _path_error(a, root, keys) from None

    return path_n


def _select(node: Select) -> Fn:
    path = field_path(node)
    if path is not None:
        return _compile_path(*path)
    operand = compile_node(node.operand)
    field = node.field

    def select(a: Any) -> Any:
        value = operand(a)
        if type(value) is dict:
            try:
                return value[field]
            except KeyError:
                raise CelEvalError(f"missing field {field}") from None
        if type(value) is OptionalValue:  # `optional.of(m).f` chains as `m.?f`
            return runtime.optional_select(value, field)
        raise CelEvalError(f"{runtime.type_name(value)} has no field '{field}'")

    return select


def _index(node: Index) -> Fn:
    path = field_path(node)
    if path is not None:
        return _compile_path(*path)
    operand = compile_node(node.operand)
    key = compile_node(node.key)
    index = runtime.index
    return lambda a: index(operand(a), key(a))


def _has(node: Has) -> Fn:
    operand = compile_node(node.operand)
    field = node.field

    def has(a: Any) -> bool:
        value = operand(a)
        if type(value) is dict:
            return field in value
        if type(value) is OptionalValue:  # none has no fields; a value is tested as itself
            if not value.has:
                return False
            if type(value.value) is dict:
                return field in value.value
            value = value.value
        raise CelEvalError(f"has() cannot test field '{field}' of {runtime.type_name(value)}")

    return has


def _ident(node: Ident) -> Fn:
    return _compile_path(node, ())


# ---------------------------------------------------------------------------------- literals


def _lit(node: Lit) -> Fn:
    value = node.value
    return lambda a: value


def _list(node: ListLit) -> Fn:
    if any(isinstance(i, OptItem) for i in node.items):
        return _optional_list(node)
    items = tuple(compile_node(i) for i in node.items)
    return lambda a: [item(a) for item in items]  # a fresh list: callers may keep results


def _optional(value: Any) -> OptionalValue:
    if type(value) is OptionalValue:
        return value
    raise CelEvalError(f"an optional entry `?x` needs an optional value, not {runtime.type_name(value)}")


def _optional_list(node: ListLit) -> Fn:
    """`[a, ?b]`: `b` must be an optional; its value is an element only when it has one."""
    items = tuple((isinstance(i, OptItem), compile_node(i.expr if isinstance(i, OptItem) else i)) for i in node.items)

    def optional_list(a: Any) -> list[Any]:
        out = []
        for optional, item in items:
            if not optional:
                out.append(item(a))
                continue
            value = _optional(item(a))
            if value.has:
                out.append(value.value)
        return out

    return optional_list


def _map(node: MapLit) -> Fn:
    keys: list[Any] = []
    optional = tuple(isinstance(key, OptItem) for key, _ in node.entries)
    for entry_key, _ in node.entries:
        key = entry_key.expr if isinstance(entry_key, OptItem) else entry_key
        if not (isinstance(key, Lit) and type(key.value) in (str, int, bool)):
            raise Unsupported("map literal with computed keys")
        keys.append(key.value)
    if {type(k) for k in keys} >= {int, bool}:
        raise Unsupported("map literal with both int and bool keys")  # Python merges 1 and true
    values = tuple(compile_node(v) for _, v in node.entries)
    if len(set(keys)) != len(keys):
        duplicate = next(k for k in keys if keys.count(k) > 1)

        def duplicated(a: Any) -> Any:
            raise CelEvalError(f"duplicate map key {duplicate!r}")

        return duplicated
    pairs = tuple(zip(keys, values, strict=True))
    if any(optional):
        triples = tuple(zip(keys, values, optional, strict=True))

        def optional_map(a: Any) -> dict[Any, Any]:
            out = {}
            for key, value, is_optional in triples:
                if not is_optional:
                    out[key] = value(a)
                    continue
                entry = _optional(value(a))
                if entry.has:
                    out[key] = entry.value
            return out

        return optional_map
    return lambda a: {key: value(a) for key, value in pairs}


def _opt_select(node: OptSelect) -> Fn:
    operand = compile_node(node.operand)
    field = node.field
    select = runtime.optional_select
    return lambda a: select(operand(a), field)


def _opt_index(node: OptIndex) -> Fn:
    operand = compile_node(node.operand)
    key = compile_node(node.key)
    index = runtime.optional_index
    return lambda a: index(operand(a), key(a))


# --------------------------------------------------------------------------------- operators


def _flatten(node: Node, kind: type[And] | type[Or]) -> list[Node]:
    if isinstance(node, kind):
        return _flatten(node.left, kind) + _flatten(node.right, kind)
    return [node]


def _and(node: And) -> Fn:
    return _logical(_flatten(node, And), decisive=False, op="&&")


def _or(node: Or) -> Fn:
    return _logical(_flatten(node, Or), decisive=True, op="||")


def _logical(operands: list[Node], *, decisive: bool, op: str) -> Fn:
    """`&&` (decisive false) and `||` (decisive true), commutative with errors as CEL says:
    any decisive operand decides, whatever the others did; otherwise the first error wins, and
    an operand that is not a bool is an error."""
    fns = tuple(compile_node(n) for n in operands)
    neutral = not decisive

    def logical_n(a: Any) -> Any:
        error: CelEvalError | None = None
        for fn in fns:
            try:
                value = fn(a)
            except CelEvalError as exc:
                error = error or exc
                continue
            if value is decisive:
                return decisive
            if value is not neutral and error is None:
                error = no_overload(op, value)
        if error is not None:
            raise error
        return neutral

    if len(fns) != 2:
        return logical_n
    left, right = fns

    def logical2(a: Any) -> Any:
        # logical_n unrolled for the common two-operand case; same outcomes, same error choice.
        try:
            value = left(a)
        except CelEvalError as exc:
            try:
                other = right(a)
            except CelEvalError:
                raise exc from None
            if other is decisive:
                return decisive
            raise
        if value is neutral:
            other = right(a)
            if other is True or other is False:
                return other
            raise no_overload(op, other)
        if value is decisive:
            return decisive
        try:
            other = right(a)
        except CelEvalError:
            raise no_overload(op, value) from None
        if other is decisive:
            return decisive
        raise no_overload(op, value)

    return logical2


def _cond(node: Cond) -> Fn:
    test = compile_node(node.test)
    then = compile_node(node.then)
    other = compile_node(node.other)

    def cond(a: Any) -> Any:
        value = test(a)
        if value is True:
            return then(a)
        if value is False:
            return other(a)
        raise no_overload("?:", value)

    return cond


def _unary(node: Unary) -> Fn:
    operand = compile_node(node.operand)
    if node.op == "-":
        neg = runtime.neg
        return lambda a: neg(operand(a))

    def not_(a: Any) -> bool:
        value = operand(a)
        if value is True:
            return False
        if value is False:
            return True
        raise no_overload("!", value)

    return not_


_HANDLERS: dict[type[Node], Callable[[Any], Fn]] = {
    Lit: _lit,
    Ident: _ident,
    Select: _select,
    Index: _index,
    Has: _has,
    Call: lambda node: operations.call(node, compile_node),
    Comprehension: lambda node: operations.comprehension(node, compile_node),
    Unary: _unary,
    Binary: lambda node: operations.binary(node, compile_node),
    And: _and,
    Or: _or,
    Cond: _cond,
    ListLit: _list,
    MapLit: _map,
    OptSelect: _opt_select,
    OptIndex: _opt_index,
}
