"""Compiled forms of comparisons, arithmetic, `in`, function calls and macros.

Split from `compiler` to keep modules small; the entry points take the compiler's
`compile_node` as an argument rather than importing it, which would be circular. The
specialisations here are where the hot path's time goes: a comparison with a literal checks
the one operand type that can succeed and compares directly (`x > 1000`, `x == "IN"`,
`x in ["a", "b"]`), instead of calling the general operator in `runtime`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, Final

from cxpolicy.cel import extensions, runtime
from cxpolicy.cel.errors import CelEvalError
from cxpolicy.cel.nodes import Binary, Call, Comprehension, ListLit, Lit, Node
from cxpolicy.cel.runtime import no_overload

__all__ = ["Compile", "Fn", "binary", "call", "comprehension"]

Fn = Callable[[Any], Any]
Compile = Callable[[Node], Fn]


_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": runtime.add,
    "-": runtime.sub,
    "*": runtime.mul,
    "/": runtime.div,
    "%": runtime.mod,
}
_ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    "<": runtime.less,
    "<=": runtime.less_equal,
    ">": runtime.greater,
    ">=": runtime.greater_equal,
}
_MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def binary(node: Binary, compile_node: Compile) -> Fn:
    op = node.op
    if op == "in":
        return _member(node, compile_node)
    if op in _MIRROR:
        left, right = node.left, node.right
        if isinstance(left, Lit) and not isinstance(right, Lit):
            # `500 >= x` is `x <= 500`: the specialisations want the literal on the right.
            left, right, op = right, left, _MIRROR[op]
        if isinstance(right, Lit) and not isinstance(left, Lit):
            special = _compare_literal(op, compile_node(left), right.value)
            if special is not None:
                return special
        lhs = compile_node(node.left)
        rhs = compile_node(node.right)
        if node.op == "==":
            equals = runtime.equals
            return lambda a: equals(lhs(a), rhs(a))
        if node.op == "!=":
            equals = runtime.equals
            return lambda a: not equals(lhs(a), rhs(a))
        order = _ORDERING[node.op]
        return lambda a: order(lhs(a), rhs(a))
    lhs = compile_node(node.left)
    rhs = compile_node(node.right)
    arithmetic = _ARITHMETIC[op]
    return lambda a: arithmetic(lhs(a), rhs(a))


def _compare_literal(op: str, operand: Fn, const: Any) -> Fn | None:
    """`operand OP const` with the literal's type known now; None for the general path."""
    if op == "==" or op == "!=":
        return _equal_literal(op == "!=", operand, const)
    kind = type(const)
    if kind is int or kind is float:
        return _order_number(op, operand, const)
    if kind is str:
        order = _ORDERING[op]

        def order_str(a: Any) -> bool:
            value = operand(a)
            if type(value) is str:
                return order(value, const)
            raise no_overload(op, value, const)

        return order_str
    return None


def _equal_literal(negate: bool, operand: Fn, const: Any) -> Fn:
    kind = type(const)
    if kind is str:
        # A string equals only a string, so Python's `==` is exactly CEL's here.
        if negate:
            return lambda a: operand(a) != const
        return lambda a: operand(a) == const
    if const is None or kind is bool:
        # Identity keeps `true == 1` false: bools and null are singletons.
        if negate:
            return lambda a: operand(a) is not const
        return lambda a: operand(a) is const

    if kind is float or not -_EXACT <= const <= _EXACT:
        return _equal_mixed(negate, operand, const)

    def equal_number(a: Any) -> bool:
        # An int literal within 2^53 is the same number as a double: exact comparison is
        # what CEL's int-to-double conversion gives.
        value = operand(a)
        kind = type(value)
        return (kind is int or kind is float) and value == const

    if negate:
        return lambda a: not equal_number(a)
    return equal_number


#: Integers up to 2^53 are exactly representable as doubles.
_EXACT: Final = 2**53
_PY_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _double(value: int) -> Any:
    try:
        return float(value)
    except OverflowError:  # beyond every finite double: the exact int compares the same
        return value


def _equal_mixed(negate: bool, operand: Fn, const: Any) -> Fn:
    """`x == 1.5` or `x == 2**60`: an int meeting a double is compared as a double."""
    as_int = const if type(const) is int else None
    as_double = float(const)

    def equal_mixed(a: Any) -> bool:
        value = operand(a)
        kind = type(value)
        if kind is float:
            return bool(value == as_double)
        if kind is int:
            return bool(value == as_int if as_int is not None else _double(value) == as_double)
        return False

    if negate:
        return lambda a: not equal_mixed(a)
    return equal_mixed


def _order_mixed(op: str, operand: Fn, const: Any) -> Fn:
    """`x < 1.5` or `x < 2**60`, where CEL's int-to-double conversion can differ from exact."""
    compare = _PY_ORDER[op]
    as_int = const if type(const) is int else None
    as_double = float(const)

    def order_mixed(a: Any) -> bool:
        value = operand(a)
        kind = type(value)
        if kind is float:
            return compare(value, as_double)
        if kind is int:
            if as_int is not None:
                return compare(value, as_int)
            return compare(_double(value), as_double)
        raise no_overload(op, value, const)

    return order_mixed


def _order_number(op: str, operand: Fn, const: Any) -> Fn:
    if type(const) is float or not -_EXACT <= const <= _EXACT:
        return _order_mixed(op, operand, const)

    def fail(value: Any) -> CelEvalError:
        return no_overload(op, value, const)

    if op == "<":

        def lt(a: Any) -> bool:
            value = operand(a)
            kind = type(value)
            if kind is int or kind is float:
                return bool(value < const)
            raise fail(value)

        return lt
    if op == "<=":

        def le(a: Any) -> bool:
            value = operand(a)
            kind = type(value)
            if kind is int or kind is float:
                return bool(value <= const)
            raise fail(value)

        return le
    if op == ">":

        def gt(a: Any) -> bool:
            value = operand(a)
            kind = type(value)
            if kind is int or kind is float:
                return bool(value > const)
            raise fail(value)

        return gt

    def ge(a: Any) -> bool:
        value = operand(a)
        kind = type(value)
        if kind is int or kind is float:
            return bool(value >= const)
        raise fail(value)

    return ge


def _member(node: Binary, compile_node: Compile) -> Fn:
    item = compile_node(node.left)
    right = node.right
    if isinstance(right, ListLit) and all(isinstance(i, Lit) for i in right.items):
        values = [i.value for i in right.items if isinstance(i, Lit)]
        kinds = {type(v) for v in values}
        if kinds <= {str}:
            strings = frozenset(values)

            def in_strings(a: Any) -> bool:
                value = item(a)
                return type(value) is str and value in strings

            return in_strings
        if kinds == {int} and all(-_EXACT <= v <= _EXACT for v in values):
            numbers = frozenset(values)

            def in_numbers(a: Any) -> bool:
                value = item(a)
                kind = type(value)
                return (kind is int or kind is float) and value in numbers

            return in_numbers
        if kinds == {float}:
            doubles = frozenset(values)

            def in_doubles(a: Any) -> bool:
                value = item(a)
                kind = type(value)
                if kind is int:
                    value = _double(value)
                    return type(value) is float and value in doubles
                return kind is float and value in doubles

            return in_doubles
    container = compile_node(right)
    member = runtime.member
    return lambda a: member(item(a), container(a))


# --------------------------------------------------------------------------------- functions


def call(node: Call, compile_node: Compile) -> Fn:
    name = node.function
    function = extensions.lookup(name, node.target is not None)
    if function is not None:
        return _extension(function.impl, node, compile_node)
    if node.target is None:
        operand, args = compile_node(node.args[0]), node.args[1:]
    else:
        operand, args = compile_node(node.target), node.args
    if name == "size":
        size = runtime.size

        def size_(a: Any) -> int:
            value = operand(a)
            kind = type(value)
            if kind is str or kind is list or kind is dict:
                return len(value)
            return size(value)

        return size_
    argument = args[0]
    general = _STRING_FUNCTIONS[name]
    if isinstance(argument, Lit) and type(argument.value) is str:
        return _string_literal(name, operand, argument.value, general)
    arg = compile_node(argument)
    return lambda a: general(operand(a), arg(a))


def _extension(impl: Callable[..., Any], node: Call, compile_node: Compile) -> Fn:
    """An extension function over compiled operands; unrolled for up to three of them.

    With only literal operands (`cidr("10.0.0.0/8")`) the call runs once, now: every
    extension is a pure function, and parsing a constant network on each request is waste.
    """
    if all(isinstance(n, Lit) for n in node.children()):
        try:
            constant = impl(*[n.value for n in node.children() if isinstance(n, Lit)])
        except CelEvalError as exc:
            message = exc.message

            def failing(a: Any) -> Any:
                raise CelEvalError(message)  # a fresh one: a re-raised instance grows its traceback

            return failing
        if type(constant) is not list and type(constant) is not dict:  # callers may keep those
            return lambda a: constant
    operands = tuple(compile_node(n) for n in node.children())
    if len(operands) == 0:
        return lambda a: impl()
    if len(operands) == 1:
        (f0,) = operands
        return lambda a: impl(f0(a))
    if len(operands) == 2:
        f0, f1 = operands
        return lambda a: impl(f0(a), f1(a))
    if len(operands) == 3:
        f0, f1, f2 = operands
        return lambda a: impl(f0(a), f1(a), f2(a))
    return lambda a: impl(*[f(a) for f in operands])


_STRING_FUNCTIONS: dict[str, Callable[[Any, Any], bool]] = {
    "contains": runtime.str_contains,
    "startsWith": runtime.starts_with,
    "endsWith": runtime.ends_with,
    "matches": runtime.matches,
}


def _string_literal(name: str, operand: Fn, const: str, general: Callable[[Any, Any], bool]) -> Fn:
    if name == "matches":
        search = runtime.regex(const).search

        def matches(a: Any) -> bool:
            value = operand(a)
            if type(value) is str:
                return search(value) is not None
            raise no_overload(name, value, const)

        return matches
    test: Callable[[str], bool]
    if name == "contains":
        test = lambda value: const in value  # noqa: E731
    elif name == "startsWith":
        test = lambda value: value.startswith(const)  # noqa: E731
    else:
        test = lambda value: value.endswith(const)  # noqa: E731
    return _string_test(name, operand, const, test)


def _string_test(name: str, operand: Fn, const: str, test: Callable[[str], bool]) -> Fn:
    def string_test(a: Any) -> bool:
        value = operand(a)
        if type(value) is str:
            return test(value)
        raise no_overload(name, value, const)

    return string_test


# ------------------------------------------------------------------------------------ macros


class _Scope(dict[str, Any]):
    """A macro's variable on top of the enclosing activation, without copying it."""

    __slots__ = ("parent",)

    def __init__(self, parent: Any) -> None:
        super().__init__()
        self.parent = parent

    def __missing__(self, key: str) -> Any:
        return self.parent[key]


def _items(value: Any, macro: str) -> Any:
    kind = type(value)
    if kind is list or kind is dict:  # a map's comprehension ranges over its keys
        return value
    raise no_overload(macro, value)


def _pairs(value: Any, macro: str) -> Any:
    """(index, element) of a list or (key, value) of a map, for two-variable comprehensions."""
    kind = type(value)
    if kind is list:
        return enumerate(value)
    if kind is dict:
        return value.items()
    raise no_overload(macro, value)


def _two_variable(node: Comprehension, compile_node: Compile) -> Fn:
    """cel-go's two-variable macros: all/exists/existsOne(i, v, p), transformList and
    transformMap(k, v, [filter,] e); the same error rules as the one-variable forms."""
    target = compile_node(node.target)
    var = node.var
    var2 = node.var2 or ""  # set: the caller checked
    body = compile_node(node.args[-1])
    macro = node.macro

    if macro == "exists" or macro == "all":
        decisive = macro == "exists"
        neutral = not decisive

        def quantifier(a: Any) -> bool:
            scope = _Scope(a)
            error: CelEvalError | None = None
            for key, item in _pairs(target(a), macro):
                scope[var] = key
                scope[var2] = item
                try:
                    value = body(scope)
                except CelEvalError as exc:
                    error = error or exc
                    continue
                if value is decisive:
                    return decisive is True
                if value is not neutral and error is None:
                    error = no_overload(macro, value)
            if error is not None:
                raise error
            return neutral

        return quantifier

    if macro == "exists_one":

        def exists_one(a: Any) -> bool:
            scope = _Scope(a)
            count = 0
            for key, item in _pairs(target(a), "existsOne"):
                scope[var] = key
                scope[var2] = item
                value = body(scope)
                if value is True:
                    count += 1
                elif value is not False:
                    raise no_overload("existsOne", value)
            return count == 1

        return exists_one

    keep = compile_node(node.args[0]) if len(node.args) == 2 else None
    as_map = macro == "transformMap"

    def transform(a: Any) -> Any:
        scope = _Scope(a)
        out_list: list[Any] = []
        out_map: dict[Any, Any] = {}
        for key, item in _pairs(target(a), macro):
            scope[var] = key
            scope[var2] = item
            if keep is not None:
                wanted = keep(scope)
                if wanted is False:
                    continue
                if wanted is not True:
                    raise no_overload(macro, wanted)
            if as_map:
                out_map[key] = body(scope)
            else:
                out_list.append(body(scope))
        return out_map if as_map else out_list

    return transform


def _optional_map(node: Comprehension, compile_node: Compile) -> Fn:
    """`o.optMap(x, e)`: none stays none, else optional.of(e); `optFlatMap` wants e optional."""
    target = compile_node(node.target)
    var = node.var
    body = compile_node(node.args[-1])
    flat = node.macro == "optFlatMap"

    def optional_map(a: Any) -> Any:
        value = target(a)
        if type(value) is not runtime.OptionalValue:
            raise no_overload(node.macro, value)
        if not value.has:
            return runtime.NONE
        scope = _Scope(a)
        scope[var] = value.value
        result = body(scope)
        if not flat:
            return runtime.OptionalValue(True, result)
        if type(result) is not runtime.OptionalValue:
            raise no_overload(node.macro, result)
        return result

    return optional_map


def comprehension(node: Comprehension, compile_node: Compile) -> Fn:
    if node.var2 is not None:
        return _two_variable(node, compile_node)
    if node.macro in ("optMap", "optFlatMap"):
        return _optional_map(node, compile_node)
    target = compile_node(node.target)
    var = node.var
    body = compile_node(node.args[-1])
    macro = node.macro

    if macro == "exists" or macro == "all":
        decisive = macro == "exists"  # the value that ends the loop: true for exists
        neutral = not decisive

        def quantifier(a: Any) -> bool:
            items = _items(target(a), macro)
            scope = _Scope(a)
            error: CelEvalError | None = None
            for item in items:
                scope[var] = item
                try:
                    value = body(scope)
                except CelEvalError as exc:
                    error = error or exc
                    continue
                if value is decisive:
                    return value is True
                if value is not neutral and error is None:
                    error = no_overload(macro, value)
            if error is not None:
                raise error
            return neutral

        return quantifier

    if macro == "exists_one":

        def exists_one(a: Any) -> bool:
            items = _items(target(a), macro)
            scope = _Scope(a)
            count = 0
            for item in items:
                scope[var] = item
                value = body(scope)
                if value is True:
                    count += 1
                elif value is not False:
                    raise no_overload(macro, value)
            return count == 1

        return exists_one

    keep = compile_node(node.args[0]) if macro == "filter" or len(node.args) == 2 else None
    transform = None if macro == "filter" else body

    def collect(a: Any) -> list[Any]:
        items = _items(target(a), macro)
        scope = _Scope(a)
        out: list[Any] = []
        for item in items:
            scope[var] = item
            if keep is not None:
                wanted = keep(scope)
                if wanted is False:
                    continue
                if wanted is not True:
                    raise no_overload(macro, wanted)
            out.append(item if transform is None else transform(scope))
        return out

    return collect
