"""`cxpolicy lint`: check a policy set; exit 1 when any finding is an error.

Input: a policy set. Output: diagnostics as text, JSON or SARIF, and the exit code.

Three outputs for three readers: text with source lines and carets for a person (coloured
on a terminal, plain when piped or when NO_COLOR is set), JSON for scripts (the shape of
docs/diagnostics.md), and SARIF 2.1.0 for code-scanning services, which show each finding
on the pull request line it belongs to.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click
import orjson

from cxpolicy.cli import ExitCode
from cxpolicy.cli.options import policy_options, use_color
from cxpolicy.lang.source import Diagnostic, render_diagnostics
from cxpolicy.tools.lint import CODES, lint_paths

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


@click.command("lint")
@policy_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "sarif"]),
    default="text",
    show_default=True,
    help="text for people, json for scripts, sarif for code scanning.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Make reading a field or name the policy never declares (CXP615, CXP618) an error.",
)
def lint_cmd(paths: tuple[str, ...], packs: tuple[str, ...], fmt: str, strict: bool) -> None:
    """Check everything under PATHS as one policy set, and report likely mistakes.

    Besides compile errors, lint finds rules that can never match, constraints that add
    nothing, `allow` rules that a stricter unconditional rule always overrides, duplicate
    and subsumed rules, unused `cite` names and attributes, conditions comparing a field
    with a literal of the wrong type, and rules without `because`/`cite` (errors in
    compliance packs). Codes are stable: see docs/diagnostics.md.

    \b
    Examples:
      cxpolicy lint rulesets/bank
      cxpolicy lint --pack bfsi_rbi                    # lint a shipped pack
      cxpolicy lint rulesets/ --format json | jq '.[] | select(.severity == "error")'
      cxpolicy lint rulesets/ --format sarif > lint.sarif   # upload to code scanning

    \b
    Silence one finding with a comment on its line, the line above, or its rule's first line:
      rule legacy_refunds {  # cxpolicy: ignore[CXP608]

    Exit 0 when nothing is an error (warnings alone), 1 when a finding is an error.
    """
    if not paths and not packs:
        raise click.UsageError("give at least one policy: PATH (or -p PATH) or --pack NAME")
    diags, sources = lint_paths(list(paths), packs, strict=strict)
    errors = [d for d in diags if d.is_error]
    if fmt == "json":
        click.echo(orjson.dumps([d.to_dict() for d in diags]).decode())
    elif fmt == "sarif":
        click.echo(orjson.dumps(sarif(diags), option=orjson.OPT_INDENT_2).decode())
    else:
        color = use_color(sys.stdout) and "NO_COLOR" not in os.environ
        if diags:
            click.echo(render_diagnostics(diags, sources, color=color))
        warnings = len(diags) - len(errors)
        click.echo(f"{len(errors)} error(s), {warnings} warning(s)")
    sys.exit(ExitCode.FAILED if errors else ExitCode.OK)


def sarif(diags: list[Diagnostic]) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run: the rules used, then one result per diagnostic."""
    codes = sorted({d.code for d in diags})
    rules = [
        {
            "id": code,
            "shortDescription": {"text": CODES.get(code, f"cxpolicy diagnostic {code}")},
            "fullDescription": {"text": "see docs/diagnostics.md in the cxpolicy sources"},
        }
        for code in codes
    ]
    results = []
    for d in diags:
        message = d.message + (f" (hint: {d.hint})" if d.hint else "")
        result: dict[str, Any] = {
            "ruleId": d.code,
            "ruleIndex": codes.index(d.code),
            "level": _LEVEL.get(d.severity, "warning"),
            "message": {"text": message},
        }
        location = _location(d)
        if location is not None:
            result["locations"] = [location]
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "cxpolicy",
                        "version": _version(),
                        "rules": rules,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def _location(d: Diagnostic) -> dict[str, Any] | None:
    """A physical location, relative to the working directory when the file is below it."""
    file = d.span.file
    if file.startswith("<"):  # "<command line>", "<stdin>": nothing to point at
        return None
    path = Path(file)
    relative = {"uri": path.as_posix(), "uriBaseId": "%SRCROOT%"}
    artifact = {"uri": path.as_uri()} if path.is_absolute() else relative
    s = d.span
    region = {"startLine": s.line, "startColumn": s.col, "endLine": s.end_line, "endColumn": s.end_col}
    return {"physicalLocation": {"artifactLocation": artifact, "region": region}}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cxpolicy")
    except PackageNotFoundError:  # a checkout that was never installed
        return "0.0.0"
