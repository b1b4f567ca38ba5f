"""`cxpolicy lint`: check a policy set; exit 1 when any finding is an error."""

from __future__ import annotations

import sys

import click
import orjson

from cxpolicy.cli import ExitCode
from cxpolicy.commands._common import pack_option, use_color
from cxpolicy.lint import lint_paths
from cxpolicy.source import render_diagnostics


@click.command("lint")
@click.argument("paths", nargs=-1, type=click.Path())
@pack_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def lint_cmd(paths: tuple[str, ...], packs: tuple[str, ...], fmt: str) -> None:
    """Check everything under PATHS as one policy set.

    \b
    Examples:
      cxpolicy lint rulesets/bank
      cxpolicy lint --pack bfsi_rbi --format json

    Exit 1 when a finding is an error (warnings alone exit 0).
    """
    if not paths and not packs:
        raise click.UsageError("give at least one policy: PATH... or --pack NAME")
    diags, sources = lint_paths(list(paths), packs)
    errors = [d for d in diags if d.is_error]
    if fmt == "json":
        click.echo(orjson.dumps([d.to_dict() for d in diags]).decode())
    else:
        if diags:
            click.echo(render_diagnostics(diags, sources, color=use_color(sys.stdout)))
        warnings = len(diags) - len(errors)
        click.echo(f"{len(errors)} error(s), {warnings} warning(s)")
    sys.exit(ExitCode.FAILED if errors else ExitCode.OK)
