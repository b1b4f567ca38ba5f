"""The standard extensions beyond what cel-spec's files check: errors as values inside `&&`/`||`,
the same meaning on the compiled path and on the cel-python fallback, the bounds that keep a
request from making a condition expensive, and the combinations that cannot run at all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cxpolicy.cel import CelEvalError, CelSyntaxError, compile_expression
from cxpolicy.cel.extensions import MAX_STRING_CHARS
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.kinds import Effect
from cxpolicy.limits import MAX_CONDITION_COST, condition_cost
from tests.conftest import base_request

REQUEST: dict[str, Any] = {
    "customer": {"tier": "Gold", "region": "IN"},
    "context": {"amount": 12000, "ip": "10.1.2.3", "limits": {"daily": 50000, "weekly": 90000}},
    "payload": {"text": "  Please REFUND order 1234  "},
    "actor": {"roles": ["agent", "supervisor"]},
}


def value(text: str, activation: dict[str, Any] | None = None) -> Any:
    return compile_expression(text).evaluate(REQUEST if activation is None else activation)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('customer.tier.lowerAscii() == "gold"', True),
        ("payload.text.trim().split(' ')", ["Please", "REFUND", "order", "1234"]),
        ("payload.text.trim().substring(7, 13)", "REFUND"),
        ('payload.text.indexOf("REFUND")', 9),
        ("math.greatest(context.amount, context.limits.daily)", 50000),
        ("math.least([context.amount, 7.5])", 7.5),
        ("math.bitShiftRight(-1, 60)", 15),
        ('cidr("10.0.0.0/8").containsIP(context.ip)', True),
        ('ip(context.ip).isLoopback()', False),
        ("context.?limits.?monthly.orValue(1)", 1),
        ("context.limits.?daily.value() > context.amount", True),
        ("context.limits.all(k, v, v > context.amount)", True),
        ("context.limits.transformList(k, v, k)", ["daily", "weekly"]),
        ("actor.roles.exists(i, r, i == 1 && r == 'supervisor')", True),
        ("[?context.?missing, ?context.?amount]", [12000]),
        ('"%s owes %.2f".format([customer.tier, 1.5])', "Gold owes 1.50"),
    ],
)
def test_extension_values(text: str, expected: Any) -> None:
    got = value(text)
    assert (type(got), got) == (type(expected), expected)
    assert compile_expression(text).compiled


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('false && payload.text.charAt(999) == "x"', False),
        ("payload.text.charAt(999) == 'x' && false", False),
        ("true || math.abs(-9223372036854775808) > 0", True),
        ("math.abs(-9223372036854775808) > 0 || true", True),
        ("false && context.?amount.value().lowerAscii() == 'x'", False),
    ],
)
def test_errors_are_values_that_logic_absorbs(text: str, expected: bool) -> None:
    assert value(text) is expected


@pytest.mark.parametrize(
    "text",
    [
        "payload.text.charAt(999)",
        "context.amount.lowerAscii()",  # wrong receiver type at run time
        "math.ceil(context.amount)",  # an int is not a double
        "ip('10.1.2')",
        "cidr('10.0.0.0')",
        "context.?missing.value()",
        "math.greatest([])",
        "'%d'.format([])",
    ],
)
def test_extension_errors_are_cel_eval_errors(text: str) -> None:
    assert isinstance(value(text), CelEvalError)


def test_string_results_are_bounded() -> None:
    """A 64 KiB text replaced by itself would be gigabytes; it is an error instead."""
    text = "a" * 2000
    activation = {"payload": {"text": text}}
    got = value("payload.text.replace('a', payload.text)", activation)
    assert isinstance(got, CelEvalError) and "longer than" in got.message
    assert len(text) * len(text) > MAX_STRING_CHARS  # the case is really over the bound
    joined = value("payload.text.split('').join(payload.text)", activation)
    assert isinstance(joined, CelEvalError)
    assert value("payload.text.replace('a', 'bb', 3).size()", activation) == 2003


def test_format_and_join_refuse_huge_results_before_building_them() -> None:
    assert isinstance(value("'%.1000000000f'.format([1.5])"), CelEvalError)
    assert value("'%.2f'.format([1.5])") == "1.50"
    activation = {"actor": {"roles": ["a"] * 1000}, "payload": {"text": "x" * 5000}}
    joined = value("actor.roles.join(payload.text)", activation)
    assert isinstance(joined, CelEvalError) and "longer than" in joined.message


def test_shifts_do_not_build_huge_integers() -> None:
    assert value("math.bitShiftLeft(1, 9223372036854775807)") == 0


# Forcing the fallback: a uint literal is not compiled, so `... && 1u == 1u` runs on cel-python.
SAME_ON_BOTH_PATHS = [
    'customer.tier.upperAscii() == "GOLD"',
    "payload.text.trim().split(' ', 2) == ['Please', 'REFUND order 1234']",
    "math.greatest(context.amount, 3, 4.5) == 12000",
    "math.sign(-2.5) == -1.0",
    'cidr("10.0.0.0/8").containsIP(ip(context.ip))',
    "ip('::ffff:10.1.2.3') == ip(context.ip)",
    "'%x'.format([255]) == 'ff'",
    "strings.quote('a\"b') == '\"a\\\\\"b\"'",
    "payload.text.charAt(999) == 'x'",
]


@pytest.mark.parametrize("text", SAME_ON_BOTH_PATHS)
def test_compiled_and_fallback_agree(text: str) -> None:
    compiled = compile_expression(text)
    fallback = compile_expression(f"({text}) && 1u == 1u")
    assert compiled.compiled and not fallback.compiled
    got, other = compiled.evaluate(REQUEST), fallback.evaluate(REQUEST)
    if isinstance(got, CelEvalError):
        assert isinstance(other, CelEvalError)
    else:
        assert got is True and other is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("context.limits.all(k, v, v > 1u)", "two-variable `all` cannot be combined"),
        ("context.?limits.orValue(1u)", "optional syntax"),
        ("optional.of(1u).optMap(x, x)", "`optMap` cannot be combined"),
        ("math.abs(1, 2)", "`math.abs` takes 1 argument, not 2"),
        ("'a'.charAt()", "`charAt` takes 1 argument, not 0"),
        ("charAt('a', 1)", "`charAt` is called as `x.charAt(...)`"),
        ("size(?context)", "`?` marks an optional list element or map key only"),
        ("xs.all(x, x, true)", "two different variable names"),
        ("{1.5: 'a'}", "a map key must be a string, int, uint or bool, not double"),
    ],
)
def test_mistakes_are_compile_errors(text: str, message: str) -> None:
    with pytest.raises(CelSyntaxError) as raised:
        compile_expression(text)
    assert message in raised.value.message


def test_two_variable_comprehensions_cost_like_the_others() -> None:
    one = condition_cost("context.limits.all(k, v, v > 1)")
    nested = condition_cost("context.limits.all(k, v, context.limits.exists(k2, v2, v2 == v))")
    assert one <= MAX_CONDITION_COST < nested


def test_fields_of_extension_calls_are_collected() -> None:
    expr = compile_expression("math.greatest(context.amount, context.limits.daily) > 0 && ip(context.ip).isLoopback()")
    assert expr.fields == frozenset({"context.amount", "context.limits.daily", "context.ip"})


def test_a_failing_extension_fails_safe_in_decide(compile_policy: Callable[..., PolicySet]) -> None:
    """Attack: a request whose text makes `replace` explode must not crash or allow."""
    policy = compile_policy(
        """
        use core
        package ext.attack
        attribute context.note: string
        rule small_note {
          match  action = refund.execute
          when   context.note.replace("a", context.note).size() < 10
          decide allow
        }
        default escalate
        """
    )
    note = "a" * 5000
    decision = policy.decide(base_request(context={"note": note}))
    assert decision.effect is Effect.ESCALATE
    assert decision.errors and decision.errors[0].kind == "condition"
    assert policy.decide(base_request(context={"note": "ab"})).effect is Effect.ALLOW


def test_fields_and_render_follow_optional_steps() -> None:
    """`context.?limits.weekly` reads context.limits.weekly: lint (CXP610) and traces need it."""
    expr = compile_expression("context.?limits.?weekly.orValue(0) < context.amount")
    assert expr.fields == frozenset({"context.limits.weekly", "context.amount"})
    assert expr.render(REQUEST) == "90000.orValue(0) < 12000"
    assert expr.render({"context": {"amount": 1}}) == "<missing context.limits>.orValue(0) < 1"


def test_constant_extension_calls_are_folded_but_still_fail_per_request() -> None:
    expr = compile_expression("ip('not an ip') == ip(context.ip)")
    first, second = expr.evaluate(REQUEST), expr.evaluate(REQUEST)
    assert isinstance(first, CelEvalError) and isinstance(second, CelEvalError) and first is not second
    assert value("false && ip('not an ip') == ip(context.ip)") is False
    assert value("[1, 2].join() == ''") is not True  # a list of ints is refused, constant or not
