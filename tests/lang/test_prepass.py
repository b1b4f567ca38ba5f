"""The pre-pass (cxpolicy/lang/prepass.py): .cxp text → masked text, conditions, comments.

Input: small .cxp texts. Output: assertions that the masked text keeps every offset (same
length, same lines), that each `when`/`unless` expression is found whole (across lines while
a bracket is open, with strings holding `#` and `}`), that comments are found with their place, and that an
unclosed bracket is reported as a problem (the source of CXP102).
"""

from __future__ import annotations

from cxpolicy.lang.prepass import prepass

TEXT = """rule r {  # trailing
  # own line
  match action = a
  when context.s == "#not a comment }" && (context.n > 1 ||
       context.n < -1)
  unless context.f  # after a condition
  decide allow
}
"""


def test_masked_text_keeps_every_offset() -> None:
    pre = prepass(TEXT)
    assert len(pre.masked) == len(TEXT)
    assert pre.masked.count("\n") == TEXT.count("\n")


def test_conditions_are_found_whole_by_offset() -> None:
    pre = prepass(TEXT)
    conds = sorted(pre.conds.values(), key=lambda c: c.offset)
    assert [c.raw.split()[0] for c in conds] == ["context.s", "context.f"]
    first = conds[0]
    # A condition runs to the end of its line, or further while a bracket is open (LANGUAGE.md).
    assert first.raw.startswith('context.s == "#not a comment }" &&') and first.raw.rstrip().endswith("< -1)")
    assert (first.line, first.end_line) == (4, 5)
    assert TEXT[first.offset : first.offset + len(first.raw)] == first.raw
    assert len(first.cel) == len(first.raw)
    assert conds[1].raw.strip() == "context.f"  # the trailing comment is not part of it


def test_comments_with_their_place() -> None:
    pre = prepass(TEXT)
    assert [(c.line, c.text, c.own_line) for c in pre.comments] == [
        (1, "# trailing", False),
        (2, "# own line", True),
        (6, "# after a condition", False),
    ]


def test_an_unclosed_bracket_in_a_condition_is_a_problem() -> None:
    pre = prepass("rule r {\n  when (context.x\n  decide allow\n}\n")
    assert pre.problems and pre.problems[0][0] == 2
    assert prepass(TEXT).problems == ()
