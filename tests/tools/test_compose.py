"""Tests that compose: with `--pack`, each test runs against the set it was written for, and
where an organisation's rules and a pack decide a test differently together, that is reported."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cxpolicy.cli import main
from cxpolicy.engine.loader import load
from cxpolicy.tools.compose import run_composed
from cxpolicy.tools.testing import run_tests
from tests.conftest import ROOT

BANK = str(ROOT / "rulesets" / "bank")

OWN = """use core
package acme.cards
rule reveal_ok {
  match   action = card.reveal_pan, actor = ai
  decide  allow
  because "our agents may show a card number"
  cite    "internal policy CX-9"
}
test "AI may reveal a PAN" {
  request {"action": "card.reveal_pan", "channel": "chat", "actor": {"kind": "ai"},
           "customer": {"segment": "retail", "risk_tier": "low", "region": "IN"}}
  expect allow
  expect rules [reveal_ok]
}
"""


def test_without_composition_both_sides_fail_and_with_it_both_pass(tmp_path: Path) -> None:
    (tmp_path / "own.cxp").write_text(OWN)
    combined = load([str(tmp_path)], packs=["bfsi_rbi"])
    naive = run_tests(combined)
    assert any(not o.passed for o in naive if o.file.endswith("own.cxp"))  # the pack changes our decision
    run = run_composed(combined, [str(tmp_path)], ["bfsi_rbi"])
    assert len(run.outcomes) == len(naive)
    assert all(o.passed for o in run.outcomes), [o.failures for o in run.outcomes if not o.passed]
    (mine,) = [i for i in run.interactions if i.file.endswith("own.cxp")]
    assert mine.home == "your rules" and mine.effect_alone == "allow" and mine.effect_together != "allow"
    assert mine.rules_added and all(r.startswith("bfsi_rbi.") for r in mine.rules_added)
    assert not mine.still_passes


def test_a_pack_test_seeing_an_organisation_rule_is_an_interaction_of_that_pack() -> None:
    run = run_composed(load([BANK], packs=["bfsi_rbi"]), [BANK], ["bfsi_rbi"])
    assert all(o.passed for o in run.outcomes)
    homes = {i.home for i in run.interactions}
    assert homes <= {"your rules", "pack bfsi_rbi", "pack core"}
    assert any(i.effect_alone == "redact" and i.effect_together == "require_otp" for i in run.interactions)


def test_the_command_reports_interactions_and_fails_on_them_when_asked() -> None:
    r = CliRunner().invoke(main, ["test", BANK, "--pack", "bfsi_rbi", "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["failed"] == 0 and doc["interactions"]
    text = CliRunner().invoke(main, ["test", BANK, "--pack", "bfsi_rbi"])
    assert "interaction(s) between your rules and the packs" in text.output
    strict = CliRunner().invoke(main, ["test", BANK, "--pack", "bfsi_rbi", "--fail-on-interaction"])
    assert strict.exit_code == 1


def test_without_packs_nothing_changes() -> None:
    policy = load([BANK])
    run = run_composed(policy, [BANK], [])
    assert run.interactions == [] and [o.name for o in run.outcomes] == [o.name for o in run_tests(policy)]
