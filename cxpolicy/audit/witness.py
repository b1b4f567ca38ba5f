"""Witnesses: the chain head, as committed, written somewhere the database cannot rewrite.

Input: the head (`seq`, `hash`) after each commit. Output: signed sightings, appended to a
file, handed to a command, or posted to a URL; and, at verify time, the check that the
database is not behind (rolled back) nor diverging from anything that was ever witnessed.

Why: the hash chain and the signed head prove a log is *internally* consistent, but an older
copy of the database file is internally consistent too. Restoring one (a rollback) erases
every decision since, and no check inside the file can tell. A witness kept elsewhere
remembers how far the chain had got: `audit verify --witness` fails when the database ends
before the last sighting, or holds a different record at a witnessed position.

Sightings are written *after* the commit, so the witness is never ahead of the database
(a crash between commit and sighting only leaves the witness a little behind). They are
rate-limited (`interval`, default 1 s) because a sighting of seq N vouches for 1..N.
Each carries an HMAC under the audit key, so a forger cannot plant a sighting that makes an
honest log look rolled back without the key.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import subprocess
import threading
import time
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from cxpolicy.audit.records import format_time
from cxpolicy.audit.retention import mac

__all__ = [
    "CommandWitness",
    "FileWitness",
    "Sighting",
    "UrlWitness",
    "Witness",
    "WitnessPublisher",
    "open_witness",
    "read_sightings",
]

log = logging.getLogger("cxpolicy.audit.witness")
_PURPOSE = "witness"


@dataclass(frozen=True, slots=True)
class Sighting:
    """The chain head as it was at `time`: records 1..seq existed, seq's hash was `hash`."""

    seq: int
    hash: str
    time: str
    mac: str | None = None

    def signed_part(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "time": self.time}

    def sign(self, key: bytes | None) -> Sighting:
        if key is None:
            return self
        return Sighting(self.seq, self.hash, self.time, mac(key, _PURPOSE, self.signed_part()))

    def valid(self, key: bytes) -> bool:
        return self.mac is not None and self.mac == mac(key, _PURPOSE, self.signed_part())

    def to_line(self) -> bytes:
        return orjson.dumps({**self.signed_part(), "mac": self.mac}) + b"\n"

    @classmethod
    def from_obj(cls, obj: Any) -> Sighting:
        if not isinstance(obj, dict):
            raise ValueError("a sighting is a JSON object")
        seq, hash_, when = obj.get("seq"), obj.get("hash"), obj.get("time")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise ValueError("sighting seq must be a non-negative integer")
        if not isinstance(hash_, str) or not isinstance(when, str):
            raise ValueError("sighting hash and time must be strings")
        mac_ = obj.get("mac")
        return cls(seq, hash_, when, mac_ if isinstance(mac_, str) else None)


class Witness(ABC):
    """Somewhere outside the database that keeps what it is told."""

    description: str

    @abstractmethod
    def publish(self, sighting: Sighting) -> None:
        """Hand over one sighting; raise on failure (the publisher logs and retries later)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the witness holds."""


class FileWitness(Witness):
    """An append-only file (ideally on another disk, or made append-only with `chattr +a`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.description = f"file {self.path}"

    def publish(self, sighting: Sighting) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, sighting.to_line())
            os.fsync(fd)
        finally:
            os.close(fd)


class CommandWitness(Witness):
    """A command that receives each sighting as one JSON line on stdin (e.g. `logger -t cxpolicy`
    for syslog, or an object-store upload with a retention lock)."""

    def __init__(self, command: str, timeout: float = 5.0) -> None:
        self.argv = shlex.split(command)
        if not self.argv:
            raise ValueError("an empty witness command")
        self.timeout = timeout
        self.description = f"command {self.argv[0]}"

    def publish(self, sighting: Sighting) -> None:
        proc = subprocess.run(
            self.argv, input=sighting.to_line(), capture_output=True, timeout=self.timeout, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(f"witness command exited {proc.returncode}: {proc.stderr[:200]!r}")


class UrlWitness(Witness):
    """An HTTP(S) endpoint that accepts each sighting as a JSON POST (a transparency log)."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"a witness URL is http(s)://..., not {url!r}")
        self.url = url
        self.timeout = timeout
        self.description = f"url {url.split('?', 1)[0]}"

    def publish(self, sighting: Sighting) -> None:
        req = urllib.request.Request(
            self.url, data=sighting.to_line(), headers={"content-type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            if resp.status >= 300:
                raise RuntimeError(f"witness URL answered {resp.status}")


def open_witness(spec: str) -> Witness:
    """`file:PATH` (or a bare path), `cmd:COMMAND`, or an `http(s)://` URL."""
    spec = spec.strip()
    if spec.startswith("cmd:"):
        return CommandWitness(spec[4:])
    if spec.startswith(("http://", "https://")):
        return UrlWitness(spec)
    path = spec[5:] if spec.startswith("file:") else spec
    if not path:
        raise ValueError("empty witness path")
    return FileWitness(path)


def read_sightings(path: str | Path) -> Iterator[Sighting]:
    """Every sighting in a witness file, in the order written; a torn last line (a crash
    mid-write) is skipped, any other bad line raises `ValueError` naming its line number."""
    lines = Path(path).read_bytes().split(b"\n")
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            yield Sighting.from_obj(orjson.loads(raw))
        except (orjson.JSONDecodeError, ValueError) as exc:
            if n == len(lines):  # no newline after it: written halfway when the process died
                return
            raise ValueError(f"{path}:{n}: not a witness sighting ({exc})") from None


class WitnessPublisher:
    """Publishes the committed head at most once per `interval` seconds, and once on close.

    Called from the writer thread right after each commit; never raises into it (a witness
    that is down must not stop decisions), but logs one line per failure and keeps the
    newest unpublished head for the next attempt.
    """

    def __init__(
        self,
        witness: Witness,
        key: bytes | None,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.witness = witness
        self._key = key
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last_at = float("-inf")
        self._published: int | None = None
        self._pending: tuple[int, str] | None = None
        self.failures = 0

    def committed(self, seq: int, hash_: str) -> None:
        with self._lock:
            self._pending = (seq, hash_)
            if self._clock() - self._last_at >= self._interval:
                self._flush()

    def _flush(self) -> None:
        if self._pending is None or self._pending[0] == self._published:
            return
        seq, hash_ = self._pending
        sighting = Sighting(seq, hash_, format_time(datetime.now(UTC))).sign(self._key)
        try:
            self.witness.publish(sighting)
        except Exception as exc:
            self.failures += 1
            log.warning("audit witness %s failed: %s", self.witness.description, exc)
            return
        self._published = seq
        self._last_at = self._clock()

    def close(self) -> None:
        with self._lock:
            self._flush()
        with contextlib.suppress(Exception):
            self.witness.close()
