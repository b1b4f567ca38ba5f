"""Anomaly signals: a stream of (request, decision) in, flagged rate spikes out.

Input: every decision a replica makes, with its request. Output: `Anomaly` records — "agent
`agent-7`: escalations 41 in the last window, expected 5.1" — listed by `report()` (served
at `/v1/anomalies`), exported as metrics, optionally posted to a webhook, and, where the
configuration says so, turned into a freeze.

What is counted, per key — the request's agent (`actor.id`), action, channel, and each
escalation queue of the decision:

    escalation   effect `escalate` (decisions escalated by a freeze are not counted)
    otp          effect `require_otp`
    redaction    a non-empty `redact` list
    injection    `signals.prompt_injection.score` at or above `injection_threshold`
    condition_error   an error of kind `condition`
    grant_refusal     an error that names a grant (kind `grant`, or a message about one)

How a window is judged: decisions are counted in fixed windows (`window` seconds). At the
end of each, every key's count `c` of each signal out of its `n` decisions is compared with
that key's own baseline — an EWMA of the per-decision rate `p` and of its variance — so a
queue that always escalates half its traffic is normal and an agent that suddenly escalates
a third is not. The expected count is `λ = p·n`. For small `λ` (below `small_lambda`) the
Poisson upper tail P(X ≥ c | λ) decides (a z-score on three events is noise); above it a
z-score with σ² = max(var·n², λ). A key is judged only after `warmup` windows of baseline,
flagged only with at least `min_count` events, and a flagged window does not update the
baseline (a spike does not teach the detector that spikes are normal).

Cost on the decide path: a few dict increments under a lock; the judging runs once per window.
Each worker process has its own detector (its own share of the traffic).
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from cxpolicy.engine.decision import Decision
from cxpolicy.kinds import Effect

__all__ = ["SIGNALS", "Anomaly", "AnomalyConfig", "AnomalyDetector", "AutoFreeze", "poisson_tail"]

log = logging.getLogger("cxpolicy.fleet.anomalies")

SIGNALS = ("escalation", "otp", "redaction", "injection", "condition_error", "grant_refusal")
DIMENSIONS = ("agent", "action", "channel", "queue")
_FREEZE_KIND = {"agent": "agent", "action": "action", "channel": "channel"}  # a queue is not frozen


def poisson_tail(c: int, lam: float) -> float:
    """P(X >= c) for X ~ Poisson(lam), summed in log space (no overflow for large c)."""
    if c <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    # 1 - P(X <= c-1); for the far tail sum the terms from c upward instead (more exact).
    if c > lam:
        log_term = -lam + c * math.log(lam) - math.lgamma(c + 1)
        total, k, term = 0.0, c, math.exp(log_term)
        while term > 1e-300 and k < c + 10_000:
            total += term
            k += 1
            term *= lam / k
            if term < total * 1e-16:
                break
        return min(1.0, total)
    cdf, term = 0.0, math.exp(-lam)
    for k in range(c):
        cdf += term
        term *= lam / (k + 1)
    return max(0.0, 1.0 - cdf)


@dataclass(frozen=True, slots=True)
class AutoFreeze:
    """Freeze a key when `signal` on `dimension` is flagged with at least this strength."""

    signal: str
    dimension: str
    min_score: float = 8.0  # z-score, or -log10 of the Poisson tail
    reason: str = "automatic freeze: anomalous rate"


@dataclass(frozen=True, slots=True)
class AnomalyConfig:
    window: float = 60.0
    ewma_alpha: float = 0.1
    z_threshold: float = 4.0
    poisson_p: float = 1e-4
    small_lambda: float = 10.0
    min_lambda: float = 0.5  # the expected count never drops below this (a new key's zero baseline)
    min_count: int = 5
    warmup: int = 10
    injection_threshold: float = 0.7
    max_keys: int = 10_000
    webhook: str | None = None
    auto_freeze: tuple[AutoFreeze, ...] = ()

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> AnomalyConfig:
        """From a parsed TOML/JSON table (`--anomalies FILE`; docs/operations.md)."""
        known = {f for f in cls.__dataclass_fields__ if f != "auto_freeze"}
        unknown = set(raw) - known - {"auto_freeze"}
        if unknown:
            raise ValueError(f"unknown anomaly settings: {', '.join(sorted(unknown))}")
        rules = []
        for item in raw.get("auto_freeze", []):
            rule = AutoFreeze(**item)
            if rule.signal not in SIGNALS or rule.dimension not in _FREEZE_KIND:
                raise ValueError(f"auto_freeze needs a signal in {SIGNALS} and a dimension in {tuple(_FREEZE_KIND)}")
            rules.append(rule)
        return cls(**{k: v for k, v in raw.items() if k != "auto_freeze"}, auto_freeze=tuple(rules))


@dataclass(frozen=True, slots=True)
class Anomaly:
    dimension: str
    value: str
    signal: str
    window_end: datetime
    count: int
    decisions: int
    expected: float
    method: str  # "poisson" or "zscore"
    score: float  # z, or -log10(p)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dimension": self.dimension,
            "value": self.value,
            "signal": self.signal,
            "window_end": self.window_end.isoformat().replace("+00:00", "Z"),
            "count": self.count,
            "decisions": self.decisions,
            "expected": round(self.expected, 3),
            "method": self.method,
            "score": round(self.score, 2),
        }


@dataclass(slots=True)
class _Baseline:
    mean: float = 0.0
    var: float = 0.0
    windows: int = 0


Key = tuple[str, str]  # (dimension, value)


@dataclass(slots=True)
class _Window:
    totals: dict[Key, int] = field(default_factory=dict)
    counts: dict[tuple[Key, str], int] = field(default_factory=dict)


class AnomalyDetector:
    """Counts signals per key and judges each window against the key's own baseline.

    `clock` is seconds (monotonic by default); tests drive it. `freezer(kind, value, reason)`
    is called (from the background thread) for an auto-freeze.
    """

    def __init__(self, config: AnomalyConfig | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or AnomalyConfig()
        self.clock = clock
        self._lock = threading.Lock()
        self._window = _Window()
        self._window_end = clock() + self.config.window
        self._baselines: dict[tuple[Key, str], _Baseline] = {}
        self._active: dict[tuple[Key, str], Anomaly] = {}
        self.recent: deque[Anomaly] = deque(maxlen=500)
        self.flagged: dict[tuple[str, str], int] = {}  # (dimension, signal) → times flagged
        self.windows_judged = 0
        self.keys_dropped = 0
        self._freezer: Callable[[str, str, str], None] | None = None
        self._outbox: queue.Queue[Anomaly] | None = None
        if self.config.webhook or self.config.auto_freeze:
            self._outbox = queue.Queue(maxsize=10_000)
            threading.Thread(target=self._deliver, name="cxpolicy-anomaly-out", daemon=True).start()

    def bind_freezer(self, fn: Callable[[str, str, str], None]) -> None:
        self._freezer = fn

    # ------------------------------------------------------------------ counting
    def observe(self, request: Any, decision: Decision) -> None:
        """Count one decision (never raises)."""
        try:
            signals = self._signals(decision)
            keys = self._keys(request, decision)
        except Exception:  # an odd request must not break deciding
            return
        try:
            self._count(keys, signals)
        except Exception:  # a bug here must cost a count, never a decision
            log.exception("anomaly counting failed")

    def _count(self, keys: list[Key], signals: list[str]) -> None:
        now = self.clock()
        with self._lock:
            if now >= self._window_end:
                self._roll(now)
            w = self._window
            for key in keys:
                if key not in w.totals and len(w.totals) >= self.config.max_keys:
                    self.keys_dropped += 1
                    continue
                w.totals[key] = w.totals.get(key, 0) + 1
                for s in signals:
                    ck = (key, s)
                    w.counts[ck] = w.counts.get(ck, 0) + 1

    def _signals(self, d: Decision) -> list[str]:
        out: list[str] = []
        frozen = bool(d.reasons) and d.reasons[0].rule.startswith("cxpolicy.freeze.")
        if d.effect is Effect.ESCALATE and not frozen:
            out.append("escalation")
        elif d.effect is Effect.REQUIRE_OTP:
            out.append("otp")
        if d.redact:
            out.append("redaction")
        sig = d.signals
        if sig:
            pi = sig.get("prompt_injection")
            score = pi.get("score") if isinstance(pi, Mapping) else None
            if isinstance(score, int | float) and score >= self.config.injection_threshold:
                out.append("injection")
        for e in d.errors:
            if e.kind == "condition" and "condition_error" not in out:
                out.append("condition_error")
            elif (e.kind == "grant" or "grant" in e.message.lower()) and "grant_refusal" not in out:
                out.append("grant_refusal")
        return out

    @staticmethod
    def _keys(request: Any, d: Decision) -> list[Key]:
        keys: list[Key] = []
        if isinstance(request, Mapping):
            actor = request.get("actor")
            agent = actor.get("id") if isinstance(actor, Mapping) else None
            if isinstance(agent, str):
                keys.append(("agent", agent))
            for dim in ("action", "channel"):
                v = request.get(dim)
                if isinstance(v, str):
                    keys.append((dim, v))
        keys.extend(("queue", q) for q in d.escalate_to)
        return keys

    # ------------------------------------------------------------------ judging
    def tick(self) -> None:
        """Judge the window if it is over (the service calls this from its clock too)."""
        with self._lock:
            now = self.clock()
            if now >= self._window_end:
                self._roll(now)

    def _roll(self, now: float) -> None:
        cfg = self.config
        w, self._window = self._window, _Window()
        # Windows with no traffic at all pass without judging (an idle night is not a spike).
        missed = int((now - self._window_end) // cfg.window)
        self._window_end += (missed + 1) * cfg.window
        end = datetime.now(UTC)
        still: dict[tuple[Key, str], Anomaly] = {}
        for key, n in w.totals.items():
            for s in SIGNALS:
                ck = (key, s)
                c = w.counts.get(ck, 0)
                b = self._baselines.get(ck)
                if b is None:
                    if c == 0 and len(self._baselines) >= cfg.max_keys * len(SIGNALS):
                        continue
                    b = self._baselines[ck] = _Baseline()
                found = self._judge(key, s, c, n, b, end)
                if found is not None:
                    still[ck] = found
                    continue
                p = c / n
                if b.windows == 0:
                    b.mean = p
                else:
                    diff = p - b.mean
                    b.mean += cfg.ewma_alpha * diff
                    b.var = (1 - cfg.ewma_alpha) * (b.var + cfg.ewma_alpha * diff * diff)
                b.windows += 1
        self._active = still
        self.windows_judged += 1

    def _judge(self, key: Key, s: str, c: int, n: int, b: _Baseline, end: datetime) -> Anomaly | None:
        cfg = self.config
        if b.windows < cfg.warmup or c < cfg.min_count:
            return None
        lam = max(b.mean * n, cfg.min_lambda)
        if c <= lam:
            return None
        if lam < cfg.small_lambda:
            p = poisson_tail(c, lam)
            if p >= cfg.poisson_p:
                return None
            method, score = "poisson", -math.log10(max(p, 1e-300))
        else:
            sigma = math.sqrt(max(b.var * n * n, lam))
            z = (c - lam) / sigma
            if z <= cfg.z_threshold:
                return None
            method, score = "zscore", z
        a = Anomaly(key[0], key[1], s, end, c, n, lam, method, score)
        self.recent.append(a)
        fk = (key[0], s)
        self.flagged[fk] = self.flagged.get(fk, 0) + 1
        log.warning("anomaly: %s %r %s %d of %d (expected %.1f, %s %.1f)", key[0], key[1], s, c, n, lam, method, score)
        if self._outbox is not None:
            try:
                self._outbox.put_nowait(a)
            except queue.Full:
                log.warning("anomaly outbox full; dropping a notification")
        return a

    # ------------------------------------------------------------------ out
    def _deliver(self) -> None:
        assert self._outbox is not None
        while True:
            a = self._outbox.get()
            if self.config.webhook:
                try:
                    req = urllib.request.Request(
                        self.config.webhook, data=orjson.dumps({"anomaly": a.to_dict()}),
                        headers={"Content-Type": "application/json"}, method="POST",
                    )  # fmt: skip
                    with urllib.request.urlopen(req, timeout=5):
                        pass
                except Exception as exc:
                    log.warning("anomaly webhook failed: %s", exc)
            for rule in self.config.auto_freeze:
                if rule.signal == a.signal and rule.dimension == a.dimension and a.score >= rule.min_score:
                    if self._freezer is None:
                        continue
                    why = f"{rule.reason}: {a.signal} {a.count} of {a.decisions} (expected {a.expected:.1f})"
                    try:
                        self._freezer(_FREEZE_KIND[a.dimension], a.value, why)
                    except Exception:
                        log.exception("auto-freeze of %s %r failed", a.dimension, a.value)

    def active(self) -> list[Anomaly]:
        self.tick()
        with self._lock:
            return list(self._active.values())

    def report(self) -> dict[str, Any]:
        active = self.active()
        return {
            "window_seconds": self.config.window,
            "windows_judged": self.windows_judged,
            "anomalies": [a.to_dict() for a in active],
            "recent": [a.to_dict() for a in list(self.recent)[-100:]],
            "keys_dropped": self.keys_dropped,
        }

    def metrics(self) -> Iterable[Any]:
        active = GaugeMetricFamily(
            "cxpolicy_anomaly_active", "1 per key and signal flagged in the last judged window.",
            labels=["dimension", "value", "signal"],
        )  # fmt: skip
        for a in self.active():
            active.add_metric([a.dimension, a.value, a.signal], 1)
        yield active
        flagged = CounterMetricFamily(
            "cxpolicy_anomalies_flagged", "Windows flagged as anomalous, by dimension and signal.",
            labels=["dimension", "signal"],
        )  # fmt: skip
        for (dim, sig), n in sorted(self.flagged.items()):
            flagged.add_metric([dim, sig], n)
        yield flagged
