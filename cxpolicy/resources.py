"""Where shipped data lives: the grammar, the core vocabulary and the compliance packs.

Input: a data file's or pack's name. Output: its path or text in this installation.

In a wheel they sit under `cxpolicy/_data/` (hatchling force-include); in a checkout or an
editable install they sit at the repository's top level (`grammar/`, `compliance_packs/`).
Both are found here, so `--pack NAME` works wherever the package is installed.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

__all__ = ["core_vocabulary_path", "grammar_text", "pack_dir", "packs_root", "shipped_pack_names"]

_PKG = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path | None:
    packaged = resources.files("cxpolicy") / "_data" / name
    if packaged.is_dir():
        return Path(str(packaged))
    checkout = _PKG.parent / name
    if checkout.is_dir():
        return checkout
    return None


@cache
def grammar_text() -> str:
    d = _data_dir("grammar")
    if d is None or not (d / "cxp.lark").is_file():
        raise FileNotFoundError("cxpolicy: grammar/cxp.lark is missing from this installation")
    return (d / "cxp.lark").read_text(encoding="utf-8")


def core_vocabulary_path() -> Path:
    return _PKG / "vocab" / "core.cxp"


def packs_root() -> Path | None:
    return _data_dir("compliance_packs")


def shipped_pack_names() -> list[str]:
    root = packs_root()
    if root is None:
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*.cxp")))


def pack_dir(name: str) -> Path | None:
    root = packs_root()
    if root is None or not name.replace("_", "").isalnum():
        return None
    d = root / name
    return d if d.is_dir() else None
