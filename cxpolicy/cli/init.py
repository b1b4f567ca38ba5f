"""`cxpolicy init`: a directory (and optional pack) in, a starter policy, its tests and example requests out."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cxpolicy.cli import ExitCode
from cxpolicy.resources import shipped_pack_names
from cxpolicy.tools.starter import starter

__all__ = ["init_cmd"]


@click.command("init")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option(
    "--pack", metavar="NAME", help="Start from a shipped compliance pack (`use NAME`; requests in its region)."
)
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init_cmd(directory: str, pack: str | None, force: bool) -> None:
    """Write a starter policy into DIRECTORY (default: here): policy.cxp with three rules
    and their tests, and requests/*.json to try with `eval` and `explain`.

    \b
    Examples:
      cxpolicy init my-policy
      cxpolicy init my-bank --pack bfsi_rbi
      cxpolicy test my-bank && cxpolicy lint my-bank

    The tests pass as written. Exit 0; 64 when a file exists (without --force) or the pack
    is unknown.
    """
    if pack is not None and pack not in shipped_pack_names():
        click.echo(f"unknown pack `{pack}`; shipped packs: {', '.join(shipped_pack_names())}", err=True)
        sys.exit(ExitCode.USAGE)
    root = Path(directory)
    files = starter(pack, directory).files
    existing = [p for p in files if (root / p).exists()]
    if existing and not force:
        click.echo(f"not overwriting {', '.join(str(root / p) for p in existing)} (use --force)", err=True)
        sys.exit(ExitCode.USAGE)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        click.echo(f"wrote {path}")
    click.echo(
        f"\nnext:\n  cxpolicy test {directory}\n  cxpolicy lint {directory}\n"
        f"  cxpolicy explain {directory} -i {root / 'requests' / 'large_refund.json'}"
    )
