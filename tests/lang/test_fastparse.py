"""The hand-written parser (lang/fastparse.py) against the Lark reference (grammar/cxp.lark).

Input: every golden file, shipped pack, example ruleset, the core vocabulary, benchmark
workloads and fuzzed sources (tests/test_fuzz.py's generator). Output of each check: the two
parsers give the same tree — every field, every span, the type of every JSON number — and
`parse` (fast parser, Lark on anything it refuses) gives exactly the diagnostics of
`parse_reference` (Lark alone).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings

from bench.workload import generate, to_cxp
from cxpolicy.lang import ast
from cxpolicy.lang.fastparse import fast_parse
from cxpolicy.lang.prepass import prepass
from cxpolicy.lang.syntax import ParseResult, _parser, parse, parse_reference
from tests.test_fuzz import CORPUS, CORPUS_FILES, cxp_sources

EXAMPLES = 300  # in `make test`; `make fuzz` runs the long variant with CXPOLICY_FUZZ_EXAMPLES
LONG = int(os.environ.get("CXPOLICY_FUZZ_EXAMPLES", "2000"))
KEYWORDS = frozenset(
    t.name for t in _parser().terminals if t.pattern.type == "str" and t.pattern.value.isidentifier()
)


def dump(x: Any) -> Any:
    """Everything in a tree, spans and `Condition.cel` included (AST equality skips them)."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return (type(x).__name__, tuple((f.name, dump(getattr(x, f.name))) for f in dataclasses.fields(x)))
    if isinstance(x, dict):
        return ("dict", tuple((k, dump(v)) for k, v in x.items()))
    if isinstance(x, list | tuple):
        return (type(x).__name__, tuple(dump(v) for v in x))
    return (type(x).__name__, x)


def result_view(r: ParseResult) -> Any:
    return dump(r.module), [d.to_dict() for d in r.diagnostics], r.comments


def test_no_parser_state_takes_both_a_name_and_a_keyword() -> None:
    """The fast lexer reads any word as a name where one may stand; Lark's contextual lexer
    agrees only while no LALR state accepts IDENT and a keyword together."""
    states = _parser().parser.parser.parser.parse_table.states  # type: ignore[attr-defined]
    assert {"RULE", "MATCH", "ALLOW", "ESCALATE_TO", "TRUE"} <= KEYWORDS
    for actions in states.values():
        if "IDENT" in actions:
            assert not (KEYWORDS & set(actions)), sorted(actions)


CASES = [(p.relative_to(p.parents[1]).as_posix(), t) for p, t in zip(CORPUS_FILES, CORPUS, strict=False)]
CASES += [("fuzz_policy", CORPUS[-1])]
CASES += [(f"bench-{n}-{seed}", to_cxp(generate(n, seed=seed))) for n, seed in ((200, 1), (200, 2), (1000, 3))]


@pytest.mark.parametrize(("name", "text"), CASES, ids=[c[0] for c in CASES])
def test_same_tree_as_lark_on_every_corpus_file(name: str, text: str) -> None:
    ref = parse_reference(text, name)
    fast = fast_parse(prepass(text), name)
    if ref.module is None:
        assert fast is None, "accepted a file Lark rejects"
        return
    # Every well-formed file of the corpus takes the fast path (else the speed is not real).
    assert fast is not None
    assert dump(fast) == dump(ref.module)
    assert result_view(parse(text, name)) == result_view(ref)


def test_a_syntax_error_keeps_lark_s_diagnostic() -> None:
    text = "package p\nrule r {\n  match action = \n  decide allow\n}\n"
    fast = parse(text, "bad.cxp")
    ref = parse_reference(text, "bad.cxp")
    assert fast.module is None
    assert [d.to_dict() for d in fast.diagnostics] == [d.to_dict() for d in ref.diagnostics]
    assert fast.diagnostics[0].code == "CXP101"
    assert (fast.diagnostics[0].span.line, fast.diagnostics[0].span.col) == (4, 3)


@pytest.mark.parametrize(
    "text",
    [
        "package p\nrulex r { decide allow }\n",  # Lark splits `rulex` into `rule` `x`
        "package p\nrule r { match a notin [b] decide allow }\n",
        "package p\nrule r { decide allow }",  # no final newline
        "package p # trailing comment without a newline",
        'package p\ntest "t" { request {"a": [1, 2.5, -0, 1e3, null, true, {}]} expect rules [] }\n',
        "package p\nattribute context.x: list = [null]\nattribute context.y: number = -1.5e-3\n",
        "package p\ndimension d: set {a, b,} \x03efault a\n",
        "package p\nrule r { decide redact [a, \"b\",] as token cite x, \"y\" because \"\\u00e9\" }\n",
        'package p\ncite a = "b\\q"\n',  # bad escape: Lark's CXP103
        "package p\n\x02\n",  # a stray placeholder character
    ],
)
def test_edge_cases_agree(text: str) -> None:
    assert result_view(parse(text, "e.cxp")) == result_view(parse_reference(text, "e.cxp"))


def _differential(text: str) -> None:
    ref = parse_reference(text, "f.cxp")
    fast = fast_parse(prepass(text), "f.cxp")
    if fast is not None:
        assert ref.module is not None, "accepted a source Lark rejects"
        assert dump(fast) == dump(ref.module)
    event("fast path" if fast is not None else ("lark accepts" if ref.module is not None else "both reject"))
    assert result_view(parse(text, "f.cxp")) == result_view(ref)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cxp_sources())
def test_fuzzed_sources_parse_the_same(text: str) -> None:
    _differential(text)


@pytest.mark.slow
@settings(max_examples=LONG, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cxp_sources())
def test_fuzzed_sources_parse_the_same_long(text: str) -> None:
    _differential(text)


def test_deep_json_is_left_to_the_reference_path() -> None:
    text = "package p\nattribute context.x: list = " + "[" * 5000 + "]" * 5000 + "\n"
    assert fast_parse(prepass(text), "deep.cxp") is None


def test_empty_and_blank_files() -> None:
    for text in ("", "\n\n", "# only a comment", "  \t\r\n"):
        fast = fast_parse(prepass(text), "x.cxp")
        assert fast is not None
        assert dump(fast) == dump(parse_reference(text, "x.cxp").module)
        assert fast == ast.Module("x.cxp", ())
