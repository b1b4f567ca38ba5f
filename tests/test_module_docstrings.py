"""Every module of the package opens with a docstring that names its input and output.

Input: the source of every module under cxpolicy/. Output: the modules whose docstring is
missing, or says neither `Input:`/`Output:`, nor `X → Y` in its first line, nor "X in, Y
out" in its first paragraph. cel/ and signals/
are not held to the input/output part yet (their owners are rewriting them); they must still
have a docstring.
"""

from __future__ import annotations

import ast
import re

from tests.conftest import ROOT

NOT_YET = ("cel/", "signals/")


def _names_input_and_output(doc: str) -> bool:
    first = doc.strip().splitlines()[0]
    opening = " ".join(doc.strip().split("\n\n")[0].split())  # the first paragraph, one line
    return (
        ("Input:" in doc and "Output:" in doc)
        or "→" in first
        or "->" in first
        or re.search(r"\bin, .+ out\b", opening) is not None  # "a cookie in, a reviewer out"
    )


def test_every_module_has_a_docstring_naming_input_and_output() -> None:
    missing: list[str] = []
    vague: list[str] = []
    for path in sorted((ROOT / "cxpolicy").rglob("*.py")):
        rel = path.relative_to(ROOT / "cxpolicy").as_posix()
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        if not doc:
            missing.append(rel)
        elif not rel.startswith(NOT_YET) and not _names_input_and_output(doc):
            vague.append(rel)
    assert missing == []
    assert vague == []
