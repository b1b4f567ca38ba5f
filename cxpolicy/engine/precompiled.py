"""Precompiled packs: the shipped packs' conditions in, their CEL syntax trees as JSON out.

Input (build): the core vocabulary and every shipped compliance pack. Output: the JSON file
`compliance_packs/precompiled.json` (in a wheel `cxpolicy/_data/compliance_packs/`), written
by `make precompile` (`cxpolicy.engine.precompiled.main`) and held fresh by
tests/engine/test_precompiled.py in `make test`.

Input (load): the shipped `SourceFile`s a policy set uses. Output: their conditions' trees in
`cxpolicy.cel.expression.known_trees`, so compiling them needs neither cel-python nor Lark —
building cel-python's parser alone took ~350 ms of every cold `cxpolicy eval --pack ...`.

Why this is safe to trust:
- JSON, read with `json.loads` into a fixed set of node classes (no pickle, no code);
- it is used only when its format version and its fingerprint (the sha256 of the code that
  makes trees — cel/nodes.py, cel/syntax.py — and of cel-python's grammar) match this
  installation, and only for the shipped files whose sha256 it lists;
- a tree is a pure function of its CEL text, and only trees the closure compiler accepts are
  stored; anything missing or stale is simply parsed as before.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cxpolicy.cel import nodes
from cxpolicy.lang.source import SourceFile

__all__ = ["FILE_NAME", "FORMAT", "build", "decode_node", "encode_node", "fingerprint", "install", "path"]

FORMAT = "cxpolicy-precompiled/1"
FILE_NAME = "precompiled.json"
_CEL_DIR = Path(nodes.__file__).resolve().parent
_NODE_TYPES: dict[str, type[nodes.Node]] = {
    name: getattr(nodes, name) for name in nodes.__all__ if name not in ("Node", "field_path", "read_path")
}
_loaded: dict[str, Any] | None = None
_installed: set[str] = set()


class Unstorable(Exception):
    """A tree holding a value JSON does not carry exactly (a uint, bytes, inf): not stored."""


def encode_node(value: Any) -> Any:
    """A CEL tree as JSON values: `{"$": class, field: ...}`, tuples as lists."""
    if isinstance(value, nodes.Node):
        out: dict[str, Any] = {"$": type(value).__name__}
        for f in dataclasses.fields(value):
            out[f.name] = encode_node(getattr(value, f.name))
        return out
    if type(value) is tuple:
        return [encode_node(v) for v in value]
    if value is None or type(value) in (str, bool, int):
        return value
    if type(value) is float and math.isfinite(value):
        return value
    raise Unstorable(type(value).__name__)


def decode_node(value: Any) -> Any:
    if isinstance(value, dict):
        cls = _NODE_TYPES[value["$"]]  # KeyError on anything else: the file is rejected
        return cls(**{k: decode_node(v) for k, v in value.items() if k != "$"})
    if isinstance(value, list):
        return tuple(decode_node(v) for v in value)
    return value


def fingerprint() -> str:
    """sha256 of what decides a tree: our converter and node classes, cel-python's grammar."""
    h = hashlib.sha256()
    for p in (_CEL_DIR / "nodes.py", _CEL_DIR / "syntax.py", _celpy_grammar()):
        h.update(p.name.encode() + b"\0")
        h.update(p.read_bytes() if p is not None and p.is_file() else b"<missing>")
        h.update(b"\0")
    return h.hexdigest()


def _celpy_grammar() -> Path:
    spec = importlib.util.find_spec("celpy")  # finds the package without importing it
    origin = spec.origin if spec is not None else None
    return Path(origin).parent / "cel.lark" if origin else Path("<no celpy>")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def path() -> Path | None:
    from cxpolicy.resources import packs_root

    root = packs_root()
    return root / FILE_NAME if root is not None else None


def build() -> dict[str, Any]:
    """Parse every shipped file and its conditions; the document `install` reads."""
    from cxpolicy.cel import compiler
    from cxpolicy.cel import syntax as cel_syntax
    from cxpolicy.engine.loader import collect_sources
    from cxpolicy.lang.syntax import parse
    from cxpolicy.resources import shipped_pack_names

    sources, diags = collect_sources((), ["core", *shipped_pack_names()])
    if diags:
        raise SystemExit("\n".join(d.headline() for d in diags))
    files: dict[str, str] = {}
    trees: dict[str, Any] = {}
    for sf in sources:
        result = parse(sf.text, sf.path)
        if result.module is None:
            raise SystemExit("\n".join(d.headline() for d in result.diagnostics))
        files[sf.revision_key] = _sha(sf.text)
        for item in result.module.items:
            for cond in getattr(item, "conditions", ()):
                text = cond.cel or cond.text
                _, node = cel_syntax.parse(text)
                try:
                    compiler.compile_node(node)
                    encoded = encode_node(node)
                except (compiler.Unsupported, Unstorable):
                    continue
                if repr(decode_node(json.loads(json.dumps(encoded)))) != repr(node):
                    continue  # not carried exactly: leave it to the parser
                trees[text] = encoded
    return {"format": FORMAT, "fingerprint": fingerprint(), "files": files, "cel": dict(sorted(trees.items()))}


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, sort_keys=False, ensure_ascii=False) + "\n"


def _document() -> dict[str, Any] | None:
    global _loaded
    if _loaded is None:
        p = path()
        doc: Any = None
        try:
            if p is not None and p.is_file():
                doc = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            doc = None
        ok = (
            isinstance(doc, dict)
            and doc.get("format") == FORMAT
            and isinstance(doc.get("files"), dict)
            and isinstance(doc.get("cel"), dict)
            and doc.get("fingerprint") == fingerprint()
        )
        _loaded = doc if ok else {}
    return _loaded or None


def install(sources: Iterable[SourceFile]) -> int:
    """Make the trees of these shipped files known to the CEL compiler; how many were added.

    A file counts only when the document lists it with the same sha256 (a pack edited in a
    checkout, or a file of another version, is compiled from its text as before).
    """
    from cxpolicy.cel.expression import known_trees

    shipped = [s for s in sources if s.shipped and s.revision_key not in _installed]
    if not shipped:
        return 0
    doc = _document()
    if doc is None:
        return 0
    files = doc["files"]
    fresh = [s for s in shipped if files.get(s.revision_key) == _sha(s.text)]
    if not fresh:
        return 0
    added = 0
    try:
        for text, encoded in doc["cel"].items():
            if text not in known_trees:
                known_trees[text] = decode_node(encoded)
                added += 1
    except (KeyError, TypeError, ValueError):
        return added  # a malformed entry: the rest is parsed from text
    _installed.update(s.revision_key for s in fresh)
    return added


def main(argv: list[str] | None = None) -> int:
    """`make precompile` (or with `--check`: exit 1 if stale): write the document."""
    args = sys.argv[1:] if argv is None else argv
    p = path()
    if p is None:
        print("no compliance_packs directory found", file=sys.stderr)
        return 2
    text = dumps(build())
    if "--check" in args:
        current = p.read_text(encoding="utf-8") if p.is_file() else ""
        if current != text:
            print(f"{p} is stale: run `make precompile`", file=sys.stderr)
            return 1
        return 0
    p.write_text(text, encoding="utf-8")
    print(f"wrote {p}")
    return 0

