"""`cxpolicy serve`: run the decision service (docs/service.md) under uvicorn.

Input: policy paths, packs and settings (options or environment). Output: a running service.

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
from cxpolicy.cli.options import (
    detect_option,
    grant_key_options,
    grant_keys_or_exit,
    load_or_exit,
    policy_options,
    use_color,
)
from cxpolicy.fleet.config import FleetOptions, fleet_options
from cxpolicy.limits import SERVICE_MAX_BATCH, SERVICE_MAX_BODY

if TYPE_CHECKING:
    from cxpolicy.grants.tokens import GrantKeys
    from cxpolicy.service.reload import Engine

__all__ = ["create_app_from_env", "serve_cmd"]

ENV_PATHS = "CXPOLICY_PATHS"
ENV_PACKS = "CXPOLICY_PACKS"
ENV_WATCH = "CXPOLICY_WATCH"
ENV_DETECT = "CXPOLICY_DETECT"
ENV_AUDIT = "CXPOLICY_AUDIT"
ENV_AUDIT_WITNESS = "CXPOLICY_AUDIT_WITNESS"
ENV_SLA = "CXPOLICY_SLA"
ENV_SHADOW = "CXPOLICY_SHADOW"
ENV_SHADOW_LOG = "CXPOLICY_SHADOW_LOG"
ENV_MAX_BODY = "CXPOLICY_MAX_BODY"
ENV_MAX_BATCH = "CXPOLICY_MAX_BATCH"
ENV_ADMIN_TOKEN = "CXPOLICY_ADMIN_TOKEN"
ENV_GRANT_KEY_FILES = "CXPOLICY_GRANT_KEY_FILES"  # the workers' copy of --grant-key-file
ENV_GRANT_PUBLIC_KEYS = "CXPOLICY_GRANT_PUBLIC_KEYS"


def create_app_from_env() -> object:
    """The app factory for uvicorn workers (`uvicorn --factory`): configuration from env."""
    from cxpolicy.service.app import DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY, create_app, flag
    from cxpolicy.service.reload import Engine

    env = os.environ
    paths = [p for p in env.get(ENV_PATHS, "").split(os.pathsep) if p]
    packs = [p for p in env.get(ENV_PACKS, "").split(",") if p]
    fleet_cfg = FleetOptions.from_env(env)
    grant_keys = grant_keys_or_exit(
        [p for p in env.get(ENV_GRANT_KEY_FILES, "").split(os.pathsep) if p],
        [p for p in env.get(ENV_GRANT_PUBLIC_KEYS, "").split(os.pathsep) if p],
    )
    engine = fleet_cfg.engine(detect=flag(env.get(ENV_DETECT)), grant_keys=grant_keys) or Engine(
        paths,
        packs=packs,
        watch=flag(env.get(ENV_WATCH)),
        detect=flag(env.get(ENV_DETECT)),
        grant_keys=grant_keys,
    )
    audit = None
    if env.get(ENV_AUDIT):
        from cxpolicy.audit import open_service_sink

        audit = open_service_sink(env[ENV_AUDIT])
    shadow_paths = [p for p in env.get(ENV_SHADOW, "").split(os.pathsep) if p]
    callers = subject = None
    if env.get("CXPOLICY_CALLERS"):
        from pathlib import Path

        from cxpolicy.service.callers_config import load_callers

        callers, subject = load_callers(Path(env["CXPOLICY_CALLERS"]))
    return create_app(
        engine,
        callers=callers,
        subject=subject,
        admin_token=env.get(ENV_ADMIN_TOKEN) or None,
        audit=audit,
        max_body=int(env.get(ENV_MAX_BODY) or DEFAULT_MAX_BODY),
        max_batch=int(env.get(ENV_MAX_BATCH) or DEFAULT_MAX_BATCH),
        close_on_shutdown=True,
        shadow=make_shadow(shadow_paths, packs, engine, env.get(ENV_SHADOW_LOG) or "", audit)
        if shadow_paths
        else None,
        fleet=fleet_cfg.fleet(),
    )


def make_shadow(paths: list[str], packs: list[str] | tuple[str, ...], live: Any, log: str, audit: Any) -> Any:
    """The candidate revision, decided beside `live` on every request (`--shadow`): the same
    packs and detection as the live one, hot-reloaded when the live one is."""
    from cxpolicy.service.reload import Engine
    from cxpolicy.service.shadow import Shadow

    candidate = Engine(paths, packs=packs, watch=live.watching, detect=live.detect)
    subkey = getattr(audit, "subkey", None)
    return Shadow(candidate, log, key=subkey("shadow") if subkey else None)


def default_shadow_log(audit_url: str | None) -> str:
    """`<db>.shadow.jsonl` beside a SQLite audit log, else `var/shadow.jsonl`."""
    if audit_url:
        from cxpolicy.audit import key_file_for

        key_file = key_file_for(audit_url)
        if key_file is not None:
            return str(key_file.with_suffix(".shadow.jsonl"))
    return os.path.join("var", "shadow.jsonl")


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
    help="Record every decision before answering it, e.g. sqlite:///var/audit.db. Keyed by "
    "default: without CXPOLICY_AUDIT_KEY a key file <db>.key (mode 0600) is made beside it.",
)
@click.option(
    "--audit-witness",
    "audit_witness",
    metavar="SPEC",
    envvar=ENV_AUDIT_WITNESS,
    help="Where signed chain heads go, to prove a rollback later: file:PATH, cmd:COMMAND or "
    "an http(s) URL; 'none' for no witness. Default: <db>.witness beside a SQLite log.",
)
@click.option(
    "--sla",
    "slas",
    multiple=True,
    metavar="QUEUE=DURATION",
    help="Time to resolve an escalation in QUEUE (repeatable; `default=` for the rest), "
    "e.g. --sla fraud-desk=30m --sla default=2h. Default: 4h everywhere.",
)
@click.option(
    "--shadow",
    "shadow_paths",
    multiple=True,
    metavar="PATH",
    type=click.Path(exists=True),
    help="A candidate revision (files or directories, repeatable): decide every request with "
    "it too, answer with the live one, log every difference (see `cxpolicy shadow report`).",
)
@click.option(
    "--shadow-log",
    metavar="FILE",
    help="Where the differences go (default: <db>.shadow.jsonl beside a SQLite audit log, "
    "else var/shadow.jsonl).",
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
@click.option("--callers", "callers_file", envvar="CXPOLICY_CALLERS", metavar="FILE",
              type=click.Path(exists=True, dir_okay=False),
              help="Callers file (`cxpolicy callers`): per-caller keys, roles, bound fields, subject tokens.")
@click.option("--ssl-certfile", metavar="PEM", help="Serve HTTPS with this certificate.")
@click.option("--ssl-keyfile", metavar="PEM", help="The certificate's private key.")
@click.option("--ssl-ca-certs", metavar="PEM", help="Ask clients for certificates from this CA (mTLS callers).")
@click.option("--max-connections", default=1024, show_default=True, type=click.IntRange(1),
              help="Open connections at most; more are refused.")
@click.option("--header-timeout", default=5.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds a client has to send its request headers.")
@click.option("--body-timeout", default=10.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds a client has to send its request body.")
@click.option("--cpu-budget", default=2.0, show_default=True, type=click.FloatRange(0.01),
              help="CPU seconds one batch may spend; later items escalate with a limit error.")
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    help="Server log verbosity.",
)
@fleet_options
@grant_key_options
def serve_cmd(
    paths: tuple[str, ...],
    packs: tuple[str, ...],
    host: str,
    port: int,
    watch: bool,
    workers: int,
    audit_url: str | None,
    audit_witness: str | None,
    slas: tuple[str, ...],
    shadow_paths: tuple[str, ...],
    shadow_log: str | None,
    detect: bool,
    max_body: int,
    max_batch: int,
    access_log: bool,
    http_impl: str,
    callers_file: str | None,
    ssl_certfile: str | None,
    ssl_keyfile: str | None,
    ssl_ca_certs: str | None,
    max_connections: int,
    header_timeout: float,
    body_timeout: float,
    cpu_budget: float,
    log_level: str,
    grant_key_files: tuple[str, ...],
    grant_public_keys: tuple[str, ...],
    **fleet_opts: Any,
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
    keys = grant_keys_or_exit(grant_key_files, grant_public_keys)
    fleet_cfg = FleetOptions.from_options(fleet_opts)
    if fleet_cfg.bundle:
        engine = _bundle_engine_or_exit(fleet_cfg, detect=detect, grant_keys=keys)
        policy = engine.policy
        if workers > 1:  # checked once here; every worker loads it on its own
            engine.close()
            engine = None
    elif workers > 1:
        policy = load_or_exit(paths, packs, detect=detect)  # fail once, here, with diagnostics
    else:
        engine = _engine_or_exit(paths, packs, watch=watch, detect=detect, grant_keys=keys)
        policy = engine.policy
    if slas:
        from cxpolicy.audit import SlaPolicy

        try:
            SlaPolicy.parse(slas)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--sla") from None
        os.environ[ENV_SLA] = ",".join(slas)  # workers and the sink read it from here
    if shadow_paths:  # a candidate that does not compile fails here, with its diagnostics
        load_or_exit(shadow_paths, packs, detect=detect)
    if audit_url:
        _check_audit(audit_url, audit_witness)
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
    from cxpolicy.service.guard import ConnectionLimits, server_options

    limits = ConnectionLimits(
        header_timeout=header_timeout, body_timeout=body_timeout, max_connections=max_connections
    )
    options.update(server_options(limits, http_impl))
    if ssl_certfile:
        import ssl

        options.update({"ssl_certfile": ssl_certfile, "ssl_keyfile": ssl_keyfile})
        if ssl_ca_certs:  # optional: a caller may still use an API key instead
            options.update({"ssl_ca_certs": ssl_ca_certs, "ssl_cert_reqs": ssl.CERT_OPTIONAL})
    callers = subject = None
    if callers_file:
        from pathlib import Path

        from cxpolicy.service.callers_config import CallersConfigError, load_callers

        try:
            callers, subject = load_callers(Path(callers_file))
        except (CallersConfigError, ValueError, OSError) as exc:
            click.echo(f"cxpolicy serve: {exc}", err=True)
            sys.exit(ExitCode.USAGE)
    if workers > 1:
        # Workers import their protocol by name: the default connection limits there.
        options["http"] = "cxpolicy.service.guard:" + (
            "GuardedH11Protocol" if http_impl == "h11" else "GuardedAutoProtocol"
        )
        if callers_file:
            os.environ["CXPOLICY_CALLERS"] = os.path.abspath(callers_file)
        os.environ.update(
            {
                ENV_PATHS: os.pathsep.join(os.path.abspath(p) for p in paths),
                ENV_PACKS: ",".join(packs),
                ENV_WATCH: "1" if watch else "",
                ENV_DETECT: "1" if detect else "",
                ENV_AUDIT: audit_url or "",
                ENV_SHADOW: os.pathsep.join(os.path.abspath(p) for p in shadow_paths),
                ENV_SHADOW_LOG: shadow_log or default_shadow_log(audit_url),
                ENV_AUDIT_WITNESS: audit_witness or "",
                ENV_MAX_BODY: str(max_body),
                ENV_MAX_BATCH: str(max_batch),
                **fleet_cfg.to_env(),
                ENV_GRANT_KEY_FILES: os.pathsep.join(grant_key_files),
                ENV_GRANT_PUBLIC_KEYS: os.pathsep.join(grant_public_keys),
            }
        )
        _run_workers(workers, options)
        return
    from cxpolicy.audit import open_service_sink
    from cxpolicy.service.app import create_app

    assert engine is not None
    audit = open_service_sink(audit_url, witness=audit_witness) if audit_url else None
    shadow = None
    if shadow_paths:
        shadow = make_shadow(list(shadow_paths), packs, engine, shadow_log or default_shadow_log(audit_url), audit)
        click.echo(f"cxpolicy: shadowing with {shadow.candidate.revision}; differences to {shadow.path}", err=True)
    app = create_app(
        engine,
        admin_token=token,
        audit=audit,
        max_body=max_body,
        max_batch=max_batch,
        close_on_shutdown=True,
        shadow=shadow,
        callers=callers,
        subject=subject,
        cpu_budget=cpu_budget,
        fleet=fleet_cfg.fleet(),
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
    paths: tuple[str, ...],
    packs: tuple[str, ...],
    *,
    watch: bool,
    detect: bool,
    grant_keys: GrantKeys | None = None,
) -> Engine:
    from cxpolicy.lang.source import PolicyError
    from cxpolicy.service.reload import Engine

    if not paths and not packs:
        raise click.UsageError("give at least one policy: PATH (or -p PATH) or --pack NAME")
    try:
        return Engine(list(paths), packs=packs, watch=watch, detect=detect, grant_keys=grant_keys)
    except PolicyError as exc:
        click.echo(exc.render(color=use_color()), err=True)
        errors = len([d for d in exc.diagnostics if d.is_error])
        click.echo(f"policy rejected: {errors} error(s)", err=True)
        sys.exit(ExitCode.POLICY_ERROR)


def _bundle_engine_or_exit(cfg: FleetOptions, *, detect: bool, grant_keys: Any = None) -> Engine:
    from cxpolicy.fleet.bundle import BundleError
    from cxpolicy.lang.source import PolicyError

    try:
        engine = cfg.engine(detect=detect, grant_keys=grant_keys)
    except PolicyError as exc:
        click.echo(exc.render(color=use_color()), err=True)
        sys.exit(ExitCode.POLICY_ERROR)
    except (BundleError, OSError, ValueError) as exc:  # refused, unreachable, a bad key file
        click.echo(f"cxpolicy serve: cannot serve the bundle {cfg.bundle!r}: {exc}", err=True)
        sys.exit(1)
    assert engine is not None
    return engine


def _check_audit(url: str, witness: str | None) -> None:
    """Open and close the audit log once, so a bad URL (or a PostgreSQL log without a key)
    fails the command, not each worker; this also makes the key file on first start."""
    from cxpolicy.audit import open_service_sink

    try:
        open_service_sink(url, witness=witness).close()
    except Exception as exc:  # bad URL, missing driver, unreachable database, bad file
        click.echo(f"cxpolicy serve: cannot open the audit log {url!r}: {exc}", err=True)
        sys.exit(1)
