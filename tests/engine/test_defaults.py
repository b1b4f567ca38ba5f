"""engine/defaults.py against evaluation.with_defaults (the copy-on-write reference).

Input: generated attribute paths with defaults and generated requests (missing parents,
non-dict parents, nulls, present values). Output of each check: the compiled filler returns
an activation equal to the reference's, leaves the request untouched, and returns the request
itself when nothing is missing.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cxpolicy.engine.defaults import compile_defaults
from cxpolicy.engine.evaluation import with_defaults as _with_defaults
from cxpolicy.lang.source import Span
from cxpolicy.lang.vocabulary import AttributeDef

KEYS = ["context", "customer", "actor", "a", "b"]
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=2), st.just([]), st.just({}))


def _attr(path: tuple[str, ...], default: Any) -> AttributeDef:
    return AttributeDef(path, "any", default, True, Span.unknown())


@st.composite
def attribute_sets(draw: st.DrawFn) -> list[AttributeDef]:
    paths = draw(st.lists(st.lists(st.sampled_from(KEYS), min_size=1, max_size=3).map(tuple), max_size=6, unique=True))
    # no path may be a prefix of another: that case is left to the reference (checked below)
    kept = [p for p in paths if not any(q != p and (q[: len(p)] == p or p[: len(q)] == q) for q in paths)]
    return [_attr(p, draw(LEAVES)) for p in kept]


requests = st.recursive(
    st.one_of(st.none(), st.integers(0, 2), st.text(max_size=1)),
    lambda inner: st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
    max_leaves=10,
).filter(lambda r: isinstance(r, dict))


@settings(max_examples=300, deadline=None)
@given(attribute_sets(), requests)
def test_filler_equals_the_reference(attrs: list[AttributeDef], request: dict[str, Any]) -> None:
    fill = compile_defaults(attrs)
    expected = _with_defaults(request, attrs)
    if fill is None:
        assert not attrs
        return
    before = copy.deepcopy(request)
    got = fill(request)
    assert got == expected
    assert request == before  # the caller's request is never mutated
    if expected is request:
        assert got is request  # nothing missing: no copy at all


def test_nested_defaults_fill_a_missing_parent() -> None:
    attrs = [_attr(("context", "amount"), 0), _attr(("context", "otp_verified"), False), _attr(("actor", "roles"), [])]
    fill = compile_defaults(attrs)
    assert fill is not None
    req: dict[str, Any] = {"actor": {"kind": "ai"}}
    assert fill(req) == {"actor": {"kind": "ai", "roles": []}, "context": {"amount": 0, "otp_verified": False}}
    assert req == {"actor": {"kind": "ai"}}
    full = {"actor": {"roles": ["x"]}, "context": {"amount": 5, "otp_verified": True}}
    assert fill(full) is full
    assert fill({"context": 7, "actor": {"roles": None}}) == {"context": 7, "actor": {"roles": None}}


def test_a_default_inside_another_default_uses_the_general_path() -> None:
    assert compile_defaults([_attr(("context",), {}), _attr(("context", "amount"), 0)]) is None
    assert compile_defaults([_attr(("context", "amount"), 0), _attr(("context",), {})]) is None
