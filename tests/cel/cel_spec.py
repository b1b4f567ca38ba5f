"""Run the vendored google/cel-spec simple tests (`data/cel_spec.json`) through cxpolicy's CEL.

Input: the JSON that `convert_cel_spec.py` wrote. Output: per file, how many cases fit the JSON
request model, how many pass, and why the others were skipped. `test_cel_spec.py` holds the
pass counts to a floor; `python -m tests.cel.cel_spec [--failures] [--peer]` prints the report
(`--peer` also runs plain cel-python on the same cases, for comparison).

A case fits the JSON request model when its bindings and its expected value are JSON values
(null, bool, int, double — infinities and NaN included, they arise from arithmetic — string,
list, map with string keys). Cases that need uint or bytes results, types as values,
protobuf messages, enums, containers (proto namespaces), unknowns or disabled macros cannot
arise from a JSON request compared in a policy, and are skipped with that reason.

An expected evaluation error is met by an evaluation error or by a compile error: cxpolicy
reports conditions that can only ever fail when the policy compiles (docs/cel.md, D15).
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxpolicy.cel import CelSyntaxError, compile_expression

DATA = Path(__file__).resolve().parent / "data" / "cel_spec.json"

CORE_FILES = (
    "basic",
    "comparisons",
    "conversions",
    "fields",
    "fp_math",
    "integer_math",
    "lists",
    "logic",
    "macros",
    "parse",
    "string",
)
EXTENSION_FILES = ("string_ext", "math_ext", "optionals", "macros2", "network_ext")

#: cel-spec files not vendored at all, and why (they test protobuf messages, wrappers, enums,
#: timestamps or checker-only features that a JSON request cannot carry).
SKIPPED_FILES = {
    "bindings_ext": "cel.bind() is not a standard extension this engine offers",
    "block_ext": "cel.block is an internal optimiser form, not written by authors",
    "dynamic": "protobuf well-known types (Struct, Value, wrappers) as values",
    "encoders_ext": "base64 encoders work on bytes, which a JSON request has not",
    "enums": "protobuf enums",
    "namespace": "protobuf containers and qualified names",
    "plumbing": "checker and evaluator plumbing over protobuf types",
    "proto2": "protobuf messages",
    "proto2_ext": "protobuf extensions",
    "proto3": "protobuf messages",
    "timestamps": "timestamps and durations: not in JSON requests (strings are compared instead)",
    "type_deduction": "checker type deduction, no evaluation result",
    "unknowns": "partial evaluation with unknowns",
    "wrappers": "protobuf wrapper types",
}

_TAG_REASONS = {
    "$uint": "uint value (JSON numbers are int or double)",
    "$bytes": "bytes value (JSON has no bytes)",
    "$type": "type as a value",
    "$map": "map with non-string keys (JSON object keys are strings)",
    "$object": "protobuf message",
    "$enum": "protobuf enum",
    "$error": "binding that is an error",
}


def load() -> dict[str, Any]:
    with DATA.open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def _decode(value: Any) -> Any:
    """The tagged JSON encoding back to Python; only doubles are tagged among JSON-fit values."""
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if "$double" in value:
            return float(value["$double"])
        return {k: _decode(v) for k, v in value.items()}
    return value


def _unfit(value: Any) -> str | None:
    """Why a value cannot come from (or be compared with) a JSON request, or None."""
    if isinstance(value, list):
        return next((r for r in map(_unfit, value) if r), None)
    if isinstance(value, dict):
        for tag, reason in _TAG_REASONS.items():
            if tag in value:
                return reason
        return next((r for r in map(_unfit, value.values()) if r), None)
    return None


#: Words in an expression that name protobuf messages or timestamps, which JSON requests lack.
_FOREIGN_WORDS = ("google.protobuf", "TestAllTypes", "cel.expr", "timestamp(", "duration(")

#: Cases whose expectation cxpolicy departs from on purpose (docs/cel.md says why).
DELIBERATE = {
    "basic/functions/unbound_is_runtime_error": "unknown functions are compile errors (D15)",
    "fields/quoted_map_fields/*": "backtick-quoted field names: cel-python's grammar has none; use a[\"k\"]",
    "fields/qualified_identifier_resolution/qualified_ident": "dotted binding names are not request fields",
    "fields/qualified_identifier_resolution/map_field_select": "dotted binding names are not request fields",
    "fields/qualified_identifier_resolution/qualified_identifier_resolution_unchecked": (
        "dotted binding names are not request fields"
    ),
    "fields/qualified_identifier_resolution/ident_with_longest_prefix_check": (
        "dotted binding names are not request fields"
    ),
    "parse/receiver_function_names/*": "unknown functions are compile errors (D15)",
}


def deliberate(file: str, case: dict[str, Any]) -> str | None:
    key = f"{file}/{case['section']}/{case['name']}"
    return DELIBERATE.get(key) or DELIBERATE.get(f"{file}/{case['section']}/*")


def skip_reason(case: dict[str, Any]) -> str | None:
    """Why the case is outside the JSON request model, or None when it runs."""
    if any(word in case["expr"] for word in _FOREIGN_WORDS):
        return "protobuf message, timestamp or duration in the expression"
    if case.get("check_only"):
        return "checker-only case"
    if case.get("container"):
        return "protobuf container"
    if case.get("disable_macros"):
        return "macros disabled (not configurable per condition)"
    expect = case["expect"]
    if "unknown" in expect:
        return "unknown result (partial evaluation)"
    for value in [*case.get("bindings", {}).values(), expect.get("value")]:
        reason = _unfit(value)
        if reason:
            return reason
    return None


def same(got: Any, want: Any) -> bool:
    """CEL value identity for results: the type counts (1 is not 1.0, nor true), NaN is NaN."""
    if type(got) is not type(want):
        return False
    if isinstance(want, float):
        return (math.isnan(got) and math.isnan(want)) or got == want
    if isinstance(want, list):
        return len(got) == len(want) and all(map(same, got, want))
    if isinstance(want, dict):
        return got.keys() == want.keys() and all(same(got[k], want[k]) for k in want)
    return bool(got == want)


Evaluator = Callable[[str, dict[str, Any]], Any]


def cxpolicy_eval(expr: str, bindings: dict[str, Any]) -> Any:
    """The value, or an exception instance (compile or evaluation error)."""
    try:
        return compile_expression(expr).evaluate(bindings)
    except CelSyntaxError as exc:
        return exc


def celpy_eval(expr: str, bindings: dict[str, Any]) -> Any:
    """Plain cel-python 0.5, the peer: its parser, evaluator and JSON conversion."""
    import celpy
    from celpy.adapter import json_to_cel

    from cxpolicy.cel.fallback import to_python

    try:
        env = celpy.Environment()
        program = env.program(env.compile(expr))
        result = program.evaluate({k: json_to_cel(v) for k, v in bindings.items()})
        return to_python(result)
    except Exception as exc:  # the peer fails in many ways; every one is "an error"
        return exc


@dataclass
class FileResult:
    name: str
    total: int = 0
    run: int = 0
    passed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[str, str, str]] = field(default_factory=list)


def run_file(name: str, cases: list[dict[str, Any]], evaluate: Evaluator = cxpolicy_eval) -> FileResult:
    result = FileResult(name, total=len(cases))
    for case in cases:
        reason = skip_reason(case) or deliberate(name, case)
        if reason is not None:
            result.skipped[reason] += 1
            continue
        result.run += 1
        bindings = _decode(case.get("bindings", {}))
        got = evaluate(case["expr"], bindings)
        expect = case["expect"]
        if "error" in expect:
            # Not an unknown function: that would let every unimplemented extension "pass".
            ok = isinstance(got, Exception) and not (name in EXTENSION_FILES and "unknown function" in str(got))
        else:
            ok = not isinstance(got, BaseException) and same(got, _decode(expect["value"]))
        if ok:
            result.passed += 1
        else:
            result.failures.append((f"{case['section']}/{case['name']}", case["expr"], repr(got)[:120]))
    return result


def run_all(evaluate: Evaluator = cxpolicy_eval) -> dict[str, FileResult]:
    data = load()
    return {name: run_file(name, cases, evaluate) for name, cases in data["files"].items()}


def _report(results: dict[str, FileResult], failures: bool) -> None:
    for group, names in (("core", CORE_FILES), ("extensions", EXTENSION_FILES)):
        run = passed = 0
        for name in names:
            r = results[name]
            run += r.run
            passed += r.passed
            share = 100 * r.passed / r.run if r.run else 100.0
            print(f"  {name:14} {r.passed:4}/{r.run:<4} {share:5.1f}%  ({r.total - r.run} skipped)")
            if failures:
                for case_name, expr, got in r.failures:
                    print(f"      FAIL {case_name}: {expr!r} -> {got}")
        share = 100 * passed / run if run else 100.0
        print(f"{group}: {passed}/{run} = {share:.1f}%")


if __name__ == "__main__":
    print("cxpolicy:")
    _report(run_all(), "--failures" in sys.argv)
    if "--peer" in sys.argv:
        print("cel-python 0.5:")
        _report(run_all(celpy_eval), False)
