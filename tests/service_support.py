"""Shared helpers for the reload and service tests (no tests here).

A real uvicorn server on an ephemeral 127.0.0.1 port, run in a thread and stopped cleanly;
versioned policy texts whose decisions say which version made them; bounded waits.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from cxpolicy.engine.loader import load

VOCAB = """use core
cite TEST_CITE = "Test policy: every refund by an AI is approved by a person"
"""

REQUEST: dict[str, Any] = {
    "action": "refund.execute",
    "channel": "chat",
    "actor": {"kind": "ai", "id": "agent-1"},
    "customer": {"id": "C-1", "segment": "retail", "risk_tier": "low", "region": "IN"},
    "data_classes": [],
    "context": {"amount": 100},
}


def rules_v(version: int) -> str:
    """A valid policy whose refund decision names its version (queue and because)."""
    return f"""package svc
default allow

rule refunds {{
  match action = refund.execute, actor = ai
  decide escalate to "desk-{version}"
  because "version {version}"
  cite TEST_CITE
}}

rule status {{
  match action = order.status
  decide allow
  because "status lookups are harmless"
}}
"""


BAD_RULES = [
    # a syntax error
    "package svc\nrule refunds {\n  match action = refund.execute\n  decid escalate\n}\n",
    # a value the vocabulary does not declare (did-you-mean)
    "package svc\nrule refunds {\n  match action = refund.executed\n  decide escalate\n}\n",
    # a dimension that does not exist
    "package svc\nrule refunds {\n  match colour = red\n  decide escalate\n}\n",
]


def write_atomic(path: Path, text: str) -> None:
    """Replace a file the way editors, `git checkout` and ConfigMaps do: write, then rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def policy_dir(root: Path, version: int = 1, name: str = "policy") -> Path:
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "vocab.cxp").write_text(VOCAB)
    (d / "rules.cxp").write_text(rules_v(version))
    return d


def revision_of(root: Path, rules: str) -> str:
    """The revision a policy dir holding `rules` compiles to (revisions ignore location)."""
    d = root / f"rev-{abs(hash(rules))}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "vocab.cxp").write_text(VOCAB)
    (d / "rules.cxp").write_text(rules)
    return load([d]).revision


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll until `predicate()` is truthy (returning it), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


@contextmanager
def running_server(app: Any, **config: Any) -> Iterator[str]:
    """Serve `app` with a real uvicorn on 127.0.0.1:<ephemeral>; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this; without it a pre-bound socket handed to uvicorn answers
    # each request ~40 ms late (Nagle's algorithm meets the client's delayed ACK).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    options: dict[str, Any] = {"log_level": "warning", "access_log": False, "lifespan": "on"}
    options.update(config)
    server = uvicorn.Server(uvicorn.Config(app, **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), timeout=15)
        if not server.started:
            raise RuntimeError("uvicorn did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not shut down"
