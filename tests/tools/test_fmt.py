"""The formatter: golden files, properties on generated policies, and the `fmt` command.

The generator writes random *syntactically* valid .cxp text — every item kind, quoted and
bare values, multi-line and commented CEL, nested JSON, trailing commas — and scatters
whitespace, line breaks, blank lines, own-line and trailing comments wherever the grammar
allows them. The properties: fmt is idempotent, keeps the AST (spans aside) and keeps every
comment.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxpolicy.cli import main
from cxpolicy.lang.prepass import prepass
from cxpolicy.lang.syntax import parse
from cxpolicy.tools.fmt import FormatError, format_source

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "fmt"
EXAMPLES = int(os.environ.get("CXPOLICY_FMT_EXAMPLES", "300"))

# ------------------------------------------------------------------------------ generator


class _Cond:
    """A CEL expression: same line as its keyword, and a line break must follow it."""

    def __init__(self, text: str):
        self.text = text


NAMES = ["a", "b_2", "refund.execute", "risk-tier", "x.y.z", "IN", "card_pan", "Q1", "high"]
PATHS = ["context.amount", "customer.risk_tier", "payload.text", "x"]
STRINGS = ['"q"', '"has # hash"', '"esc \\" quote"', '"\\u00e9t\\u00e9"', '""', '"when x"']
CELS = [
    "context.amount > 500",
    "!context.otp_verified",
    "customer.risk_tier == 'low' && context.amount <= 500.0",
    'payload.text.contains("#tag")',
    "size(actor.roles) > 0",
    "(context.amount > 1 ||\n     context.flag)",
    "[1, 2,   # inner comment\n  3].exists(x, x > 2)",
    "'a' in {'a': 1}",
    "context.x  ==  1",
]
COMMENT_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=12).map(
    lambda s: "#" + s.rstrip()
)

name = st.sampled_from(NAMES)
string = st.sampled_from(STRINGS)
value = st.one_of(name, string)


def values(min_size: int = 0) -> st.SearchStrategy[list[str]]:
    return st.lists(value, min_size=min_size, max_size=5)


def comma_list(items: list[list[str | _Cond]], trailing: bool = False) -> list[str | _Cond]:
    out: list[str | _Cond] = []
    for i, it in enumerate(items):
        out += it
        if i < len(items) - 1 or (trailing and items):
            out.append(",")
    return out


@st.composite
def constraint(draw: st.DrawFn) -> list[str | _Cond]:
    op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "in", "not in"]))
    dim = draw(name)
    if op in ("in", "not in"):
        vs = draw(values())
        toks: list[str | _Cond] = [dim, *op.split(), "["]
        return [*toks, *comma_list([[v] for v in vs], draw(st.booleans()) and bool(vs)), "]"]
    return [dim, op, draw(value)]


@st.composite
def effect(draw: st.DrawFn) -> list[str | _Cond]:
    kind = draw(st.sampled_from(["allow", "require_otp", "escalate", "escalate to", "redact"]))
    if kind == "escalate to":
        return ["escalate", "to", draw(string)]
    if kind != "redact":
        return [kind]
    toks: list[str | _Cond] = ["redact"]
    if draw(st.booleans()):
        toks += ["[", *comma_list([[v] for v in draw(values())]), "]"]
    if draw(st.booleans()):
        toks += ["as", draw(st.sampled_from(["full", "token", "last4", "bogus"]))]
    return toks


json_scalar = st.one_of(
    st.sampled_from(['"s"', '"a # b"', "1", "-2.5", "1e3", "0", "true", "false", "null", '"\\n"']),
    st.text(max_size=6).map(lambda s: json.dumps(s)),
)


def _json_object(children: st.SearchStrategy[list[str | _Cond]]) -> st.SearchStrategy[list[str | _Cond]]:
    pair = st.tuples(st.sampled_from(['"action"', '"k"', '"a b"', '"x"']), children).map(
        lambda kv: [kv[0], ":", *kv[1]]
    )
    return st.lists(pair, max_size=4).map(lambda ps: ["{", *comma_list(ps), "}"])


json_value: st.SearchStrategy[list[str | _Cond]] = st.recursive(
    json_scalar.map(lambda s: [s]),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: ["[", *comma_list(xs), "]"]),
        _json_object(inner),
    ),
    max_leaves=12,
)


@st.composite
def clause(draw: st.DrawFn) -> list[str | _Cond]:
    kind = draw(st.sampled_from(["match", "when", "unless", "decide", "because", "cite"]))
    if kind == "match":
        return ["match", *comma_list(draw(st.lists(constraint(), min_size=1, max_size=4)))]
    if kind in ("when", "unless"):
        return [kind, _Cond(draw(st.sampled_from(CELS)))]
    if kind == "decide":
        return ["decide", *draw(effect())]
    if kind == "because":
        return ["because", draw(string)]
    refs = draw(st.lists(st.one_of(name, string), min_size=1, max_size=3))
    return ["cite", *comma_list([[r] for r in refs])]


@st.composite
def tblock_item(draw: st.DrawFn) -> list[str | _Cond]:
    kind = draw(st.sampled_from(["request", "effect", "rules", "redact", "escalate_to"]))
    if kind == "request":
        return ["request", *draw(_json_object(json_value))]
    if kind == "effect":
        return ["expect", draw(st.sampled_from(["allow", "redact", "require_otp", "escalate"]))]
    return ["expect", kind, "[", *comma_list([[v] for v in draw(values())]), "]"]


@st.composite
def item(draw: st.DrawFn) -> list[str | _Cond]:
    kind = draw(
        st.sampled_from(
            ["package", "use", "scope", "default", "cite", "dimension", "extend", "attribute"]
            + ["rule"] * 3
            + ["test"] * 2
        )
    )
    if kind in ("package", "use"):
        return [kind, draw(name)]
    if kind == "scope":
        return ["scope", *comma_list(draw(st.lists(constraint(), min_size=1, max_size=3)))]
    if kind == "default":
        return ["default", *draw(effect())]
    if kind == "cite":
        return ["cite", draw(name), "=", draw(string)]
    if kind in ("dimension", "extend"):
        toks: list[str | _Cond] = (
            ["dimension", draw(name)] if kind == "dimension" else ["extend", "dimension", draw(name)]
        )
        if kind == "dimension" and draw(st.booleans()):
            toks += ["at", draw(st.sampled_from(PATHS))]
        toks.append(":")
        if kind == "dimension" and draw(st.booleans()):
            toks.append(draw(st.sampled_from(["ordered", "set"])))
        vs = draw(st.lists(value, max_size=30))
        # A dimension's `default` sits on the line of its closing brace (docs/language.md §3).
        close = "}"
        if kind == "dimension" and draw(st.booleans()):
            close = "} default " + draw(value)
        toks += ["{", *comma_list([[v] for v in vs], draw(st.booleans()) and bool(vs)), close]
        return toks
    if kind == "attribute":
        toks = ["attribute", draw(st.sampled_from(PATHS)), ":", draw(st.sampled_from(["number", "map", "bool"]))]
        if draw(st.booleans()):
            toks += ["=", *draw(json_value)]
        return toks
    if kind == "rule":
        body = draw(st.lists(clause(), max_size=7))
        return ["rule", draw(name), "{", *[t for c in body for t in c], "}"]
    body = draw(st.lists(tblock_item(), max_size=4))
    return ["test", draw(string), "{", *[t for c in body for t in c], "}"]


@st.composite
def gap(draw: st.DrawFn, need_newline: bool) -> str:
    """What may separate two tokens: spaces, line breaks, blank lines and comments."""
    choices = ["\n", "  \n\n", "newline-comment", "trailing-comment", "own-line-comment"]
    kind = draw(st.sampled_from(choices if need_newline else [" ", " ", "   ", *choices]))
    indent = draw(st.sampled_from(["", "  ", "\t", "      "]))
    if kind in (" ", "   "):
        return kind
    if kind == "trailing-comment":
        return " " + draw(COMMENT_TEXT) + "\n" + indent
    if kind == "own-line-comment":
        return "\n" + indent + draw(COMMENT_TEXT) + "\n" + draw(st.sampled_from(["", "\n"])) + indent
    if kind == "newline-comment":
        return "  " + draw(COMMENT_TEXT) + "\n\n" + draw(COMMENT_TEXT) + "\n" + indent
    return kind + indent


@st.composite
def policy_text(draw: st.DrawFn) -> str:
    items: list[list[str | _Cond]] = []
    for it in draw(st.lists(item(), max_size=8)):
        if it[0] == "default" and items and items[-1][0] == "dimension":
            # On the line of a dimension's closing brace `default` is that dimension's default;
            # a policy-set default starts its own line.
            it = ["\ndefault", *it[1:]]
        items.append(it)
    toks = [t for it in items for t in it]
    out = [draw(st.sampled_from(["", "\n", "# header\n\n"]))]
    for i, tok in enumerate(toks):
        if isinstance(tok, _Cond):
            out.append(tok.text)
        else:
            out.append(tok)
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if nxt is None:
            out.append(draw(st.sampled_from(["", "\n", "  # last\n", "\n# end\n\n"])))
        elif isinstance(nxt, _Cond):
            out.append(draw(st.sampled_from([" ", "   ", "\t"])))
        else:
            out.append(draw(gap(isinstance(tok, _Cond))))
    return "".join(out)


def comments(text: str) -> Counter[str]:
    return Counter(c.text for c in prepass(text).comments)


# ------------------------------------------------------------------------------ properties


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_text())
def test_fmt_is_idempotent_and_keeps_the_tree_and_comments(src: str) -> None:
    before = parse(src, "p.cxp")
    assert before.module is not None, (src, before.diagnostics)  # the generator writes valid syntax
    out = format_source(src, "p.cxp")
    after = parse(out, "p.cxp")
    assert after.module == before.module
    assert format_source(out, "p.cxp") == out
    assert comments(out) == comments(src)
    assert out == "" or (out.endswith("\n") and not out.endswith("\n\n"))
    assert "\n\n\n" not in out


# ------------------------------------------------------------------------------ golden files


def golden_cases() -> list[Path]:
    return sorted(GOLDEN.glob("*.cxp"))


@pytest.mark.parametrize("case", golden_cases(), ids=lambda p: p.stem)
def test_golden(case: Path) -> None:
    expected = case.with_suffix(".out").read_text(encoding="utf-8")
    out = format_source(case.read_text(encoding="utf-8"), case.name)
    if os.environ.get("CXPOLICY_UPDATE_GOLDEN"):
        case.with_suffix(".out").write_text(out, encoding="utf-8")
        expected = out
    assert out == expected
    assert format_source(expected, case.name) == expected


def test_golden_cases_exist() -> None:
    assert len(golden_cases()) >= 5


# ------------------------------------------------------------------------------ behaviour


def test_syntax_error_is_reported_not_formatted() -> None:
    with pytest.raises(FormatError) as info:
        format_source("rule x {\n  match a = \n}\n", "bad.cxp")
    assert info.value.diagnostics[0].code == "CXP101"


def test_unclosed_condition_bracket_is_an_error() -> None:
    with pytest.raises(FormatError) as info:
        format_source("package p\nrule r {\n  when (a\n  decide allow\n}\n", "bad.cxp")
    assert any(d.code == "CXP102" for d in info.value.diagnostics)


def test_cel_is_kept_verbatim_and_only_trimmed() -> None:
    src = "package p\nrule r {\n when      a  ==   'x'   # why\n  decide allow\n}\n"
    out = format_source(src)
    assert "  when    a  ==   'x'  # why\n" in out


def test_crlf_and_tabs_become_the_canonical_layout() -> None:
    src = "package p\r\nrule r {\r\n\tmatch a = b\r\n\tdecide allow\t# ok\r\n}\r\n"
    assert format_source(src) == "package p\n\nrule r {\n  match   a = b\n  decide  allow  # ok\n}\n"


def test_empty_and_comment_only_files() -> None:
    assert format_source("") == "" and format_source("\n\n  \n") == ""
    assert format_source("  # c1\n\n\n# c2") == "# c1\n\n# c2\n"


def test_redact_with_empty_brackets_keeps_them() -> None:
    out = format_source("package p\nrule r { decide redact [ ] as full }\n")
    assert "decide  redact [] as full" in out


def test_long_match_breaks_one_constraint_a_line_aligned() -> None:
    vals = ", ".join(f"value_{i}" for i in range(12))
    out = format_source(f"package p\nrule r {{\n  match action in [{vals}], channel = chat\n  decide allow\n}}\n")
    lines = out.split("\n")
    i = next(k for k, line in enumerate(lines) if line.startswith("  match   "))
    assert lines[i] == "  match   action in [value_0, value_1, value_2, value_3, value_4, value_5, value_6, value_7,"
    assert lines[i + 1] == "                     value_8, value_9, value_10, value_11],"
    assert lines[i + 2] == "          channel = chat"


def test_long_request_fills_members_aligned_after_the_brace() -> None:
    body = ", ".join(f'"k{i}": "some value {i}"' for i in range(8))
    out = format_source(f'test "t" {{\n  request {{{body}, "n": {{"a": 1}}}}\n  expect allow\n}}\n')
    lines = out.split("\n")
    assert lines[1].startswith('  request { "k0": "some value 0", "k1": ')
    assert all(line.startswith('            "') for line in lines[2:4])
    assert lines[3].endswith('"n": {"a": 1} }')
    assert max(len(line) for line in lines) <= 100


def test_request_member_too_long_for_a_line_is_broken() -> None:
    text = "x" * 90
    out = format_source(f'test "t" {{ request {{"a": 1, "p": {{"text": "{text}", "d": 2}}}} expect allow }}\n')
    assert '  request { "a": 1,\n            "p": {"text": "xxx' in out
    assert 'xxx",\n                  "d": 2} }\n' in out


def test_comment_after_the_last_member_keeps_the_bracket_on_its_own_line() -> None:
    src = 'test "t" {\n  request {"a": {"b": 1  # why b\n  }}\n  expect allow\n}\n'
    out = format_source(src)
    assert '  request { "a": {"b": 1  # why b\n                 } }\n' in out
    assert format_source(out) == out


# ------------------------------------------------------------------------------ command


UGLY = "package p\nrule r {\nmatch a=b\n decide allow }\n"
PRETTY = "package p\n\nrule r {\n  match   a = b\n  decide  allow\n}\n"


def test_cli_rewrites_in_place(tmp_path: Path) -> None:
    f = tmp_path / "a.cxp"
    f.write_text(UGLY)
    r = CliRunner().invoke(main, ["fmt", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert f.read_text() == PRETTY
    r = CliRunner().invoke(main, ["fmt", "--check", str(f)])
    assert r.exit_code == 0


def test_cli_check_lists_files_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.cxp").write_text(UGLY)
    (tmp_path / "b.cxp").write_text(PRETTY)
    r = CliRunner().invoke(main, ["fmt", "--check", str(tmp_path)])
    assert r.exit_code == 1
    assert f"would reformat {tmp_path / 'a.cxp'}" in r.output
    assert "b.cxp" not in r.stdout
    assert (tmp_path / "a.cxp").read_text() == UGLY


def test_cli_diff_prints_a_unified_diff(tmp_path: Path) -> None:
    f = tmp_path / "a.cxp"
    f.write_text(UGLY)
    r = CliRunner().invoke(main, ["fmt", "--diff", str(f)])
    assert r.exit_code == 0
    assert "+  match   a = b\n" in r.stdout and "-match a=b\n" in r.stdout
    assert f.read_text() == UGLY
    r = CliRunner().invoke(main, ["fmt", "--diff", "--check", str(f)])
    assert r.exit_code == 1


def test_cli_never_rewrites_a_file_that_does_not_parse(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cxp"
    bad.write_text("rule r {\n  match = b\n}\n")
    good = tmp_path / "good.cxp"
    good.write_text(UGLY)
    r = CliRunner().invoke(main, ["fmt", str(tmp_path)])
    assert r.exit_code == 2
    assert "CXP101" in r.output
    assert bad.read_text() == "rule r {\n  match = b\n}\n"
    assert good.read_text() == PRETTY  # the others are still formatted


def test_cli_missing_path_exits_2(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["fmt", str(tmp_path / "nope.cxp")])
    assert r.exit_code == 2 and "CXP001" in r.output


def test_cli_stdin_to_stdout() -> None:
    r = CliRunner().invoke(main, ["fmt", "-"], input=UGLY)
    assert r.exit_code == 0 and r.stdout == PRETTY
    r = CliRunner().invoke(main, ["fmt", "--check", "-"], input=UGLY)
    assert r.exit_code == 1


def test_cli_keeps_file_mode(tmp_path: Path) -> None:
    f = tmp_path / "a.cxp"
    f.write_text(UGLY)
    f.chmod(0o640)
    CliRunner().invoke(main, ["fmt", str(f)])
    assert f.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["a.cxp"]  # no temporary file left behind
