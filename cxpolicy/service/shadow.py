"""Shadow revisions: decide live traffic with a candidate policy too, answer with the live one.

Input: each request the service decided, with the live decision. Output: a JSON-lines log
with one line per request whose candidate outcome differs (effect, queues, masking,
validity) — the live and candidate outcomes, the rules each matched, the request's region
(action, channel, region, actor kind), its keyed digest and its masked form — plus tally
lines counting every request seen. `cxpolicy shadow report` summarises the log the way
`diff --requests` summarises a replay, so an author sees what promoting the candidate would
change on real traffic before it bites.

Why off the request path: the answer must never wait for, or change because of, the
candidate. Requests go through a bounded queue to one worker thread; when the queue is full
the request is counted as dropped (and the report says so) rather than slowing the service.
The worker catches everything: a candidate that fails on some request is a logged line
(`candidate_error`), never an error for the caller.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from cxpolicy.engine.decision import Decision

__all__ = ["Shadow", "ShadowStats"]

log = logging.getLogger("cxpolicy.service.shadow")
TALLY_EVERY = 500


@dataclass(slots=True)
class ShadowStats:
    seen: int = 0
    differed: int = 0
    dropped: int = 0
    failed: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)


class Shadow:
    """Decides every request also with `candidate` (an `Engine`), in the background."""

    def __init__(
        self,
        candidate: Any,
        log_path: str | Path,
        *,
        key: bytes | None = None,
        max_queue: int = 10_000,
    ) -> None:
        self.candidate = candidate
        self.path = Path(log_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._key = key
        self._queue: queue.Queue[tuple[Any, Decision] | threading.Event | None] = queue.Queue(max_queue)
        self.stats = ShadowStats()
        self._untallied = 0
        self._lock = threading.Lock()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._thread = threading.Thread(target=self._run, name="cxpolicy-shadow", daemon=True)
        self._thread.start()

    # -- the request path: never blocks, never raises -------------------------------------
    def observe(self, request: Any, decision: Decision) -> None:
        try:
            self._queue.put_nowait((request, decision))
        except queue.Full:
            with self._lock:
                self.stats.dropped += 1

    # -- the worker ----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                self._write_tally()
                return
            if isinstance(item, threading.Event):
                self._write_tally()
                item.set()
                continue
            try:
                self._compare(*item)
            except Exception:  # the shadow never takes the service down
                log.exception("shadow comparison failed")
                with self._lock:
                    self.stats.failed += 1

    def _compare(self, request: Any, live: Decision) -> None:
        from cxpolicy.tools.diff import outcome_of

        policy = self.candidate.policy
        try:
            cand = policy.decide(request)
        except Exception as exc:  # decide never raises; belt and braces
            self._line({"kind": "candidate_error", "decision_id": live.decision_id, "error": str(exc)[:200]})
            return
        old, new = outcome_of(live), outcome_of(cand)
        with self._lock:
            self.stats.seen += 1
            self._untallied += 1
        if old != new:
            live_rules = sorted({r.rule for r in live.reasons})
            cand_rules = sorted({r.rule for r in cand.reasons})
            differing = sorted(set(live_rules) ^ set(cand_rules))
            with self._lock:
                self.stats.differed += 1
                for rule in differing:
                    self.stats.by_rule[rule] = self.stats.by_rule.get(rule, 0) + 1
            self._line(
                {
                    "kind": "difference",
                    "time": time.time(),
                    "decision_id": live.decision_id,
                    "live_revision": live.policy_revision,
                    "candidate_revision": cand.policy_revision,
                    "live": {**old.to_dict(), "text": old.text(), "rules": live_rules},
                    "candidate": {**new.to_dict(), "text": new.text(), "rules": cand_rules},
                    "looser": new.looser_than(old),
                    "region": _region(request),
                    "digest": self._digest(request),
                    "request": _masked(request),
                }
            )
        if self._untallied >= TALLY_EVERY:
            self._write_tally()

    def _write_tally(self) -> None:
        with self._lock:
            n, self._untallied = self._untallied, 0
            dropped, self.stats.dropped = self.stats.dropped, 0
        if n or dropped:
            self._line({"kind": "tally", "seen": n, "dropped": dropped})

    def _line(self, obj: Mapping[str, Any]) -> None:
        os.write(self._fd, orjson.dumps(obj) + b"\n")

    def _digest(self, request: Any) -> str:
        from cxpolicy.audit.records import canonical_json

        try:
            body = canonical_json(request)
        except ValueError:
            body = repr(request).encode()
        if self._key is not None:
            return "hmac-sha256:" + hmac.new(self._key, body, hashlib.sha256).hexdigest()
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every request handed over so far is compared and tallied (tests,
        shutdown); False when that took longer than `timeout`."""
        done = threading.Event()
        self._queue.put(done, timeout=timeout)
        return done.wait(timeout)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)
        os.close(self._fd)


def _region(request: Any) -> dict[str, Any]:
    if not isinstance(request, dict):
        return {}
    actor = request.get("actor") if isinstance(request.get("actor"), dict) else {}
    customer = request.get("customer") if isinstance(request.get("customer"), dict) else {}
    assert isinstance(actor, dict) and isinstance(customer, dict)
    from cxpolicy.engine.decision import echoable

    out = {
        "action": request.get("action"),
        "channel": request.get("channel"),
        "region": customer.get("region"),
        "actor": actor.get("kind"),
    }
    return {k: (v if echoable(v) else None) for k, v in out.items()}


def _masked(request: Any) -> Any:
    from cxpolicy.audit.masking import mask_request

    try:
        return mask_request(request) if isinstance(request, dict) else None
    except Exception:  # a request that cannot be masked is not stored
        return None
