"""`cxpolicy eval` end to end: formats, JSON-lines, stdin, exit codes, diagnostics."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cxpolicy.cli import main

POLICY = """package shop
use core
default escalate
rule status_ok { match action = order.status
  decide allow
  because "Order status is ordinary service" }
rule reset_otp { match action = account.password_reset
  when !context.otp_verified
  decide require_otp }
"""
REQ = {
    "action": "order.status",
    "channel": "chat",
    "actor": {"kind": "ai"},
    "customer": {"segment": "retail", "risk_tier": "low", "region": "IN"},
}


def _write(tmp_path: Path, text: str = POLICY) -> Path:
    d = tmp_path / "policy"
    d.mkdir()
    (d / "shop.cxp").write_text(text)
    return d


def test_eval_json_lines_in_json_lines_out(tmp_path: Path) -> None:
    pol = _write(tmp_path)
    lines = [json.dumps(REQ), json.dumps({**REQ, "action": "account.password_reset"}), "[1, 2]", "{not json"]
    res = CliRunner().invoke(main, ["eval", "-p", str(pol), "-i", "-", "--format", "json"], input="\n".join(lines))
    assert res.exit_code == 0, res.output
    out = [json.loads(x) for x in res.output.strip().splitlines()]
    assert [d["effect"] for d in out] == ["allow", "require_otp", "escalate", "escalate"]
    assert out[0]["reasons"][0]["rule"] == "shop.status_ok"
    assert out[3]["errors"][0]["message"].startswith("line 4: not valid JSON")
    assert all(d["policy_revision"].startswith("sha256:") for d in out)


def test_eval_pretty_single_document_and_text_explain(tmp_path: Path) -> None:
    pol = _write(tmp_path)
    req = tmp_path / "req.json"
    req.write_text(json.dumps({**REQ, "action": "account.password_reset"}, indent=2))
    res = CliRunner().invoke(main, ["eval", "-p", str(pol), "-i", str(req), "--explain", "--format", "text"])
    assert res.exit_code == 0, res.output
    assert "effect: require_otp" in res.output
    assert "when !context.otp_verified" in res.output
    assert "most restrictive wins" in res.output


def test_eval_rejects_duplicate_keys_and_nan(tmp_path: Path) -> None:
    pol = _write(tmp_path)
    body = '{"action": "order.status", "action": "refund.execute"}\n{"context": {"amount": NaN}}'
    res = CliRunner().invoke(main, ["eval", "-p", str(pol), "-i", "-"], input=body)
    out = [json.loads(x) for x in res.output.strip().splitlines()]
    assert [d["effect"] for d in out] == ["escalate", "escalate"]
    assert "duplicate key `action`" in out[0]["errors"][0]["message"]
    assert "NaN" in out[1]["errors"][0]["message"]


def test_eval_compile_error_exits_2_with_every_diagnostic(tmp_path: Path) -> None:
    pol = _write(
        tmp_path, POLICY.replace("order.status", "order.stauts").replace("use core", "use core\ndefault allow")
    )
    res = CliRunner().invoke(main, ["eval", "-p", str(pol), "-i", "-"], input=json.dumps(REQ))
    assert res.exit_code == 2
    assert "shop.cxp:5:" in res.output and "CXP202" in res.output and "did you mean `order.status`?" in res.output
    assert "shop.cxp:4:1: CXP304" in res.output  # the second default, found in the same run
    assert "policy rejected: 2 error(s)" in res.output


def test_eval_unknown_pack_and_missing_path(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["eval", "-p", str(tmp_path / "nope"), "--pack", "hippa", "-i", "-"], input="{}")
    assert res.exit_code == 2
    assert "CXP001" in res.output and "CXP003" in res.output and "unknown pack `hippa`" in res.output


def test_eval_reports_an_oversized_line_as_a_limit(tmp_path: Path) -> None:
    pol = _write(tmp_path)
    deep = "[" * 40 + "]" * 40
    res = CliRunner().invoke(main, ["eval", "-p", str(pol), "-i", "-"], input=json.dumps(REQ) + "\n" + deep)
    out = [json.loads(x) for x in res.output.strip().splitlines()]
    assert out[1]["effect"] == "escalate"
    assert out[1]["errors"][0]["kind"] == "limit"
