"""`cxpolicy freeze` / `cxpolicy unfreeze`: stop an action, tool, agent, channel or region fleet-wide.

Input: what to freeze (one of --action/--tool/--agent/--channel/--region), why, who, and
where: the shared freeze store itself (`--store URL`, or `CXPOLICY_FREEZE_STORE`) or one
replica's API (`--server URL` with `CXPOLICY_ADMIN_TOKEN`). Output: the freeze (or the
lifted freezes) as JSON on stdout; every replica on that store escalates matching requests
within about a second (docs/operations.md). Exit 1 when the command cannot be carried out.
"""

from __future__ import annotations

import getpass
import os
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

import click
import orjson

from cxpolicy.cli import ExitCode

__all__ = ["freeze_cmd", "unfreeze_cmd"]

F = TypeVar("F", bound=Callable[..., Any])
KINDS = ("action", "tool", "agent", "channel", "region")


def _target_options(f: F) -> F:
    for kind in reversed(KINDS):
        f = click.option(f"--{kind}", kind, metavar="VALUE", help=f"Freeze this {kind}.")(f)
    f = click.option("--by", default=None, metavar="NAME", help="Who (default: user@host).")(f)
    f = click.option("--reason", default=None, help="Why (required): recorded with the freeze, shown in decisions.")(f)
    f = click.option("--server", metavar="URL", help="Go through a replica's API (needs CXPOLICY_ADMIN_TOKEN).")(f)
    f = click.option("--store", metavar="URL", envvar="CXPOLICY_FREEZE_STORE",
                     help="The freeze store: postgresql://… or sqlite:///path.")(f)  # fmt: skip
    return f


def _target(given: dict[str, str | None], *, required: bool) -> tuple[str, str] | None:
    chosen = [(k, v) for k, v in given.items() if v is not None]
    if len(chosen) > 1 or (required and not chosen):
        raise click.UsageError("name exactly one of --action, --tool, --agent, --channel, --region")
    return chosen[0] if chosen else None


def _who(by: str | None) -> str:
    if by:
        return by
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _api(server: str, path: str, body: dict[str, Any]) -> Any:
    token = os.environ.get("CXPOLICY_ADMIN_TOKEN", "")
    req = urllib.request.Request(
        server.rstrip("/") + path, data=orjson.dumps(body), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:500]
        click.echo(f"{server}: {exc.code} {detail}", err=True)
        sys.exit(ExitCode.FAILED)
    except OSError as exc:
        click.echo(f"{server}: {exc}", err=True)
        sys.exit(ExitCode.FAILED)


def _store(url: str | None) -> Any:
    if not url:
        raise click.UsageError("give --store URL (or CXPOLICY_FREEZE_STORE) or --server URL")
    from cxpolicy.fleet.freeze import open_freeze_store

    try:
        return open_freeze_store(url)
    except Exception as exc:
        click.echo(f"cannot open the freeze store: {exc}", err=True)
        sys.exit(ExitCode.FAILED)


@click.command("freeze")
@_target_options
@click.option("--list", "list_", is_flag=True, help="List the active freezes instead (no --reason needed).")
def freeze_cmd(
    store: str | None, server: str | None, reason: str | None, by: str | None, list_: bool, **kinds: str | None
) -> None:
    """Freeze: every replica escalates matching requests until `cxpolicy unfreeze`.

    \b
    Examples:
      cxpolicy freeze --action refund.execute --reason "refund fraud wave, INC-4411" --store postgresql://…
      cxpolicy freeze --agent agent-42 --reason "looping" --server http://replica-1:8181
    """
    from cxpolicy.fleet.freeze import FreezeError

    if list_:
        with _store(store) as st:
            click.echo(orjson.dumps([f.to_dict() for f in st.snapshot().freezes], option=orjson.OPT_INDENT_2).decode())
        return
    if not reason:
        raise click.UsageError("say why: --reason TEXT (it is recorded and shown in every frozen decision)")
    target = _target(kinds, required=True)
    assert target is not None
    kind, value = target
    if server:
        out = _api(server, "/v1/freezes", {"kind": kind, "value": value, "reason": reason, "by": _who(by)})
        click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return
    with _store(store) as st:
        try:
            f = st.create(kind, value, reason, _who(by))
        except FreezeError as exc:
            click.echo(f"cxpolicy freeze: {exc}", err=True)
            sys.exit(ExitCode.FAILED)
    click.echo(orjson.dumps(f.to_dict(), option=orjson.OPT_INDENT_2).decode())


# `--list` is meaningless for unfreeze; the same options otherwise, plus an id.
@click.command("unfreeze")
@click.argument("freeze_id", required=False)
@_target_options
def unfreeze_cmd(
    freeze_id: str | None, store: str | None, server: str | None, reason: str | None, by: str | None,
    **kinds: str | None,
) -> None:
    """Lift a freeze by id, or every active freeze of one --action/--tool/--agent/--channel/--region."""
    from cxpolicy.fleet.freeze import FreezeError

    if not reason:
        raise click.UsageError("say why: --reason TEXT (it is recorded with the unfreeze)")
    target = _target(kinds, required=freeze_id is None)
    if freeze_id is not None and target is not None:
        raise click.UsageError("give a freeze id or a target, not both")
    if server:
        if freeze_id is None:
            raise click.UsageError("through --server, name the freeze by its id")
        out = _api(server, f"/v1/freezes/{freeze_id}/lift", {"reason": reason, "by": _who(by)})
        click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return
    with _store(store) as st:
        try:
            if freeze_id is not None:
                lifted = st.lift(by=_who(by), reason=reason, freeze_id=freeze_id)
            else:
                assert target is not None
                lifted = st.lift(by=_who(by), reason=reason, kind=target[0], value=target[1])
        except FreezeError as exc:
            click.echo(f"cxpolicy unfreeze: {exc}", err=True)
            sys.exit(ExitCode.FAILED)
    click.echo(orjson.dumps([f.to_dict() for f in lifted], option=orjson.OPT_INDENT_2).decode())
