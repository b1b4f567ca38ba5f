"""Loader: paths and pack names → source files → parse → check → compile → `PolicySet`.

A policy set is everything loaded together: every `.cxp` file under the given paths (in
lexicographic path order), plus the shipped vocabularies and packs that `--pack`/`packs=` name
or that a file brings in with `use` (transitively, once each, before the user's files). Any
error anywhere rejects the whole set with every diagnostic found (`PolicyError`).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cxpolicy.engine import precompiled
from cxpolicy.engine.compiler import compile_rules, revision
from cxpolicy.engine.index import build_index
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.lang import ast
from cxpolicy.lang.checker import check
from cxpolicy.lang.source import Diagnostic, PolicyError, Severity, SourceFile, Span
from cxpolicy.lang.syntax import parse
from cxpolicy.limits import MAX_POLICY_FILE_BYTES
from cxpolicy.resources import core_vocabulary_path, pack_dir, shipped_pack_names

__all__ = ["MAX_FILE_BYTES", "collect_sources", "compile_sources", "load", "load_text"]

MAX_FILE_BYTES = MAX_POLICY_FILE_BYTES  # one source of truth: cxpolicy/limits.py
PathLike = str | os.PathLike[str]


def load(
    paths: PathLike | Iterable[PathLike] = (),
    packs: Iterable[str] = (),
    *,
    detect: bool = False,
    detector: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
) -> PolicySet:
    """Load and compile a policy set; raise `PolicyError` (with every diagnostic) if it fails.

    `detect=True` runs the signal detectors (PII, prompt injection) before each decision;
    `detector` replaces them with your own callable.
    """
    sources, diags = collect_sources(paths, packs)
    return compile_sources(sources, diags, packs=list(packs), detect=detect, detector=detector)


def load_text(text: str, name: str = "<policy>.cxp", packs: Iterable[str] = ()) -> PolicySet:
    """Compile one policy text (handy in tests and notebooks)."""
    sources, diags = collect_sources((), packs)
    sources.append(SourceFile(name, text, key=name))
    return compile_sources(sources, diags, packs=list(packs))


def collect_sources(
    paths: PathLike | Iterable[PathLike], packs: Iterable[str]
) -> tuple[list[SourceFile], list[Diagnostic]]:
    """Read the user's files and the packs they name (by `--pack`; `use` is resolved later)."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    diags: list[Diagnostic] = []
    user: dict[str, SourceFile] = {}
    for p in paths:
        for path, key in _expand(Path(p), diags):
            display = _display(path)
            if display in user:
                continue
            sf = _read(path, display, key, diags)
            if sf is not None:
                user[display] = sf
    shipped: list[SourceFile] = []
    for name in packs:
        _add_pack(name, shipped, diags, None)
    return shipped + [user[k] for k in sorted(user)], diags


def compile_sources(
    sources: list[SourceFile],
    diags: list[Diagnostic],
    *,
    packs: Sequence[str] = (),
    detect: bool = False,
    detector: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
) -> PolicySet:
    with _collector_paused():
        modules, sources = _parse_all(sources, diags)
        precompiled.install(sources)  # shipped conditions: no CEL parser needed
        text_by_path = {s.path: s.text for s in sources}
        checked = check(modules, sources, diags)
        if any(d.is_error for d in diags):
            raise PolicyError(diags, text_by_path)
        rules = compile_rules(checked)
        index = build_index(checked.rules, checked.vocabulary)
    if detector is None and detect:
        detector = _lazy_detect
    ps = PolicySet(checked, rules, index, revision(sources), packs=packs, detector=detector)
    ps.warnings = [d for d in diags if not d.is_error]
    return ps


def _lazy_detect(request: Mapping[str, Any]) -> Mapping[str, Any]:
    """`cxpolicy.signals.detect`, imported on the first decision rather than at load.

    The detectors compile a few hundred patterns on import (~0.1-0.2 s); a CLI call that
    loads a policy and decides nothing, or a `--help`, should not pay for them.
    """
    from cxpolicy.signals import detect

    return detect(request)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while compiling, then restore it.

    Compiling allocates hundreds of thousands of small objects that live on (the AST, the
    compiled rules), and each allocation burst triggers a collection that walks all of them
    again: for 10,000 rules that was two thirds of the compile time. Nothing here creates
    garbage cycles worth collecting early; the collector runs as usual once compiling ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        # What compiling allocated is long-lived: hand it straight to the oldest generation
        # (freeze + unfreeze moves every tracked object there without a scan) rather than
        # letting the young collections walk the whole policy twice on its way up (~1 s for
        # 10,000 rules). Nothing is lost: full collections still scan it.
        gc.freeze()
        gc.unfreeze()
        if was_enabled:
            gc.enable()


def _parse_all(sources: list[SourceFile], diags: list[Diagnostic]) -> tuple[list[ast.Module], list[SourceFile]]:
    """Parse every file and pull in what `use` names, packs before the files that use them."""
    loaded: set[str] = {s.pack for s in sources if s.pack}
    parsed: dict[str, ast.Module] = {}
    order: list[SourceFile] = list(sources)
    i = 0
    while i < len(order):
        sf = order[i]
        i += 1
        result = parse(sf.text, sf.path)
        diags.extend(result.diagnostics)
        if result.module is None:
            continue
        parsed[sf.path] = result.module
        for item in result.module.items:
            if isinstance(item, ast.Use) and item.name not in loaded:
                extra: list[SourceFile] = []
                _add_pack(item.name, extra, diags, item.span)
                loaded.add(item.name)
                loaded.update(s.pack for s in extra if s.pack)
                order.extend(extra)
    # Shipped files first (in the order they were first asked for), then the user's.
    final = [s for s in order if s.shipped] + [s for s in order if not s.shipped]
    modules = [parsed[s.path] for s in final if s.path in parsed]
    return modules, final


def _add_pack(name: str, out: list[SourceFile], diags: list[Diagnostic], span: Span | None) -> None:
    if any(s.pack == name for s in out):
        return
    if name == "core":
        p = core_vocabulary_path()
        sf = _read(p, _display(p), "pack:core/core.cxp", diags, shipped=True, pack="core")
        if sf is not None:
            out.append(sf)
        return
    d = pack_dir(name)
    if d is None:
        known = ", ".join(["core", *shipped_pack_names()])
        diags.append(
            Diagnostic(
                "CXP003",
                Severity.ERROR,
                f"unknown pack `{name}`",
                span or Span.unknown("<command line>"),
                f"shipped packs: {known}",
            )
        )
        return
    for path in sorted(d.rglob("*.cxp")):
        rel = path.relative_to(d).as_posix()
        sf = _read(path, _display(path), f"pack:{name}/{rel}", diags, shipped=True, pack=name)
        if sf is not None:
            out.append(sf)


def _expand(p: Path, diags: list[Diagnostic]) -> list[tuple[Path, str]]:
    if p.is_file():
        return [(p, p.name)]
    if p.is_dir():
        files = sorted(f for f in p.rglob("*.cxp") if f.is_file())
        if not files:
            diags.append(Diagnostic("CXP001", Severity.ERROR, f"no .cxp files under `{p}`", Span.unknown(str(p))))
        return [(f, f.relative_to(p).as_posix()) for f in files]
    diags.append(Diagnostic("CXP001", Severity.ERROR, f"no such file or directory: `{p}`", Span.unknown(str(p))))
    return []


def _display(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path.resolve()) if rel.startswith("..") else rel


def _read(
    path: Path, display: str, key: str, diags: list[Diagnostic], *, shipped: bool = False, pack: str | None = None
) -> SourceFile | None:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            diags.append(
                Diagnostic(
                    "CXP002",
                    Severity.ERROR,
                    f"file is {size} bytes; the limit is {MAX_FILE_BYTES}",
                    Span.unknown(display),
                )
            )
            return None
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        diags.append(Diagnostic("CXP002", Severity.ERROR, f"file is not UTF-8: {exc.reason}", Span.unknown(display)))
        return None
    except OSError as exc:
        diags.append(Diagnostic("CXP002", Severity.ERROR, f"cannot read file: {exc.strerror}", Span.unknown(display)))
        return None
    return SourceFile(display, text, shipped=shipped, pack=pack, key=key)
