"""`cxpolicy diff OLD NEW`: what a change to the rules changes, region by region.

Input: two policy revisions (paths or git revisions), optional requests. Output: the diff as text, markdown or JSON.

OLD and NEW are directories, files, or git revisions (`git:REV:PATH`, or `REV:PATH` when no
such local path exists), so `cxpolicy diff main:rulesets/bank rulesets/bank` reviews a
working copy against the main branch. A git revision is read with `git ls-tree` / `git show`
into a temporary directory; nothing in the working tree is touched.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import IO, Any, NoReturn

import click
import orjson

from cxpolicy.cli import ExitCode
from cxpolicy.cli.options import pack_option, use_color
from cxpolicy.engine.loader import load
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.engine.requests import iter_requests
from cxpolicy.lang.source import PolicyError
from cxpolicy.tools.analysis import DECISION, aspect_name
from cxpolicy.tools.diff import Change, DiffReport, diff, replay

__all__ = ["diff_cmd", "markdown_report", "resolve", "text_report"]


@click.command("diff")
@click.argument("old", metavar="OLD")
@click.argument("new", metavar="NEW")
@pack_option
@click.option("--requests", "requests_file", type=click.File("r", encoding="utf-8"), metavar="FILE",
              help="JSON-lines of recorded requests (e.g. exported from the audit log) to replay on both.")
@click.option("--exit-code", "exit_code", is_flag=True, help="Exit 1 when any decision changes.")
@click.option("--fail-on-loosen", is_flag=True, help="Exit 1 when a region (or replayed request) becomes less strict.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True,
              help="text for a terminal; json for scripts; markdown for a pull-request comment.")
def diff_cmd(
    old: str, new: str, packs: tuple[str, ...], requests_file: IO[str] | None, exit_code: bool,
    fail_on_loosen: bool, fmt: str,
) -> None:
    """Show every region of the request space whose decision changes between OLD and NEW.

    \b
    OLD and NEW are each a .cxp file, a directory, or a git revision:
      git:REV:PATH    PATH as it was at REV (PATH relative to here)
      REV:PATH        the same, when no local file is called REV:PATH

    \b
    A region is a set of requests the rules cannot tell apart, written in match syntax:
      action=refund.execute actor=ai risk_tier>=high: allow → escalate (+ rule bank.refunds.ai_cap)
    Effect and escalation queue changes are listed first, then masking changes per data
    class. A region marked with a condition changes only when that `when`/`unless` goes
    one way; conditions themselves are not analysed. Regions that become less strict are
    marked [looser].

    \b
    Examples:
      cxpolicy diff main:rulesets/bank rulesets/bank
      cxpolicy diff git:v1.2:rulesets/bank rulesets/bank --requests audit.jsonl
      cxpolicy diff old/ new/ --fail-on-loosen --format markdown > comment.md

    Exit 0 (whatever changed) unless --exit-code (1 when anything changes) or
    --fail-on-loosen (1 when something becomes less strict); 2 when a revision does not
    compile; 64 when a revision or path cannot be read.
    """
    with tempfile.TemporaryDirectory(prefix="cxpolicy-diff-") as tmp:
        before = _load("OLD", old, packs, Path(tmp) / "old")
        after = _load("NEW", new, packs, Path(tmp) / "new")
        report = diff(before, after)
    if requests_file is not None:
        report.replay = replay(before, after, iter_requests(requests_file.read()))
    if fmt == "json":
        click.echo(orjson.dumps(json_report(report, old, new), option=orjson.OPT_INDENT_2).decode())
    elif fmt == "markdown":
        click.echo(markdown_report(report, old, new))
    else:
        click.echo(text_report(report, old, new, color=use_color(sys.stdout)))
    if (exit_code and report.any_change) or (fail_on_loosen and report.loosens):
        sys.exit(ExitCode.FAILED)
    sys.exit(ExitCode.OK)


# ------------------------------------------------------------------------------ revisions
def _fail(message: str) -> NoReturn:
    click.echo(f"cxpolicy diff: {message}", err=True)
    sys.exit(ExitCode.USAGE)


def _load(side: str, spec: str, packs: Sequence[str], scratch: Path) -> PolicySet:
    path = resolve(spec, scratch)
    try:
        return load([path], packs=list(packs))
    except PolicyError as exc:
        click.echo(exc.render(color=use_color()), err=True)
        click.echo(f"{side} ({spec}) does not compile", err=True)
        sys.exit(ExitCode.POLICY_ERROR)


def resolve(spec: str, scratch: Path) -> Path:
    """A local path as is; a git revision copied (its .cxp files) under `scratch`."""
    if spec.startswith("git:"):
        rev, sep, path = spec[4:].partition(":")
        if not sep or not rev:
            _fail(f"`{spec}`: write a git revision as git:REV:PATH, e.g. git:main:rulesets/bank")
        return _from_git(rev, path or ".", scratch, spec)
    if Path(spec).exists():
        return Path(spec)
    rev, sep, path = spec.partition(":")
    if sep and rev and _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}") is not None:
        return _from_git(rev, path or ".", scratch, spec)
    _fail(f"no such file or directory: `{spec}` (a git revision is written git:REV:PATH)")


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _from_git(rev: str, path: str, scratch: Path, spec: str) -> Path:
    if _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}") is None:
        _fail(f"`{spec}`: `{rev}` is not a git revision here")
    prefix = (_git("rev-parse", "--show-prefix") or "").strip()
    full = PurePosixPath(*(PurePosixPath(prefix) / path).parts)  # repository-relative
    listing = _git("ls-tree", "-r", "-z", "--name-only", "--full-name", rev, "--", path)
    names = [n for n in (listing or "").split("\0") if n]
    if not names:
        _fail(f"`{spec}`: no `{path}` at {rev}")
    scratch.mkdir(parents=True, exist_ok=True)
    if names == [str(full)]:  # a single file
        names_rel = [(names[0], PurePosixPath(full.name))]
        target = scratch / full.name
    else:
        names_rel = [(n, PurePosixPath(n).relative_to(full) if str(full) != "." else PurePosixPath(n)) for n in names]
        target = scratch
    wrote = 0
    for name, rel in names_rel:
        if not name.endswith(".cxp"):
            continue
        done = subprocess.run(["git", "show", f"{rev}:{name}"], capture_output=True, check=False, timeout=60)
        if done.returncode != 0:
            _fail(f"`{spec}`: cannot read {name} at {rev}")
        dest = scratch / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(done.stdout)
        wrote += 1
    if not wrote:
        _fail(f"`{spec}`: no .cxp files under `{path}` at {rev}")
    return target


# ------------------------------------------------------------------------------ rendering
def _where(report: DiffReport, c: Change) -> str:
    return report.space.describe(c.cells)


def _line(t: Any, cond: str | None) -> str:
    out = t.text() + (" [looser]" if t.loosens else "")
    return f"{out}   {cond}" if cond else out


def _summary(report: DiffReport) -> list[str]:
    def ids(xs: list[str]) -> str:
        return f" ({', '.join(xs)})" if xs else ""

    out = [
        f"rules: {len(report.rules_added)} added{ids(report.rules_added)}, "
        f"{len(report.rules_removed)} removed{ids(report.rules_removed)}, "
        f"{len(report.rules_modified)} modified{ids(report.rules_modified)}"
    ]
    decisions = [c for c in report.changes if c.aspect is DECISION]
    masks = [c for c in report.changes if c.aspect is not DECISION]
    share = sum(c.size for c in decisions) / report.total if report.total else 0.0
    out.append(
        f"regions: {len(decisions)} change their decision ({_percent(share)} of all combinations of "
        f"dimension values), {len(masks)} their masking; {report.regions} regions examined"
    )
    return out


def _percent(x: float) -> str:
    if x == 0:
        return "0%"
    return f"{x:.1%}" if x >= 0.001 else "<0.1%"


def text_report(report: DiffReport, old: str, new: str, *, color: bool = False) -> str:
    def bold(s: str) -> str:
        return f"\x1b[1m{s}\x1b[0m" if color else s

    out = [bold(f"cxpolicy diff {old} → {new}"), *_summary(report)]
    out += [f"threshold: {line}" for line in _thresholds(report)]
    sections = [("decision changes", DECISION), ("masking changes", None)]
    for title, aspect in sections:
        items = [c for c in report.changes if (c.aspect is DECISION) == (aspect is DECISION)]
        if not items:
            continue
        out += ["", bold(title)]
        for c in items:
            where = _where(report, c)
            if len(c.transitions) == 1 and not c.partial:
                out.append(f"  {where}: {_line(*c.transitions[0])}")
                continue
            tag = "depends on condition" + (", not all combinations enumerated" if c.partial else "")
            out.append(f"  {where}: [{tag}]")
            out += [f"      {_line(t, cond)}" for t, cond in c.transitions]
    if not report.changes:
        out += ["", "no region of the request space changes its decision or masking"]
    if report.replay is not None:
        r = report.replay
        out += ["", bold("replayed requests")]
        out.append(f"  {r.total} request(s): {r.changed} decision(s) change, {r.loosened} of them looser"
                   + (f"; {r.unreadable} line(s) unreadable" if r.unreadable else ""))
        for (a, b), n in r.transitions.most_common():
            out.append(f"    {n:>6} × {a} → {b}")
        for line, a_, b_ in r.examples[:10]:
            out.append(f"    line {line}: {a_.text()} → {b_.text()}")
    if report.loosens:
        out += ["", bold("the new revision is less strict somewhere (see [looser])")]
    return "\n".join(out)


def markdown_report(report: DiffReport, old: str, new: str) -> str:
    out = [f"### cxpolicy diff `{old}` → `{new}`", ""]
    out += [f"- {line}" for line in _summary(report)]
    if report.loosens:
        out.append("- :warning: **the new revision is less strict somewhere** (rows marked *looser*)")
    if report.changes:
        out += ["", "| where | what | change | rules | when |", "|---|---|---|---|---|"]
        for c in report.changes:
            what = "decision" if c.aspect is DECISION else f"mask `{c.aspect}`"
            for t, cond in c.transitions:
                change = f"{t.old} → {t.new}" + (" *looser*" if t.loosens else "")
                rules = ", ".join(f"`{r}`" for r in t.rules) or ""
                cell = (cond or "always").replace("|", "\\|")
                out.append(f"| `{_where(report, c)}` | {what} | {change} | {rules} | {cell} |")
    else:
        out += ["", "No region of the request space changes its decision or masking."]
    if report.replay is not None:
        r = report.replay
        out += ["", f"**Replay:** {r.total} requests, {r.changed} decisions change ({r.loosened} looser)."]
        if r.transitions:
            out += ["", "| before | after | requests |", "|---|---|---|"]
            out += [f"| {a} | {b} | {n} |" for (a, b), n in r.transitions.most_common()]
    return "\n".join(out)


def _thresholds(report: DiffReport) -> list[str]:
    """Modified rules whose only change is a number in same-field comparisons, in words."""
    from cxpolicy.tools.diff_intervals import threshold_changes

    old, new = report.space.policies
    return threshold_changes(old, new, report.rules_modified)


def json_report(report: DiffReport, old: str, new: str) -> dict[str, Any]:
    return {
        "old": old,
        "new": new,
        "changed": report.any_change,
        "loosens": report.loosens,
        "rules": {"added": report.rules_added, "removed": report.rules_removed, "modified": report.rules_modified},
        "thresholds": _thresholds(report),
        "space": {"combinations": report.total, "regions_examined": report.regions},
        "changes": [
            {
                "aspect": aspect_name(c.aspect),
                "where": _where(report, c),
                "constraints": report.space.constraints(c.cells),
                "combinations": c.size,
                "conditional": c.conditional,
                "partial": c.partial,
                "loosens": c.loosens,
                "transitions": [{**t.to_dict(), "condition": cond} for t, cond in c.transitions],
            }
            for c in report.changes
        ],
        "replay": report.replay.to_dict() if report.replay is not None else None,
    }
