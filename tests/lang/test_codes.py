"""The diagnostic code table (cxpolicy/lang/codes.py): docs agree with it, every code is produced.

Input: the table, docs/diagnostics.md, and for every compile code a minimal policy (or file)
that should produce it. Output: assertions that the docs list exactly the table's codes with
the same severity (and, outside lint, the same meaning), and that each code comes out of the
stage that owns it. The lint codes (CXP6xx) are produced by the golden cases of
tests/tools/test_lint.py, whose `test_golden_cases_cover_every_code` reads the same table.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cxpolicy.engine.loader import load, load_text
from cxpolicy.kinds import Severity
from cxpolicy.lang import codes
from cxpolicy.lang.codes import CODES
from cxpolicy.lang.source import Diagnostic, PolicyError
from cxpolicy.tools import fmt
from tests.conftest import ROOT

V = "dimension action: {a, b}\n"
P = "package p\n" + V
DC = "dimension dc at data_classes: set {pan}\n"

# One minimal policy text per compile code: the code must be among its diagnostics.
SNIPPETS: dict[str, str] = {
    "CXP003": "package p\nuse nosuchpack\n",
    "CXP101": "package p\nrule {\n",
    "CXP102": P + "rule r { match action = a\n when (context.x\n decide allow }\n",
    "CXP103": 'package p\ncite A = "bad \\q escape"\n',
    "CXP201": P + "rule r { match acton = a\n decide allow }\n",
    "CXP202": P + "rule r { match action = c\n decide allow }\n",
    "CXP203": P + "rule r { match action > a\n decide allow }\n",
    "CXP204": V + V,
    "CXP205": "extend dimension nosuch: {x}\n",
    "CXP206": "dimension x: {p, p}\n",
    "CXP207": "dimension x: {p, q} default r\n",
    "CXP210": "attribute context.x: float\n",
    "CXP211": 'attribute context.x: number = "five"\n',
    "CXP212": "attribute context.x: number\nattribute context.x: string\n",
    "CXP220": P + "rule r { match action in []\n decide allow }\n",
    "CXP301": P + "rule r { match action = a\n decide allow }\nrule r { match action = b\n decide allow }\n",
    "CXP302": V + "rule r { match action = a\n decide allow }\n",
    "CXP303": "package p\npackage q\n" + V,
    "CXP304": "package p\ndefault allow\ndefault escalate\n",
    "CXP305": P + "rule r { match action = a }\n",
    "CXP306": P + "rule r { match action = a\n decide allow\n decide escalate }\n",
    "CXP307": P + DC + "rule r { match action = a\n decide redact }\n",
    "CXP308": P + DC + "rule r { match action = a\n decide redact [cvv] }\n",
    "CXP309": P + DC + "rule r { match action = a\n decide redact [pan] as blur }\n",
    "CXP310": P + "rule r { match action = a\n decide redact [x] }\n",
    "CXP311": P + 'rule r { match action = a\n decide allow\n because "x"\n because "y" }\n',
    "CXP312": P + "rule r { match action = a\n decide allow\n cite NOPE }\n",
    "CXP313": 'package p\ncite A = "one"\ncite A = "two"\n',
    "CXP314": "package p\ndefault redact\n",
    "CXP401": P + "rule r { match action = a\n when context.x ==\n decide allow }\n",
    "CXP502": P + 'test "t" {\n expect allow\n}\n',
    "CXP503": P + 'test "t" {\n request {"action": "a"}\n}\n',
}
FROM_FILES = {"CXP001", "CXP002", "CXP199"}  # produced by the tests below, not by a policy text


def _diagnostics(text: str) -> list[Diagnostic]:
    try:
        return load_text(text, "t.cxp").warnings
    except PolicyError as exc:
        return exc.diagnostics


@pytest.mark.parametrize("code", sorted(SNIPPETS))
def test_each_compile_code_is_produced(code: str) -> None:
    got = _diagnostics(SNIPPETS[code])
    found = [d for d in got if d.code == code]
    assert found, [d.headline() for d in got]
    table = CODES[code]
    assert all(d.severity is table.severity for d in found)


def test_missing_path_and_empty_directory_give_cxp001(tmp_path: Path) -> None:
    for target in (tmp_path / "nope.cxp", tmp_path):
        with pytest.raises(PolicyError) as info:
            load(target)
        assert [d.code for d in info.value.diagnostics] == ["CXP001"]


@pytest.mark.parametrize("content", [b"package p\n\xff\xfe\n", b"#" * (8 * 1024 * 1024 + 1)])
def test_unreadable_file_gives_cxp002(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.cxp"
    path.write_bytes(content)
    with pytest.raises(PolicyError) as info:
        load(path)
    assert [d.code for d in info.value.diagnostics] == ["CXP002"]


def test_formatter_refuses_output_that_changes_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """CXP199: the formatter's safety net; a printer that drops a rule must be caught."""
    text = P + "rule r { match action = a\n decide allow }\n"
    monkeypatch.setattr(fmt._Printer, "print", lambda self, tree: P)
    with pytest.raises(fmt.FormatError) as info:
        fmt.format_source(text, "t.cxp")
    assert [d.code for d in info.value.diagnostics] == ["CXP199"]


def test_every_code_has_a_producing_test() -> None:
    lint = {c.code for c in codes.lint_codes()}  # tests/tools/test_lint.py: test_golden_cases_cover_every_code
    assert set(SNIPPETS) | FROM_FILES | lint == set(CODES)


def _doc_rows() -> dict[str, tuple[str, str]]:
    text = (ROOT / "docs" / "diagnostics.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (CXP\d{3}) \| ([^|]+) \| (.+) \|$", text, flags=re.M)
    return {code: (sev.strip(), meaning.strip()) for code, sev, meaning in rows}


def test_docs_list_exactly_the_table() -> None:
    docs = _doc_rows()
    assert sorted(docs) == sorted(CODES)
    for code, c in CODES.items():
        severity, meaning = docs[code]
        assert severity == (c.documented_severity or c.severity.value), code
        if c not in codes.lint_codes():  # lint's docs explain more than its one-line meaning
            assert meaning == c.meaning, code


def test_a_code_builds_its_diagnostic() -> None:
    from cxpolicy.lang.source import Span

    d = codes.CXP601("no because", Span.unknown(), "add one", severity=Severity.ERROR)
    assert (d.code, d.severity, d.hint) == ("CXP601", Severity.ERROR, "add one")
    assert codes.CXP206("twice", Span.unknown()).severity is Severity.WARNING
