"""`cxpolicy explain`: golden stories, and the promises behind them checked directly.

Each directory under tests/golden/explain/ holds `policy.cxp`, `request.json` and the expected
`expected.txt` / `expected.json` (decision ids and revisions removed). Regenerate after an
intended change with `CXPOLICY_UPDATE_GOLDEN=1 pytest tests/tools/test_explain.py` and read the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cxpolicy.cli import main
from cxpolicy.engine.loader import load, load_text
from cxpolicy.kinds import Effect
from cxpolicy.tools.explain import explain
from tests.conftest import ROOT, base_request

GOLDEN = ROOT / "tests" / "golden" / "explain"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "policy.cxp").is_file())
UPDATE = os.environ.get("CXPOLICY_UPDATE_GOLDEN") == "1"


def _run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _scrub(doc: Any) -> Any:
    """Drop what changes on every run (ids) or with the file's bytes (revisions)."""
    if isinstance(doc, dict):
        return {k: _scrub(v) for k, v in doc.items() if k not in ("decision_id", "policy_revision")}
    if isinstance(doc, list):
        return [_scrub(v) for v in doc]
    return doc


def _compare(path: Path, got: str) -> None:
    if UPDATE or not path.exists():
        path.write_text(got, encoding="utf-8")
    assert got == path.read_text(encoding="utf-8"), f"{path} differs; rerun with CXPOLICY_UPDATE_GOLDEN=1 and review"


@pytest.mark.parametrize("case", CASES)
def test_golden_text(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    d = GOLDEN.relative_to(ROOT) / case
    out = _run("explain", "-p", str(d / "policy.cxp"), "-i", str(d / "request.json"))
    _compare(GOLDEN / case / "expected.txt", out)


@pytest.mark.parametrize("case", CASES)
def test_golden_json(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    d = GOLDEN.relative_to(ROOT) / case
    out = _run("explain", "-p", str(d / "policy.cxp"), "-i", str(d / "request.json"), "--format", "json")
    doc = _scrub(json.loads(out))
    _compare(GOLDEN / case / "expected.json", json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def test_every_counterfactual_is_checked_by_deciding_it() -> None:
    policy = load([GOLDEN / "refund_threshold" / "policy.cxp"])
    request = json.loads((GOLDEN / "refund_threshold" / "request.json").read_text())
    e = explain(policy, request, alternatives=10)
    assert e.counterfactuals
    for cf in e.counterfactuals:
        changed = json.loads(json.dumps(request))
        for c in cf.changes:
            keys = c.path.split(".")
            cur = changed
            for k in keys[:-1]:
                cur = cur.setdefault(k, {})
            if c.kind == "set":
                cur[keys[-1]] = [v for v in cur.get(keys[-1], []) if v != c.old] + ([c.old] if c.new else [])
            else:
                cur[keys[-1]] = c.new
        again = policy.decide(changed)
        assert again.effect is cf.decision.effect
        assert again.effect.severity < e.decision.effect.severity


def test_best_counterfactual_is_the_threshold_not_the_action() -> None:
    policy = load([GOLDEN / "refund_threshold" / "policy.cxp"])
    e = explain(policy, json.loads((GOLDEN / "refund_threshold" / "request.json").read_text()))
    assert e.counterfactuals[0].text() == "with context.amount = 500 this would be `redact`"


def test_bool_flip_is_preferred_and_says_allow() -> None:
    policy = load([GOLDEN / "otp_flip" / "policy.cxp"])
    e = explain(policy, json.loads((GOLDEN / "otp_flip" / "request.json").read_text()))
    assert e.counterfactuals[0].text() == "with context.otp_verified = true this would be `allow`"


def test_near_miss_is_exactly_one_failure_away() -> None:
    policy = load([GOLDEN / "otp_flip" / "policy.cxp"])
    e = explain(policy, json.loads((GOLDEN / "otp_flip" / "request.json").read_text()))
    (near,) = [s for s in e.near_misses if s.rule.id == "bank.auth.critical_reset_to_human"]
    assert [i.text for i in near.failing] == ["risk_tier = critical"]
    # Making that one constraint hold makes the rule match: the near miss is real.
    req = json.loads((GOLDEN / "otp_flip" / "request.json").read_text())
    req["customer"]["risk_tier"] = "critical"
    assert "bank.auth.critical_reset_to_human" in {r.rule for r in policy.decide(req).reasons}


def test_rules_two_failures_away_are_not_near_misses() -> None:
    policy = load_text(
        "use core\npackage t\nrule far { match action = order.cancel, actor = human\n decide escalate }\n"
        "rule ok { match channel = chat\n decide allow }\n"
    )
    e = explain(policy, base_request(action="refund.execute"))
    assert e.near_misses == []


def test_allow_has_no_counterfactual_and_invalid_has_no_rules() -> None:
    policy = load_text("use core\npackage t\nrule ok { match channel = chat\n decide allow }\n")
    e = explain(policy, base_request())
    assert e.decision.effect is Effect.ALLOW and e.counterfactuals == [] and e.searched == 0
    bad = explain(policy, {"action": "nope"})
    assert bad.invalid and bad.stories == [] and "invalid" in bad.why()


def test_pair_search_when_no_single_change_helps() -> None:
    policy = load_text(
        "use core\npackage t\ndefault allow\n"
        "rule a { match action = refund.execute\n when !context.otp_verified\n decide escalate }\n"
        "rule b { match action = refund.execute\n when context.amount > 100\n decide escalate }\n"
    )
    req = base_request(context={"amount": 5000, "otp_verified": False})
    e = explain(policy, req)
    texts = [cf.text() for cf in e.counterfactuals]
    assert "with context.otp_verified = true and context.amount = 100 this would be `allow`" in texts or any(
        "context.otp_verified = true" in t and "context.amount" in t for t in texts
    ), texts
    # …and the single changes that only swap one escalate for the other were not offered.
    assert all(len(cf.changes) == 2 or cf.changes[0].path == "action" for cf in e.counterfactuals)


DETECTING = """
dimension action: {message.send}
dimension data_class at data_classes: set {card_pan, email}
package t
default allow
rule pan_last4 {
  match data_class = card_pan
  decide redact as last4
}
"""
CARD_IN_TEXT = {"action": "message.send", "payload": {"text": "card 4111 1111 1111 1111, thanks"}}


def test_explain_sees_what_the_detectors_added(tmp_path: Path) -> None:
    (tmp_path / "p.cxp").write_text(DETECTING, encoding="utf-8")
    on = explain(load([tmp_path], detect=True), CARD_IN_TEXT)
    assert on.decision.effect is Effect.REDACT
    (story,) = on.matched
    assert [(i.text, i.holds) for i in story.items] == [("data_class = card_pan", True)]
    assert story.items[0].seen == "data_classes = [card_pan]"
    off = explain(load([tmp_path], detect=False), CARD_IN_TEXT)  # detection is on by default now
    assert off.decision.effect is Effect.ALLOW and off.matched == []


def test_explain_command_detects_by_default_like_eval(tmp_path: Path) -> None:
    (tmp_path / "p.cxp").write_text(DETECTING, encoding="utf-8")
    (tmp_path / "r.json").write_text(json.dumps(CARD_IN_TEXT), encoding="utf-8")
    on = _run("explain", "-p", str(tmp_path / "p.cxp"), "-i", str(tmp_path / "r.json"))
    assert on.startswith("decision: redact") and "detected in the payload: data classes card_pan" in on
    off = _run("explain", "-p", str(tmp_path / "p.cxp"), "-i", str(tmp_path / "r.json"), "--no-detect")
    assert off.startswith("decision: allow")
