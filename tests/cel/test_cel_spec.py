"""google/cel-spec's simple conformance tests, the JSON-representable cases, must not regress.

The floors are the pass counts measured when each feature landed (`python -m
tests.cel.cel_spec` prints the current report). A lower count fails; a higher one asks for
the floor to be raised, so the numbers in docs/cel.md stay true.
"""

from __future__ import annotations

import pytest

from tests.cel import cel_spec

#: file -> (cases run, cases passed) as measured; `run` pins the skip list too.
FLOORS: dict[str, tuple[int, int]] = {
    "basic": (33, 33),
    "comparisons": (330, 330),
    "conversions": (71, 71),
    "fields": (47, 47),
    "fp_math": (30, 30),
    "integer_math": (54, 54),
    "lists": (39, 39),
    "logic": (30, 30),
    "macros": (44, 44),
    "parse": (112, 112),
    "string": (47, 47),
    "string_ext": (205, 201),
    "math_ext": (174, 174),
    "optionals": (59, 54),
    "macros2": (46, 46),
    "network_ext": (69, 66),
}

RESULTS = cel_spec.run_all()


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_pass_count_holds(name: str) -> None:
    run, passed = FLOORS[name]
    result = RESULTS[name]
    failures = "\n".join(f"{n}: {e} -> {g}" for n, e, g in result.failures)
    assert result.run == run, f"{name}: {result.run} cases run, expected {run} (skip list changed?)"
    assert result.passed >= passed, f"{name}: {result.passed}/{result.run} pass, floor {passed}\n{failures}"
    assert result.passed <= passed, f"{name}: {result.passed} pass now; raise the floor from {passed}"


def test_core_share_meets_target() -> None:
    run = sum(RESULTS[n].run for n in cel_spec.CORE_FILES)
    passed = sum(RESULTS[n].passed for n in cel_spec.CORE_FILES)
    assert passed >= 0.99 * run


def test_extension_share_meets_target() -> None:
    run = sum(RESULTS[n].run for n in cel_spec.EXTENSION_FILES)
    passed = sum(RESULTS[n].passed for n in cel_spec.EXTENSION_FILES)
    assert passed >= 0.90 * run


def test_every_vendored_file_is_counted_or_listed_as_skipped() -> None:
    vendored = set(cel_spec.load()["files"])
    assert vendored == set(cel_spec.CORE_FILES) | set(cel_spec.EXTENSION_FILES)
    assert not vendored & set(cel_spec.SKIPPED_FILES)


def test_runner_detects_a_wrong_result() -> None:
    """The runner itself could pass everything by mistake; a wrong evaluator must fail."""
    cases = cel_spec.load()["files"]["logic"]
    result = cel_spec.run_file("logic", cases, lambda expr, bindings: 42)
    assert result.passed == 0 and result.run == 30


def test_value_identity_keeps_types_apart() -> None:
    assert not cel_spec.same(1, 1.0)
    assert not cel_spec.same(True, 1)
    assert cel_spec.same(float("nan"), float("nan"))
    assert not cel_spec.same([1], [1.0])
