"""Unit tests of cxpolicy.cel: each construct, its errors, `render` and `fields`.

Expected values follow the CEL language definition; where cel-python 0.5 answers otherwise
the case is marked with its entry in docs/cel.md ("Divergences").
"""

from __future__ import annotations

import contextlib
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from cxpolicy.cel import CelEvalError, CelSyntaxError, Expression, compile_expression

ERROR = object()  # the expected outcome "evaluation fails"

REQUEST: dict[str, Any] = {
    "action": "refund.execute",
    "channel": "chat",
    "actor": {"kind": "ai", "id": "agent-42", "roles": ["tier1", "supervisor"]},
    "customer": {"id": "C-1009", "segment": "premium", "risk_tier": "high", "region": "IN"},
    "data_classes": ["card_pan"],
    "context": {
        "amount": 12000,
        "price": 499.5,
        "currency": "INR",
        "otp_verified": False,
        "note": None,
        "tags": {"vip": True, "limit": 3},
        "scores": [3, 1.5, 7],
    },
    "payload": {"text": "My card 4111 1111 1111 1111 was charged twice"},
}


def outcome(text: str, activation: dict[str, Any] | None = None) -> Any:
    result = compile_expression(text).evaluate(REQUEST if activation is None else activation)
    return ERROR if isinstance(result, CelEvalError) else result


def check(text: str, expected: Any, activation: dict[str, Any] | None = None) -> None:
    got = outcome(text, activation)
    if expected is ERROR:
        assert got is ERROR, f"{text} should fail, gave {got!r}"
        return
    assert got is not ERROR, f"{text} failed"
    # `type` too: CEL keeps 1, 1.0 and true apart even where Python's == does not.
    assert (type(got), got) == (type(expected), expected), text


# ------------------------------------------------------------------------------ interface


def test_interface_of_a_compiled_expression() -> None:
    expr = compile_expression("context.amount <= 500 && customer.risk_tier == 'low'")
    assert isinstance(expr, Expression)
    assert expr.text == "context.amount <= 500 && customer.risk_tier == 'low'"
    assert expr.compiled is True
    assert expr.fields == frozenset({"context.amount", "customer.risk_tier"})
    assert expr(REQUEST) is False
    assert expr.evaluate(REQUEST) is False
    assert expr({"context": {"amount": 499.5}, "customer": {"risk_tier": "low"}}) is True


def test_call_raises_and_evaluate_returns_the_error() -> None:
    expr = compile_expression("context.missing > 1")
    with pytest.raises(CelEvalError) as raised:
        expr(REQUEST)
    assert raised.value.field == "context.missing"
    assert "context.missing" in raised.value.message
    returned = expr.evaluate(REQUEST)
    assert isinstance(returned, CelEvalError)
    assert returned.field == "context.missing"


@pytest.mark.parametrize("activation", [None, [], "text", 42, {"context": object()}])
def test_only_cel_eval_error_escapes_whatever_the_activation(activation: Any) -> None:
    for text in ("context.amount > 1", "has(context.amount)", "context.xs.exists(x, x)", "1u"):
        expr = compile_expression(text)
        with contextlib.suppress(CelEvalError):
            expr(activation)
        assert expr.evaluate(activation) is not None


def test_deep_nesting_is_a_syntax_or_evaluation_error_never_a_crash() -> None:
    text = "(" * 400 + "context.amount" + ")" * 400 + " > 1"
    try:
        expr = compile_expression(text)
    except CelSyntaxError:
        return
    assert expr(REQUEST) is True


def test_an_expression_is_safe_to_share_between_threads() -> None:
    # Macro variables live in a per-call scope, so concurrent calls cannot see each other's.
    expr = compile_expression("xs.filter(x, x % 2 == 0).map(x, x * n)")
    barrier = threading.Barrier(8)

    def wrong_answers(n: int) -> int:
        barrier.wait()
        expected = [x * n for x in range(0, 50, 2)]
        return sum(expr({"xs": list(range(50)), "n": n}) != expected for _ in range(300))

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(wrong_answers, range(8))) == [0] * 8


def test_results_are_fresh_values() -> None:
    expr = compile_expression("[1, 2]")
    first = expr({})
    first.append(3)
    assert expr({}) == [1, 2]


# --------------------------------------------------------------------------- syntax errors


@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [
        ("1 +", 1, 4, "unexpected end of expression"),
        ("context.amount > ", 1, 18, "unexpected end of expression"),
        ("a ) b", 1, 3, "unexpected `)`"),
        ("a # b", 1, 3, "unexpected character '#'"),
        ("a &&\n  b ||\n  c c", 3, 5, "unexpected `c`"),
        ("", 1, 1, "unexpected end of expression"),
        ("lowerAscii(x)", 1, 1, "`lowerAscii` is called as `x.lowerAscii(...)`"),
        ("x.lowerAscii(1)", 1, 1, "`lowerAscii` takes 0 arguments, not 1"),
        ("math.greatest()", 1, 1, "`math.greatest` takes at least 1 argument"),
        ("x.upperCase()", 1, 3, "unknown function `upperCase`"),
        ("x.frobnicate()", 1, 3, "unknown function `frobnicate`"),
        ("has(x)", 1, 1, "`has` takes one field selection"),
        ("has(x[0])", 1, 1, "`has` takes one field selection"),
        ("xs.exists(x.y, true)", 1, 11, "a macro variable must be a simple name"),
        ("xs.all(x)", 1, 1, "`all` takes 2 or 3 arguments, not 1"),
        ('"abc".contains()', 1, 1, "`contains` takes 1 arguments, not 0"),
        ("size(a, b)", 1, 1, "`size` takes 1 arguments, not 2"),
        ("9223372036854775808 > 1", 1, 1, "outside the int64 range"),
        ('x.matches("[")', 1, 1, "invalid regular expression"),
    ],
)
def test_syntax_errors_have_a_message_and_a_position(text: str, line: int, col: int, message: str) -> None:
    with pytest.raises(CelSyntaxError) as raised:
        compile_expression(text)
    assert message in raised.value.message
    assert (raised.value.line, raised.value.col) == (line, col)


def test_the_most_negative_int_is_a_valid_literal() -> None:
    check("-9223372036854775808 < 0", True)
    check("-(-9223372036854775808)", ERROR)  # negating it overflows


# ---------------------------------------------------------------------------------- fields


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("action", "refund.execute"),
        ("context.amount", 12000),
        ('context["amount"]', 12000),
        ("context.tags.limit", 3),
        ('context["tags"]["vip"]', True),
        ("context.note", None),
        ("actor.roles[1]", "supervisor"),
        ("context.scores[1]", 1.5),
        ("{'a': {'b': 2}}.a.b", 2),
        ("[{'a': 1}][0].a", 1),
        ("context.missing", ERROR),
        ("context.tags.missing", ERROR),
        ("nowhere", ERROR),
        ("nowhere.x", ERROR),
        ("context.amount.x", ERROR),
        ("context.note.x", ERROR),
        ("actor.roles.x", ERROR),
        ("actor.roles[2]", ERROR),
        ("actor.roles[-1]", ERROR),  # D9: no negative positions
        ("actor.roles[true]", ERROR),  # D9: a bool is not a position
        ("actor.roles[1.0]", "supervisor"),  # cel-spec: a double with an int value is a position
        ("actor.roles[0.5]", ERROR),
        ("customer.region[0]", ERROR),  # D9: strings are not indexable
        ("context[1]", ERROR),
    ],
)
def test_field_access(text: str, expected: Any) -> None:
    check(text, expected)


def test_missing_fields_are_named_in_the_error() -> None:
    cases = {
        "context.missing": "context.missing",
        "context.tags.missing.deeper": "context.tags.missing",
        "nowhere.x": "nowhere",
        "context.amount.x": "context.amount.x",
    }
    for text, field in cases.items():
        error = compile_expression(text).evaluate(REQUEST)
        assert isinstance(error, CelEvalError)
        assert error.field == field, text


# -------------------------------------------------------------------------------- literals


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", 42),
        ("-7", -7),
        ("0x1F", 31),
        ("-0x10", -16),
        ("010", 10),
        ("2.5", 2.5),
        ("1e3", 1000.0),
        (".5", 0.5),
        ('"a\\tb"', "a\tb"),
        ("'it\\'s'", "it's"),
        ('"\\u00e9\\x41\\101"', "éAA"),
        ('r"\\d+"', "\\d+"),
        ('"""two\nlines"""', "two\nlines"),
        ("true", True),
        ("false", False),
        ("null", None),
        ("[1, 'a', null]", [1, "a", None]),
        ("[]", []),
        ("{'a': 1, 'b': [true]}", {"a": 1, "b": [True]}),
        ("{}", {}),
        ("{'a': 1, 'a': 2}", ERROR),
        ("[1, context.missing]", ERROR),
        ("{'a': context.missing}", ERROR),
    ],
)
def test_literals(text: str, expected: Any) -> None:
    check(text, expected)


# ----------------------------------------------------------------------------- comparisons


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("context.amount > 1000", True),
        ("1000 < context.amount", True),
        ("context.price <= 500", True),  # D1: int and double compare by value
        ("500 >= context.price", True),  # D1: in either order
        ("context.price < 499", False),
        ("1 == 1.0", True),  # D1
        ("1.0 != 1", False),  # D1
        ("9007199254740993 == 9007199254740992.0", True),  # cel-spec: an int meets a double as a double
        ("9007199254740993 == 9007199254740992", False),  # int with int stays exact
        ("9007199254740993 > 9007199254740992.0", False),
        ("2 < 2.5 && 2.5 < 3", True),
        ("true == 1", False),  # D2: bool is not a number
        ("1 == true", False),  # D2
        ("context.otp_verified == 0", False),  # D2
        ("'low' == 30", False),  # D2: other types are unequal, not an error
        ("'low' != 30", True),  # D2
        ("context.note == null", True),
        ("context.amount == null", False),  # D2
        ("context.amount != null", True),  # D2
        ("null == null", True),
        ("[1, 2] == [1, 2.0]", True),  # D1 inside lists
        ("[1, 'a'] == [1, 2]", False),  # D2 inside lists
        ("[true] == [1]", False),
        ("{'a': 1} == {'a': 1.0}", True),
        ("{'a': 1} != {'a': 'x'}", True),  # D2 inside maps
        ("{'a': 1} == {'b': 1}", False),
        ("customer.region == 'IN'", True),
        ("'a' < 'b'", True),
        ("'B' < 'a'", True),  # by code point
        ("false < true", True),
        ("'low' < 30", ERROR),  # ordering needs comparable types
        ("true < 2", ERROR),  # D3
        ("2 > true", ERROR),  # D3
        ("null < 1", ERROR),
        ("[1] < [2]", ERROR),
        ("context.missing == 1", ERROR),
    ],
)
def test_comparisons(text: str, expected: Any) -> None:
    check(text, expected)


def test_nan_is_unequal_to_everything_and_unordered() -> None:
    nan = {"x": math.nan}
    check("x == x", False, nan)
    check("x != x", True, nan)
    check("x < 1 || x >= 1", False, nan)
    check("[x] == [x]", False, nan)
    check("x in [x]", False, nan)


# ---------------------------------------------------------------------------------- logic


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("false && context.missing", False),
        ("context.missing && false", False),  # commutative: the error is absorbed
        ("true && context.missing", ERROR),
        ("context.missing && true", ERROR),
        ("true || context.missing", True),
        ("context.missing || true", True),
        ("false || context.missing", ERROR),
        ("context.missing || context.other", ERROR),
        ("1 && false", False),  # a non-bool operand is an error, absorbed like one
        ("1 && true", ERROR),  # D7: cel-python returns 1
        ("true && 1", ERROR),
        ("'x' || true", True),
        ("'x' || false", ERROR),
        ("true && true && context.missing && false", False),
        ("context.a || context.b || context.c || true", True),
        ("true && true && true", True),
        ("false || false || false", False),
        ("!context.otp_verified", True),
        ("!!true", True),
        ("!1", ERROR),
        ("!context.missing", ERROR),
        ("true ? 1 : context.missing", 1),  # only the chosen branch runs
        ("false ? context.missing : 'b'", "b"),
        ("1 ? 1 : 2", ERROR),
        ("context.missing ? 1 : 2", ERROR),
        ("context.amount > 500 ? 'big' : 'small'", "big"),
    ],
)
def test_logic(text: str, expected: Any) -> None:
    check(text, expected)


# ----------------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 / 2", 3),
        ("-7 / 2", -3),  # truncation toward zero
        ("7 / -2", -3),
        ("-7 % 3", -1),  # the sign of the dividend
        ("7 % -3", 1),
        ("1 / 0", ERROR),
        ("1 % 0", ERROR),
        ("9223372036854775807 + 1", ERROR),
        ("-9223372036854775808 - 1", ERROR),
        ("4611686018427387904 * 2", ERROR),
        ("-9223372036854775808 / -1", ERROR),
        ("-9223372036854775808 % -1", 0),
        ("1.5 + 1.0", 2.5),
        ("1.0 / 0.0", math.inf),
        ("-1.0 / 0.0", -math.inf),  # D5: IEEE 754
        ("1.0 / -0.0", -math.inf),  # D5
        ("5.5 % 2.0", ERROR),  # no double modulus in CEL
        ("1 + 1.0", ERROR),  # D4: no mixed arithmetic
        ("1.0 + 1", ERROR),  # D4: in either order
        ("true + true", ERROR),  # D4
        ("'a' + 'b'", "ab"),
        ("'a' + 1", ERROR),
        ("[1] + ['a']", [1, "a"]),
        ("[1] * 2", ERROR),
        ("-context.amount", -12000),
        ("-context.price", -499.5),
        ("-'a'", ERROR),
        ("-true", ERROR),
        ("context.amount * 2 > 20000", True),
    ],
)
def test_arithmetic(text: str, expected: Any) -> None:
    check(text, expected)


def test_zero_divided_by_zero_is_nan() -> None:
    result = compile_expression("0.0 / 0.0")({})  # D5: cel-python gives +inf
    assert math.isnan(result)


# ------------------------------------------------------------------------ in, has, size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("'supervisor' in actor.roles", True),
        ("'admin' in actor.roles", False),
        ("customer.region in ['IN', 'US']", True),
        ("customer.region in ['EU']", False),
        ("context.amount in ['12000']", False),
        ("1.5 in context.scores", True),
        ("3.0 in context.scores", True),  # D1
        ("context.amount in [12000.0, 1]", True),
        ("true in [1]", False),  # D2
        ("1 in [true]", False),  # D2
        ("1 in ['a']", False),  # D2: cel-python fails
        ("null in [null]", True),
        ("[1] in [[1.0]]", True),
        ("'vip' in context.tags", True),
        ("'gold' in context.tags", False),
        ("1 in context.tags", False),  # D2
        ("'a' in 'abc'", ERROR),  # D6
        ("1 in 1", ERROR),
        ("context.missing in [1]", ERROR),
        ("has(context.amount)", True),
        ("has(context.gold)", False),
        ("has(context.tags.vip)", True),
        ("has(context.note)", True),
        ('has(context["tags"].limit)', True),
        ("has(context.missing.x)", ERROR),  # D11
        ("has(context.amount.x)", ERROR),  # D11
        ("has(nowhere.x)", ERROR),  # D11
        ("size('héllo')", 5),
        ("size(actor.roles)", 2),
        ("size(context.tags)", 2),
        ("customer.region.size()", 2),
        ("size(context.note)", ERROR),  # D8: cel-python says 0
        ("size(1)", ERROR),
        ("size(context.missing)", ERROR),
    ],
)
def test_in_has_and_size(text: str, expected: Any) -> None:
    check(text, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("payload.text.contains('4111')", True),
        ("payload.text.contains(customer.region)", False),
        ("customer.segment.startsWith('pre')", True),
        ("customer.segment.startsWith(customer.region)", False),
        ("customer.segment.endsWith('mium')", True),
        ("action.endsWith(channel)", False),
        ("payload.text.matches('[0-9]{4} [0-9]{4}')", True),
        ("matches(payload.text, '^My')", True),
        ("customer.id.matches('^C-[0-9]+$')", True),
        ("customer.id.matches(customer.region)", False),
        ("'é'.matches('^.$')", True),  # RE2 matches code points
        ("customer.id.matches(context.currency + '[')", ERROR),  # a bad pattern at run time
        ("context.amount.contains('1')", ERROR),
        ("'abc'.contains(1)", ERROR),
        ("actor.roles.contains('tier1')", ERROR),  # D10: only strings have contains()
        ("context.note.startsWith('a')", ERROR),
        ("context.amount.matches('1')", ERROR),
    ],
)
def test_string_functions(text: str, expected: Any) -> None:
    check(text, expected)


# --------------------------------------------------------------------------------- macros


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("actor.roles.exists(r, r == 'supervisor')", True),
        ("actor.roles.exists(r, r == 'admin')", False),
        ("actor.roles.all(r, r.startsWith('t'))", False),
        ("actor.roles.all(r, size(r) > 3)", True),
        ("actor.roles.exists_one(r, r.contains('v'))", True),
        ("actor.roles.exists_one(r, r.contains('e'))", False),
        ("[1, 2, 3].exists_one(x, x > 1)", False),
        ("context.scores.filter(s, s > 2)", [3, 7]),
        ("context.scores.map(s, s * 2)", ERROR),  # 1.5 * 2 mixes double and int
        ("[1, 2, 3].map(x, x * 10)", [10, 20, 30]),
        ("[1, 2, 3, 4].map(x, x % 2 == 0, x * x)", [4, 16]),
        ("context.tags.all(k, k in ['vip', 'limit'])", True),  # maps range over keys
        ("context.tags.map(k, k)", ["vip", "limit"]),
        ("[[1, 2], [3]].map(xs, xs.map(x, x + 1))", [[2, 3], [4]]),
        ("[1, 2].exists(x, [3, 4].exists(y, x + y == 6))", True),
        # errors are absorbed like && and || would: one decisive element is enough
        ("[1, 'a', 3].exists(x, x == 3 && x > 2)", True),
        ("[1, 'a'].exists(x, x > 2)", ERROR),
        ("['a', 1].all(x, x > 2)", False),
        ("[1, 2].all(x, x > 0)", True),
        ("[].all(x, x > 0)", True),
        ("[].exists(x, x > 0)", False),
        ("[1, 'a'].exists_one(x, x > 0)", ERROR),
        ("[1, 'a'].filter(x, x > 0)", ERROR),
        ("[1, 'a'].map(x, x + 1)", ERROR),
        ("false && [1, 'a'].map(x, x + 1) == []", False),  # D12: absorbed
        ("[1].exists(x, x)", ERROR),  # D12: the predicate must be a bool
        ("[1, 0].filter(x, x)", ERROR),  # D12
        ("customer.region.exists(c, c == 'I')", ERROR),  # D12: strings are not ranges
        ("context.amount.all(x, true)", ERROR),  # D12
        ("context.missing.exists(x, true)", ERROR),
        # the variable shadows a request field of the same name, only inside the macro
        ("[{'amount': 1}].exists(context, context.amount == 1) && context.amount == 12000", True),
        ("actor.roles.exists(r, r == customer.segment)", False),
    ],
)
def test_macros(text: str, expected: Any) -> None:
    check(text, expected)


# -------------------------------------------------------------------------------- fallback


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1u + 2u", 3),
        ("uint(context.amount) > 10u", True),
        ("b'abc' == b'abc'", True),
        ("int('12') + 1", 13),
        ("double(context.amount) == 12000.0", True),
        ("string(context.amount) == '12000'", True),
        ("type(context.amount) == int", True),
        ('timestamp("2024-01-01T00:00:00Z") < timestamp("2025-01-01T00:00:00Z")', True),
        ('duration("1h") > duration("30m") && context.amount > 1', True),
        # the runtime's operators are used on this path too (D1, D2)
        ("1u == 1u && context.price <= 500", True),
        ("1u == 1u && 1 == 1.0", True),
        ("1u == 1u && 'low' == 30", False),
        ("1u == 1u && 'low' < 30", ERROR),
        ("1u == 1u && size(context.note) == 0", ERROR),
        ("1u < 2", True),
        ("1u + 1", ERROR),
        ("1u - 2u", ERROR),
        ("1u / 0u", ERROR),
        ("[1, 2].reduce(r, i, 0, r + i)", 3),
        ("1u == 1u && context.missing > 1", ERROR),
        ("1u == 1u && !context.missing", ERROR),
    ],
)
def test_fallback_to_cel_python(text: str, expected: Any) -> None:
    assert compile_expression(text).compiled is False
    check(text, expected)


def test_fallback_results_are_plain_python() -> None:
    result = compile_expression("{'a': [1u, 2.5, 'x', true, null]}")({})
    assert result == {"a": [1, 2.5, "x", True, None]}
    assert [type(v) for v in result["a"]] == [int, float, str, bool, type(None)]
    assert type(next(iter(result))) is str


def test_fallback_refuses_integers_outside_int64() -> None:
    expr = compile_expression("uint(context.amount) > 1u")
    with pytest.raises(CelEvalError):
        expr({"context": {"amount": 2**64}})
    # D14: the compiled path compares such a value by what it is.
    assert compile_expression("context.amount > 1")({"context": {"amount": 2**64}}) is True


def test_fallback_errors_are_short_messages() -> None:
    error = compile_expression("1u == 1u && nowhere > 1").evaluate({})
    assert isinstance(error, CelEvalError)
    assert "nowhere" in error.message
    assert "Activation" not in error.message


# ---------------------------------------------------------------------- fields and render


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("context.amount > 1 && customer.region == 'IN'", {"context.amount", "customer.region"}),
        ('context["amount"] > 1', {"context.amount"}),
        ("has(context.otp) || context.otp_verified", {"context.otp", "context.otp_verified"}),
        ("actor.roles.exists(r, r == customer.segment)", {"actor.roles", "customer.segment"}),
        ("context.xs.map(x, x.y)", {"context.xs"}),
        ("context.tags[context.key] == 1", {"context.tags", "context.key"}),
        ("size(payload)", {"payload"}),
        ("1 + 2 == 3", set()),
        ("uint(context.amount) > 1u", {"context.amount"}),
        ("[1].reduce(r, i, 0, r + i + context.k)", {"context.k"}),
    ],
)
def test_fields(text: str, fields: set[str]) -> None:
    assert compile_expression(text).fields == frozenset(fields)


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("context.amount <= 500 && customer.risk_tier == 'low'", "12000 <= 500 && \"high\" == 'low'"),
        ("context.missing > 1 || context.otp_verified", "<missing context.missing> > 1 || false"),
        ("nowhere.x == 1", "<missing nowhere> == 1"),
        ("context.amount.x == 1", "<missing context.amount.x> == 1"),
        ("context.price < 500.0 && context.note == null", "499.5 < 500.0 && null == null"),
        ("has(context.amount) && !has(context.gold)", "true && !false"),
        ("has(nowhere.x)", "<missing nowhere>"),
        ("has(context.amount.x)", "<error has(context.amount.x): context.amount is not a map>"),
        ("actor.roles.exists(r, r == 'x')", '["tier1", "supervisor"].exists(r, r == \'x\')'),
        ('context["tags"] == {}', '{"vip": true, "limit": 3} == {}'),
        ("context.amount  >\n  1000", "12000  >\n  1000"),
        ("uint(context.amount) > 1u", "uint(12000) > 1u"),
    ],
)
def test_render(text: str, rendered: str) -> None:
    assert compile_expression(text).render(REQUEST) == rendered


def test_render_shortens_long_values() -> None:
    activation = {"p": {"text": "x" * 500, "xs": list(range(100))}}
    rendered = compile_expression("p.text == '' && p.xs == []").render(activation)
    assert rendered == ('"' + "x" * 59 + "…\" == '' && [0, 1, 2, 3, 4, 5, 6, 7, …] == []")


def test_render_escapes_strings() -> None:
    rendered = compile_expression("a == 1").render({"a": 'say "hi"\n'})
    assert rendered == '"say \\"hi\\"\\n" == 1'


@pytest.mark.parametrize("activation", [None, [], "x", {"context": None}, {"context": [1]}])
def test_render_never_raises(activation: Any) -> None:
    text = "context.amount > 1 && has(context.x)"
    rendered = compile_expression(text).render(activation)
    assert rendered.startswith("<missing context")
