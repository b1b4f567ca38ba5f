"""`cxpolicy diff` keeps the decision aspect apart from data-class aspects.

Input: two small policy revisions whose vocabulary declares a data class named `decision`.
Output: assertions on the diff report — the decision change is reported once, and the masking
change of the class `decision` is reported as a masking change. Before the aspect became a
typed key, the decision aspect was the string "decision", in the same namespace as data
classes, so such a policy got "0 their masking" and the decision change twice.
"""

from __future__ import annotations

from click.testing import CliRunner

from cxpolicy.engine.loader import load_text
from cxpolicy.tools.analysis import DECISION, Space
from cxpolicy.tools.diff import diff

VOCAB = """
dimension action: {a, b}
dimension data_class at data_classes: set {decision, pan}
"""
OLD = VOCAB + """
package p
default allow
rule mask { match data_class = decision
  decide redact as last4 }
"""
NEW = VOCAB + """
package p
default allow
rule mask { match data_class = decision
  decide redact as full }
rule block_b { match action = b
  decide escalate }
"""


def test_a_data_class_named_decision_is_its_own_aspect() -> None:
    space = Space(load_text(OLD), load_text(NEW))
    aspects = space.aspects()
    assert aspects.count(DECISION) == 1
    assert "decision" in aspects  # the data class, apart from the decision aspect
    assert len(aspects) == 2


def test_diff_reports_the_decision_once_and_the_masking_of_class_decision() -> None:
    report = diff(load_text(OLD), load_text(NEW))
    decisions = [c for c in report.changes if c.aspect == DECISION]
    masks = [c for c in report.changes if c.aspect != DECISION]
    assert len(decisions) >= 1
    assert all("escalate" in t.new for c in decisions for t, _ in c.transitions)
    assert masks and all(c.aspect == "decision" for c in masks)
    assert {(t.old, t.new) for c in masks for t, _ in c.transitions} == {("last4", "full")}


def test_cli_summary_counts_the_masking_change(tmp_path: object) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    (root / "old").mkdir()
    (root / "new").mkdir()
    (root / "old" / "p.cxp").write_text(OLD, encoding="utf-8")
    (root / "new" / "p.cxp").write_text(NEW, encoding="utf-8")
    from cxpolicy.cli import main

    result = CliRunner().invoke(main, ["diff", str(root / "old"), str(root / "new")], catch_exceptions=False)
    assert "1 their masking" in result.output, result.output
    decision_section = result.output.split("decision changes", 1)[1].split("masking changes", 1)[0]
    assert "last4" not in decision_section  # the masking change is not printed as a decision change
    # Each decision region once (with the class `decision` present and absent), not twice.
    assert decision_section.count("→ escalate") == 2, result.output
    assert result.output.count("redact decision: last4 → full") == 1, result.output
