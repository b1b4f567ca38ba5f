"""One path convention: every command that loads a policy takes `PATH...` and `-p PATH` alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cxpolicy.cli import main
from tests.conftest import ROOT

BANK = str(ROOT / "rulesets" / "bank")
REQ = {
    "action": "account.balance",
    "channel": "chat",
    "actor": {"kind": "ai"},
    "customer": {"segment": "retail", "risk_tier": "low", "region": "IN"},
}


@pytest.fixture
def request_file(tmp_path: Path) -> str:
    f = tmp_path / "req.json"
    f.write_text(json.dumps(REQ))
    return str(f)


@pytest.mark.parametrize("command", ["eval", "explain", "redact"])
def test_request_commands_take_both_forms(command: str, request_file: str) -> None:
    by_option = CliRunner().invoke(main, [command, "-p", BANK, "-i", request_file])
    by_argument = CliRunner().invoke(main, [command, BANK, "-i", request_file])
    assert by_option.exit_code == 0, by_option.output
    assert by_argument.exit_code == 0, by_argument.output
    assert _stable(by_option.output) == _stable(by_argument.output)


def _stable(output: str) -> str:
    """The output without per-decision ids and times."""
    import re

    return re.sub(r'"(decision_id|decided_at|[a-z_]*_ms)":("[^"]*"|[0-9.]+)', "", output)


@pytest.mark.parametrize("command", [["test"], ["lint"], ["coverage", "--pack", "bfsi_rbi"], ["fmt", "--check"]])
def test_set_commands_take_both_forms(command: list[str]) -> None:
    by_option = CliRunner().invoke(main, [*command, "-p", BANK])
    by_argument = CliRunner().invoke(main, [*command, BANK])
    assert "No such option" not in by_option.output
    assert by_option.exit_code == by_argument.exit_code
    assert by_option.output == by_argument.output


def test_both_forms_merge_into_one_policy_set(tmp_path: Path) -> None:
    (tmp_path / "a.cxp").write_text("use core\npackage a\nrule r {\n  match action = faq.answer\n  decide allow\n}\n")
    (tmp_path / "b.cxp").write_text("use core\npackage a\nrule r {\n  match action = faq.answer\n  decide allow\n}\n")
    r = CliRunner().invoke(main, ["lint", "-p", str(tmp_path / "a.cxp"), str(tmp_path / "b.cxp")])
    assert "CXP301" in r.output  # both files loaded: the duplicate id is found


@pytest.mark.parametrize("command", ["test", "lint", "eval", "explain", "coverage"])
def test_the_no_path_hint_names_forms_the_command_accepts(command: str) -> None:
    r = CliRunner().invoke(main, [command] + (["-i", "-"] if command in ("eval", "explain") else []), input="{}")
    assert r.exit_code != 0
    if "give at least one policy" in r.output:
        assert "PATH (or -p PATH) or --pack NAME" in r.output
        # every form the hint names is accepted by that command
        ok = CliRunner().invoke(main, [command, "-p", BANK] + (["-i", "-"] if command in ("eval", "explain") else []),
                                input=json.dumps(REQ))
        assert "No such option" not in ok.output
    else:
        assert "--pack" in r.output  # coverage requires --pack
