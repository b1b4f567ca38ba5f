"""`cxpolicy test`: run the policy's `test` blocks; exit 1 when any fails."""

from __future__ import annotations

import sys

import click

from cxpolicy.cli import ExitCode
from cxpolicy.commands._common import load_or_exit, pack_option
from cxpolicy.render import decision_text
from cxpolicy.testing import run_tests


@click.command("test")
@click.argument("paths", nargs=-1, type=click.Path())
@pack_option
@click.option("-k", "pattern", metavar="PATTERN", help="Run only tests whose name contains PATTERN (or matches a glob).")
def test_cmd(paths: tuple[str, ...], packs: tuple[str, ...], pattern: str | None) -> None:
    """Run the `test` blocks under PATHS (and in the packs named).

    \b
    Examples:
      cxpolicy test rulesets/bank
      cxpolicy test --pack bfsi_rbi --pack hipaa --pack gdpr
      cxpolicy test rulesets/bank -k "refund"

    Exit 0 when every test passes, 1 when one fails, 2 when the policy does not compile.
    """
    policy = load_or_exit(paths, packs)
    outcomes = run_tests(policy, pattern)
    failed = [o for o in outcomes if not o.passed]
    for o in outcomes:
        mark = "PASS" if o.passed else "FAIL"
        click.echo(f"{mark} {o.file}:{o.span.line}: {o.name}")
    for o in failed:
        click.echo("")
        click.echo(f"── FAILED: {o.name}  ({o.file}:{o.span.line})")
        for f in o.failures:
            click.echo(f"   {f}")
        if o.decision is not None:
            body = decision_text(o.decision)
            click.echo("\n".join("   | " + ln for ln in body.splitlines()))
    click.echo("")
    click.echo(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed")
    sys.exit(ExitCode.FAILED if failed else ExitCode.OK)
