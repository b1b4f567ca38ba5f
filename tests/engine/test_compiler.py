"""The lowering stage (cxpolicy/engine/compiler.py): checked rules → `CompiledRule`.

Input: checked policies from the loader stopped after `check`. Output: assertions that each
compiled rule keeps its load order, its prebuilt `Reason`, and its `when`/`unless` closures
split in the order they were written.
"""

from __future__ import annotations

from cxpolicy.engine.compiler import compile_rules
from cxpolicy.engine.loader import Stage, run_stages
from cxpolicy.kinds import ConditionKind, Effect
from cxpolicy.lang.checker import CheckedPolicy
from cxpolicy.lang.source import SourceFile

TEXT = """package p
dimension action: {a, b}
attribute context.n: number = 0
cite LAW = "Act 1, s. 2"
rule first { match action = a
  unless context.n > 9
  when context.n > 1
  when context.n < 5
  decide require_otp
  because "checks"
  cite LAW
  cite "inline text" }
rule second { match action = b
  decide redact [x] as token }
dimension dc at data_classes: set {x}
"""


def _checked() -> CheckedPolicy:
    c = run_stages([SourceFile("t.cxp", TEXT, key="t.cxp")], stop_after=Stage.CHECK)
    assert c.checked is not None, [d.headline() for d in c.diagnostics]
    return c.checked


def test_rules_keep_load_order_and_their_reason() -> None:
    checked = _checked()
    rules = compile_rules(checked)
    assert [(r.index, r.id) for r in rules] == [(0, "p.first"), (1, "p.second")]
    first = rules[0]
    assert first.effect is Effect.REQUIRE_OTP and first.severity == Effect.REQUIRE_OTP.severity
    assert first.reason.rule == "p.first" and first.reason.because == "checks"
    assert first.reason.cite == ("Act 1, s. 2", "inline text")
    assert first.reason.cite_names == ("LAW", None)
    assert first.reason.location == "t.cxp:5:1" == first.location == str(first.checked.span)


def test_conditions_split_into_whens_and_unlesses_in_written_order() -> None:
    (first, second) = compile_rules(_checked())
    assert [e.text for e in first.whens] == ["context.n > 1", "context.n < 5"]
    assert [e.text for e in first.unlesses] == ["context.n > 9"]
    assert [c.kind for c in first.conditions] == [ConditionKind.UNLESS, ConditionKind.WHEN, ConditionKind.WHEN]
    assert first.whens[0]({"context": {"n": 3}}) is True
    assert second.whens == () and second.unlesses == ()
    assert second.redact_classes == ("x",) and second.style.value == "token"
