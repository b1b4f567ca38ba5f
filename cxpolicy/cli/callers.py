"""`cxpolicy callers add|list|remove`: manage the service's callers file (TOML).

Input: a callers file path (`--file`, default `callers.toml`, or `CXPOLICY_CALLERS`) and a
caller's name, roles, bound fields and mTLS subject. Output: the file rewritten atomically
(mode 0600) and, for `add`, the new API key printed once on stdout. Only the key's SHA-256
digest is stored; no command prints a stored digest in full or logs a key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cxpolicy.cli import ExitCode

__all__ = ["callers_cmd"]

_file_option = click.option(
    "--file",
    "-f",
    "path",
    envvar="CXPOLICY_CALLERS",
    default="callers.toml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The callers file `cxpolicy serve --callers` reads.",
)


def _parse_bind(items: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        path, sep, raw = item.partition("=")
        if not sep or not path.strip():
            raise click.BadParameter(f"{item!r}: use PATH=VALUE, e.g. actor.kind=ai", param_hint="--bind")
        try:
            value: Any = json.loads(raw)  # true, 3, ["a"] as JSON; anything else a string
        except json.JSONDecodeError:
            value = raw
        out[path.strip()] = value
    return out


@click.group("callers")
def callers_cmd() -> None:
    """Manage who may call the decision service (API keys, mTLS identities, roles, bound fields)."""


@callers_cmd.command("add")
@_file_option
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True,
              type=click.Choice(["decide", "review", "issue", "admin"]), help="Repeat for several roles.")
@click.option("--bind", "binds", multiple=True, metavar="PATH=VALUE",
              help="A request field this caller may not choose, e.g. actor.kind=ai (repeatable).")
@click.option("--mtls-subject", metavar="DN", help='Accept this client certificate subject, e.g. "CN=gateway,O=Acme".')
@click.option("--no-key", is_flag=True, help="No API key (mTLS identity only).")
def add_cmd(path: Path, name: str, roles: tuple[str, ...], binds: tuple[str, ...],
            mtls_subject: str | None, no_key: bool) -> None:
    """Add caller NAME; prints its new API key once (store it now: only its digest is kept)."""
    from cxpolicy.service.callers_config import (
        CallerEntry,
        CallersConfigError,
        new_key,
        read_callers_file,
        subject_section_text,
        write_callers,
    )

    if no_key and not mtls_subject:
        raise click.UsageError("--no-key needs --mtls-subject: the caller must have some credential")
    try:
        cf = read_callers_file(path)
    except CallersConfigError as exc:
        click.echo(f"cxpolicy callers: {exc}", err=True)
        raise SystemExit(ExitCode.USAGE) from None
    if any(e.name == name for e in cf.callers):
        click.echo(f"cxpolicy callers: {name!r} exists; remove it first to rotate its key", err=True)
        raise SystemExit(ExitCode.FAILED)
    key, digest = (None, None) if no_key else new_key()
    cf.callers.append(CallerEntry(name, sorted(set(roles)), digest, mtls_subject, _parse_bind(binds)))
    write_callers(path, cf, keep_subject_text=subject_section_text(path))
    if key:
        click.echo(key)
    click.echo(f"cxpolicy callers: added {name!r} ({', '.join(sorted(set(roles)))}) to {path}", err=True)


@callers_cmd.command("list")
@_file_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per caller (never a key or full digest).")
def list_cmd(path: Path, as_json: bool) -> None:
    """List the callers: names, roles, bound fields; never their keys."""
    from cxpolicy.service.callers_config import CallersConfigError, as_mapping, read_callers_file

    try:
        cf = read_callers_file(path)
    except CallersConfigError as exc:
        click.echo(f"cxpolicy callers: {exc}", err=True)
        raise SystemExit(ExitCode.USAGE) from None
    rows = [dict(as_mapping(e)) for e in cf.callers]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        bound = ", ".join(f"{k}={json.dumps(v)}" for k, v in r["bound"].items()) or "-"
        cred = " ".join(x for x in (r["key"], r["mtls_subject"] and f"mtls:{r['mtls_subject']}") if x)
        click.echo(f"{r['name']}\t{','.join(r['roles'])}\t{cred}\tbound: {bound}")


@callers_cmd.command("remove")
@_file_option
@click.argument("name")
def remove_cmd(path: Path, name: str) -> None:
    """Remove caller NAME (its key stops working at the service's next start)."""
    from cxpolicy.service.callers_config import read_callers_file, subject_section_text, write_callers

    cf = read_callers_file(path)
    kept = [e for e in cf.callers if e.name != name]
    if len(kept) == len(cf.callers):
        click.echo(f"cxpolicy callers: no caller {name!r} in {path}", err=True)
        raise SystemExit(ExitCode.FAILED)
    cf.callers = kept
    write_callers(path, cf, keep_subject_text=subject_section_text(path))
    click.echo(f"cxpolicy callers: removed {name!r}", err=True)
