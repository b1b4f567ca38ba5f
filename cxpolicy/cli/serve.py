"""`cxpolicy serve`: run the decision service (docs/service.md) under uvicorn.

Input: policy paths, packs and server options. Output: a listening HTTP service.

Why it is shaped this way: with one worker the command builds the `Engine`, the audit sink
and the app itself and hands the app to uvicorn. With `--workers N` uvicorn forks N
processes that each import an app factory; a factory takes no arguments, so the command
writes its configuration into environment variables (`CXPOLICY_*`, listed in
docs/service.md) and every worker's `create_app_from_env()` reads them. Either way the policy
is compiled once in the parent first, so a policy that does not compile fails the command
with its diagnostics (exit 2) instead of N crashing workers.

The admin token is read from `CXPOLICY_ADMIN_TOKEN` only, never from the command line
(where `ps` would show it). The default bind address is 127.0.0.1: exposing the service is
a decision the operator makes with `--host`.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from typing import TYPE_CHECKING, Any

import click

from cxpolicy.cli import ExitCode
from cxpolicy.cli.options import detect_option, load_or_exit, policy_options, use_color
from cxpolicy.limits import SERVICE_MAX_BATCH, SERVICE_MAX_BODY

if TYPE_CHECKING:
    from cxpolicy.service.reload import Engine

__all__ = ["create_app_from_env", "serve_cmd"]

ENV_PATHS = "CXPOLICY_PATHS"
ENV_PACKS = "CXPOLICY_PACKS"
ENV_WATCH = "CXPOLICY_WATCH"
ENV_DETECT = "CXPOLICY_DETECT"
ENV_AUDIT = "CXPOLICY_AUDIT"
ENV_MAX_BODY = "CXPOLICY_MAX_BODY"
ENV_MAX_BATCH = "CXPOLICY_MAX_BATCH"
ENV_ADMIN_TOKEN = "CXPOLICY_ADMIN_TOKEN"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def create_app_from_env() -> object:
    """The app factory for uvicorn workers (`uvicorn --factory`): configuration from env."""
    from cxpolicy.service.app import DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY, create_app
    from cxpolicy.service.reload import Engine

    env = os.environ
    paths = [p for p in env.get(ENV_PATHS, "").split(os.pathsep) if p]
    packs = [p for p in env.get(ENV_PACKS, "").split(",") if p]
    engine = Engine(
        paths, packs=packs, watch=_truthy(env.get(ENV_WATCH)), detect=_truthy(env.get(ENV_DETECT))
    )
    audit = None
    if env.get(ENV_AUDIT):
        from cxpolicy.audit import open_sink

        audit = open_sink(env[ENV_AUDIT])
    return create_app(
        engine,
        admin_token=env.get(ENV_ADMIN_TOKEN) or None,
        audit=audit,
        max_body=int(env.get(ENV_MAX_BODY) or DEFAULT_MAX_BODY),
        max_batch=int(env.get(ENV_MAX_BATCH) or DEFAULT_MAX_BATCH),
        close_on_shutdown=True,
    )


@click.command("serve")
@policy_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8181, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on.")
@click.option("--watch", is_flag=True, help="Reload when a policy file changes (debounced).")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes (uvicorn multi-process mode).",
)
@click.option(
    "--audit",
    "audit_url",
    metavar="URL",
    help="Record every decision before answering it, e.g. sqlite:///var/audit.db.",
)
@detect_option
@click.option("--max-body", default=SERVICE_MAX_BODY, show_default=True, type=click.IntRange(1024),
              help="Largest request body in bytes (413 beyond it); a batch may be 64 times this.")
@click.option("--max-batch", default=SERVICE_MAX_BATCH, show_default=True, type=click.IntRange(1),
              help="Most requests in one POST /v1/decide/batch (413 beyond it).")
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="Log one line per HTTP request (uvicorn's access log).")
@click.option(
    "--http",
    "http_impl",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "h11", "httptools"]),
    help="HTTP parser; auto uses httptools when installed (less CPU per request).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    help="Server log verbosity.",
)
def serve_cmd(
    paths: tuple[str, ...],
    packs: tuple[str, ...],
    host: str,
    port: int,
    watch: bool,
    workers: int,
    audit_url: str | None,
    detect: bool,
    max_body: int,
    max_batch: int,
    access_log: bool,
    http_impl: str,
    log_level: str,
) -> None:
    """Serve decisions over HTTP: POST /v1/decide, /v1/decide/batch, GET /v1/policy, /metrics …

    \b
    Examples:
      cxpolicy serve -p rulesets/bank --pack bfsi_rbi --watch
      CXPOLICY_ADMIN_TOKEN=… cxpolicy serve -p rulesets/bank --audit sqlite:///var/audit.db
      cxpolicy serve -p rulesets/bank --host 0.0.0.0 --workers 2

    The API is at /docs once it runs. Reload and the audit endpoints need
    `Authorization: Bearer $CXPOLICY_ADMIN_TOKEN` and are disabled without it.
    """
    import uvicorn


    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    engine: Engine | None = None
    if workers > 1:
        policy = load_or_exit(paths, packs, detect=detect)  # fail once, here, with diagnostics
    else:
        engine = _engine_or_exit(paths, packs, watch=watch, detect=detect)
        policy = engine.policy
    if audit_url:
        _check_audit(audit_url)
    token = os.environ.get(ENV_ADMIN_TOKEN) or None
    click.echo(
        f"cxpolicy: serving {policy.revision} ({policy.rule_count} rules) on http://{host}:{port}"
        f" with {workers} worker(s); audit {'on: ' + audit_url if audit_url else 'off'}; "
        f"admin endpoints {'enabled' if token else 'disabled (set ' + ENV_ADMIN_TOKEN + ')'}",
        err=True,
    )
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": access_log,
        "server_header": False,
        "proxy_headers": False,
        "http": http_impl,
        "loop": "asyncio" if http_impl == "h11" else "auto",
    }
    if workers > 1:
        os.environ.update(
            {
                ENV_PATHS: os.pathsep.join(os.path.abspath(p) for p in paths),
                ENV_PACKS: ",".join(packs),
                ENV_WATCH: "1" if watch else "",
                ENV_DETECT: "1" if detect else "",
                ENV_AUDIT: audit_url or "",
                ENV_MAX_BODY: str(max_body),
                ENV_MAX_BATCH: str(max_batch),
            }
        )
        _run_workers(workers, options)
        return
    from cxpolicy.audit import open_sink
    from cxpolicy.service.app import create_app

    assert engine is not None
    audit = open_sink(audit_url) if audit_url else None
    app = create_app(
        engine,
        admin_token=token,
        audit=audit,
        max_body=max_body,
        max_batch=max_batch,
        close_on_shutdown=True,
    )
    uvicorn.run(app, **options)


def _run_workers(workers: int, options: dict[str, Any]) -> None:
    """uvicorn's multi-process mode (what `uvicorn.run(..., workers=N)` does), but over a
    listening socket of our own: one created with `proto=IPPROTO_TCP`. uvicorn's own has
    proto 0, so asyncio (before 3.12) does not set TCP_NODELAY on the connections it accepts,
    and each keep-alive response then waits ~40 ms for the client's delayed ACK."""
    import socket

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "cxpolicy.cli.serve:create_app_from_env", factory=True, workers=workers, **options
    )
    family, kind, proto, _, address = socket.getaddrinfo(
        options["host"], options["port"], type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        click.echo(f"cxpolicy serve: cannot bind {options['host']}:{options['port']}: {exc}", err=True)
        sys.exit(1)
    sock.set_inheritable(True)
    # Every worker writes its metrics where the others can read them, so that /metrics, which
    # reaches one worker, reports all of them (cxpolicy.service.metrics.exposition_registry).
    # A fresh directory per start: files left from an earlier run would be counted again.
    own_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        own_dir = tempfile.mkdtemp(prefix="cxpolicy-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_dir
    try:
        Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)


def _engine_or_exit(
    paths: tuple[str, ...], packs: tuple[str, ...], *, watch: bool, detect: bool
) -> Engine:
    from cxpolicy.lang.source import PolicyError
    from cxpolicy.service.reload import Engine

    if not paths and not packs:
        raise click.UsageError("give at least one policy: PATH (or -p PATH) or --pack NAME")
    try:
        return Engine(list(paths), packs=packs, watch=watch, detect=detect)
    except PolicyError as exc:
        click.echo(exc.render(color=use_color()), err=True)
        errors = len([d for d in exc.diagnostics if d.is_error])
        click.echo(f"policy rejected: {errors} error(s)", err=True)
        sys.exit(ExitCode.POLICY_ERROR)


def _check_audit(url: str) -> None:
    """Open and close the audit log once, so a bad URL fails the command, not each worker."""
    from cxpolicy.audit import open_sink

    try:
        open_sink(url).close()
    except Exception as exc:  # bad URL, missing driver, unreachable database, bad file
        click.echo(f"cxpolicy serve: cannot open the audit log {url!r}: {exc}", err=True)
        sys.exit(1)
