"""`cxpolicy coverage --pack NAME`: which clauses a compliance pack cites have a rule and a test.

Input: a policy set with packs. Output: the clause coverage table; exit 1 when a clause has no test.
"""

from __future__ import annotations

import sys

import click
import orjson

from cxpolicy.cli import ExitCode
from cxpolicy.cli.options import load_or_exit, policy_paths, use_color
from cxpolicy.tools.testing import ClauseCoverage, clause_coverage, run_tests

__all__ = ["coverage_cmd", "coverage_text"]

_MARK = {"covered": "✓", "no test": "◐", "no rule": "✗"}


@click.command("coverage")
@policy_paths
@click.option("--pack", "packs", multiple=True, required=True, metavar="NAME",
              help="The shipped pack whose cited clauses to report (bfsi_rbi, hipaa, gdpr); repeatable.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people; json for scripts.")
@click.option("--fail-uncovered", is_flag=True, help="Exit 1 when a clause has no rule, or no test making one match.")
def coverage_cmd(paths: tuple[str, ...], packs: tuple[str, ...], fmt: str, fail_uncovered: bool) -> None:
    """For each clause a pack cites (`cite NAME = "..."`), list the rules that cite it and
    the tests whose decision matched one of those rules.

    \b
    Tests and rules under PATHS count too: your own tests of the pack's rules, or your own
    rules citing the pack's clauses.

    \b
    Examples:
      cxpolicy coverage --pack bfsi_rbi
      cxpolicy coverage --pack hipaa rulesets/clinic --format json
      cxpolicy coverage --pack gdpr --fail-uncovered        # in CI

    \b
    ✓ covered: a rule cites it and a test made that rule match
    ◐ no test: a rule cites it, but no test's decision included that rule
    ✗ no rule: declared, but no rule cites it

    Exit 0, or 1 with --fail-uncovered when a clause is not covered; 2 when the policy does not compile.
    """
    policy = load_or_exit(paths, packs)
    clauses = clause_coverage(policy, run_tests(policy), packs)
    if fmt == "json":
        click.echo(orjson.dumps([c.to_dict() for c in clauses], option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(coverage_text(clauses, packs, color=use_color(sys.stdout)))
    uncovered = [c for c in clauses if c.status != "covered"]
    sys.exit(ExitCode.FAILED if fail_uncovered and uncovered else ExitCode.OK)


def coverage_text(clauses: list[ClauseCoverage], packs: tuple[str, ...], *, color: bool = False) -> str:
    out: list[str] = []
    for pack in packs:
        mine = [c for c in clauses if c.pack == pack]
        counts = {s: len([c for c in mine if c.status == s]) for s in _MARK}
        head = (f"pack {pack}: {len(mine)} cited clause(s) — {counts['covered']} covered, "
                f"{counts['no test']} with a rule but no test, {counts['no rule']} without a rule")
        out.append(click.style(head, bold=True) if color else head)
        width = max((len(c.name) for c in mine), default=0)
        for c in mine:
            mark = _MARK[c.status]
            if color:
                mark = click.style(mark, fg={"covered": "green", "no test": "yellow", "no rule": "red"}[c.status])
            text = c.text if len(c.text) <= 72 else c.text[:71] + "…"
            tally = f"{len(c.rules)} rule(s), {len(c.tests)} test(s)"
            out.append(f"  {mark} {c.name.ljust(width)}  {tally:<22}  {text}")
            if c.status == "no test":
                out += [f"      untested: {r}" for r in c.rules]
        out.append("")
    return "\n".join(out).rstrip()
