"""Lint: golden files, the constraint reasoning against brute force, and the `lint` command.

The region reasoning behind CXP603/604/606/607/608 claims to be exact over the declared
vocabulary, so it is checked against an oracle: every request over a small vocabulary
(a plain, an ordered and a set dimension), judged by the engine's own `constraint_holds`.
Regenerate the golden outputs after an intended change with
`CXPOLICY_UPDATE_GOLDEN=1 pytest tests/tools/test_lint.py`, then review the diff.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cxpolicy.cli import main
from cxpolicy.engine.evaluation import constraint_holds
from cxpolicy.engine.loader import compile_sources
from cxpolicy.lang.checker import CheckedConstraint
from cxpolicy.lang.source import SourceFile, Span
from cxpolicy.lang.vocabulary import DimensionDef
from cxpolicy.tools.lint import CODES, _covers, _narrowed, _region, lint_paths, lint_policy, nested_quantifier

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "lint"
CASES = sorted(GOLDEN.glob("*.cxp"))


# ------------------------------------------------------------------------------ golden files


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_golden(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(GOLDEN)
    strict = ["--strict"] if case.stem.endswith("_strict") else []  # the same findings as errors
    r = CliRunner().invoke(main, ["lint", *strict, case.name])
    got = r.output + f"exit {r.exit_code}\n"
    expected = case.with_suffix(".out")
    if os.environ.get("CXPOLICY_UPDATE_GOLDEN"):
        expected.write_text(got)
    assert got == expected.read_text()


def test_golden_cases_cover_every_code() -> None:
    text = "".join(c.with_suffix(".out").read_text() for c in CASES)
    missing = [code for code in CODES if f" {code} " not in text]
    assert missing == []
    assert len(CASES) >= 6


# ------------------------------------------------------------------------------ oracle

SPAN = Span("t.cxp", 1, 1, 1, 2)
PLAIN = DimensionDef("p", ("p",), "plain", ["a", "b", "c", "d"], None, SPAN)
ORDERED = DimensionDef("o", ("o",), "ordered", ["low", "mid", "high", "top"], None, SPAN)
SET = DimensionDef("s", ("s",), "set", ["x", "y", "z"], None, SPAN)
SUBSETS = [list(c) for k in range(4) for c in itertools.combinations(SET.values, k)]
REQUESTS = [{"p": p, "o": o, "s": s} for p in PLAIN.values for o in ORDERED.values for s in SUBSETS]


@st.composite
def constraint(draw: st.DrawFn) -> CheckedConstraint:
    d = draw(st.sampled_from([PLAIN, ORDERED, SET]))
    ops = ["=", "!=", "in", "not in"] + (["<", "<=", ">", ">="] if d is ORDERED else [])
    op = draw(st.sampled_from(ops))
    if op in ("in", "not in"):
        values = tuple(draw(st.lists(st.sampled_from(d.values), min_size=1, max_size=3)))
    else:
        values = (draw(st.sampled_from(d.values)),)
    return CheckedConstraint(d, op, values, SPAN, f"{d.name} {op} {values}")


constraints = st.lists(constraint(), max_size=5)


def holds(cs: list[CheckedConstraint], request: dict[str, Any]) -> bool:
    return all(constraint_holds(c, request[c.dimension.name]) for c in cs)


@settings(max_examples=600, deadline=None)
@given(constraints)
def test_never_matches_exactly_when_no_request_satisfies(cs: list[CheckedConstraint]) -> None:
    assert (_region(cs) is None) == (not any(holds(cs, r) for r in REQUESTS))


@settings(max_examples=1000, deadline=None)
@given(constraints, constraints)
def test_covers_exactly_when_every_request_of_one_satisfies_the_other(
    inner: list[CheckedConstraint], outer: list[CheckedConstraint]
) -> None:
    region = _region(inner)
    if region is None:
        return
    rule = SimpleNamespace(constraints=tuple(outer))
    brute = all(holds(outer, r) for r in REQUESTS if holds(inner, r))
    assert _covers(rule, region) == brute  # type: ignore[arg-type]
    if brute:  # the shortcut that skips pairs never skips one that covers
        assert _narrowed(rule) <= _narrowed(SimpleNamespace(constraints=tuple(inner)))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ details


def policy(text: str, *, shipped: bool = False, packs: tuple[str, ...] = ("core",)) -> Any:
    from cxpolicy.engine.loader import collect_sources

    sources, diags = collect_sources((), packs)
    sources.append(SourceFile("p.cxp", text, shipped=shipped, pack="x" if shipped else None, key="p.cxp"))
    return compile_sources(sources, diags, packs=packs)


def codes(text: str, **kw: Any) -> list[tuple[str, str]]:
    return sorted((d.code, d.severity) for d in lint_policy(policy(text, **kw)))


def test_missing_because_and_cite_is_an_error_in_a_pack_and_a_warning_elsewhere() -> None:
    text = "package x.y\nrule r {\n  match action = refund.execute\n  decide escalate\n}\n"
    assert codes(text) == [("CXP601", "warning"), ("CXP602", "warning")]
    assert codes(text, shipped=True) == [("CXP601", "error"), ("CXP602", "error")]


def test_shipped_declarations_are_not_reported_unused() -> None:
    # core declares many attributes that this policy never reads; none is reported
    text = 'package x.y\ncite C = "c"\nrule r {\n  decide allow\n  because "b"\n  cite C\n}\n'
    assert codes(text) == []


def test_a_pack_rule_is_not_reported_as_subsumed_by_a_user_rule() -> None:
    pack = "package pk\nrule narrow {\n  match action = refund.execute\n  decide escalate\n"
    pack += '  because "b"\n  cite "c"\n}\n'
    sources = [SourceFile("pack.cxp", pack, shipped=True, pack="pk", key="pack.cxp")]
    user = 'package u\nrule wide {\n  decide escalate\n  because "b"\n  cite "c"\n}\n'
    sources.append(SourceFile("u.cxp", user, key="u.cxp"))
    from cxpolicy.engine.loader import collect_sources

    core, diags = collect_sources((), ["core"])
    found = lint_policy(compile_sources(core + sources, diags, packs=["core"]))
    assert [d.code for d in found] == []


def test_conditions_compared_as_text_only_subsume_when_written_alike() -> None:
    base = '  match action = refund.execute\n  decide escalate\n  because "b"\n  cite "c"\n'
    a = "package x\nrule a {\n" + base + "  when context.amount > 5\n}\n"
    b = "rule b {\n" + base + "  when context.amount>5\n}\n"  # other spacing: still the same
    c = "rule c {\n" + base + "  when 5 < context.amount\n}\n"  # equivalent, written otherwise
    assert [x for x, _ in codes(a + b)] == ["CXP607"]
    assert codes(a + c) == []


def test_regex_scan() -> None:
    assert nested_quantifier("^(a+)+$") == "(a+)+"
    assert nested_quantifier(r"(\d+\s*)*") == r"(\d+\s*)*"
    assert nested_quantifier("(a|b+)+") == "(a|b+)+"
    assert nested_quantifier("^[a-z]+(,[a-z]+)*$") is None  # a mandatory comma each time
    assert nested_quantifier(r"\(a+\)+") is None and nested_quantifier("[(a+)]+") is None
    assert nested_quantifier(r"(\d{3})+") is None and nested_quantifier("(a+)?") is None


# ------------------------------------------------------------------------------ command


def lint(*args: str) -> Any:
    return CliRunner().invoke(main, ["lint", *args])


def test_warnings_alone_exit_0_and_errors_exit_1() -> None:
    r = lint(str(GOLDEN / "redundant.cxp"))
    assert r.exit_code == 0 and "0 error(s), 6 warning(s)" in r.output
    r = lint(str(GOLDEN / "contradictions.cxp"))
    assert r.exit_code == 1


def test_a_policy_that_does_not_compile_exits_1_with_its_diagnostics(tmp_path: Path) -> None:
    f = tmp_path / "bad.cxp"
    f.write_text("use core\npackage x\nrule r {\n  match chanel = chat\n  decide allow\n}\n")
    r = lint(str(f))
    assert r.exit_code == 1 and "CXP201" in r.output and "did you mean `channel`?" in r.output


def test_no_paths_is_a_usage_error() -> None:
    assert lint().exit_code == 2


def test_plain_text_when_piped() -> None:
    r = lint(str(GOLDEN / "contradictions.cxp"))
    assert "\x1b[" not in r.output


def test_json_output() -> None:
    r = lint(str(GOLDEN / "overlaps.cxp"), "--format", "json")
    found = orjson.loads(r.stdout)
    assert [d["code"] for d in found] == ["CXP606", "CXP607", "CXP608"]
    first = found[0]
    assert set(first) == {"code", "severity", "message", "file", "line", "col", "end_line", "end_col", "hint"}
    assert first["line"] == 13 and first["severity"] == "warning"


def test_sarif_output_is_sarif_2_1_0() -> None:
    r = lint(str(GOLDEN / "conditions.cxp"), "--format", "sarif")
    assert r.exit_code == 1
    log = orjson.loads(r.stdout)
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert run["tool"]["driver"]["name"] == "cxpolicy"
    assert [rule["id"] for rule in rules] == sorted({rule["id"] for rule in rules})
    assert all(rule["shortDescription"]["text"] for rule in rules)
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")
        assert result["message"]["text"]
        (loc,) = result["locations"]
        region = loc["physicalLocation"]["region"]
        assert region["startLine"] >= 1 and region["startColumn"] >= 1
        assert loc["physicalLocation"]["artifactLocation"]["uri"].endswith("conditions.cxp")
    levels = {res["ruleId"]: res["level"] for res in run["results"]}
    assert levels["CXP611"] == "error" and levels["CXP614"] == "warning"


def test_sarif_without_a_location_for_command_line_problems() -> None:
    r = lint("--pack", "no_such_pack", "--format", "sarif")
    (result,) = orjson.loads(r.stdout)["runs"][0]["results"]
    assert result["ruleId"] == "CXP003" and "locations" not in result


@pytest.mark.parametrize("pack", ["core", "bfsi_rbi", "hipaa", "gdpr"])
def test_shipped_packs_have_no_lint_errors(pack: str) -> None:
    diags, _ = lint_paths([], [pack])
    assert [d.headline() for d in diags if d.is_error] == []
