"""Helpers for the fleet tests: policy texts, keys, a tiny bundle server, a PostgreSQL server."""

from __future__ import annotations

import glob
import hashlib
import http.server
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cxpolicy.fleet.bundle import build, generate_key, load_private_key, load_public_keys, sign

POLICY = """use core
package fleet.test

rule refunds_by_ai {{
  match   action = refund.execute, actor = ai
  unless  context.amount <= {limit}
  decide  escalate to "refunds-desk"
  because "AI refunds above the limit go to a human"
}}

rule statement_ok {{
  match   action = account.statement
  decide  allow
}}

default allow
"""

REQUESTS = [
    {"action": "refund.execute", "channel": "chat", "actor": {"kind": "ai", "id": "agent-1"},
     "customer": {"segment": "retail", "risk_tier": "low", "region": "IN"}, "context": {"amount": amount}}
    for amount in (10, 150, 600, 5000)
] + [
    {"action": "account.statement", "channel": "voice", "actor": {"kind": "human", "id": "agent-2"},
     "customer": {"segment": "retail", "risk_tier": "low", "region": "EU"}},
    {"action": "order.status", "channel": "web", "actor": {"kind": "ai", "id": "agent-3"},
     "customer": {"segment": "guest", "risk_tier": "low", "region": "US"}},
]  # fmt: skip


def write_policy(root: Path, limit: int = 100) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "rules.cxp").write_text(POLICY.format(limit=limit))
    return root


def keypair(tmp: Path, name: str = "k") -> tuple[Path, Path]:
    private, public = generate_key()
    (tmp / f"{name}.pem").write_bytes(private)
    (tmp / f"{name}.pub").write_bytes(public)
    return tmp / f"{name}.pem", tmp / f"{name}.pub"


def signed_bundle(src: Path, private: Path) -> bytes:
    return sign(build([src]), load_private_key(private.read_bytes()))


def public_keys(public: Path) -> list[object]:
    return list(load_public_keys(public.read_bytes()))


def decision_table(decide: object, requests: list[dict[str, object]] = REQUESTS) -> list[tuple[object, ...]]:
    out = []
    for r in requests:
        d = decide(r)  # type: ignore[operator]
        out.append((d.effect.value, tuple(x.rule for x in d.reasons), d.escalate_to, d.policy_revision))
    return out


class BundleServer:
    """Serves `files` (path → bytes) over HTTP with strong ETags and 304 answers."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.gets = 0
        self.not_modified = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.gets += 1
                data = server.files.get(self.path.split("?", 1)[0])
                if data is None:
                    self.send_error(404)
                    return
                etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
                if self.headers.get("If-None-Match") == etag:
                    server.not_modified += 1
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("ETag", etag)
                self.send_header("Content-Type", "application/gzip")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL server on a unix socket (skip when it cannot run here)."""
    pytest.importorskip("psycopg", reason="psycopg not installed")
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    root = tempfile.mkdtemp(prefix="cxp-fleet-pg-")
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run the server")
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root without runuser")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        as_user = [runuser, "-u", "postgres", "--"]
    data, port = os.path.join(root, "data"), free_port()

    def run(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120)

    if run(initdb, "-D", data, "-A", "trust", "-U", "cxp", "--no-sync").returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip("initdb failed")
    options = f"-p {port} -k {root} -c listen_addresses='' -c fsync=off"
    if run(pg_ctl, "-D", data, "-o", options, "-l", os.path.join(root, "log"), "-w", "start").returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip("PostgreSQL did not start")
    try:
        yield f"postgresql://cxp@/postgres?host={root}&port={port}"
    finally:
        run(pg_ctl, "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)
