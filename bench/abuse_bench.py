"""Small decisions under abuse: p99 of small decisions while heavy requests run, against the
unloaded p99 of the same server in the same run (issue 15's goal: within 5x).

    .venv/bin/python -m bench.abuse_bench                  # ~30 s
    .venv/bin/python -m bench.abuse_bench --heavy 4 --samples 400 --json bench/results/abuse.json

A real `cxpolicy serve` (all three packs, detection on) runs in its own process on an
ephemeral port. Phase 1: `--samples` small decisions back to back on one keep-alive
connection → p50/p99. Phase 2: `--heavy` client processes each send 60 KB phone-dense bodies
to /v1/decide (and every third one a 40-item batch of them) in a loop, the attack that moved
ordinary latency from ~2 ms to a 1.8 s median on main; meanwhile the same small decisions
are measured again. Reported, never asserted (the machine is shared: its load average is
printed with the numbers).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import time
from typing import Any

import httpx

SMALL: dict[str, Any] = {
    "action": "order.status", "channel": "chat", "actor": {"kind": "ai", "id": "a"},
    "customer": {"id": "C-1", "segment": "retail", "risk_tier": "low", "region": "EU"},
    "context": {"ai_disclosed": True, "purpose": "support"},
}


def _heavy_body() -> dict[str, Any]:
    text = " ".join(f"+91 98{i:03d} {i:05d}" for i in range(3000))[:60_000]
    return {**SMALL, "action": "message.send", "customer": {**SMALL["customer"], "region": "IN"},
            "payload": {"direction": "outbound", "text": text}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def _measure(url: str, samples: int) -> list[float]:
    out: list[float] = []
    with httpx.Client(base_url=url, timeout=60) as c:
        for _ in range(samples):
            t0 = time.perf_counter()
            r = c.post("/v1/decide", json=SMALL)
            out.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
    return out


def _hammer(url: str, stop_at: float, index: int, done: Any) -> None:
    body = _heavy_body()
    with httpx.Client(base_url=url, timeout=120) as c:
        n = 0
        while time.time() < stop_at:
            if index % 3 == 2 and n % 2 == 0:
                r = c.post("/v1/decide/batch", json=[body] * 40)
            else:
                r = c.post("/v1/decide", json=body)
            assert r.status_code == 200, r.text[:200]
            n += 1
            with done.get_lock():
                done.value += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--heavy", type=int, default=4, help="heavy client processes")
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--json", dest="json_path")
    args = ap.parse_args()
    port = _free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "cxpolicy")
    server = subprocess.Popen(
        [exe, "serve", "--pack", "bfsi_rbi", "--pack", "hipaa", "--pack", "gdpr", "--port", str(port),
         "--log-level", "warning"],
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        _measure(url, 50)  # warm-up
        unloaded = _measure(url, args.samples)
        ctx = mp.get_context("spawn")
        stop_at = time.time() + 2 + args.samples * 0.05
        done = ctx.Value("i", 0)
        procs = [ctx.Process(target=_hammer, args=(url, stop_at, i, done)) for i in range(args.heavy)]
        for p in procs:
            p.start()
        time.sleep(1.5)  # let the heavy load build up
        before = done.value
        loaded = _measure(url, args.samples)
        heavy_during = done.value - before
        for p in procs:
            p.join(timeout=180)
    finally:
        server.terminate()
        server.wait(timeout=30)
    row = {
        "unloaded_p50_ms": round(_percentile(unloaded, 0.5) * 1000, 2),
        "unloaded_p99_ms": round(_percentile(unloaded, 0.99) * 1000, 2),
        "loaded_p50_ms": round(_percentile(loaded, 0.5) * 1000, 2),
        "loaded_p99_ms": round(_percentile(loaded, 0.99) * 1000, 2),
        "heavy_clients": args.heavy,
        "heavy_answered_while_measuring": heavy_during,
        "cores": os.cpu_count(),
        "loadavg": os.getloadavg()[0],
    }
    row["p99_ratio"] = round(row["loaded_p99_ms"] / row["unloaded_p99_ms"], 2)
    print("| unloaded p50 | unloaded p99 | loaded p50 | loaded p99 | ratio | heavy clients "
          "| heavy answered meanwhile | cores | load |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {row['unloaded_p50_ms']} ms | {row['unloaded_p99_ms']} ms | {row['loaded_p50_ms']} ms | "
          f"{row['loaded_p99_ms']} ms | {row['p99_ratio']}x | {args.heavy} | {heavy_during} | "
          f"{row['cores']} | {row['loadavg']:.1f} |")
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump(row, f, indent=2)


if __name__ == "__main__":
    main()
