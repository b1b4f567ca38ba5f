"""Anomaly signals on synthetic streams: injected spikes are flagged, a long steady stream
raises few false alarms (counted, bounded), low counts use the Poisson tail, and a flag can
post to a webhook and freeze through the store."""

from __future__ import annotations

import http.server
import math
import random
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from service_support import wait_for

from cxpolicy.engine.decision import Decision, DecisionError, Reason, Redaction
from cxpolicy.fleet.anomalies import AnomalyConfig, AnomalyDetector, AutoFreeze, poisson_tail
from cxpolicy.kinds import Effect, Style


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


AGENTS = [f"agent-{i}" for i in range(6)]
CHANNELS = ["chat", "voice", "whatsapp"]
ACTIONS = {"refund.execute": 0.30, "order.status": 0.02, "account.statement": 0.05, "card.block": 0.10}
_REASON = Reason("t.r", Effect.ESCALATE, None, ())


def _decision(rng: random.Random, action: str, *, esc: float, inj: float, otp: float = 0.08) -> Decision:
    u = rng.random()
    effect = Effect.ESCALATE if u < esc else Effect.REQUIRE_OTP if u < esc + otp else Effect.ALLOW
    redact = (Redaction("card_pan", Style.FULL),) if rng.random() < 0.15 else ()
    errors = (DecisionError("condition", "x", rule="t.r"),) if rng.random() < 0.01 else ()
    score = 0.9 if rng.random() < inj else 0.1
    queue = ("refunds-desk",) if effect is Effect.ESCALATE and action == "refund.execute" else ()
    return Decision(
        "id", effect, redact, queue, (_REASON,), errors, "sha256:x",
        signals={"prompt_injection": {"score": score, "indicators": []}},
    )  # fmt: skip


def _window(
    det: AnomalyDetector, clock: Clock, rng: random.Random, n: int = 300, spike: dict[str, Any] | None = None
) -> None:
    for _ in range(n):
        agent = rng.choice(AGENTS)
        channel = rng.choice(CHANNELS)
        action = rng.choice(list(ACTIONS))
        esc, inj = ACTIONS[action], 0.003
        if spike and spike.get("agent") == agent:
            esc = spike["esc"]
        if spike and spike.get("channel") == channel:
            inj = spike["inj"]
        req = {"action": action, "channel": channel, "actor": {"kind": "ai", "id": agent}}
        det.observe(req, _decision(rng, action, esc=esc, inj=inj))
    clock.t += det.config.window
    det.tick()


def test_poisson_tail_matches_the_definition() -> None:
    for lam in (0.5, 2.0, 7.5, 30.0):
        for c in (0, 1, 3, 10, 25, 60):
            exact = 1.0 - sum(math.exp(-lam) * lam**k / math.factorial(k) for k in range(c))
            assert poisson_tail(c, lam) == pytest.approx(max(exact, 0.0), rel=1e-6, abs=1e-12), (c, lam)
    assert poisson_tail(200, 1.0) < 1e-200  # far tail, no overflow
    assert poisson_tail(5, 0.0) == 0.0 and poisson_tail(0, 3.0) == 1.0


def test_a_long_steady_stream_raises_few_false_alarms() -> None:
    clock, rng = Clock(), random.Random(20)
    det = AnomalyDetector(AnomalyConfig(window=60), clock=clock)
    windows = 400
    for _ in range(windows):
        _window(det, clock, rng)
    judged_keys = len(AGENTS) + len(CHANNELS) + len(ACTIONS) + 1  # + the refunds-desk queue
    judgments = judged_keys * 6 * (windows - det.config.warmup)
    false_alarms = sum(det.flagged.values())
    print(f"\nsteady stream: {false_alarms} false alarms in {judgments} key-signal-windows")
    assert det.windows_judged == windows
    assert false_alarms <= judgments * 1e-3  # at most one in a thousand judgments


def test_injected_spikes_are_flagged_and_only_they() -> None:
    clock, rng = Clock(), random.Random(7)
    det = AnomalyDetector(AnomalyConfig(window=60), clock=clock)
    for _ in range(40):
        _window(det, clock, rng)
    before = dict(det.flagged)
    # agent-3 suddenly escalates half of what it touches; whatsapp carries injection attempts.
    _window(det, clock, rng, spike={"agent": "agent-3", "esc": 0.6, "channel": "whatsapp", "inj": 0.25})
    flagged = {(a.dimension, a.value, a.signal): a for a in det.active()}
    assert ("agent", "agent-3", "escalation") in flagged
    assert ("channel", "whatsapp", "injection") in flagged
    assert flagged[("channel", "whatsapp", "injection")].method == "poisson"  # a low-count signal
    assert flagged[("agent", "agent-3", "escalation")].count > flagged[("agent", "agent-3", "escalation")].expected
    # The spikes also show, diluted, in the actions agent-3 touched and in the agents and
    # actions that carried whatsapp traffic: real effects of the spike. What must not be
    # flagged: another agent's escalations, another channel's injections, other signals.
    assert {k for k in flagged if k[0] == "agent" and k[2] == "escalation"} == {("agent", "agent-3", "escalation")}
    assert {k for k in flagged if k[0] == "channel"} == {("channel", "whatsapp", "injection")}
    assert {k[2] for k in flagged} <= {"escalation", "injection"}
    assert sum(det.flagged.values()) > sum(before.values())
    report = det.report()
    assert any(a["value"] == "agent-3" for a in report["anomalies"])
    # The spike did not become the baseline: the same spike again is flagged again.
    _window(det, clock, rng, spike={"agent": "agent-3", "esc": 0.6})
    assert ("agent", "agent-3", "escalation") in {(a.dimension, a.value, a.signal) for a in det.active()}
    # And back to normal: nothing about agent-3 a few windows later.
    for _ in range(3):
        _window(det, clock, rng)
    assert not [a for a in det.active() if a.value == "agent-3"]
    metrics = list(det.metrics())
    assert {m.name for m in metrics} == {"cxpolicy_anomaly_active", "cxpolicy_anomalies_flagged"}


def test_no_judgement_during_warmup_and_odd_input_is_ignored() -> None:
    clock, rng = Clock(), random.Random(1)
    det = AnomalyDetector(AnomalyConfig(window=60, warmup=10), clock=clock)
    for _ in range(5):
        _window(det, clock, rng, spike={"agent": "agent-1", "esc": 0.9})
    assert det.flagged == {}  # no baseline yet: nothing to compare with
    det.observe(None, _decision(rng, "x", esc=0, inj=0))
    det.observe({"actor": "not-an-object", "action": 5}, _decision(rng, "x", esc=0, inj=0))


class _Hook:
    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        hook = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                hook.posts.append(orjson.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def test_webhook_and_auto_freeze(tmp_path: Path) -> None:
    from cxpolicy.fleet.freeze import FreezeWatcher, SQLiteFreezeStore
    from cxpolicy.fleet.service import Fleet

    hook = _Hook()
    clock, rng = Clock(), random.Random(3)
    cfg = AnomalyConfig(
        window=60, webhook=hook.url,
        auto_freeze=(AutoFreeze("escalation", "agent", min_score=4.0, reason="agent escalating wildly"),),
    )  # fmt: skip
    det = AnomalyDetector(cfg, clock=clock)
    watcher = FreezeWatcher(SQLiteFreezeStore(tmp_path / "f.db"), fallback=0.5)
    fleet = Fleet(replica="r1", freezes=watcher, anomalies=det)
    try:
        for _ in range(30):
            _window(det, clock, rng)
        assert not watcher.current.freezes
        _window(det, clock, rng, spike={"agent": "agent-5", "esc": 0.7})
        wait_for(lambda: [f for f in watcher.current.freezes if f.value == "agent-5"], timeout=10)
        f = next(f for f in watcher.current.freezes if f.value == "agent-5")
        assert f.kind == "agent" and f.source == "anomaly" and "agent escalating wildly" in f.reason
        assert f.created_by == "anomaly-detector@r1"
        wait_for(lambda: any(p["anomaly"]["value"] == "agent-5" for p in hook.posts), timeout=10)
        # The freeze now applies to agent-5's requests through the same Fleet.
        d = fleet.after({"action": "order.status", "actor": {"id": "agent-5"}}, _decision(rng, "x", esc=0, inj=0))
        assert d.effect is Effect.ESCALATE and d.reasons[0].rule == f"cxpolicy.freeze.{f.id}"
    finally:
        fleet.close()
        hook.httpd.shutdown()
        hook.httpd.server_close()


def test_config_from_a_table() -> None:
    cfg = AnomalyConfig.from_mapping(
        {"window": 30, "auto_freeze": [{"signal": "injection", "dimension": "channel", "min_score": 6}]}
    )
    assert cfg.window == 30 and cfg.auto_freeze[0].dimension == "channel"
    with pytest.raises(ValueError, match="unknown"):
        AnomalyConfig.from_mapping({"windw": 30})
    with pytest.raises(ValueError, match="auto_freeze"):
        AnomalyConfig.from_mapping({"auto_freeze": [{"signal": "escalation", "dimension": "queue"}]})


def test_the_service_counts_its_decisions_and_lists_anomalies(tmp_path: Path) -> None:
    import httpx
    from fleet_support import write_policy
    from service_support import running_server

    from cxpolicy.fleet.service import Fleet
    from cxpolicy.service.app import create_app
    from cxpolicy.service.reload import Engine

    clock, rng = Clock(), random.Random(11)
    det = AnomalyDetector(AnomalyConfig(window=60, warmup=5), clock=clock)
    app = create_app(Engine([write_policy(tmp_path / "p")]), fleet=Fleet(replica="r", anomalies=det))

    def batch(spike: bool) -> list[dict[str, Any]]:
        out = []
        for i in range(60):
            agent = f"agent-{i % 4}"
            big = rng.random() < (0.8 if spike and agent == "agent-2" else 0.05)
            out.append({"action": "refund.execute", "channel": "chat", "actor": {"kind": "ai", "id": agent},
                        "customer": {"segment": "retail", "risk_tier": "low", "region": "IN"},
                        "context": {"amount": 5000 if big else 10}})  # fmt: skip
        return out

    with running_server(app) as url:
        for w in range(12):
            r = httpx.post(f"{url}/v1/decide/batch", json=batch(spike=w == 11))
            assert r.status_code == 200
            clock.t += 60
        body = httpx.get(f"{url}/v1/anomalies").json()
        assert body["enabled"] and body["windows_judged"] == 12
        from cxpolicy.fleet.models import AnomaliesModel, StatusModel

        AnomaliesModel.model_validate(body)
        StatusModel.model_validate(httpx.get(f"{url}/v1/status").json())
        flagged = {(a["dimension"], a["value"], a["signal"]) for a in body["anomalies"]}
        assert ("agent", "agent-2", "escalation") in flagged
        assert not {k for k in flagged if k[0] == "agent" and k[1] != "agent-2"}
        assert 'cxpolicy_anomaly_active{dimension="agent",signal="escalation",value="agent-2"} 1.0' in httpx.get(
            f"{url}/metrics"
        ).text
        assert httpx.get(f"{url}/v1/status").json()["anomalies"] >= 1
