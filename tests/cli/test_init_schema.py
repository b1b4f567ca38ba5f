"""`cxpolicy init` writes a starter whose tests pass and which lints clean (with each pack);
`cxpolicy schema` describes exactly the requests the vocabulary accepts."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from cxpolicy.cli import main
from cxpolicy.engine.loader import load
from cxpolicy.tools.request_schema import request_schema
from tests.conftest import ROOT


@pytest.mark.parametrize("pack", [None, "bfsi_rbi", "hipaa", "gdpr"])
def test_init_writes_a_starter_that_passes(tmp_path: Path, pack: str | None) -> None:
    target = tmp_path / "starter"
    r = CliRunner().invoke(main, ["init", str(target)] + (["--pack", pack] if pack else []))
    assert r.exit_code == 0, r.output
    assert (target / "policy.cxp").is_file() and sorted(p.name for p in (target / "requests").iterdir())
    tested = CliRunner().invoke(main, ["test", str(target), "--format", "json"])
    doc = json.loads(tested.output)
    assert tested.exit_code == 0 and doc["failed"] == 0, [t["failures"] for t in doc["tests"] if not t["passed"]]
    mine = [t for t in doc["tests"] if t["file"].endswith("policy.cxp")]
    assert len(mine) == 3
    linted = CliRunner().invoke(main, ["lint", str(target)])
    assert linted.exit_code == 0 and linted.output.endswith("0 error(s), 0 warning(s)\n"), linted.output
    policy = load([target])
    for req in (target / "requests").iterdir():
        d = policy.decide(json.loads(req.read_text()))
        assert not d.errors, (req.name, d.errors)


def test_init_refuses_to_overwrite_and_unknown_packs(tmp_path: Path) -> None:
    assert CliRunner().invoke(main, ["init", str(tmp_path)]).exit_code == 0
    again = CliRunner().invoke(main, ["init", str(tmp_path)])
    assert again.exit_code == 64 and "--force" in again.output
    assert CliRunner().invoke(main, ["init", str(tmp_path), "--force"]).exit_code == 0
    assert CliRunner().invoke(main, ["init", str(tmp_path / "x"), "--pack", "nope"]).exit_code == 64


BANK = ROOT / "rulesets" / "bank"


def test_schema_accepts_the_policy_s_own_test_requests_and_refuses_what_the_engine_refuses() -> None:
    policy = load([BANK])
    schema = request_schema(policy)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for t in policy.tests:
        req = t.block.requests[0]
        assert not list(validator.iter_errors(req)), t.name
        assert not [e for e in policy.decide(req).errors if e.kind == "request"]
    good = policy.tests[0].block.requests[0]
    for bad in ({**good, "action": "refund.exceute"}, {k: v for k, v in good.items() if k != "channel"},
                {**good, "data_classes": ["not_a_class"]}):
        assert list(validator.iter_errors(bad))
        assert [e for e in policy.decide(bad).errors if e.kind == "request"]  # the engine agrees


def test_schema_command_takes_both_path_forms() -> None:
    a = CliRunner().invoke(main, ["schema", "-p", str(BANK)])
    b = CliRunner().invoke(main, ["schema", str(BANK)])
    assert a.exit_code == 0 and a.output == b.output
    doc = json.loads(a.output)
    assert doc["$schema"].endswith("2020-12/schema") and "channel" in doc["required"]
    # no default: a money action without an amount must not read as 0 (issue 15)
    assert doc["properties"]["context"]["properties"]["amount"] == {
        "type": "number", "description": "attribute (number)",
    }
