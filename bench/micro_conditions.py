"""Micro-benchmark of single CEL conditions: cxpolicy's compiled closures against cel-python.

Input: a few policy-shaped expressions over a sample request, and every case of the vendored
cel-spec conformance data (`tests/cel/data/cel_spec.json`) that both engines evaluate to the
same result. Output: a table on stdout (µs per evaluation, median of rounds) and, for the
sweep, how many cases the compiled path is slower on than cel-python, with the worst ratio.

    python -m bench.micro_conditions            # table + sweep (about a minute)
    python -m bench.micro_conditions --table    # the policy-shaped table only

cel-python's time includes `json_to_cel` of the activation, which any caller of it pays per
request (cxpolicy's fallback converts only the top-level fields an expression names). Where
cel-python has no such function (the extensions), the peer column says so and the fallback
is not timed: the compiled path is the only one an author's condition would take.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import celpy
from celpy.adapter import json_to_cel

from cxpolicy.cel import compile_expression

REQUEST: dict[str, Any] = {
    "action": "refund.execute",
    "actor": {"id": "agent-7", "roles": ["agent", "supervisor"]},
    "customer": {"id": "c-1", "region": "IN", "tier": "Gold"},
    "context": {"amount": 12000, "currency": "INR", "ip": "10.1.2.3", "limits": {"daily": 50000}},
    "payload": {"text": "Please REFUND my order #1234, it arrived broken"},
}

#: (expression, cel-python equivalent or None when cel-python 0.5 has no such function)
TABLE: tuple[tuple[str, str | None], ...] = (
    ('context.amount > 1000 && customer.region == "IN"',) * 2,  # type: ignore[misc]
    ('context.amount <= 1000 || "supervisor" in actor.roles',) * 2,  # type: ignore[misc]
    ('actor.roles.exists(r, r == "supervisor")',) * 2,  # type: ignore[misc]
    ('customer.tier.lowerAscii() == "gold"', None),
    ('payload.text.lowerAscii().contains("refund")', None),
    ('payload.text.split(" ").size() > 3', None),
    ("math.greatest(context.amount, context.limits.daily) == context.limits.daily", None),
    ('cidr("10.0.0.0/8").containsIP(context.ip)', None),
    ('context.?limits.?weekly.orValue(0) < context.amount', None),
    ("context.limits.all(k, v, v > context.amount)", None),
)


def _time(fn: Callable[[], Any], budget_s: float = 0.02, rounds: int = 5) -> float:
    """Median µs per call over `rounds`, each running for about `budget_s`."""
    fn()
    results = []
    for _ in range(rounds):
        n = 0
        start = time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= budget_s:
                break
        results.append(elapsed / n * 1e6)
    return statistics.median(results)


def _celpy(expr: str) -> Callable[[dict[str, Any]], Any]:
    env = celpy.Environment()
    program = env.program(env.compile(expr))

    def run(activation: dict[str, Any]) -> Any:
        return program.evaluate({k: json_to_cel(v) for k, v in activation.items()})

    return run


def table() -> None:
    print(f"{'expression':72} {'compiled':>10} {'cel-python':>12}")
    for expr, peer in TABLE:
        compiled = compile_expression(expr)
        ours = _time(lambda c=compiled: c(REQUEST))
        theirs = "n/a"
        if peer is not None:
            run = _celpy(peer)
            theirs = f"{_time(lambda r=run: r(REQUEST)):9.1f} µs"
        path = "" if compiled.compiled else " (fallback)"
        print(f"{expr:72} {ours:7.2f} µs {theirs:>12}{path}")


def sweep() -> None:
    """Every conformance case both engines agree on, timed on both; compiled and fallback
    cases counted apart (the fallback *is* cel-python's evaluator, plus the wrappers that
    give it CEL's semantics, so it cannot be faster than cel-python)."""
    from tests.cel import cel_spec

    data = cel_spec.load()["files"]
    counts = {True: [0, 0], False: [0, 0]}  # compiled? -> [compared, slower]
    worst = {True: (0.0, ""), False: (0.0, "")}
    for name, cases in data.items():
        for case in cases:
            if cel_spec.skip_reason(case) or cel_spec.deliberate(name, case):
                continue
            bindings = cel_spec._decode(case.get("bindings", {}))
            ours = cel_spec.cxpolicy_eval(case["expr"], bindings)
            theirs = cel_spec.celpy_eval(case["expr"], bindings)
            if isinstance(ours, Exception) or isinstance(theirs, Exception) or not cel_spec.same(ours, theirs):
                continue  # only cases both evaluate, to the same value, are comparable
            compiled = compile_expression(case["expr"])
            run = _celpy(case["expr"])
            # Interleaved short rounds, best of each: the machine is shared, and noise only
            # ever adds time.
            t_ours = t_theirs = float("inf")
            for _ in range(3):
                t_ours = min(t_ours, _time(lambda c=compiled, b=bindings: c.evaluate(b), 0.002, 1))
                t_theirs = min(t_theirs, _time(lambda r=run, b=bindings: r(b), 0.002, 1))
            tally = counts[compiled.compiled]
            tally[0] += 1
            ratio = t_ours / t_theirs
            if ratio > 1:
                tally[1] += 1
            if ratio > worst[compiled.compiled][0]:
                line = f"{name}: {case['expr'][:60]}  ({t_ours:.1f} µs vs {t_theirs:.1f} µs)"
                worst[compiled.compiled] = (ratio, line)
    for is_compiled, label in ((True, "compiled"), (False, "fallback")):
        compared, slower = counts[is_compiled]
        ratio, line = worst[is_compiled]
        print(f"\ncel-spec sweep, {label}: {compared} cases both engines evaluate alike;", end=" ")
        print(f"slower than cel-python on {slower}")
        print(f"  worst ratio cxpolicy/cel-python: {ratio:.3f}  {line}")


if __name__ == "__main__":
    table()
    if "--table" not in sys.argv:
        sweep()
