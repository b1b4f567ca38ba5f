"""`cxpolicy lsp`: an editor's JSON-RPC on stdin in, diagnostics, hovers and edits on stdout out."""

from __future__ import annotations

import importlib.util
import sys

import click

from cxpolicy.cli import ExitCode

__all__ = ["lsp_cmd"]


@click.command("lsp")
@click.option("--stdio", is_flag=True, help="Speak LSP over stdin/stdout (the default and only transport).")
def lsp_cmd(stdio: bool) -> None:
    """Start the .cxp language server (LSP over stdio) for an editor.

    Diagnostics as you type (compile errors and lint findings), hover on dimensions, values,
    attributes, cites and rules, completion, go to definition, formatting, and quick fixes
    for did-you-mean hints. Needs the `lsp` extra: `pip install 'cxpolicy[lsp]'`.
    The VS Code extension in editors/vscode/ starts it.
    """
    if importlib.util.find_spec("pygls") is None:
        click.echo("cxpolicy lsp needs pygls: pip install 'cxpolicy[lsp]'", err=True)
        sys.exit(ExitCode.USAGE)
    from cxpolicy.lsp.server import main

    main()
