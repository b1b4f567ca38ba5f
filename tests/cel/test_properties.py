"""The compiled fast path against cel-python, the oracle, on random expressions and requests.

Expressions come from a grammar of the compiled subset (fields, literals, arithmetic,
comparisons, `in`, `&&`/`||`/`!`, `?:`, `has`, `size`, string functions, indexing, list and
map literals, the five macros); requests mix missing fields, nulls, wrong types, int and
double, int64 edges, NaN and infinities. Errors compare as "both error".

The oracle is cel-python 0.5 with the divergences documented in docs/cel.md ("Divergences")
patched to follow the CEL definition, each patch below naming its entry (D1, D2, ...).
A patch falls back to cel-python's own result except in its documented case, and records
its tag when it changes the outcome. So the test asserts two things:

* the fast path equals the patched oracle, always;
* where no documented divergence was involved, it equals unpatched cel-python.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import celpy
import lark
import pytest
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError, Evaluator, base_functions
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from cxpolicy.cel import CelEvalError, compile_expression
from cxpolicy.cel import syntax as cel_syntax
from cxpolicy.cel.fallback import Fallback

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

INT_MIN, INT_MAX = -(2**63), 2**63 - 1

# ------------------------------------------------------------------------------ the oracle

DIVERGED: set[str] = set()


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, (bool, celtypes.BoolType)):
        return "bool"
    if isinstance(v, celtypes.UintType):
        return "uint"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "double"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bytes):
        return "bytes"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "map"
    return type(v).__name__


NUMERIC = {"int", "uint", "double"}


def _stock(name: str, *args: Any) -> Any:
    """cel-python's own function, with Python errors turned into error values as it does."""
    try:
        return base_functions[name](*args)
    except Exception as exc:
        return CELEvalError("stock error", type(exc), exc.args)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, CELEvalError) or isinstance(b, CELEvalError):
        return isinstance(a, CELEvalError) and isinstance(b, CELEvalError)
    return norm(a) == norm(b)


def _patched(tag: str, spec: Any, stock: Any) -> Any:
    if not _same(spec, stock):
        DIVERGED.add(tag)
    return spec


def ref_equals(a: Any, b: Any) -> bool:
    """CEL heterogeneous equality, written plainly (not the engine's runtime.equals)."""
    ka, kb = _kind(a), _kind(b)
    if ka in NUMERIC and kb in NUMERIC:
        return _number(a) == _number(b)  # Python compares int with float exactly
    if ka != kb:
        return False
    if ka == "list":
        return len(a) == len(b) and all(ref_equals(x, y) for x, y in zip(a, b, strict=True))
    if ka == "map":
        return set(a) == set(b) and all(ref_equals(a[k], b[k]) for k in a)
    return bool(a == b)


def _number(v: Any) -> int | float:
    return float(v) if isinstance(v, float) else int(v)


def _has_error(*args: Any) -> Any:
    return next((a for a in args if isinstance(a, CELEvalError)), None)


def patch_eq(negate: bool) -> Callable[[Any, Any], Any]:
    name = "_!=_" if negate else "_==_"

    def eq(a: Any, b: Any) -> Any:
        stock = _stock(name, a, b)
        if (error := _has_error(a, b)) is not None:
            return error
        if _kind(a) == _kind(b) not in ("list", "map"):
            return stock  # one scalar type: cel-python is right
        # D1 numbers across types by value; D2 other types are unequal rather than an error,
        # and lists/maps compare their elements the same way.
        spec = celtypes.BoolType(ref_equals(a, b) != negate)
        return _patched("D1/D2 equality", spec, stock)

    return eq


def patch_order(name: str) -> Callable[[Any, Any], Any]:
    def order(a: Any, b: Any) -> Any:
        stock = _stock(name, a, b)
        if (error := _has_error(a, b)) is not None:
            return error
        ka, kb = _kind(a), _kind(b)
        if ka in NUMERIC and kb in NUMERIC and ka != kb:  # D1: by value, in either order
            x, y = _number(a), _number(b)
            python = {"_<_": x < y, "_<=_": x <= y, "_>_": x > y, "_>=_": x >= y}[name]
            spec = celtypes.BoolType(python)
            return _patched("D1 ordering", spec, stock)
        if ka != kb:  # D3: bool is not a number, so `true < 2` is an error in either order
            return _patched("D3 ordering", CELEvalError("no overload"), stock)
        return stock

    return order


def patch_arithmetic(name: str) -> Callable[[Any, Any], Any]:
    def arithmetic(a: Any, b: Any) -> Any:
        stock = _stock(name, a, b)
        if (error := _has_error(a, b)) is not None:
            return error
        ka, kb = _kind(a), _kind(b)
        if ka != kb or ka == "bool":  # D4: no mixed types (`1.0 + 1`), no bools (`true + true`)
            return _patched("D4 arithmetic types", CELEvalError("no overload"), stock)
        if name == "_%_" and ka == "double":  # D4: cel-spec defines % for int and uint only
            return _patched("D4 double modulo", CELEvalError("no overload"), stock)
        if name == "_/_" and ka == "double" and b == 0.0:  # D5: IEEE 754 division by zero
            spec = math.nan if a == 0.0 or a != a else math.copysign(math.inf, a) * math.copysign(1.0, b)
            return _patched("D5 double division", celtypes.DoubleType(spec), stock)
        return stock

    return arithmetic


def patch_in(item: Any, container: Any) -> Any:
    stock = _stock("_in_", item, container)
    if (error := _has_error(item, container)) is not None:
        return error
    kc = _kind(container)
    if kc == "list":  # D2: membership uses heterogeneous equality
        spec: Any = celtypes.BoolType(any(ref_equals(item, e) for e in container))
    elif kc == "map":
        spec = celtypes.BoolType(any(ref_equals(item, k) for k in container))
    else:  # D6: `in` on a string is not CEL (cel-python tests substrings)
        spec = CELEvalError("no overload")
    return _patched("D2/D6 in", spec, stock)


def patch_logic(decisive: bool) -> Callable[[Any, Any], Any]:
    name = "_||_" if decisive else "_&&_"

    def logic(a: Any, b: Any) -> Any:
        stock = _stock(name, a, b)
        is_bool = [_kind(v) == "bool" for v in (a, b)]
        if any(ok and bool(v) is decisive for ok, v in zip(is_bool, (a, b), strict=True)):
            spec: Any = celtypes.BoolType(decisive)
        elif all(is_bool):
            spec = celtypes.BoolType(not decisive)
        else:  # D7: a non-bool operand is an error, not the result
            spec = _has_error(a, b) or CELEvalError("no overload")
        return _patched("D7 logic", spec, stock)

    return logic


def patch_size(value: Any) -> Any:
    stock = _stock("size", value)
    if (error := _has_error(value)) is not None:
        return error
    if _kind(value) in ("string", "bytes", "list", "map"):
        return stock
    return _patched("D8 size", CELEvalError("no overload"), stock)  # D8: size(null)


def patch_index(container: Any, key: Any) -> Any:
    stock = _stock("_[_]", container, key)
    if (error := _has_error(container, key)) is not None:
        return error
    kc, kk = _kind(container), _kind(key)
    if kc == "list":  # D9: no negative, bool or out-of-range positions
        if kk in ("int", "uint") and 0 <= key < len(container):
            return stock
        return _patched("D9 index", CELEvalError("bad index"), stock)
    if kc == "map":
        return stock
    return _patched("D9 index", CELEvalError("no overload"), stock)  # D9: "abc"[0]


def patch_contains(container: Any, item: Any) -> Any:
    stock = _stock("contains", container, item)
    if (error := _has_error(container, item)) is not None:
        return error
    if _kind(container) == "string":
        return stock
    return _patched("D10 contains", CELEvalError("no overload"), stock)  # D10: lists, maps


PATCHES: dict[str, Callable[..., Any]] = {
    "_==_": patch_eq(False),
    "_!=_": patch_eq(True),
    **{name: patch_order(name) for name in ("_<_", "_<=_", "_>_", "_>=_")},
    **{name: patch_arithmetic(name) for name in ("_+_", "_-_", "_*_", "_/_", "_%_")},
    "_in_": patch_in,
    "_&&_": patch_logic(False),
    "_||_": patch_logic(True),
    "size": patch_size,
    "_[_]": patch_index,
    "contains": patch_contains,
}


class SpecEvaluator(Evaluator):
    """cel-python's evaluator with has(), macros and map literals patched (D11 to D13)."""

    def sub_evaluator(self, ast: lark.Tree) -> Evaluator:
        return SpecEvaluator(ast, activation=self.activation)

    def macro_has_eval(self, exprlist: lark.Tree) -> Any:
        stock = super().macro_has_eval(exprlist)
        select = next(t for t in exprlist.iter_subtrees_topdown() if t.data == "member_dot")
        operand_tree, name = select.children
        operand = self.visit(operand_tree)
        # D11: has() on a missing or non-map operand is an error, not false.
        if isinstance(operand, CELEvalError):
            spec: Any = operand
        elif isinstance(operand, dict):
            spec = celtypes.BoolType(str(name) in operand)
        else:
            spec = CELEvalError("has() on a non-map")
        return _patched("D11 has", spec, stock)

    def mapinits(self, tree: lark.Tree) -> Any:
        stock = super().mapinits(tree)
        errors = [v for v in stock.values() if isinstance(v, CELEvalError)]
        # D13: a map literal with a failing value is an error; cel-python stores the error.
        return _patched("D13 map literal", errors[0], stock) if errors else stock

    def member_dot_arg(self, tree: lark.Tree) -> Any:
        method = str(tree.children[1])
        if method not in ("all", "exists", "exists_one", "filter", "map"):
            return super().member_dot_arg(tree)
        target = self.visit(tree.children[0])
        args = [c for c in tree.children[2].children if isinstance(c, lark.Tree)]
        if method == "map" and len(args) == 3:
            # D12: the three-argument map (filter, then transform) is CEL; cel-python crashes.
            DIVERGED.add("D12 three-argument map")
            return self._map_filter(target, args)
        try:
            stock = super().member_dot_arg(tree)
        except Exception as exc:
            # D12: an error inside map/filter/exists_one is the macro's value, which `&&`,
            # `||` and `?:` may absorb; cel-python raises it past them (and crashes with a
            # Python TypeError on a number as the target).
            DIVERGED.add("D12 macro error escapes")
            stock = exc if isinstance(exc, CELEvalError) else CELEvalError("crash", type(exc))
        if not isinstance(target, CELEvalError) and _kind(target) not in ("list", "map"):
            # D12: a macro over a string (or number) is an error; cel-python iterates chars.
            return _patched("D12 macro target", CELEvalError("no overload"), stock)
        return stock

    def _map_filter(self, target: Any, args: list[lark.Tree]) -> Any:
        if isinstance(target, CELEvalError):
            return target
        if _kind(target) not in ("list", "map"):
            return CELEvalError("no overload")
        var = str(next(args[0].find_data("ident")).children[0])
        keep, transform = self.sub_evaluator(args[1]), self.sub_evaluator(args[2])
        out = []
        for item in target:
            try:
                wanted = keep.evaluate({var: item})
                if _kind(wanted) != "bool":
                    return CELEvalError("no overload")
                if wanted:
                    out.append(transform.evaluate({var: item}))
            except CELEvalError as exc:
                return exc
        return celtypes.ListType(out)


class SpecRunner(celpy.InterpretedRunner):
    def evaluate(self, context: Any) -> Any:
        return SpecEvaluator(ast=self.ast, activation=self.new_activation()).evaluate(context)


STOCK = celpy.Environment()
SPEC = celpy.Environment(runner_class=SpecRunner)


@functools.lru_cache(maxsize=4096)
def _programs(text: str) -> tuple[Any, Any]:
    ast = STOCK.compile(text)
    return STOCK.program(ast), SPEC.program(ast, functions=PATCHES)


def oracle(text: str, activation: dict[str, Any], patched: bool) -> Any:
    program = _programs(text)[1 if patched else 0]
    try:
        return ("value", norm(program.evaluate({k: json_to_cel(v) for k, v in activation.items()})))
    except Exception:
        return ("error",)


def norm(v: Any) -> Any:
    """A comparable form that keeps CEL types apart (Python says True == 1 == 1.0)."""
    kind = _kind(v)
    if kind == "null":
        return ("null",)
    if kind in ("bool", "int", "uint", "string", "bytes"):
        plain = {"bool": bool, "int": int, "uint": int, "string": str, "bytes": bytes}[kind]
        return (kind, plain(v))
    if kind == "double":
        return ("double", "NaN" if v != v else float(v))
    if kind == "list":
        return ("list", tuple(norm(x) for x in v))
    if kind == "map":
        return ("map", tuple(sorted((repr(norm(k)), norm(x)) for k, x in v.items())))
    return (kind, repr(v))


def fast(expr: Any, activation: dict[str, Any]) -> Any:
    result = expr.evaluate(activation)
    if isinstance(result, CelEvalError):
        assert not result.message.startswith("internal error"), result.message
        return ("error",)
    return ("value", norm(result))


# ---------------------------------------------------------------------------- generators


def _join_any(a: str, op: str, b: str) -> str:
    return f"({a} {op} {b})"


NUMBERS = st.one_of(
    st.sampled_from([0, 1, -1, 2, 30, 500, 1000, 12000, INT_MAX, INT_MIN]),
    st.integers(min_value=INT_MIN, max_value=INT_MAX),
    st.sampled_from([0.0, -0.0, 1.0, 0.5, 2.0, 499.5, 500.0, 1e300, -2.5, math.inf, math.nan]),
    st.floats(allow_nan=False, width=32),
)
STRINGS = st.sampled_from(["", "a", "IN", "low", "high", "supervisor", "abc", "héllo", "1"])
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, STRINGS)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["a", "b", "amount"]), inner, max_size=3),
    ),
    max_leaves=8,
)
MISSING = object()


def _usually(typical: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field of its expected type most of the time, else missing or anything at all."""
    return st.one_of(*[typical] * 6, st.just(MISSING), VALUES)


def _section(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    present = st.fixed_dictionaries({k: _usually(v) for k, v in fields.items()})
    sections = present.map(lambda d: {k: v for k, v in d.items() if v is not MISSING})
    return st.one_of(*[sections] * 4, VALUES)  # VALUES: the whole section of the wrong type


ACTIVATIONS = st.fixed_dictionaries(
    {
        "context": _section(
            {
                "amount": NUMBERS,
                "limit": NUMBERS,
                "flag": st.booleans(),
                "note": STRINGS,
                "items": st.lists(st.one_of(NUMBERS, STRINGS), max_size=4),
                "meta": st.dictionaries(st.sampled_from(["a", "b"]), SCALARS, max_size=2),
            }
        ),
        "customer": _section({"tier": STRINGS, "region": STRINGS}),
        "actor": _section({"roles": st.lists(STRINGS, max_size=3), "kind": STRINGS}),
    }
)

FIELDS = [
    "context.amount",
    "context.limit",
    "context.flag",
    "context.note",
    "context.items",
    "context.meta",
    "context.meta.a",
    'context["amount"]',
    "customer.tier",
    "customer.region",
    "actor.roles",
    "actor.kind",
    "context",
]
HAS_FIELDS = ["context.amount", "context.meta.a", "customer.tier", "actor.roles", "context.nope"]
INT_LITERALS = st.one_of(
    st.sampled_from(["0", "1", "2", "-1", "500", "1000", "0x10", str(INT_MAX), str(INT_MIN)]),
    st.integers(min_value=-(10**6), max_value=10**6).map(str),
)
FLOAT_LITERALS = st.sampled_from(["0.0", "1.0", "0.5", "499.5", "500.0", "1e3", "-2.5", "1e300"])
STRING_LITERALS = st.sampled_from(['""', '"a"', "'IN'", '"low"', '"high"', '"supervisor"', '"1"'])
LITERALS = st.one_of(INT_LITERALS, FLOAT_LITERALS, STRING_LITERALS, st.sampled_from(["true", "false", "null"]))
PATTERNS = st.sampled_from(['"^a"', '"b"', '"[0-9]+"', "'^(IN|US)$'", '"é"'])
COMPARISONS = ["==", "!=", "<", "<=", ">", ">=", "in"]
# Operands that usually have the type an author would expect, so that typed comparisons
# (where int meets double, and where D1-D3 live) are common rather than drowned in errors.
NUMBER_OPERANDS = st.one_of(
    INT_LITERALS,
    FLOAT_LITERALS,
    st.sampled_from(["context.amount", "context.limit", 'context["amount"]', "context.meta.a"]),
)
STRING_OPERANDS = st.one_of(
    STRING_LITERALS, st.sampled_from(["context.note", "customer.tier", "customer.region", "actor.kind"])
)
LIST_OPERANDS = st.one_of(
    st.sampled_from(["actor.roles", "context.items", "context.meta"]),
    st.lists(st.one_of(NUMBER_OPERANDS, STRING_OPERANDS), max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
)
TYPED_COMPARISONS = st.one_of(
    st.builds(_join_any, NUMBER_OPERANDS, st.sampled_from(COMPARISONS[:6]), NUMBER_OPERANDS),
    st.builds(_join_any, STRING_OPERANDS, st.sampled_from(COMPARISONS[:6]), STRING_OPERANDS),
    st.builds(_join_any, st.one_of(NUMBER_OPERANDS, STRING_OPERANDS), st.just("in"), LIST_OPERANDS),
)
ARITHMETIC = ["+", "-", "*", "/", "%"]


def _join(op: str) -> Callable[[str, str], str]:
    return lambda a, b: f"({a} {op} {b})"


@functools.cache
def expressions(depth: int, variables: tuple[str, ...], macros: bool) -> st.SearchStrategy[str]:
    leaves = st.one_of(LITERALS, st.sampled_from(FIELDS + list(variables)))
    if depth == 0:
        return leaves
    sub = expressions(depth - 1, variables, macros)
    # Leaves dominate so that operators mostly see values rather than errors from below.
    options = [
        *[leaves] * 8,
        predicates(depth - 1, variables, macros),
        st.builds(_join_any, sub, st.sampled_from(ARITHMETIC), sub),
        st.builds(_join_any, NUMBER_OPERANDS, st.sampled_from(ARITHMETIC), NUMBER_OPERANDS),
        st.builds(lambda a: f"(-{a})", sub),
        st.builds(lambda c, a, b: f"({c} ? {a} : {b})", predicates(depth - 1, variables, macros), sub, sub),
        st.builds(lambda a: f"size({a})", sub),
        st.builds(lambda a: f"({a}).size()", sub),
        st.builds(lambda a, i: f"({a})[{i}]", sub, sub),
        st.lists(sub, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
        st.lists(st.tuples(STRING_LITERALS, sub), max_size=2).map(
            lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"
        ),
    ]
    if macros:
        var = f"v{depth}"
        body = expressions(depth - 1, (*variables, var), macros)
        pred = predicates(depth - 1, (*variables, var), macros)
        options += [
            st.builds(lambda t, b: f"({t}).map({var}, {b})", sub, body),
            st.builds(lambda t, p: f"({t}).filter({var}, {p})", sub, pred),
            st.builds(lambda t, p, b: f"({t}).map({var}, {p}, {b})", sub, pred, body),
        ]
    return st.one_of(options)


@functools.cache
def predicates(depth: int, variables: tuple[str, ...], macros: bool) -> st.SearchStrategy[str]:
    """Expressions whose value is a bool or an error: what a macro may use as its test."""
    sub = expressions(max(depth - 1, 0), variables, macros)
    has_paths = HAS_FIELDS + [f"{v}.a" for v in variables]
    options = [
        st.sampled_from(["true", "false"]),
        *[st.builds(_join_any, sub, st.sampled_from(COMPARISONS), sub)] * 2,
        *[TYPED_COMPARISONS] * 4,
        st.sampled_from(has_paths).map(lambda p: f"has({p})") if macros else st.nothing(),
        st.builds(
            lambda a, f, b: f"({a}).{f}({b})",
            st.one_of(STRING_OPERANDS, sub),
            st.sampled_from(["contains", "startsWith", "endsWith"]),
            st.one_of(STRING_OPERANDS, sub),
        ),
        st.builds(lambda a, p: f"({a}).matches({p})", st.one_of(STRING_OPERANDS, sub), PATTERNS),
    ]
    if depth > 0:
        inner = predicates(depth - 1, variables, macros)
        options += [
            st.builds(lambda p: f"!{p}", inner),
            st.builds(_join("&&"), inner, inner),
            st.builds(_join("||"), inner, inner),
        ]
        if macros:
            var = f"v{depth}"
            body = predicates(depth - 1, (*variables, var), macros)
            options.append(
                st.builds(
                    lambda t, m, p: f"({t}).{m}({var}, {p})",
                    st.one_of(
                        st.sampled_from(["actor.roles", "context.items", "context.meta"]),
                        sub,
                    ),
                    st.sampled_from(["all", "exists", "exists_one"]),
                    body,
                )
            )
    return st.one_of(options)


def conditions(with_has: bool) -> st.SearchStrategy[str]:
    """Conditions as policies write them: typed comparisons, has() and fields under && || !."""
    has = st.sampled_from(HAS_FIELDS).map(lambda p: f"has({p})") if with_has else st.nothing()
    return st.recursive(
        st.one_of(
            TYPED_COMPARISONS,
            TYPED_COMPARISONS,
            has,
            st.sampled_from(["context.flag", "context.amount", "context.note"]),  # maybe not bools
        ),
        lambda inner: st.one_of(
            st.builds(_join("&&"), inner, inner),
            st.builds(_join("||"), inner, inner),
            inner.map(lambda p: f"!{p}"),
            st.builds(lambda c, a, b: f"({c} ? {a} : {b})", inner, inner, inner),
        ),
        max_leaves=6,
    )


# Mostly conditions; the rest is any expression of the grammar.
EXPRESSIONS = st.one_of(
    conditions(True), conditions(True), predicates(3, (), True), predicates(3, (), True), expressions(3, (), True)
)
PLAIN_EXPRESSIONS = st.one_of(
    conditions(False), predicates(3, (), False), predicates(3, (), False), expressions(3, (), False)
)

PROPERTY_SETTINGS = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY_SETTINGS
@given(text=EXPRESSIONS, activations=st.lists(ACTIVATIONS, min_size=1, max_size=3))
@example(text="((0.0 + 0.0) % (0.0 + 1.0))", activations=[{"context": {"amount": 0}}])
def test_compiled_path_equals_cel_python(text: str, activations: list[dict[str, Any]]) -> None:
    expr = compile_expression(text)
    assert expr.compiled, f"the generator left the compiled subset: {text}"
    for activation in activations:
        got = fast(expr, activation)
        DIVERGED.clear()
        spec = oracle(text, activation, patched=True)
        tags = set(DIVERGED)
        for tag in tags:  # `pytest --hypothesis-show-statistics` shows how often each case ran
            event(tag)
        event("error" if got == ("error",) else "value")
        assert got == spec, f"{text}\n{activation}\nfast={got}\noracle={spec}\ntags={tags}"
        if not tags:
            stock = oracle(text, activation, patched=False)
            assert got == stock, f"{text}\n{activation}\nfast={got}\ncel-python={stock}"


@settings(PROPERTY_SETTINGS, max_examples=200)
@given(text=PLAIN_EXPRESSIONS, activations=st.lists(ACTIVATIONS, min_size=1, max_size=3))
def test_fallback_path_equals_compiled_path(text: str, activations: list[dict[str, Any]]) -> None:
    """The fallback runs cel-python with the runtime's operators, so both paths agree.

    Macros and has() are left out: cel-python hard-codes them, so in the fallback they keep
    its behaviour (docs/cel.md, D11 and D12).
    """
    expr = compile_expression(text)
    tree, _ = cel_syntax.parse(text)
    slow = Fallback(tree, expr.roots)
    for activation in activations:
        got = fast(expr, activation)
        try:
            other: Any = ("value", norm(slow(activation)))
        except CelEvalError:
            other = ("error",)
        assert got == other, f"{text}\n{activation}\ncompiled={got}\nfallback={other}"
