"""The VS Code folder: its grammar is valid and covers the language's keywords, and the
extension starts the server the `cxpolicy` command provides."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.conftest import ROOT

VSCODE = ROOT / "editors" / "vscode"


def _patterns(node: Any) -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("match", "begin", "end") and isinstance(v, str):
                out.append(v)
            else:
                out.extend(_patterns(v))
    elif isinstance(node, list):
        for v in node:
            out.extend(_patterns(v))
    return out


def test_package_points_at_files_that_exist_and_starts_cxpolicy_lsp() -> None:
    pkg = json.loads((VSCODE / "package.json").read_text())
    assert (VSCODE / pkg["main"]).is_file()
    for g in pkg["contributes"]["grammars"]:
        assert (VSCODE / g["path"]).is_file()
    (lang,) = pkg["contributes"]["languages"]
    assert lang["extensions"] == [".cxp"] and (VSCODE / lang["configuration"]).is_file()
    assert pkg["contributes"]["configuration"]["properties"]["cxpolicy.command"]["default"] == ["cxpolicy", "lsp"]
    assert "editor.formatOnSave" in json.dumps(pkg["contributes"]["configurationDefaults"])
    assert "vscode-languageclient" in (VSCODE / "extension.js").read_text()


def test_grammar_regexes_compile_and_cover_every_keyword() -> None:
    grammar = json.loads((VSCODE / "syntaxes" / "cxp.tmLanguage.json").read_text())
    pats = _patterns(grammar)
    for p in pats:
        re.compile(p)  # the subset used is common to Oniguruma and Python
    lark = (ROOT / "grammar" / "cxp.lark").read_text()
    keywords = set(re.findall(r'"([a-z_]+)"', lark))
    words = "|".join(pats)
    missing = sorted(k for k in keywords if not re.search(rf"\b{k}\b", words))
    assert missing == [], missing
