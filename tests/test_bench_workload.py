"""The benchmark's workload generator and cross-check (bench/). No timings here: speed is
measured by `python -m bench.run`, never asserted in a test."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from bench.run import Loaded, Mismatch, cross_check, make_adapter
from bench.workload import (
    DIMENSIONS,
    EFFECTS,
    Workload,
    generate,
    reference,
    request_with_classes,
    to_cxp,
)


def test_generator_is_deterministic() -> None:
    a, b = generate(100), generate(100)
    assert a == b
    assert to_cxp(a) == to_cxp(b)
    assert generate(100, seed=7) != a
    assert to_cxp(generate(100, seed=7)) != to_cxp(a)


def test_smaller_workloads_are_prefixes_and_requests_do_not_depend_on_n() -> None:
    small, large = generate(10), generate(100)
    assert large.rules[:10] == small.rules
    assert large.requests == small.requests
    assert large.kinds == small.kinds


def test_workload_shape() -> None:
    w = generate(1_000)
    assert len(w.rules) == 1_000 and len(w.requests) == 200
    assert set(w.kinds) == {"few", "many"}
    assert {r.effect for r in w.rules} == set(EFFECTS)
    used = {c.dimension for r in w.rules for c in r.constraints}
    assert used == {d.name for d in DIMENSIONS}
    assert {c.op for r in w.rules for c in r.constraints} >= {"=", "!=", "in", "not in", ">=", "<="}
    with_conditions = sum(1 for r in w.rules if r.conditions)
    assert 0.2 * len(w.rules) < with_conditions < 0.4 * len(w.rules)
    assert {c.field for r in w.rules for c in r.conditions} == {"amount", "otp_verified", "roles"}
    # "many" requests hit many more rules than "few" requests
    hits: dict[str, list[int]] = {"few": [], "many": []}
    for req, kind in zip(w.requests, w.kinds, strict=True):
        hits[kind].append(len(reference(w, req)[1]))
    assert sum(hits["many"]) / len(hits["many"]) > 5 * sum(hits["few"]) / len(hits["few"])


def test_generated_policy_compiles_in_cxpolicy() -> None:
    from cxpolicy.engine.loader import load_text

    w = generate(100)
    ps = load_text(to_cxp(w), "bench.cxp")
    assert ps.rule_count == 100
    assert not [d for d in ps.warnings if d.is_error]


def test_request_with_classes() -> None:
    base = generate(10).requests[0]
    r = request_with_classes(base, 5)
    assert len(r["data_classes"]) == 5
    assert r["action"] == base["action"]
    assert base["data_classes"] is not r["data_classes"]


def _loaded(name: str, w: Workload) -> Loaded:
    a = make_adapter(name)
    return Loaded(a, a.load(a.source(w)), [a.prepare(r) for r in w.requests])


ENGINES = ["cxpolicy", "cedarpy", "zen-first", "zen-collect"]


def _available(name: str) -> bool:
    module = {"cedarpy": "cedarpy", "zen-first": "zen", "zen-collect": "zen"}.get(name)
    if module is None:
        return True
    try:
        __import__(module)
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_agrees_with_the_reference_on_n10(engine: str) -> None:
    if not _available(engine):
        pytest.skip(f"{engine} is not installed (pip install -e '.[bench]')")
    w = generate(10)
    assert cross_check(w, [_loaded(engine, w)]) == []


class _Broken:
    """Wraps a real adapter and corrupts its answers, to show the cross-check notices."""

    def __init__(self, inner: Any, how: str):
        self.inner = inner
        self.how = how
        self.name = f"broken-{inner.name}"
        self.native = inner.native

    def explain(self, handle: Any, prepared: Any) -> tuple[str, frozenset[int] | None]:
        effect, rules = self.inner.explain(handle, prepared)
        if self.how == "effect":
            return ("escalate" if effect != "escalate" else "allow"), rules
        if self.how == "rules":
            assert rules is not None
            return effect, rules | {999}
        raise RuntimeError("engine exploded")


@pytest.mark.parametrize("how", ["effect", "rules", "raise"])
def test_cross_check_reports_a_disagreeing_engine(how: str) -> None:
    w = generate(10)
    good = _loaded("cxpolicy", w)
    bad = Loaded(_Broken(good.adapter, how), good.handle, good.prepared)  # type: ignore[arg-type]
    mismatches = cross_check(w, [good, bad])
    assert len(mismatches) == len(w.requests)  # every request, and only the broken engine
    assert {m.engine for m in mismatches} == {"broken-cxpolicy"}
    m = mismatches[0]
    assert isinstance(m, Mismatch)
    if how == "rules":
        assert m.extra_rules == (999,) and m.missing_rules == ()
    if how == "raise":
        assert m.got == "error" and "exploded" in (m.error or "")
    assert "request 0" in str(m)


def test_cross_check_uses_the_reference_not_the_first_engine() -> None:
    # A workload whose "expected" answer is changed must make a correct engine disagree.
    w = generate(10)
    good = _loaded("cxpolicy", w)
    flipped = replace(w, default="escalate")  # the reference now expects escalate when nothing matches
    no_match = [i for i, r in enumerate(w.requests) if not reference(w, r)[1]]
    assert no_match
    mismatches = cross_check(flipped, [good])
    assert sorted(m.request for m in mismatches) == no_match
