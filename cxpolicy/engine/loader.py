"""Loader: paths and pack names → source files → the compile stages → `PolicySet`.

Input: paths, pack names or a policy text. Output: a `PolicySet`, or `PolicyError` with every
diagnostic. The stages are an explicit ordered list, `STAGES` (parse, vocabulary, check,
lower, index, revision); `run_stages(..., stop_after=Stage.CHECK)` runs a prefix of them and
returns what each built, which is how tests look at one stage.

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
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from cxpolicy.engine import precompiled
from cxpolicy.engine.compiler import CompiledRule, compile_rules, revision
from cxpolicy.engine.index import RuleIndex, build_index
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.grants.tokens import GrantKeys
from cxpolicy.lang import ast, codes
from cxpolicy.lang.checker import CheckedPolicy, check
from cxpolicy.lang.source import Diagnostic, PolicyError, SourceFile, Span
from cxpolicy.lang.syntax import parse
from cxpolicy.lang.vocabulary import Vocabulary, build_vocabulary
from cxpolicy.limits import MAX_POLICY_FILE_BYTES
from cxpolicy.resources import core_vocabulary_path, pack_dir, shipped_pack_names

__all__ = [
    "MAX_FILE_BYTES",
    "STAGES",
    "Compilation",
    "Stage",
    "collect_sources",
    "compile_sources",
    "load",
    "load_text",
    "run_stages",
]

MAX_FILE_BYTES = MAX_POLICY_FILE_BYTES  # one source of truth: cxpolicy/limits.py
PathLike = str | os.PathLike[str]


def load(
    paths: PathLike | Iterable[PathLike] = (),
    packs: Iterable[str] = (),
    *,
    detect: bool = True,
    detector: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    grant_keys: GrantKeys | None = None,
) -> PolicySet:
    """Load and compile a policy set; raise `PolicyError` (with every diagnostic) if it fails.

    The signal detectors (PII, prompt injection) run before each decision by default, as
    they do in `cxpolicy eval` and `cxpolicy serve`: an embedder gets the same masking as
    the CLI. `detect=False` turns them off; `detector` replaces them with your own callable.
    `grant_keys` verify the `grants` of a request (LANGUAGE.md §9); without them every
    grant is invalid.
    """
    sources, diags = collect_sources(paths, packs)
    ps = compile_sources(sources, diags, packs=list(packs), detect=detect, detector=detector)
    ps.grant_keys = grant_keys
    return ps


def load_text(
    text: str, name: str = "<policy>.cxp", packs: Iterable[str] = (), *, detect: bool = True
) -> PolicySet:
    """Compile one policy text (handy in tests and notebooks); detection on, as in `load`."""
    sources, diags = collect_sources((), packs)
    sources.append(SourceFile(name, text, key=name))
    return compile_sources(sources, diags, packs=list(packs), detect=detect)


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


class Stage(StrEnum):
    """One step of compiling a policy set, in the order `STAGES` runs them."""

    PARSE = "parse"  # text → `ast.Module` per file (and the `use`d packs, transitively)
    VOCABULARY = "vocabulary"  # dimensions, `extend dimension`, attributes
    CHECK = "check"  # names resolved, rules and tests checked → `CheckedPolicy`
    LOWER = "lower"  # checked rules → `CompiledRule` (prebuilt reasons, condition closures)
    INDEX = "index"  # rules → per-dimension bitsets (`RuleIndex`)
    REVISION = "revision"  # sha256 of the sources: the policy set's revision


STAGES: tuple[Stage, ...] = tuple(Stage)


@dataclass
class Compilation:
    """What the stages have built so far; each stage fills in its field.

    Errors do not stop the stages before `lower` (so one run reports every problem); a
    compilation with an error stops after `check`, and `compile_sources` raises it.
    """

    sources: list[SourceFile]
    diagnostics: list[Diagnostic]
    modules: list[ast.Module] = field(default_factory=list)
    vocabulary: Vocabulary | None = None
    checked: CheckedPolicy | None = None
    rules: list[CompiledRule] | None = None
    index: RuleIndex | None = None
    revision: str | None = None
    done: list[Stage] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(d.is_error for d in self.diagnostics)


def _stage_parse(c: Compilation) -> None:
    c.modules, c.sources = _parse_all(c.sources, c.diagnostics)
    precompiled.install(c.sources)  # shipped conditions: no CEL parser needed


def _stage_vocabulary(c: Compilation) -> None:
    c.vocabulary = build_vocabulary(c.modules, c.diagnostics)


def _stage_check(c: Compilation) -> None:
    c.checked = check(c.modules, c.sources, c.diagnostics, vocabulary=c.vocabulary)


def _stage_lower(c: Compilation) -> None:
    assert c.checked is not None
    c.rules = compile_rules(c.checked)


def _stage_index(c: Compilation) -> None:
    assert c.checked is not None
    c.index = build_index(c.checked.rules, c.checked.vocabulary)


def _stage_revision(c: Compilation) -> None:
    c.revision = revision(c.sources)


_RUN: dict[Stage, Callable[[Compilation], None]] = {
    Stage.PARSE: _stage_parse,
    Stage.VOCABULARY: _stage_vocabulary,
    Stage.CHECK: _stage_check,
    Stage.LOWER: _stage_lower,
    Stage.INDEX: _stage_index,
    Stage.REVISION: _stage_revision,
}
assert tuple(_RUN) == STAGES


def run_stages(
    sources: list[SourceFile], diags: list[Diagnostic] | None = None, *, stop_after: Stage = Stage.REVISION
) -> Compilation:
    """Run `STAGES` in order up to `stop_after` (tests look at one stage's output this way).

    Stops early, after `check`, when any diagnostic so far is an error: nothing is compiled
    from a policy set that does not check.
    """
    c = Compilation(list(sources), diags if diags is not None else [])
    with _collector_paused():
        for stage in STAGES:
            if stage is Stage.LOWER and c.failed:
                break
            _RUN[stage](c)
            c.done.append(stage)
            if stage is stop_after:
                break
    return c


def compile_sources(
    sources: list[SourceFile],
    diags: list[Diagnostic],
    *,
    packs: Sequence[str] = (),
    detect: bool = True,
    detector: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
) -> PolicySet:
    """Every stage over the sources; `PolicyError` (with every diagnostic) if one has an error."""
    c = run_stages(sources, diags)
    if c.failed:
        raise PolicyError(diags, {s.path: s.text for s in c.sources})
    assert c.checked is not None and c.rules is not None and c.index is not None and c.revision is not None
    if detector is None and detect:
        detector = _lazy_detect
    ps = PolicySet(c.checked, c.rules, c.index, c.revision, packs=packs, detector=detector)
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
            codes.CXP003(
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
            diags.append(codes.CXP001(f"no .cxp files under `{p}`", Span.unknown(str(p))))
        return [(f, f.relative_to(p).as_posix()) for f in files]
    diags.append(codes.CXP001(f"no such file or directory: `{p}`", Span.unknown(str(p))))
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
                codes.CXP002(
                    f"file is {size} bytes; the limit is {MAX_FILE_BYTES}",
                    Span.unknown(display),
                )
            )
            return None
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        diags.append(codes.CXP002(f"file is not UTF-8: {exc.reason}", Span.unknown(display)))
        return None
    except OSError as exc:
        diags.append(codes.CXP002(f"cannot read file: {exc.strerror}", Span.unknown(display)))
        return None
    return SourceFile(display, text, shipped=shipped, pack=pack, key=key)
