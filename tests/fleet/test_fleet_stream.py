"""The decision stream against a real NATS JetStream server (Debian's `nats-server`): the
broker is killed mid-stream and restarted, and every decision arrives exactly once by id.
Skipped where nats-server or nats-py is missing (CI installs both)."""

from __future__ import annotations

import asyncio
import collections
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet_support import REQUESTS, free_port, write_policy
from service_support import wait_for

from cxpolicy.engine.loader import load
from cxpolicy.fleet.stream import DecisionStream, NatsPublisher, open_stream

pytest.importorskip("nats", reason="nats-py not installed")
NATS = shutil.which("nats-server") or ("/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None)
pytestmark = pytest.mark.skipif(NATS is None, reason="no nats-server on this machine")


class Broker:
    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.store = root / "js"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "nats.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert NATS is not None
        cmd = [NATS, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store)]
        with open(self.log, "ab") as log:  # kept for the failure message
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        import socket

        def up() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.explain()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                return False

        wait_for(up, timeout=20)

    def explain(self) -> str:
        code = self.proc.poll() if self.proc is not None else "not running"
        return f"nats-server exit {code}; log tail:\n{self.log.read_text(errors='replace')[-2000:]}"

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no goodbye to the clients
        self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    b.start()
    yield b
    if b.proc is not None:
        b.proc.terminate()
        b.proc.wait(timeout=10)


async def _read_all(url: str, stream: str, subject: str) -> list[str]:
    import nats

    nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=20, reconnect_time_wait=0.25)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        sub = await js.pull_subscribe(subject, durable=None, stream=stream)
        ids: list[str] = []
        while len(ids) < info.state.messages:
            for msg in await sub.fetch(min(500, info.state.messages - len(ids)), timeout=5):
                ids.append(msg.headers["Nats-Msg-Id"] if msg.headers else "")
                await msg.ack()
        return ids
    finally:
        await nc.close()


def test_every_decision_arrives_exactly_once_across_a_broker_crash(tmp_path: Path, broker: Broker) -> None:
    policy = load([write_policy(tmp_path / "p")])
    stream = DecisionStream(NatsPublisher(broker.url, "cxp.decisions", "CXP"), tmp_path / "spool", batch=100)
    sent: list[str] = []
    try:
        def burst(n: int) -> None:
            for i in range(n):
                d = policy.decide(REQUESTS[i % len(REQUESTS)])
                stream.emit(REQUESTS[i % len(REQUESTS)], d)
                sent.append(d.decision_id)
                if i % 50 == 0:
                    time.sleep(0.002)  # a stream, not one burst: the kill lands mid-flight

        burst(1500)
        broker.kill()  # mid-stream: some published, some in flight, the rest spooled
        burst(1000)  # the service keeps deciding; the spool holds them
        assert stream.pending_bytes > 0
        # The sender must meet the outage before the broker comes back (else this run proves
        # nothing about recovery): wait, bounded, until a publish has failed.
        deadline = time.monotonic() + 30
        while stream.failures < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stream.failures >= 1, stream.status()
        broker.start()  # same store directory: the stream and its dedup window survive
        burst(500)
        assert stream.flush(60), (stream.status(), broker.explain())
    finally:
        stream.close()
    assert broker.proc is not None and broker.proc.poll() is None, broker.explain()
    ids = asyncio.run(_read_all(broker.url, "CXP", "cxp.decisions"))
    counts = collections.Counter(ids)
    assert len(sent) == 3000 and len(set(sent)) == 3000
    assert set(counts) == set(sent)  # nothing lost
    assert max(counts.values()) == 1  # nothing twice
    assert stream.failures >= 1  # the outage really happened to the sender


def test_a_restarted_sender_resends_from_its_offset_and_the_broker_dedupes(tmp_path: Path, broker: Broker) -> None:
    """Crash between publish and saving the offset: the same ids go again, JetStream drops them."""
    policy = load([write_policy(tmp_path / "p")])
    spool = tmp_path / "spool"
    first = DecisionStream(NatsPublisher(broker.url, "cxp.d2", "CXP2"), spool)
    decisions = [policy.decide(r) for r in REQUESTS * 20]
    for r, d in zip(REQUESTS * 20, decisions, strict=True):
        first.emit(r, d)
    assert first.flush(30)
    first.close()
    (first.spool / "decisions.offset").write_text("0")  # as if the offset had never been saved
    second = open_stream(f"{broker.url}/cxp.d2?stream=CXP2", str(spool))
    try:
        assert second.spool == first.spool  # the slot the first process released
        assert second.flush(30)
        assert second.published == len(decisions)  # it did send them all again...
    finally:
        second.close()
    ids = asyncio.run(_read_all(broker.url, "CXP2", "cxp.d2"))
    assert sorted(ids) == sorted(d.decision_id for d in decisions)  # ...and each is there once


def test_stream_urls() -> None:
    with pytest.raises(ValueError, match="subject"):
        open_stream("nats://127.0.0.1:4222", "/tmp/x")
    with pytest.raises(ValueError, match="scheme"):
        open_stream("amqp://h/q", "/tmp/x")


def test_each_process_claims_its_own_spool_slot(tmp_path: Path) -> None:
    import os

    from cxpolicy.fleet.stream import _claim

    a, fa = _claim(tmp_path)
    b, fb = _claim(tmp_path)  # another open file description: the lock is held, so slot 1
    assert a != b and {a.name, b.name} == {"0", "1"}
    os.close(fa)
    c, fc = _claim(tmp_path)
    assert c == a  # released: taken back (a restarted replica resumes its spool)
    os.close(fb)
    os.close(fc)


def test_the_service_streams_what_it_answered(tmp_path: Path, broker: Broker) -> None:
    import httpx
    from service_support import running_server

    from cxpolicy.fleet.service import Fleet
    from cxpolicy.service.app import create_app
    from cxpolicy.service.reload import Engine

    stream = open_stream(f"{broker.url}/cxp.svc?stream=SVC", str(tmp_path / "spool"))
    app = create_app(Engine([write_policy(tmp_path / "p")]), fleet=Fleet(replica="r", stream=stream))
    with running_server(app) as url:
        one = httpx.post(f"{url}/v1/decide", json=REQUESTS[0]).json()["decision_id"]
        many = [d["decision_id"] for d in httpx.post(f"{url}/v1/decide/batch", json=REQUESTS).json()]
        assert httpx.post(f"{url}/v1/decide", content=b"{not json").status_code == 400  # no decision: nothing
        assert stream.flush(30)
    stream.close()
    ids = asyncio.run(_read_all(broker.url, "SVC", "cxp.svc"))
    assert sorted(ids) == sorted([one, *many])
