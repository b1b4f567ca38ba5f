"""`cxpolicy fleet status URL...`: what every replica serves, side by side.

Input: the base URLs of the replicas. Output: one row per replica (revision, bundle digest,
last reload and its outcome, freeze version and count) and a verdict; exit 0 when they all
agree, 1 when they disagree or one cannot be reached (so a deploy script can wait on it).
"""

from __future__ import annotations

import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import click
import orjson

from cxpolicy.cli import ExitCode

__all__ = ["compare", "fetch_status", "fleet_cmd"]

# What must be equal across replicas for them to "agree".
COMPARED = ("revision", "bundle", "freeze_version", "freezes")


def fetch_status(url: str, timeout: float) -> dict[str, Any]:
    """One replica's `/v1/status`, or `{"error": …}` when it cannot be read."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/v1/status", timeout=timeout) as resp:
            data = orjson.loads(resp.read())
            return data if isinstance(data, dict) else {"error": "not a status object"}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def summary(status: dict[str, Any]) -> dict[str, Any]:
    """The fields compared, from one replica's status."""
    bundle = status.get("bundle") or {}
    serving = bundle.get("serving") or {}
    freeze = status.get("freeze") or {}
    return {
        "revision": status.get("revision"),
        "bundle": serving.get("digest"),
        "freeze_version": freeze.get("version"),
        "freezes": sorted(f.get("id") for f in freeze.get("active", [])),
    }


def compare(statuses: list[dict[str, Any]]) -> list[str]:
    """The disagreements among replicas (an empty list: they agree)."""
    problems = [f"replica {i + 1} unreachable: {s['error']}" for i, s in enumerate(statuses) if "error" in s]
    good = [summary(s) for s in statuses if "error" not in s]
    for key in COMPARED:
        values = {orjson.dumps(g[key]).decode() for g in good}
        if len(values) > 1:
            problems.append(f"{key} differs: {', '.join(sorted(values))}")
    for s in statuses:
        last = s.get("last_reload") or {}
        if last and last.get("ok") is False:
            problems.append(f"{s.get('replica')}: last reload refused ({last.get('error')})")
    return problems


@click.group("fleet")
def fleet_cmd() -> None:
    """Look at a fleet of replicas (docs/operations.md)."""


@fleet_cmd.command("status")
@click.argument("urls", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: the replicas side by side; json for scripts.")
@click.option("--timeout", type=float, default=5.0, show_default=True,
              help="Seconds to wait for each replica; an unreachable one counts as disagreeing.")
def status_cmd(urls: tuple[str, ...], fmt: str, timeout: float) -> None:
    """Show each replica's revision, bundle, last reload and freezes; exit 1 unless they agree.

    A refused last reload counts as a problem too: that replica is not serving what it was sent.

    \b
    Example:
      cxpolicy fleet status http://10.0.0.1:8181 http://10.0.0.2:8181 http://10.0.0.3:8181
    """
    with ThreadPoolExecutor(max_workers=min(16, len(urls))) as pool:
        statuses = list(pool.map(lambda u: fetch_status(u, timeout), urls))
    problems = compare(statuses)
    if fmt == "json":
        rows = [{"url": u, **s} for u, s in zip(urls, statuses, strict=True)]
        click.echo(orjson.dumps({"agree": not problems, "problems": problems, "replicas": rows}).decode())
    else:
        header = f"{'replica':<24} {'revision':<22} {'bundle':<22} {'last reload':<14} {'freezes':<10}"
        click.echo(header)
        for url, s in zip(urls, statuses, strict=True):
            if "error" in s:
                click.echo(f"{url:<24} unreachable: {s['error']}")
                continue
            g = summary(s)
            last = s.get("last_reload") or {}
            outcome = ("ok " if last.get("ok") else "REFUSED ") + str(last.get("trigger", ""))
            name = str(s.get("replica") or url)[:24]
            rev = str(g["revision"] or "")[7:26]
            bundle = str(g["bundle"] or "-")[7:26]
            click.echo(f"{name:<24} {rev:<22} {bundle:<22} {outcome:<14} v{g['freeze_version']} {len(g['freezes'])}")
        click.echo("agree" if not problems else "DISAGREE:\n  " + "\n  ".join(problems))
    sys.exit(ExitCode.OK if not problems else ExitCode.FAILED)
