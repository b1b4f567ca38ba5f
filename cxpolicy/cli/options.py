"""Options and helpers shared by the subcommands: policy paths, packs, diagnostics output.

Input: the options a subcommand declares. Output: loaded policy sets and printed diagnostics.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import click

from cxpolicy.cli import ExitCode
from cxpolicy.engine.loader import load
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.grants.tokens import GrantKeys
from cxpolicy.lang.source import Diagnostic, PolicyError, render_diagnostics

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "detect_option",
    "echo_diagnostics",
    "grant_key_options",
    "grant_keys_or_exit",
    "input_option",
    "load_or_exit",
    "pack_option",
    "policy_options",
    "policy_paths",
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
    """`policy_paths` plus `--pack NAME`: what a command that loads a policy set takes."""
    return policy_paths(pack_option(f))


def policy_paths(f: F) -> F:
    """Policy paths the one way every command takes them: positional `PATH...` and
    `-p/--policy PATH` (repeatable) both, merged (options first).

    The command receives them as `paths`. One convention everywhere, so that
    `cxpolicy test -p v1` and `cxpolicy eval v1 -i req.json` both work (LANGUAGE.md §8 names
    `eval -p PATH` and `lint|test|fmt PATH...`; both spellings stay valid).
    """

    @functools.wraps(f)
    def merged(*args: Any, policy_args: tuple[str, ...] = (), policy_opts: tuple[str, ...] = (), **kwargs: Any) -> Any:
        return f(*args, paths=tuple(policy_opts) + tuple(policy_args), **kwargs)

    wrapped: Any = merged
    wrapped = click.argument("policy_args", nargs=-1, type=click.Path(), metavar="[PATH]...")(wrapped)
    return cast(
        F,
        click.option(
            "-p",
            "--policy",
            "policy_opts",
            multiple=True,
            type=click.Path(),
            metavar="PATH",
            help="A .cxp file or a directory of them; repeatable, or give them as arguments. "
            "Everything loads as one policy set.",
        )(wrapped),
    )


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
        help="Run the PII and prompt-injection detectors over the request's text fields before deciding.",
    )(f)


def grant_key_options(f: F) -> F:
    """`--grant-key-file` / `--grant-public-key` (and env CXPOLICY_GRANT_KEY): what verifies `grants`."""
    f = click.option(
        "--grant-public-key",
        "grant_public_keys",
        multiple=True,
        metavar="[KID=]PEM",
        help="An Ed25519 public key (PEM) that verifies EdDSA grants; repeatable (rotation).",
    )(f)
    return click.option(
        "--grant-key-file",
        "grant_key_files",
        multiple=True,
        metavar="[KID=]FILE",
        help="A file holding an HS256 grant secret (≥ 32 bytes); repeatable. Env: CXPOLICY_GRANT_KEY.",
    )(f)


def grant_keys_or_exit(key_files: Sequence[str], public_keys: Sequence[str]) -> GrantKeys | None:
    """The configured grant keys (None when there are none: every grant is then invalid)."""
    from cxpolicy.grants.tokens import GrantKeyError

    try:
        keys = GrantKeys.from_options(key_files=key_files, public_keys=public_keys)
    except GrantKeyError as exc:
        raise click.UsageError(str(exc)) from exc
    return None if keys.empty else keys


def echo_diagnostics(diags: Sequence[Diagnostic], sources: dict[str, str]) -> None:
    if diags:
        click.echo(render_diagnostics(diags, sources, color=use_color()), err=True)


def load_or_exit(
    paths: Sequence[str], packs: Sequence[str], *, detect: bool = True, grant_keys: GrantKeys | None = None
) -> PolicySet:
    """Load the policy set, or print every diagnostic to stderr and exit 2."""
    if not paths and not packs:
        raise click.UsageError("give at least one policy: PATH (or -p PATH) or --pack NAME")
    from cxpolicy.engine import celcache  # CEL trees seen before: no cel-python parser

    celcache.load()
    try:
        policy = load(list(paths), packs=list(packs), detect=detect, grant_keys=grant_keys)
        celcache.save()
        return policy
    except PolicyError as exc:
        click.echo(exc.render(color=use_color()), err=True)
        n = len([d for d in exc.diagnostics if d.is_error])
        click.echo(f"policy rejected: {n} error(s)", err=True)
        sys.exit(ExitCode.POLICY_ERROR)
