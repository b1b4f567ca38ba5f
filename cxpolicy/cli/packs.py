"""`cxpolicy packs`: list the shipped compliance packs; `cxpolicy packs show NAME` prints one
pack's rule → effect → clause table, its thresholds and the clauses it cites.

Input: a pack name, or none. Output: the pack list or one pack's table.
"""

from __future__ import annotations

import sys
import textwrap

import click
import orjson

from cxpolicy.cli import ExitCode
from cxpolicy.lang.source import PolicyError
from cxpolicy.tools.packs import PackInfo, PackNotFoundError, PackRule, markdown_table, pack_info, shipped_packs

_FORMATS = click.Choice(["text", "json"])


@click.group("packs", invoke_without_command=True)
@click.option("--format", "fmt", type=_FORMATS, default="text", show_default=True)
@click.pass_context
def packs_cmd(ctx: click.Context, fmt: str) -> None:
    """List the compliance packs shipped with cxpolicy: version, regions, rule and test counts.

    \b
    Examples:
      cxpolicy packs
      cxpolicy packs show bfsi_rbi
      cxpolicy packs show gdpr --format markdown

    Load a pack with `--pack NAME` (CLI), `packs=[NAME]` (Python) or `use NAME` in a .cxp file.
    """
    if ctx.invoked_subcommand is not None:
        return
    try:
        infos = shipped_packs()
    except PolicyError as exc:
        _broken(exc)
    if fmt == "json":
        click.echo(orjson.dumps([i.to_dict(rules=False) for i in infos]).decode())
        return
    if not infos:
        click.echo("no compliance packs are installed")
        return
    rows = [("NAME", "VERSION", "RULES", "TESTS", "REGIONS", "DESCRIPTION")]
    rows += [(i.name, i.version, str(i.rule_count), str(i.tests), ", ".join(i.regions), i.description) for i in infos]
    widths = [max(len(r[c]) for r in rows) for c in range(5)]
    for r in rows:
        click.echo("  ".join(r[c].ljust(widths[c]) for c in range(5)) + "  " + r[5])


@packs_cmd.command("show")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True,
              help="text for people; json for scripts; markdown for docs.")
def show_cmd(name: str, fmt: str) -> None:
    """Print pack NAME's rules: effect, the clauses behind each, and the plain reason.

    `--format markdown` prints the table that docs/packs/NAME.md carries.
    """
    try:
        info = pack_info(name)
    except PackNotFoundError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(ExitCode.USAGE)
    except PolicyError as exc:
        _broken(exc)
    if fmt == "json":
        click.echo(orjson.dumps(info.to_dict(), option=orjson.OPT_INDENT_2).decode())
    elif fmt == "markdown":
        click.echo(markdown_table(info))
    else:
        click.echo(_text(info))


def _text(info: PackInfo) -> str:
    out = [
        f"{info.name} {info.version} — {info.description}",
        f"regions: {', '.join(info.regions)}    rules: {info.rule_count}    tests: {info.tests}",
    ]
    if info.thresholds:
        out.append("thresholds (a request may lower one, never raise it; docs/packs/README.md):")
        for t in info.thresholds:
            out.append(f"  {t.path} = {t.default}  ({t.type}; read by {', '.join(t.rules)})")
    out.append("")
    width = max(len(r.id) for r in info.rules) if info.rules else 4
    eff = max(len(_short_decide(r)) for r in info.rules) if info.rules else 6
    out.append(f"{'RULE'.ljust(width)}  {'EFFECT'.ljust(eff)}  CLAUSES")
    for r in info.rules:
        names = ", ".join(n or t for n, t in r.cites)
        out.append(f"{r.id.ljust(width)}  {_short_decide(r).ljust(eff)}  {names}")
        out.extend(textwrap.wrap(r.because, 96, initial_indent="    ", subsequent_indent="    "))
    if info.cites:
        out.append("")
        out.append("clauses:")
        for cname, text in info.cites:
            out.extend(textwrap.wrap(f"{cname}: {text}", 100, initial_indent="  ", subsequent_indent="      "))
    return "\n".join(out)


def _short_decide(r: PackRule) -> str:
    """`decide_text`, with a long redact list cut so the table stays readable."""
    if r.redact is not None and len(r.redact) > 3:
        shown = ", ".join(r.redact[:2])
        return f"redact [{shown}, … +{len(r.redact) - 2}] as {r.style.value}"
    return r.decide_text


def _broken(exc: PolicyError) -> None:
    click.echo(exc.render(color=False), err=True)
    sys.exit(ExitCode.POLICY_ERROR)
