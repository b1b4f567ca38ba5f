"""`cxpolicy test`: outcomes per expectation, coverage, and the three output formats."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from cxpolicy.cli import main
from cxpolicy.engine.loader import load_text
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.tools.testing import clause_coverage, coverage, run_tests

POLICY = """
use core
package acme.refunds

rule ai_refund_to_desk {
  match   action = refund.execute, actor = ai
  unless  context.amount <= 500
  decide  escalate to "refunds-desk"
  because "AI refunds above 500 go to a person"
}

rule pan_last4 {
  match   data_class = card_pan
  decide  redact as last4
}

rule never_tested {
  match   action = data.erase
  decide  escalate
}

rule refunds_ok {
  match   action in [refund.prepare, refund.execute]
  decide  allow
}

test "big AI refund goes to the desk" {
  request { "action": "refund.execute", "channel": "chat", "actor": {"kind": "ai"},
            "customer": {"segment": "retail", "risk_tier": "low", "region": "IN"},
            "context": {"amount": 9000} }
  expect escalate
  expect escalate_to ["refunds-desk"]
  expect rules [acme.refunds.ai_refund_to_desk, acme.refunds.refunds_ok]
}

test "prepared refund with a card number is masked" {
  request { "action": "refund.prepare", "channel": "chat", "actor": {"kind": "ai"},
            "customer": {"segment": "retail", "risk_tier": "low", "region": "IN"},
            "data_classes": ["card_pan"] }
  expect redact
  expect redact [card_pan]
}
"""

FAILING = """
test "small AI refund is allowed" {
  request { "action": "refund.execute", "channel": "chat", "actor": {"kind": "ai"},
            "customer": {"segment": "retail", "risk_tier": "low", "region": "IN"},
            "context": {"amount": 900} }
  expect allow
  expect rules [acme.refunds.refunds_ok, acme.refunds.pan_last4]
}
"""


def test_every_expectation_is_checked_not_only_the_first() -> None:
    policy = load_text(POLICY + FAILING)
    outcomes = {o.name: o for o in run_tests(policy)}
    assert outcomes["big AI refund goes to the desk"].passed
    bad = outcomes["small AI refund is allowed"]
    assert not bad.passed
    assert [e.ok for e in bad.expectations] == [False, False]
    assert bad.failures[0] == "expected effect allow, got escalate"
    assert "missing [acme.refunds.pan_last4]" in bad.failures[1]
    assert "unexpected [acme.refunds.ai_refund_to_desk]" in bad.failures[1]
    # The expected rule that did not match says which constraint kept it out.
    assert bad.why_not == {"acme.refunds.pan_last4": ["data_class = card_pan   [data_classes = []]"]}


def test_pattern_selects_tests() -> None:
    policy = load_text(POLICY + FAILING)
    assert [o.name for o in run_tests(policy, "*masked")] == ["prepared refund with a card number is masked"]
    assert [o.name for o in run_tests(policy, "small")] == ["small AI refund is allowed"]


def test_coverage_finds_untested_rule_and_one_sided_condition() -> None:
    policy = load_text(POLICY)
    cov = coverage(policy, run_tests(policy))
    assert [r.rule for r in cov.unmatched] == ["acme.refunds.never_tested"]
    half = {(r.rule, i.kind, i.text): i.missing() for r in cov.rules for i in r.half_exercised}
    # The `unless` ran once (amount 9000: false) and was never true: the exception is untested.
    assert half[("acme.refunds.ai_refund_to_desk", "unless", "context.amount <= 500")] == "never true"
    assert half[("acme.refunds.never_tested", "constraint", "action = data.erase")] == "never true"
    # actor = ai was true in both tests and never false.
    assert half[("acme.refunds.ai_refund_to_desk", "constraint", "actor = ai")] == "never false"
    assert ("acme.refunds.pan_last4", "constraint", "data_class = card_pan") not in half


SMALL = """
test "small AI refund is allowed" {
  request { "action": "refund.execute", "channel": "chat", "actor": {"kind": "ai"},
            "customer": {"segment": "retail", "risk_tier": "low", "region": "IN"},
            "context": {"amount": 300} }
  expect allow
}
"""


def test_coverage_improves_when_the_missing_case_is_tested() -> None:
    policy = load_text(POLICY + SMALL)
    cov = coverage(policy, run_tests(policy))
    half = {(r.rule, i.text) for r in cov.rules for i in r.half_exercised}
    assert ("acme.refunds.ai_refund_to_desk", "context.amount <= 500") not in half


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    (tmp_path / "refunds.cxp").write_text(POLICY + FAILING, encoding="utf-8")
    return tmp_path


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["test", *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_text_output_is_pytest_like(policy_dir: Path) -> None:
    code, out = _invoke(str(policy_dir))
    assert code == 1
    assert f"{policy_dir / 'refunds.cxp'} ..F" in out
    assert "FAILURES" in out and "small AI refund is allowed" in out
    assert "✗ expect allow" in out and "expected effect allow, got escalate" in out
    assert "✗ expect rules [acme.refunds.pan_last4, acme.refunds.refunds_ok]" in out
    assert "acme.refunds.pan_last4 did not match:" in out
    assert "decision: escalate (to refunds-desk) because acme.refunds.ai_refund_to_desk matched" in out
    assert "unless context.amount <= 500" in out and "900 <= 500" in out  # the trace shows the values
    assert out.rstrip().endswith("2 passed, 1 failed " + "=" * 29)


def test_verbose_lists_each_test(policy_dir: Path) -> None:
    code, out = _invoke(str(policy_dir), "-v", "-k", "masked")
    assert code == 0
    assert "PASS" in out and "prepared refund with a card number is masked" in out


def test_json_output(policy_dir: Path) -> None:
    code, out = _invoke(str(policy_dir), "--format", "json", "--coverage")
    assert code == 1
    doc = json.loads(out)
    assert (doc["passed"], doc["failed"]) == (2, 1)
    failed = [t for t in doc["tests"] if not t["passed"]]
    assert failed[0]["expectations"][0] == {"kind": "effect", "want": ["allow"], "got": ["escalate"], "ok": False,
                                            "line": failed[0]["expectations"][0]["line"]}
    assert doc["coverage"]["unmatched_rules"][0]["rule"] == "acme.refunds.never_tested"


def test_junit_output_is_valid_xml(policy_dir: Path) -> None:
    code, out = _invoke(str(policy_dir), "--format", "junit")
    assert code == 1
    root = ET.fromstring(out.split("\n", 1)[1])
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "3" and suite.get("failures") == "1"
    failures = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failures] == ["small AI refund is allowed"]


def test_coverage_text(policy_dir: Path) -> None:
    code, out = _invoke(str(policy_dir), "--coverage", "-k", "desk")
    assert code == 0
    assert "coverage: 2 of 4 rule(s) matched by a test" in out
    assert "acme.refunds.never_tested" in out
    assert "acme.refunds.ai_refund_to_desk: unless context.amount <= 500 — never true" in out


def test_no_tests_is_not_a_failure(tmp_path: Path) -> None:
    (tmp_path / "p.cxp").write_text("use core\npackage t\nrule r { decide allow }\n", encoding="utf-8")
    code, out = _invoke(str(tmp_path))
    assert code == 0 and "0 passed" in out


def test_policy_error_exits_2(tmp_path: Path) -> None:
    (tmp_path / "p.cxp").write_text("use core\npackage t\nrule r { match action = nope\n decide allow }\n")
    result = CliRunner().invoke(main, ["test", str(tmp_path)])
    assert result.exit_code == 2


# ------------------------------------------------------------------------ clause coverage
PACK = """
dimension action: {refund.execute, card.block, data.erase}
package demo.pack
cite COVERED = "Clause 1: refunds are reviewed"
cite UNTESTED = "Clause 2: cards are blocked on request"
cite ORPHAN = "Clause 3: nobody implemented this yet"

rule refunds_reviewed {
  match action = refund.execute
  decide escalate
  cite COVERED
}

rule block_cards {
  match action = card.block
  decide allow
  cite UNTESTED, "an inline cite is not a declared clause"
}

test "refunds are reviewed" {
  request { "action": "refund.execute" }
  expect escalate
}
"""


def _with_pack(user: str = "") -> PolicySet:
    from cxpolicy.engine.loader import compile_sources
    from cxpolicy.lang.source import SourceFile

    sources = [SourceFile("pack/demo.cxp", PACK, shipped=True, pack="demo", key="pack:demo/demo.cxp")]
    if user:
        sources.append(SourceFile("mine.cxp", user, key="mine.cxp"))
    return compile_sources(sources, [])


def test_clause_coverage_statuses() -> None:
    policy = _with_pack()
    clauses = {c.name: c for c in clause_coverage(policy, run_tests(policy), ["demo"])}
    assert {n: c.status for n, c in clauses.items()} == {
        "COVERED": "covered",
        "UNTESTED": "no test",
        "ORPHAN": "no rule",
    }
    assert clauses["COVERED"].rules == ["demo.pack.refunds_reviewed"]
    assert clauses["COVERED"].tests == ["refunds are reviewed"]
    assert clauses["ORPHAN"].location == "pack/demo.cxp:6"  # the leading newline is line 1


def test_user_tests_and_rules_count_toward_a_pack_clause() -> None:
    user = """
package mine
rule erase_to_dpo {
  match action = data.erase
  decide escalate
  cite ORPHAN
}
test "cards are blocked" {
  request { "action": "card.block" }
  expect allow
}
"""
    policy = _with_pack(user)
    clauses = {c.name: c for c in clause_coverage(policy, run_tests(policy), ["demo"])}
    assert clauses["UNTESTED"].status == "covered"
    assert clauses["ORPHAN"].rules == ["mine.erase_to_dpo"] and clauses["ORPHAN"].status == "no test"


def test_other_packs_clauses_are_not_listed() -> None:
    policy = _with_pack()
    assert clause_coverage(policy, run_tests(policy), ["hipaa"]) == []


def test_coverage_command_on_a_shipped_pack() -> None:
    result = CliRunner().invoke(main, ["coverage", "--pack", "bfsi_rbi", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc and {c["pack"] for c in doc} == {"bfsi_rbi"}
    for c in doc:
        assert c["status"] == ("no rule" if not c["rules"] else "covered" if c["tests"] else "no test")
    text = CliRunner().invoke(main, ["coverage", "--pack", "bfsi_rbi"]).output
    assert text.startswith("pack bfsi_rbi: ") and f"{len(doc)} cited clause(s)" in text


def test_coverage_needs_a_pack() -> None:
    assert CliRunner().invoke(main, ["coverage"]).exit_code == 2


def test_detect_is_opt_in_for_test_blocks(tmp_path: Path) -> None:
    (tmp_path / "p.cxp").write_text(
        """
dimension action: {message.send}
dimension data_class at data_classes: set {card_pan}
package t
default allow
rule pan_last4 { match data_class = card_pan
  decide redact as last4 }
test "a card number typed into the chat is masked" {
  request { "action": "message.send", "payload": {"text": "card 4111 1111 1111 1111"} }
  expect redact
}
""",
        encoding="utf-8",
    )
    assert _invoke(str(tmp_path))[0] == 1  # the rules alone see no card number
    code, out = _invoke(str(tmp_path), "--detect")
    assert code == 0, out
