"""`cxpolicy fmt`: rewrite .cxp files in the canonical layout, or check that they are.

Input: .cxp files. Output: the files rewritten (or a check's verdict and exit code).

A thin shell over `cxpolicy.tools.fmt.format_source`. Files are written only when their text
changes, atomically (a temporary file in the same directory, then a rename), so an editor or
a reloading service never sees half a file. A file that does not parse is reported and left
alone; that outranks everything else in the exit code, because CI must not read "not
formatted" when the truth is "broken".
"""

from __future__ import annotations

import difflib
import os
import sys
import tempfile
from pathlib import Path

import click

from cxpolicy.cli import ExitCode
from cxpolicy.cli.options import policy_paths, use_color
from cxpolicy.lang import codes
from cxpolicy.lang.source import Diagnostic, Span, render_diagnostics
from cxpolicy.tools.fmt import FormatError, format_source


@click.command("fmt")
@policy_paths
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if any file is not formatted.")
@click.option(
    "--diff", "show_diff", is_flag=True, help="Write nothing; print a unified diff instead."
)
def fmt_cmd(paths: tuple[str, ...], check: bool, show_diff: bool) -> None:
    """Rewrite .cxp files under PATHS in the one canonical layout.

    Comments are kept and `when`/`unless` expressions are printed exactly as written;
    only layout changes (indentation, clause alignment, spacing, blank lines, JSON in test
    requests). Running it twice changes nothing the second time. `-` reads standard input
    and writes the result to standard output.

    \b
    Examples:
      cxpolicy fmt rulesets/bank              # rewrite in place
      cxpolicy fmt --check rulesets/          # CI: exit 1 and list files that would change
      cxpolicy fmt --diff policy.cxp          # show what would change, write nothing
      cat policy.cxp | cxpolicy fmt -         # filter, e.g. for an editor

    \b
    Exit codes: 0 formatted (or nothing to do); 1 with --check when a file would change;
    2 when a path is missing or a file does not parse (that file is never rewritten).
    """
    if not paths:
        raise click.UsageError("give at least one path: PATH... (or -p PATH), or `-` for standard input")
    if paths == ("-",):
        _stdin(check, show_diff)
        return
    files, problems = _expand(paths)
    changed: list[str] = []
    for path in files:
        try:
            old = path.read_bytes().decode("utf-8")  # no newline translation: CRLF is a change
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(
                codes.CXP002(
                    f"cannot read file: {exc}", Span.unknown(str(path))
                )
            )
            continue
        name = str(path)
        try:
            new = format_source(old, name)
        except FormatError as exc:
            _report(exc.diagnostics, {name: old})
            problems.extend(exc.diagnostics)
            continue
        if new == old:
            continue
        changed.append(name)
        if show_diff:
            click.echo(_unified(old, new, name), nl=False)
        if check and not show_diff:
            click.echo(f"would reformat {name}")
        if not check and not show_diff:
            _write(path, new)
            click.echo(f"reformatted {name}", err=True)
    _report([d for d in problems if d.code in (codes.CXP001.code, codes.CXP002.code)], {})
    n = len(changed)
    verb = "would be reformatted" if check or show_diff else "reformatted"
    click.echo(f"{n} file(s) {verb}, {len(files) - n - _failed(problems)} unchanged", err=True)
    if problems:
        sys.exit(ExitCode.POLICY_ERROR)
    sys.exit(ExitCode.FAILED if check and changed else ExitCode.OK)


def _stdin(check: bool, show_diff: bool) -> None:
    old = sys.stdin.read()
    try:
        new = format_source(old, "<stdin>")
    except FormatError as exc:
        _report(exc.diagnostics, {"<stdin>": old})
        sys.exit(ExitCode.POLICY_ERROR)
    if show_diff:
        click.echo(_unified(old, new, "<stdin>"), nl=False)
    elif not check:
        click.echo(new, nl=False)
    sys.exit(ExitCode.FAILED if check and new != old else ExitCode.OK)


def _expand(paths: tuple[str, ...]) -> tuple[list[Path], list[Diagnostic]]:
    """Named files as given (any extension); directories: every `.cxp` below, sorted."""
    files: dict[Path, None] = {}
    problems: list[Diagnostic] = []
    for p in map(Path, paths):
        if p.is_file():
            files[p] = None
        elif p.is_dir():
            found = sorted(f for f in p.rglob("*.cxp") if f.is_file())
            if not found:
                problems.append(
                    codes.CXP001(
                        f"no .cxp files under `{p}`", Span.unknown(str(p))
                    )
                )
            files.update(dict.fromkeys(found))
        else:
            problems.append(
                codes.CXP001(
                    f"no such file or directory: `{p}`",
                    Span.unknown(str(p)),
                )
            )
    return list(files), problems


def _failed(problems: list[Diagnostic]) -> int:
    return len({d.span.file for d in problems if d.code != codes.CXP001.code})


def _report(diags: list[Diagnostic], sources: dict[str, str]) -> None:
    if diags:
        click.echo(render_diagnostics(diags, sources, color=use_color(sys.stderr)), err=True)


def _unified(old: str, new: str, name: str) -> str:
    lines = difflib.unified_diff(
        _lines(old), _lines(new), f"{name} (original)", f"{name} (formatted)"
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def _lines(text: str) -> list[str]:
    """Lines split at "\n" only (str.splitlines would also split at U+2028 and friends)."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _write(path: Path, text: str) -> None:
    """Replace the file atomically, keeping its permission bits."""
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
