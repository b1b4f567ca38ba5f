"""Run an expression on cel-python's evaluator, for the constructs the compiler leaves alone.

Timestamps, durations, uint and bytes literals, conversions such as `int()` and `string()`,
and cel-python's own `reduce()`/`min()` are rare in policies; cel-python already implements
them, so they are not compiled here. Two things keep the fallback honest:

* The operators and functions whose cel-python behaviour departs from the CEL definition
  (see docs/cel.md, "Divergences") are replaced through `program(..., functions=...)` by
  wrappers around `cxpolicy.cel.runtime`, so `1 == 1.0` means the same on both paths.
  Operands of types the runtime does not model (timestamps, durations, types) are passed to
  cel-python's own function untouched.
* Every failure, including the Python exceptions cel-python lets escape on some inputs,
  leaves as a `CelEvalError`; results come back as plain JSON-like Python values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import celpy
import lark
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError, base_functions

from cxpolicy.cel import extensions, runtime
from cxpolicy.cel.errors import CelEvalError

__all__ = ["Fallback", "to_python"]

_ENVIRONMENT: celpy.Environment | None = None


def _environment() -> celpy.Environment:
    # Created on first use: most policy sets never need it (and it raises the recursion limit).
    global _ENVIRONMENT
    if _ENVIRONMENT is None:
        _ENVIRONMENT = celpy.Environment()
    return _ENVIRONMENT


class Fallback:
    """A compiled cel-python program with the same calling convention as a closure."""

    __slots__ = ("_roots", "_runner")

    def __init__(self, tree: lark.Tree[Any], roots: Iterable[str]) -> None:
        tree = _checked_calls(tree)
        # Only the functions this expression calls: cel-python re-registers every function it
        # is given on each evaluation, so the extensions would tax every fallback condition.
        called: set[str] = set()
        for node in tree.iter_subtrees():
            called.update(_OPERATOR_OF.get(node.data, ()))
            called.update(str(node.children[i]) for i in _NAME_CHILD.get(node.data, ()))
        functions = {k: v for k, v in _SPEC_FUNCTIONS.items() if k in called}
        self._runner = _environment().program(tree, functions=functions)
        # Only the request fields the expression names are converted to CEL values.
        self._roots = tuple(sorted(set(roots)))

    def __call__(self, activation: Mapping[str, Any]) -> Any:
        try:
            context = {name: json_to_cel(activation[name]) for name in self._roots if name in activation}
        except (ValueError, TypeError) as exc:
            raise CelEvalError(f"request value cannot be used in CEL: {exc}") from None
        try:
            result = self._runner.evaluate(context)
        except CELEvalError as exc:
            raise CelEvalError(_message(exc)) from None
        except Exception as exc:  # cel-python lets some type errors escape as Python errors
            raise CelEvalError(f"evaluation failed: {type(exc).__name__}: {exc}") from None
        return to_python(result)


_TOKEN = re.compile(r"Token\('RULE', '(\w+)'\)")


def _message(exc: CELEvalError) -> str:
    text = str(exc.args[0]) if exc.args else "evaluation failed"
    text = text.split(" (in activation", 1)[0]  # cel-python appends the whole activation
    return _TOKEN.sub(r"\1", text)


def to_python(value: Any) -> Any:
    """cel-python's result as plain Python: bool, int, float, str, bytes, list, dict, None."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, CELEvalError):
        raise CelEvalError(_message(value))
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, list):
        return [to_python(v) for v in value]
    if isinstance(value, dict):
        return {to_python(k): to_python(v) for k, v in value.items()}
    return value  # timestamps, durations and types stay cel-python objects


class _Foreign(Exception):
    """A value the runtime does not model; cel-python's own function handles it."""


def _to_runtime(value: Any) -> Any:
    if value is None:
        return None
    kind = type(value)
    if kind is celtypes.BoolType or kind is bool:
        return bool(value)
    if kind is celtypes.UintType:
        return runtime.Uint(value)
    if kind is celtypes.IntType or kind is int:
        return int(value)
    if kind is celtypes.DoubleType or kind is float:
        return float(value)
    if kind is celtypes.StringType or kind is str:
        return str(value)
    if kind is celtypes.BytesType or kind is bytes:
        return bytes(value)
    if kind is celtypes.ListType or kind is list:
        return [_to_runtime(v) for v in value]
    if kind is celtypes.MapType or kind is dict:
        return {_to_runtime(k): _to_runtime(v) for k, v in value.items()}
    if isinstance(value, CELEvalError):  # cel-python keeps a failed value in a map literal
        raise CelEvalError(_message(value))
    if kind in runtime.OPAQUE_TYPES:  # net.IP, net.CIDR: the runtime's own values
        return value
    raise _Foreign(kind.__name__)


def _to_cel(value: Any) -> Any:
    if value is None:
        return None
    kind = type(value)
    if kind is bool:
        return celtypes.BoolType(value)
    if kind is runtime.Uint:
        return celtypes.UintType(int(value))
    if kind is int:
        return celtypes.IntType(value)
    if kind is float:
        return celtypes.DoubleType(value)
    if kind is str:
        return celtypes.StringType(value)
    if kind is bytes:
        return celtypes.BytesType(value)
    if kind is list:
        return celtypes.ListType([_to_cel(v) for v in value])
    if kind is dict:
        return celtypes.MapType({_to_cel(k): _to_cel(v) for k, v in value.items()})
    return value


def _spec(function: Callable[..., Any], stock: Callable[..., Any]) -> Callable[..., Any]:
    def spec_function(*args: Any) -> Any:
        for arg in args:
            if isinstance(arg, CELEvalError):
                return arg
        try:
            return _to_cel(function(*[_to_runtime(arg) for arg in args]))
        except _Foreign:
            return stock(*args)
        except CelEvalError as exc:
            return CELEvalError(exc.message)

    return spec_function


def _is_bool(value: Any, truth: bool) -> bool:
    return isinstance(value, (bool, celtypes.BoolType)) and bool(value) is truth


def _logical(op: str, decisive: bool) -> Callable[[Any, Any], Any]:
    """CEL's commutative `&&`/`||`; cel-python returns a non-bool operand as the result."""

    def logical(x: Any, y: Any) -> Any:
        if _is_bool(x, decisive) or _is_bool(y, decisive):
            return celtypes.BoolType(decisive)
        if _is_bool(x, not decisive) and _is_bool(y, not decisive):
            return celtypes.BoolType(not decisive)
        for operand in (x, y):
            if isinstance(operand, CELEvalError):
                return operand
        bad = x if not _is_bool(x, not decisive) else y
        return CELEvalError(runtime.no_overload(op, _to_runtime_or_self(bad)).message)

    return logical


def _to_runtime_or_self(value: Any) -> Any:
    try:
        return _to_runtime(value)
    except _Foreign:
        return value


_OVERRIDES: dict[str, Callable[..., Any]] = {
    "_==_": runtime.equals,
    "_!=_": lambda x, y: not runtime.equals(x, y),
    "_<_": runtime.less,
    "_<=_": runtime.less_equal,
    "_>_": runtime.greater,
    "_>=_": runtime.greater_equal,
    "_in_": runtime.member,
    "_+_": runtime.add,
    "_-_": runtime.sub,
    "_*_": runtime.mul,
    "_/_": runtime.div,
    "_%_": runtime.mod,
    "-_": runtime.neg,
    "_[_]": runtime.index,
    "size": runtime.size,
    "contains": runtime.str_contains,
    "startsWith": runtime.starts_with,
    "endsWith": runtime.ends_with,
    "matches": runtime.matches,
}

_SPEC_FUNCTIONS: dict[str, Callable[..., Any]] = {
    name: _spec(function, base_functions[name]) for name, function in _OVERRIDES.items()
}


def _int(*args: Any) -> Any:
    """`int(double)`: CEL refuses doubles outside the open range (-2^63, 2^63), NaN and the
    infinities; cel-python truncates -2^63 (and bounds the rest only by Python's int)."""
    if len(args) == 1 and isinstance(args[0], celtypes.DoubleType):
        value = float(args[0])
        if not -(2.0**63) < value < 2.0**63:  # NaN fails every comparison
            return CELEvalError(f"int() range error: {value!r} is outside the int64 range")
    return base_functions["int"](*args)


#: Conversion calls routed to a checked wrapper. Renamed in the tree, not overridden by name:
#: the bare identifier `int` is also the type value (`type(x) == int`), which must stay.
_CHECKED_CALLS = {"int": "_cxp_int"}
_SPEC_FUNCTIONS["_cxp_int"] = _int


def _checked_calls(tree: lark.Tree[Any]) -> lark.Tree[Any]:
    """The tree with each `int(...)` call renamed to its checked wrapper, and each namespaced
    extension call (`math.greatest(...)`) turned into a call of the global of that dotted
    name, which cel-python would otherwise read as a method of an unknown variable `math`.
    In place: the tree is the caller's own fresh parse."""
    for node in tree.iter_subtrees():
        if node.data == "ident_arg" and node.children:
            token = node.children[0]
            if isinstance(token, lark.Token) and str(token) in _CHECKED_CALLS:
                node.children[0] = token.update(value=_CHECKED_CALLS[str(token)])
        elif node.data == "member_dot_arg":
            namespace = _bare_name(node.children[0])
            token = node.children[1]
            full = f"{namespace}.{token}"
            if str(token) == "existsOne":  # cel-go's name for cel-python's exists_one
                assert isinstance(token, lark.Token)
                node.children[1] = token.update(value="exists_one")
            elif namespace in extensions.NAMESPACES and full in extensions.FUNCTIONS:
                assert isinstance(token, lark.Token)
                node.data = "primary"  # `primary: ident_arg`, as cel-python's parser builds it
                call = lark.Tree("ident_arg", [token.update(value=full), *node.children[2:]], node.meta)
                node.children = [call]
    return tree


def _bare_name(tree: Any) -> str | None:
    while isinstance(tree, lark.Tree) and len(tree.children) == 1 and tree.data != "ident":
        tree = tree.children[0]
    if isinstance(tree, lark.Tree) and tree.data == "ident":
        return str(tree.children[0])
    return None


_SPEC_FUNCTIONS["_&&_"] = _logical("&&", False)
_SPEC_FUNCTIONS["_||_"] = _logical("||", True)

#: Where a call's function name sits among a tree node's children.
_NAME_CHILD = {"ident_arg": (0,), "member_dot_arg": (1,)}
#: The operator function each kind of tree node calls.
_OPERATOR_OF = {
    "relation_lt": ("_<_",),
    "relation_le": ("_<=_",),
    "relation_gt": ("_>_",),
    "relation_ge": ("_>=_",),
    "relation_eq": ("_==_",),
    "relation_ne": ("_!=_",),
    "relation_in": ("_in_",),
    "addition_add": ("_+_",),
    "addition_sub": ("_-_",),
    "multiplication_mul": ("_*_",),
    "multiplication_div": ("_/_",),
    "multiplication_mod": ("_%_",),
    "unary_neg": ("-_",),
    "member_index": ("_[_]",),
    "conditionaland": ("_&&_",),
    "conditionalor": ("_||_",),
}

for _function in (*extensions.FUNCTIONS.values(), *extensions.METHOD_ALIASES.values()):
    _SPEC_FUNCTIONS[_function.name] = _spec(_function.impl, lambda *args: CELEvalError("no such overload"))

