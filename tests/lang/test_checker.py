"""The check stage (cxpolicy/lang/checker.py): parsed modules + vocabulary → `CheckedPolicy`.

Input: modules parsed from small texts. Output: assertions on the checked rules and the
diagnostics: every problem of a rule is reported (not only the first), a rule with an error
is dropped while its neighbours are kept, and a rule is judged on its own problems, not on
what else is already in the shared diagnostic list.
"""

from __future__ import annotations

from cxpolicy.kinds import Effect, Op, Style
from cxpolicy.lang import ast, codes
from cxpolicy.lang.checker import CheckedPolicy, check
from cxpolicy.lang.source import Diagnostic, SourceFile, Span
from cxpolicy.lang.syntax import parse
from cxpolicy.lang.vocabulary import build_vocabulary

VOCAB = """package p
dimension action: {a, b}
dimension tier at customer.tier: ordered {lo, mid, hi}
dimension dc at data_classes: set {pan, cvv}
cite LAW = "Act 1"
"""


def _modules(*texts: str) -> tuple[list[ast.Module], list[SourceFile]]:
    mods, srcs = [], []
    for i, t in enumerate(texts):
        r = parse(t, f"f{i}.cxp")
        assert r.module is not None, [d.headline() for d in r.diagnostics]
        mods.append(r.module)
        srcs.append(SourceFile(f"f{i}.cxp", t))
    return mods, srcs


def _check(*texts: str, diags: list[Diagnostic] | None = None) -> tuple[CheckedPolicy, list[Diagnostic]]:
    mods, srcs = _modules(*texts)
    out: list[Diagnostic] = [] if diags is None else diags
    return check(mods, srcs, out), out


def test_a_rule_reports_every_problem_and_is_dropped_its_neighbour_kept() -> None:
    checked, diags = _check(
        VOCAB
        + "rule bad { match acton = a, tier = top\n decide redact [pin] as blur\n cite NOLAW\n when x ==\n"
        + " decide allow }\n"
        + "rule good { match action = a\n decide allow }\n"
    )
    assert sorted(d.code for d in diags) == ["CXP201", "CXP202", "CXP306", "CXP308", "CXP309", "CXP312", "CXP401"]
    assert [r.id for r in checked.rules] == ["p.good"]


def test_a_rule_is_judged_on_its_own_problems_not_the_shared_list() -> None:
    elsewhere = codes.CXP101("an error found before checking", Span.unknown())
    checked, diags = _check(VOCAB + "rule ok { match action = a\n decide allow }\n", diags=[elsewhere])
    assert [r.id for r in checked.rules] == ["p.ok"]
    assert diags == [elsewhere]


def test_a_warning_does_not_drop_a_rule() -> None:
    checked, diags = _check(VOCAB + "dimension extra: {v, v}\nrule ok { match extra = v\n decide allow }\n")
    assert [d.code for d in diags] == ["CXP206"]
    assert [r.id for r in checked.rules] == ["p.ok"]


def test_scope_constraints_come_first_and_are_marked() -> None:
    checked, _ = _check(VOCAB + "scope tier >= mid\nrule r { match action in [a, b]\n decide require_otp }\n")
    (rule,) = checked.rules
    assert [(c.dimension.name, c.op, c.values, c.from_scope) for c in rule.constraints] == [
        ("tier", Op.GE, ("mid",), True),
        ("action", Op.IN, ("a", "b"), False),
    ]
    assert rule.constraints[0].allowed() == frozenset({"mid", "hi"})


def test_redact_classes_listed_or_implied_by_a_positive_constraint() -> None:
    checked, diags = _check(
        VOCAB
        + "rule listed { match action = a\n decide redact [cvv, pan, cvv] as last4 }\n"
        + "rule implied { match dc in [pan]\n decide redact }\n"
    )
    assert diags == []
    listed, implied = checked.rules
    assert listed.redact_classes == ("cvv", "pan") and listed.style is Style.LAST4
    assert implied.redact_classes is None and implied.implicit_classes == frozenset({"pan"})
    assert implied.style is Style.FULL and implied.effect is Effect.REDACT


def test_cites_resolve_and_the_default_is_collected_across_files() -> None:
    checked, diags = _check(
        VOCAB + 'rule r { match action = a\n decide allow\n cite LAW\n cite "inline" }\n',
        'package q\ndefault escalate to "desk"\n',
    )
    assert diags == []
    assert checked.rules[0].cites == (("LAW", "Act 1"), (None, "inline"))
    assert (checked.default, checked.default_queue) == (Effect.ESCALATE, "desk")


def test_a_given_vocabulary_is_used_not_rebuilt() -> None:
    mods, srcs = _modules(VOCAB + "dimension extra: {v, v}\n")
    diags: list[Diagnostic] = []
    vocab = build_vocabulary(mods, diags)
    checked = check(mods, srcs, diags, vocabulary=vocab)
    assert checked.vocabulary is vocab
    assert [d.code for d in diags] == ["CXP206"]  # reported once, by the vocabulary stage


def test_did_you_mean_hints() -> None:
    _, diags = _check(VOCAB + "rule r { match actoin = a, tier = hj\n decide allow\n cite LAX }\n")
    hints = {d.code: d.hint for d in diags}
    assert hints["CXP201"] == "did you mean `action`?"
    assert hints["CXP312"] == "did you mean `LAW`?"
    assert hints["CXP202"] is not None and hints["CXP202"].startswith(("did you mean", "known values"))
