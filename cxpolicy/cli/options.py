"""Options and helpers shared by the subcommands: policy paths, packs, diagnostics output."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from cxpolicy.cli import ExitCode
from cxpolicy.engine.loader import load
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.lang.source import Diagnostic, PolicyError, render_diagnostics

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "detect_option",
    "echo_diagnostics",
    "input_option",
    "load_or_exit",
    "pack_option",
    "policy_options",
    "use_color",
]


def use_color(stream: Any = None) -> bool:
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def pack_option(f: F) -> F:
    return click.option(
        "--pack",
        "packs",
        multiple=True,
        metavar="NAME",
        help="Load a shipped compliance pack (bfsi_rbi, hipaa, gdpr) or `core`; repeatable.",
    )(f)


def policy_options(f: F) -> F:
    f = pack_option(f)
    return click.option(
        "-p",
        "--policy",
        "paths",
        multiple=True,
        type=click.Path(),
        metavar="PATH",
        help="A .cxp file or a directory of them; repeatable. Everything loads as one policy set.",
    )(f)


def input_option(
    help_text: str = "One JSON request, or JSON-lines (one request per line); `-` reads stdin.",
) -> Callable[[F], F]:
    """`-i FILE|-`: where the requests come from (read with cxpolicy.engine.requests.iter_requests)."""

    def decorate(f: F) -> F:
        return click.option(
            "-i",
            "--input",
            "input_file",
            required=True,
            type=click.File("r", encoding="utf-8"),
            metavar="FILE|-",
            help=help_text,
        )(f)

    return decorate


def detect_option(f: F) -> F:
    """`--detect/--no-detect`, on by default: what the service does, so the CLI decides alike."""
    return click.option(
        "--detect/--no-detect",
        default=True,
        show_default=True,
        help="Run the PII and prompt-injection detectors over payload.text before deciding.",
    )(f)


def echo_diagnostics(diags: Sequence[Diagnostic], sources: dict[str, str]) -> None:
    if diags:
        click.echo(render_diagnostics(diags, sources, color=use_color()), err=True)


def load_or_exit(paths: Sequence[str], packs: Sequence[str], *, detect: bool = False) -> PolicySet:
    """Load the policy set, or print every diagnostic to stderr and exit 2."""
    if not paths and not packs:
        raise click.UsageError("give at least one policy: -p PATH or --pack NAME")
    from cxpolicy.engine import celcache  # CEL trees seen before: no cel-python parser

    celcache.load()
    try:
        policy = load(list(paths), packs=list(packs), detect=detect)
        celcache.save()
        return policy
    except PolicyError as exc:
        click.echo(exc.render(color=use_color()), err=True)
        n = len([d for d in exc.diagnostics if d.is_error])
        click.echo(f"policy rejected: {n} error(s)", err=True)
        sys.exit(ExitCode.POLICY_ERROR)
