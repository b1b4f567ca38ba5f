"""kill -9 of a serving process with the audit log and its witness on: every decision that
was answered is in the log, the witness is not ahead of it, and verify passes after restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from cxpolicy.audit import open_sink
from cxpolicy.audit.witness import read_sightings
from tests.service_support import REQUEST, policy_dir, wait_for


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_kill_9_under_load_loses_no_answered_decision(tmp_path: Path) -> None:
    d = policy_dir(tmp_path)
    port = _port()
    db = tmp_path / "audit.db"
    env = {k: v for k, v in os.environ.items() if k != "CXPOLICY_AUDIT_KEY"}
    env["CXPOLICY_AUDIT_WITNESS"] = f"file:{tmp_path / 'audit.witness'}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cxpolicy", "serve", "-p", str(d), "--port", str(port), "--audit", f"sqlite:///{db}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    answered: list[str] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=5) as http:
            while not stop.is_set():
                try:
                    r = http.post(f"{url}/v1/decide", json=REQUEST)
                except httpx.HTTPError:
                    return  # the server is gone
                if r.status_code == 200:
                    answered.append(r.json()["decision_id"])

    try:

        def ready() -> bool:
            try:
                return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=30, interval=0.1)
        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        wait_for(lambda: len(answered) >= 150, timeout=30, interval=0.05)
        time.sleep(1.2)  # at least one more witness interval under load
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    for t in threads:
        t.join(timeout=10)

    sightings = list(read_sightings(tmp_path / "audit.witness"))
    with open_sink(f"sqlite:///{db}") as sink:  # the restart: key from the file beside it
        result = sink.verify(witness=sightings)
        assert result.ok, result.problem
        stored = {r.decision_id for r in sink.query(kind="decision")}
    assert sightings and max(s.seq for s in sightings) <= (result.last_seq or 0)
    missing = set(answered) - stored
    assert not missing, f"{len(missing)} answered decisions are not in the log"
