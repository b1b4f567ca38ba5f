"""Syntax stage: .cxp text → AST with spans, comments kept, errors as diagnostics."""

from __future__ import annotations

from cxpolicy.lang import ast
from cxpolicy.lang.syntax import parse

POLICY = """package bfsi.rbi.payments
scope region = IN                        # added to every rule of this file

cite PCI_3_3 = "PCI DSS v4.0.1 Req 3.3.1"
dimension risk_tier at customer.risk_tier: ordered {low, medium, high, critical} default critical
attribute context.otp_verified: bool = false

rule high_risk_transfer {
  match   action in [funds.transfer, payee.add], risk_tier >= high
  when    !context.otp_verified && (
            context.amount > 5 # inner comment
          )
  unless  "vip" in actor.roles   # trailing comment
  decide  redact [card_pan] as last4
  because "High-risk transfers need a fresh OTP"
  cite    PCI_3_3, "RBI/2025-26/79"
}

test "a test" {
  request { "action": "payee.add", "n": [1, 2.5, null, true], "s": "when # not a comment" }
  expect require_otp
  expect rules [bfsi.rbi.payments.high_risk_transfer]
}
"""


def test_parses_every_declaration_kind() -> None:
    r = parse(POLICY, "p.cxp")
    assert r.diagnostics == []
    assert r.module is not None
    kinds = [type(i).__name__ for i in r.module.items]
    assert kinds == ["Package", "Scope", "CiteDecl", "Dimension", "Attribute", "Rule", "TestBlock"]
    dim = r.module.items[3]
    assert isinstance(dim, ast.Dimension)
    assert (dim.kind, dim.path, dim.default and dim.default.text) == ("ordered", "customer.risk_tier", "critical")
    attr = r.module.items[4]
    assert isinstance(attr, ast.Attribute)
    assert (attr.type, attr.default, attr.has_default) == ("bool", False, True)


def test_rule_clauses_and_conditions_keep_their_text_and_spans() -> None:
    r = parse(POLICY, "p.cxp")
    assert r.module is not None
    rule = next(i for i in r.module.items if isinstance(i, ast.Rule))
    assert [c.text() for c in rule.matches] == [
        "action in [funds.transfer, payee.add]",
        "risk_tier >= high",
    ]
    when, unless = rule.conditions
    assert when.kind == "when" and when.text.startswith("!context.otp_verified && (")
    assert when.text.endswith(")") and "# inner comment" in when.text
    assert "#" not in when.cel and len(when.cel) == len(when.text)
    assert (when.span.line, when.span.col, when.span.end_line) == (10, 11, 12)
    assert unless.text == '"vip" in actor.roles'
    assert rule.decides[0] == ast.EffectSpec("redact", (ast.Value("card_pan"),), "last4")
    assert rule.because == ("High-risk transfers need a fresh OTP",)
    assert [(c.name, c.text) for c in rule.cites] == [("PCI_3_3", None), (None, "RBI/2025-26/79")]
    assert (rule.name_span.line, rule.name_span.col) == (8, 6)


def test_comments_are_collected_for_the_formatter() -> None:
    r = parse(POLICY, "p.cxp")
    texts = [c.text for c in r.comments]
    assert texts == ["# added to every rule of this file", "# inner comment", "# trailing comment"]
    assert [c.line for c in r.comments] == [2, 11, 13]


def test_json_in_test_blocks_and_words_inside_strings_are_not_conditions() -> None:
    r = parse(POLICY, "p.cxp")
    assert r.module is not None
    t = r.module.items[-1]
    assert isinstance(t, ast.TestBlock)
    assert t.requests[0] == {"action": "payee.add", "n": [1, 2.5, None, True], "s": "when # not a comment"}
    assert [e.kind for e in t.expects] == ["effect", "rules"]


def test_equality_ignores_spans() -> None:
    a = parse("package x\nrule r { decide allow }\n", "a.cxp").module
    b = parse("\n\npackage   x\n\n\nrule r {\n  decide allow\n}\n", "b.cxp").module
    assert a is not None and b is not None
    assert a.items == b.items


def test_redact_forms() -> None:
    src = """package p
rule a { decide redact }
rule b { decide redact as token }
rule c { decide redact [x, y] }
rule d { decide escalate }
rule e { decide escalate to "q" }
"""
    m = parse(src, "f.cxp").module
    assert m is not None
    specs = [i.decides[0] for i in m.items if isinstance(i, ast.Rule)]
    assert specs[0] == ast.EffectSpec("redact", None, None)
    assert specs[1] == ast.EffectSpec("redact", None, "token")
    assert specs[2].classes == (ast.Value("x"), ast.Value("y")) and specs[2].style is None
    assert specs[3] == ast.EffectSpec("escalate")
    assert specs[4].queue == "q"


def test_missing_condition_after_when_is_named() -> None:
    r = parse("package p\nrule r {\n  when\n  decide allow\n}\n", "f.cxp")
    assert r.module is None
    (d,) = r.diagnostics
    assert d.code == "CXP101"
    assert "missing condition after `when`" in d.message
    assert (d.span.line, d.span.col) == (4, 3)


def test_unexpected_token_says_what_was_expected() -> None:
    r = parse("package p\nrule r {\n  match action = \n}\n", "f.cxp")
    (d,) = r.diagnostics
    assert d.code == "CXP101" and d.span.line == 4
    assert "unexpected `}`" in d.message and "a name" in d.message


def test_single_quoted_strings_get_a_hint() -> None:
    r = parse("package p\ncite X = 'text'\n", "f.cxp")
    (d,) = r.diagnostics
    assert d.code == "CXP101" and d.hint is not None and "double quotes" in d.hint


def test_unclosed_bracket_in_condition_is_reported() -> None:
    r = parse("package p\nrule r {\n  when (a &&\n  decide allow\n}\n", "f.cxp")
    assert any(d.code == "CXP102" and d.span.line == 3 for d in r.diagnostics)


def test_dimension_default_sits_on_the_closing_brace_line() -> None:
    src = """package p
dimension d at x: {a, b} default b
dimension e: ordered {
  a, b
} default a
extend dimension e: {c}
default allow
rule r { decide allow } default escalate
"""
    r = parse(src, "f.cxp")
    assert r.diagnostics == []
    assert r.module is not None
    dims = [i for i in r.module.items if isinstance(i, ast.Dimension)]
    assert [(d.name, d.default and d.default.text) for d in dims] == [("d", "b"), ("e", "a")]
    defaults = [i.effect.effect for i in r.module.items if isinstance(i, ast.DefaultDecl)]
    assert defaults == ["allow", "escalate"]  # never swallowed as a dimension's default value


def test_empty_redact_list_is_kept_apart_from_implicit_redact() -> None:
    m = parse("package p\nrule a { decide redact [] }\nrule b { decide redact }\n", "f.cxp").module
    assert m is not None
    a, b = (i.decides[0] for i in m.items if isinstance(i, ast.Rule))
    assert a.classes == () and b.classes is None
