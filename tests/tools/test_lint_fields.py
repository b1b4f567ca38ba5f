"""Lint of undeclared condition fields (CXP618), `--strict`, and `expect rules` ids (CXP619)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from cxpolicy.cli import main
from cxpolicy.engine.loader import load_text
from cxpolicy.tools.lint import lint_policy
from cxpolicy.tools.testing import run_tests

HEAD = """use core
package claims
cite INTERNAL = "internal policy CX-7"
"""

RULE = """
rule payouts {
  match   action = refund.execute
  unless  %s
  decide  escalate
  because "x"
  cite    INTERNAL
}
"""

REQ = (
    '{"action": "refund.execute", "channel": "chat", "actor": {"kind": "ai"}, '
    '"customer": {"region": "IN"}, "context": {"amount": 10}}'
)


def _codes(text: str) -> list[tuple[str, str, str | None]]:
    return [(d.code, d.severity, d.hint) for d in lint_policy(load_text(text, "p.cxp"))]


def test_a_misspelt_declared_field_gets_the_declared_one() -> None:
    assert ("CXP618", "warning", "did you mean `context.amount`?") in _codes(HEAD + RULE % "context.amout > 50000")


def test_a_declared_field_a_test_field_and_a_map_attribute_are_not_reported() -> None:
    ok = "context.amount > 5 || context.claim.total > 3 || context.sent == 1 || signals.pii.size() > 0"
    text = HEAD + "attribute context.claim: map = {}\n" + RULE % ok
    sent = REQ.replace('"amount": 10', '"amount": 10, "sent": 2')
    text += 'test "t" {\n  request ' + sent + "\n  expect escalate\n}\n"
    assert [c for c in _codes(text) if c[0] == "CXP618"] == []


def test_an_undeclared_nested_field_is_reported_once_at_its_full_path() -> None:
    diags = [d for d in lint_policy(load_text(HEAD + RULE % "context.claim.total > 5", "p.cxp")) if d.code == "CXP618"]
    assert [d.message.split("`")[1] for d in diags] == ["context.claim.total"]


def test_macro_variables_are_not_fields() -> None:
    assert [c for c in _codes(HEAD + RULE % 'actor.roles.exists(r, r.name == "x")') if c[0] == "CXP618"] == []


def test_strict_makes_undeclared_reads_errors(tmp_path: Path) -> None:
    f = tmp_path / "p.cxp"
    f.write_text(HEAD + RULE % "context.amout > 1 || contxt.amount > 1")
    lax = CliRunner().invoke(main, ["lint", str(f)])
    strict = CliRunner().invoke(main, ["lint", "--strict", str(f)])
    assert lax.exit_code == 0 and "0 error(s), 2 warning(s)" in lax.output
    assert strict.exit_code == 1 and "2 error(s), 0 warning(s)" in strict.output


def _test_block(expect: str) -> str:
    return f'test "t" {{\n  request {REQ}\n  expect escalate\n  {expect}\n}}\n'


def test_a_short_rule_id_resolves_in_the_package_at_lint_and_run_time() -> None:
    policy = load_text(HEAD + RULE % "context.amount > 50000" + _test_block("expect rules [payouts]"), "p.cxp")
    assert [d for d in lint_policy(policy) if d.code == "CXP619"] == []
    (outcome,) = run_tests(policy)
    assert outcome.passed, outcome.failures


def test_an_unknown_rule_id_is_a_lint_error_with_the_full_id() -> None:
    policy = load_text(HEAD + RULE % "context.amount > 50000" + _test_block("expect rules [payout]"), "p.cxp")
    (d,) = [d for d in lint_policy(policy) if d.code == "CXP619"]
    assert d.is_error and d.hint == "did you mean `claims.payouts`?"
    assert (d.span.line, d.span.col) == (15, 17)
    (outcome,) = run_tests(policy)
    assert not outcome.passed


def test_includes_and_excludes() -> None:
    body = HEAD + RULE % "context.amount > 50000"
    both = "expect rules includes [payouts]\n  expect rules excludes [claims.other]"
    good = load_text(body + _test_block(both), "p.cxp")
    (outcome,) = run_tests(good)
    assert outcome.passed
    bad = load_text(body + _test_block("expect rules excludes [payouts]"), "p.cxp")
    (outcome,) = run_tests(bad)
    want = "expected rules to exclude [claims.payouts], got [claims.payouts] (present [claims.payouts])"
    assert outcome.failures == [want]
    two = body + RULE.replace("payouts", "second") % "false" + _test_block("expect rules includes [second]")
    (outcome,) = run_tests(load_text(two, "p.cxp"))
    assert outcome.passed  # both rules decided; the test names only one of them
    exact = body + RULE.replace("payouts", "second") % "false" + _test_block("expect rules [second]")
    (outcome,) = run_tests(load_text(exact, "p.cxp"))
    assert not outcome.passed


def test_fmt_keeps_includes_and_excludes() -> None:
    from cxpolicy.tools.fmt import format_source

    text = HEAD + RULE % "context.amount > 50000" + _test_block(
        "expect rules includes [payouts, claims.payouts]\n  expect rules excludes [claims.x]"
    )
    out = format_source(text, "p.cxp")
    assert "  expect rules includes [payouts, claims.payouts]\n" in out
    assert "  expect rules excludes [claims.x]\n" in out
    assert format_source(out, "p.cxp") == out
