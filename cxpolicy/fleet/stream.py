"""Decision logs out of the process: decisions in, messages on a distributed log out.

Input: every (request, decision) a replica makes. Output: one message per decision on a
NATS JetStream subject (tested against a real `nats-server`) or a Kafka topic (same
interface, not tested against a broker), each carrying its decision id as the message id.

Why it is shaped this way:

- **A disk spool between the decide path and the broker.** `emit` appends one line to a
  spool file (one `write` under a lock; nothing waits for the network), and a sender thread
  publishes from the spool, advancing a saved offset only after the broker acknowledged. A
  broker outage therefore loses nothing: the spool grows until the broker is back, then
  drains in order. The spool is compacted (truncated) whenever the sender has caught up.
- **Exactly once by decision id.** A message that was stored but whose acknowledgement was
  lost (the broker died at that moment) is sent again after the restart; JetStream drops it
  because its `Nats-Msg-Id` (the decision id) is within the stream's duplicate window, and
  Kafka's idempotent producer does the same within a session. A consumer can also dedupe on
  the id, which every message carries.
- **No customer data in the spool.** A message holds the decision (effect, reasons, queues,
  errors, revision — no trace) and the request's routing fields only (action, channel,
  actor kind and id, customer region and segment); the masked request is the audit log's job.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from cxpolicy.engine.decision import Decision

__all__ = ["DecisionStream", "KafkaPublisher", "NatsPublisher", "Publisher", "message_for", "open_stream"]

log = logging.getLogger("cxpolicy.fleet.stream")

COMPACT_BYTES = 1 << 20  # truncate the spool when caught up and at least this big


def message_for(request: Any, decision: Decision) -> tuple[str, bytes]:
    """(message id, payload) for one decision."""
    routing: dict[str, Any] = {}
    if isinstance(request, Mapping):
        for k in ("action", "channel"):
            if isinstance(request.get(k), str):
                routing[k] = request[k]
        actor, customer = request.get("actor"), request.get("customer")
        if isinstance(actor, Mapping):
            routing["actor"] = {k: actor[k] for k in ("kind", "id") if isinstance(actor.get(k), str)}
        if isinstance(customer, Mapping):
            routing["customer"] = {k: customer[k] for k in ("region", "segment") if isinstance(customer.get(k), str)}
    body = {"decision": decision.to_dict(include_trace=False), "request": routing, "at": time.time()}
    return decision.decision_id, orjson.dumps(body)


class Publisher(ABC):
    """A broker connection: publish messages, return once each is acknowledged (or raise)."""

    @abstractmethod
    def publish(self, messages: Sequence[tuple[str, bytes]]) -> int:
        """Publish in order; return how many leading messages were acknowledged (all on
        success). Raise nothing: a failure returns fewer and the rest is retried."""

    def close(self) -> None:
        return None


class NatsPublisher(Publisher):
    """NATS JetStream (nats-py): creates the stream if needed, publishes with `Nats-Msg-Id`."""

    def __init__(self, url: str, subject: str, stream: str, *, duplicate_window: float = 600.0) -> None:
        self.url, self.subject, self.stream = url, subject, stream
        self.duplicate_window = duplicate_window
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="cxpolicy-nats", daemon=True)
        self._thread.start()
        self._nc: Any = None
        self._js: Any = None

    def _run(self, coro: Any, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _connect(self) -> None:
        import nats
        from nats.js.api import StorageType, StreamConfig

        if self._nc is not None and self._nc.is_connected:
            return
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
        self._nc = await nats.connect(
            self.url, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0
        )
        self._js = self._nc.jetstream(timeout=5)
        config = StreamConfig(
            name=self.stream, subjects=[self.subject], storage=StorageType.FILE,
            duplicate_window=self.duplicate_window,
        )  # fmt: skip
        try:
            await self._js.stream_info(self.stream)
        except Exception:
            await self._js.add_stream(config)

    async def _publish(self, messages: Sequence[tuple[str, bytes]]) -> int:
        await self._connect()
        done = 0
        for msg_id, payload in messages:
            await self._js.publish(self.subject, payload, timeout=5, headers={"Nats-Msg-Id": msg_id})
            done += 1
        return done

    def publish(self, messages: Sequence[tuple[str, bytes]]) -> int:
        done = 0
        for start in range(0, len(messages), 64):
            chunk = messages[start : start + 64]
            try:
                done += self._run(self._publish(chunk), 30)
            except Exception as exc:  # the broker is away: the caller retries from `done`
                log.warning("stream publish to %s failed after %d: %s", self.url, done, exc)
                self._nc_broken()
                return done
        return done

    def _nc_broken(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None:
            with contextlib.suppress(Exception):
                self._run(nc.close(), 5)

    def close(self) -> None:
        self._nc_broken()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


class KafkaPublisher(Publisher):
    """Kafka via confluent-kafka with the idempotent producer; key = decision id.

    Not tested against a broker (Debian ships none): see docs/operations.md.
    """

    def __init__(self, bootstrap: str, topic: str) -> None:
        from confluent_kafka import Producer  # type: ignore[import-not-found]

        self.topic = topic
        self._producer = Producer(
            {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5}
        )

    def publish(self, messages: Sequence[tuple[str, bytes]]) -> int:
        failed: list[int] = []
        for i, (msg_id, payload) in enumerate(messages):

            def report(err: Any, _msg: Any, i: int = i) -> None:
                if err is not None:
                    failed.append(i)

            try:
                self._producer.produce(self.topic, payload, key=msg_id.encode(), on_delivery=report)
            except Exception as exc:
                log.warning("kafka produce failed: %s", exc)
                self._producer.flush(10)
                return min([i, *failed])
        remaining = self._producer.flush(30)
        if remaining or failed:
            return min(failed) if failed else 0
        return len(messages)


def _claim(root: Path) -> tuple[Path, int]:
    """The first spool slot under `root` no other live process holds (`root/0`, `root/1`, …).

    Each worker process needs a spool of its own; a slot is held by an exclusive lock on its
    `lock` file for the life of the process, so a restarted replica takes its slot back and
    sends what the previous process left unsent.
    """
    for n in range(1024):
        slot = root / str(n)
        slot.mkdir(parents=True, exist_ok=True)
        fd = os.open(slot / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        return slot, fd
    raise RuntimeError(f"no free spool slot under {root}")


class DecisionStream:
    """Spool decisions to disk and publish them from a background thread.

    `spool_dir` is a root shared by the workers of a replica; each process claims a slot.
    """

    def __init__(self, publisher: Publisher, spool_dir: str | os.PathLike[str], *, batch: int = 512) -> None:
        self.publisher = publisher
        self.batch = batch
        root, self._lock_fd = _claim(Path(spool_dir))
        self.spool = root
        self._path = root / "decisions.spool"
        self._offset_path = root / "decisions.offset"
        self._lock = threading.Lock()
        self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._offset = self._load_offset()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.published = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="cxpolicy-stream", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ writing
    def emit(self, request: Any, decision: Decision) -> None:
        """Spool one decision (never raises: a full disk is logged, the decision still answers)."""
        try:
            msg_id, payload = message_for(request, decision)
            line = msg_id.encode() + b" " + payload + b"\n"
            with self._lock:
                os.write(self._fd, line)
        except Exception:
            log.exception("decision %s could not be spooled", getattr(decision, "decision_id", "?"))
            return
        self._wake.set()

    @property
    def pending_bytes(self) -> int:
        with self._lock:
            return max(0, os.fstat(self._fd).st_size - self._offset)

    # ------------------------------------------------------------------ sending
    def _load_offset(self) -> int:
        try:
            return int(self._offset_path.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _save_offset(self, offset: int) -> None:
        tmp = self._offset_path.with_suffix(".tmp")
        tmp.write_text(str(offset))
        os.replace(tmp, self._offset_path)
        self._offset = offset

    def _read_batch(self) -> tuple[list[tuple[str, bytes]], list[int]]:
        """Up to `batch` whole lines after the offset, with the offset after each."""
        with open(self._path, "rb") as fh:
            fh.seek(self._offset)
            data = fh.read(8 << 20)
        messages: list[tuple[str, bytes]] = []
        ends: list[int] = []
        pos = 0
        while len(messages) < self.batch:
            nl = data.find(b"\n", pos)
            if nl < 0:
                break  # a line being written: next round
            line = data[pos:nl]
            msg_id, _, payload = line.partition(b" ")
            messages.append((msg_id.decode(), payload))
            pos = nl + 1
            ends.append(self._offset + pos)
        return messages, ends

    def _compact(self) -> None:
        with self._lock:
            size = os.fstat(self._fd).st_size
            if size == self._offset and size >= COMPACT_BYTES:
                os.ftruncate(self._fd, 0)
                self._save_offset(0)

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            messages, ends = self._read_batch()
            if not messages:
                self._compact()
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            done = self.publisher.publish(messages)
            if done:
                self._save_offset(ends[done - 1])
                self.published += done
                backoff = 0.1
            if done < len(messages):
                self.failures += 1
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def flush(self, timeout: float) -> bool:
        """Wait until everything spooled so far is published (True) or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while self.pending_bytes:
            if time.monotonic() > deadline:
                return False
            self._wake.set()
            time.sleep(0.02)
        return True

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)
        self.publisher.close()
        os.close(self._fd)
        os.close(self._lock_fd)  # releases the slot

    def status(self) -> dict[str, Any]:
        return {"published": self.published, "pending_bytes": self.pending_bytes, "failures": self.failures}


def open_stream(url: str, spool_dir: str) -> DecisionStream:
    """`nats://host:4222/SUBJECT?stream=NAME` or `kafka://host:9092/TOPIC` → a DecisionStream."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    target = parts.path.lstrip("/")
    if not target:
        raise ValueError("the stream URL names a subject or topic: nats://host:4222/cxpolicy.decisions")
    publisher: Publisher
    if parts.scheme == "nats":
        name = query.get("stream", "CXPOLICY_DECISIONS")
        publisher = NatsPublisher(f"nats://{parts.netloc}", target, name)
    elif parts.scheme == "kafka":
        publisher = KafkaPublisher(parts.netloc, target)
    else:
        raise ValueError(f"unknown stream scheme {parts.scheme!r}: use nats:// or kafka://")
    return DecisionStream(publisher, spool_dir)
