"""Precompiled packs (cxpolicy/engine/precompiled.py): fresh, exact, and ignored when stale.

Input: the committed compliance_packs/precompiled.json and the shipped packs. Output of each
check: the file is what `make precompile` writes now; every stored tree is the tree the CEL
parser builds from its text; a file whose hashes, format or fingerprint do not match, or that
is malformed, is not used; loading the packs needs neither cel-python nor Lark.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cxpolicy.cel import syntax as cel_syntax
from cxpolicy.cel.expression import compile_expression, known_trees
from cxpolicy.engine import precompiled
from cxpolicy.engine.loader import collect_sources
from tests.conftest import ROOT

PACKS = ["bfsi_rbi", "hipaa", "gdpr"]


@pytest.fixture
def fresh_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget what earlier tests installed, and restore the compiler's table afterwards."""
    monkeypatch.setattr(precompiled, "_loaded", None)
    monkeypatch.setattr(precompiled, "_installed", set())
    saved = dict(known_trees)
    known_trees.clear()
    yield  # type: ignore[misc]
    known_trees.clear()
    known_trees.update(saved)


def test_committed_file_is_fresh() -> None:
    """Edit a pack, core.cxp or the CEL converter, and this fails until `make precompile`."""
    p = precompiled.path()
    assert p is not None and p.is_file()
    assert p.read_text(encoding="utf-8") == precompiled.dumps(precompiled.build())


def test_every_stored_tree_is_the_parsed_tree() -> None:
    doc = json.loads((ROOT / "compliance_packs" / precompiled.FILE_NAME).read_text(encoding="utf-8"))
    assert doc["format"] == precompiled.FORMAT
    assert len(doc["cel"]) >= 10
    for text, encoded in doc["cel"].items():
        assert repr(precompiled.decode_node(encoded)) == repr(cel_syntax.parse(text)[1]), text


def test_install_makes_pack_conditions_known(fresh_state: None) -> None:
    sources, _ = collect_sources((), PACKS)
    assert precompiled.install(sources) > 0
    text = next(iter(known_trees))
    expr = compile_expression(text)
    parsed = cel_syntax.parse(text)[1]
    assert expr.compiled
    assert repr(known_trees[text]) == repr(parsed)
    assert precompiled.install(sources) == 0  # once per file


def _write(tmp_path: Path, doc: Any) -> Path:
    d = tmp_path / "packs"
    d.mkdir()
    p = d / precompiled.FILE_NAME
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return p


@pytest.mark.parametrize(
    "spoil",
    ["hash", "format", "fingerprint", "garbage", "node-class"],
)
def test_a_stale_or_malformed_file_is_not_used(
    spoil: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_state: None
) -> None:
    doc = precompiled.build()
    if spoil == "hash":
        doc["files"] = {k: "0" * 64 for k in doc["files"]}
    elif spoil == "format":
        doc["format"] = "cxpolicy-precompiled/0"
    elif spoil == "fingerprint":
        doc["fingerprint"] = "f" * 64
    elif spoil == "node-class":
        doc["cel"] = {"context.amount > 1": {"$": "os.system", "start": 0, "end": 1}}
    p = _write(tmp_path, "{not json" if spoil == "garbage" else doc)
    monkeypatch.setattr(precompiled, "path", lambda: p)
    sources, _ = collect_sources((), PACKS)
    assert precompiled.install(sources) == 0
    assert not known_trees
    # and the packs still compile, from their text
    from cxpolicy.engine.loader import load

    assert load([], packs=PACKS).rule_count > 0


def test_an_edited_pack_file_is_compiled_from_its_text(fresh_state: None) -> None:
    sources, _ = collect_sources((), PACKS)
    edited = [type(s)(s.path, s.text + "\n", shipped=True, pack=s.pack, key=s.key) for s in sources]
    assert precompiled.install(edited) == 0


def test_loading_the_packs_imports_neither_cel_python_nor_lark() -> None:
    code = (
        "import sys, cxpolicy\n"
        f"ps = cxpolicy.load([], packs={PACKS!r}, detect=True)\n"
        "bad = [m for m in ('celpy', 'lark', 'cxpolicy.signals', 'stdnum', 'phonenumbers') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "assert ps.decide({'action': 'order.status'}).effect is not None\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
