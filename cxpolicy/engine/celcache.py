"""The CLI's per-user cache of CEL syntax trees: CEL text → tree, as JSON in the user's cache dir.

Input: the trees this process parsed (`cxpolicy.cel.expression.parsed_trees`) and the cache
file. Output: `load()` puts the cached trees into `known_trees` before a policy is compiled, so
a policy whose conditions were seen before compiles without cel-python's parser (~350 ms to
build on every cold `cxpolicy eval`/`test`/`lint`); `save()` adds the new ones afterwards.

Why it is safe to read:
- the format is the precompiled packs' JSON (engine/precompiled.py): fixed node classes, no
  pickle, no code, and the same format version and fingerprint checks;
- the file lives in a private directory (`$CXPOLICY_CACHE_DIR`, else `$XDG_CACHE_HOME/cxpolicy`,
  else `~/.cache/cxpolicy`, created 0700) and is read only when it and its directory belong to
  the current user and nobody else may write them (as ssh treats `~/.ssh`);
- a tree is a pure function of its text, so a stale entry cannot exist, only a missing one;
  anything unreadable is ignored and the text is parsed as before.
`CXPOLICY_NO_CACHE=1` turns it off. Only the CLI uses it; `cxpolicy.load` never touches disk.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from cxpolicy.engine import precompiled

__all__ = ["cache_file", "load", "save"]

FILE_PREFIX = "cel-trees-"
MAX_ENTRIES = 20_000


def cache_file() -> Path | None:
    if os.environ.get("CXPOLICY_NO_CACHE"):
        return None
    base = os.environ.get("CXPOLICY_CACHE_DIR")
    if base:
        d = Path(base)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        home = Path(xdg) if xdg else Path.home() / ".cache"
        d = home / "cxpolicy"
    return d / f"{FILE_PREFIX}{precompiled.fingerprint()[:16]}.json"


def _private(p: Path) -> bool:
    try:
        st = p.stat()
    except OSError:
        return False
    return st.st_uid == os.getuid() and not (st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def _read(p: Path) -> dict[str, Any]:
    if not (_private(p.parent) and _private(p)):
        return {}
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if (
        not isinstance(doc, dict)
        or doc.get("format") != precompiled.FORMAT
        or doc.get("fingerprint") != precompiled.fingerprint()
        or not isinstance(doc.get("cel"), dict)
    ):
        return {}
    cel: dict[str, Any] = doc["cel"]
    return cel


def load() -> int:
    """Install the cached trees; how many were added (0 when there is no usable cache)."""
    from cxpolicy.cel.expression import known_trees

    p = cache_file()
    if p is None:
        return 0
    added = 0
    for text, encoded in _read(p).items():
        if text in known_trees:
            continue
        try:
            known_trees[text] = precompiled.decode_node(encoded)
        except (KeyError, TypeError, ValueError):
            continue  # one bad entry: that text is parsed as usual
        added += 1
    return added


def save() -> bool:
    """Add the trees parsed in this process to the cache (atomically); True if written."""
    from cxpolicy.cel.expression import parsed_trees

    p = cache_file()
    if p is None or not parsed_trees:
        return False
    fresh: dict[str, Any] = {}
    for text, node in parsed_trees.items():
        try:
            fresh[text] = precompiled.encode_node(node)
        except precompiled.Unstorable:
            continue
    try:
        p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(p.parent):
            return False
        current = _read(p) if p.exists() else {}
        if all(t in current for t in fresh):
            return False
        merged = {**current, **fresh}
        if len(merged) > MAX_ENTRIES:
            merged = fresh  # start over rather than grow without bound
        doc = {"format": precompiled.FORMAT, "fingerprint": precompiled.fingerprint(), "cel": merged}
        fd, tmp = tempfile.mkstemp(prefix=".cel-trees-", dir=p.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False)
        os.replace(tmp, p)
    except OSError:
        return False
    return True
