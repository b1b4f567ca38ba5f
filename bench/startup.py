"""Cold start and the "real policy" decision, measured next to the peers in the same run.

Input: the benchmark settings; optionally `BENCH_BASELINE=<source tree of another commit>`
(e.g. `git archive main | tar -x -C /tmp/base`), whose rows are marked `[baseline]` and run in
the same interleaved rounds. Output: three report sections.

* **cold start** — fresh processes, run in a fresh random order each round: `cxpolicy eval`
  with the three shipped packs (detection on, the CLI's default; and `--no-detect`), and for
  each engine (cxpolicy, cedarpy, zen-engine) a `python -c` that imports it, loads the N=100
  workload from a file and decides one request — the same job for every engine. Wall time
  (median and min) and the child's user+system CPU (`getrusage`), with the load average.
* **load** — `load_text` of 10,000 rules in a fresh process, CPU of the load alone (peers'
  load times are in the main table, measured in-process).
* **packs decide** — `decide()` with the core vocabulary and all three packs loaded and
  detection on, for a request without text and one with text; next to it, in the same
  interleaved rounds, cxpolicy and the peers on the N=1,000 workload, so the figure has a
  same-run reference.
"""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.workload import generate

ROOT = Path(__file__).resolve().parent.parent
PACKS = ("bfsi_rbi", "hipaa", "gdpr")
NO_TEXT = {
    "action": "account.balance",
    "channel": "chat",
    "actor": {"kind": "ai"},
    "customer": {"risk_tier": "low", "segment": "retail", "region": "IN"},
}
WITH_TEXT = {**NO_TEXT, "payload": {"text": "my card is 4111 1111 1111 1111, call me on 9876543210"}}

_LOAD_AND_DECIDE = """
import json, sys
sys.path.insert(0, {root!r})
from bench.run import make_adapter
a = make_adapter({engine!r})
src = open({src!r}).read() if {text!r} else json.load(open({src!r}))
h = a.load(src)
req = a.prepare(json.load(open({req!r})))
print(a.decider(h)(req))
"""


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


BASELINE_ENV = "BENCH_BASELINE"  # a source tree of another commit (e.g. `git archive main`), to compare


def _env_for(name: str, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CXPOLICY_NO_CACHE"}
    env["CXPOLICY_CACHE_DIR"] = str(tmp / "cel-cache")  # the CLI's cache, private to this run
    if name.endswith("[baseline]"):
        env["PYTHONPATH"] = os.environ[BASELINE_ENV]
    return env


def _commands(tmp: Path, engines: list[str]) -> dict[str, list[str]]:
    from bench.run import make_adapter

    w = generate(100, requests=5)
    req = tmp / "request.json"
    req.write_text(json.dumps(NO_TEXT))
    wreq = tmp / "workload_request.json"
    wreq.write_text(json.dumps(w.requests[0]))
    py = sys.executable
    cli = [py, "-m", "cxpolicy", "eval", *[x for p in PACKS for x in ("--pack", p)], "-i", str(req)]
    bank = [*cli[:4], "-p", str(ROOT / "rulesets" / "bank"), *cli[4:]]
    cmds = {
        "python -c pass (floor)": [py, "-c", "pass"],
        "cxpolicy eval, 3 packs": cli,
        "cxpolicy eval, 3 packs, --no-detect": [*cli[:4], "--no-detect", *cli[4:]],
        "cxpolicy eval -p rulesets/bank, 3 packs (CEL cache warm)": bank,
    }
    if os.environ.get(BASELINE_ENV):
        cmds["cxpolicy eval, 3 packs [baseline]"] = cli
        cmds["cxpolicy eval -p rulesets/bank, 3 packs [baseline]"] = bank
    for e in engines:
        a = make_adapter(e)
        src = a.source(w)
        is_text = isinstance(src, str)
        f = tmp / f"policy-{e}.{'txt' if is_text else 'json'}"
        f.write_text(src if is_text else json.dumps(src))
        code = _LOAD_AND_DECIDE.format(root=str(ROOT), engine=e, src=str(f), text=is_text, req=str(wreq))
        cmds[f"{e}: import + load N=100 + 1 decision"] = [py, "-c", code]
    return cmds


def cold_start(rounds: int, engines: list[str], rng: random.Random) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="cxp-bench-") as d:
        cmds = _commands(Path(d), engines)
        envs = {k: _env_for(k, Path(d)) for k in cmds}
        for k, argv in cmds.items():  # warm the page cache, bytecode and CEL caches, untimed
            subprocess.run(argv, capture_output=True, cwd=d, env=envs[k], check=True)
        walls: dict[str, list[float]] = {k: [] for k in cmds}
        cpus: dict[str, list[float]] = {k: [] for k in cmds}
        loads: list[float] = []
        for _ in range(rounds):
            order = list(cmds)
            rng.shuffle(order)
            for name in order:
                c0 = _child_cpu()
                t = time.perf_counter()
                subprocess.run(cmds[name], capture_output=True, cwd=d, env=envs[name], check=True)
                walls[name].append(time.perf_counter() - t)
                cpus[name].append(_child_cpu() - c0)
            loads.append(os.getloadavg()[0])
    return [
        {
            "command": k,
            "wall_median_ms": statistics.median(walls[k]) * 1000,
            "wall_min_ms": min(walls[k]) * 1000,
            "cpu_median_ms": statistics.median(cpus[k]) * 1000,
            "runs": len(walls[k]),
            "load_avg_1m": round(max(loads), 2),
        }
        for k in cmds
    ]


_LOAD = """
import sys, time
from cxpolicy.engine.loader import load_text
text = open(sys.argv[1]).read()
t = time.process_time()
load_text(text, "bench.cxp")
print(time.process_time() - t)
"""


def load_large(rounds: int, rng: random.Random, n: int = 10_000) -> list[dict[str, Any]]:
    """`load_text` of N rules in a fresh process (CPU seconds of the load alone), this tree
    and the baseline (if BENCH_BASELINE is set) interleaved."""
    from bench.workload import to_cxp

    names = ["this tree", *(["[baseline]"] if os.environ.get(BASELINE_ENV) else [])]
    with tempfile.TemporaryDirectory(prefix="cxp-bench-") as d:
        f = Path(d) / "policy.cxp"
        f.write_text(to_cxp(generate(n)))
        cpu: dict[str, list[float]] = {k: [] for k in names}
        wall: dict[str, list[float]] = {k: [] for k in names}
        loads: list[float] = []
        for _ in range(rounds):
            order = list(names)
            rng.shuffle(order)
            for k in order:
                t = time.perf_counter()
                out = subprocess.run([sys.executable, "-c", _LOAD, str(f)], capture_output=True, text=True, cwd=d,
                                     env=_env_for(k, Path(d)), check=True)
                wall[k].append(time.perf_counter() - t)
                cpu[k].append(float(out.stdout.strip().splitlines()[-1]))
            loads.append(os.getloadavg()[0])
    return [{"tree": k, "n": n, "load_cpu_median_s": statistics.median(cpu[k]), "load_cpu_min_s": min(cpu[k]),
             "process_wall_median_s": statistics.median(wall[k]), "runs": rounds,
             "load_avg_1m": round(max(loads), 2)} for k in names]


def packs_decide(rounds: int, budget_s: float, engines: list[str], rng: random.Random) -> list[dict[str, Any]]:
    """p50/p99 of the packs case, interleaved with every engine on the N=1,000 workload."""
    from bench.run import make_adapter
    from cxpolicy.engine.loader import load

    ps = load([], packs=list(PACKS), detect=True)
    w = generate(1_000, requests=100)
    cases: dict[str, tuple[Any, list[Any]]] = {
        "cxpolicy, core + 3 packs, detect on, no text": (ps.decide, [NO_TEXT]),
        "cxpolicy, core + 3 packs, detect on, with text": (ps.decide, [WITH_TEXT]),
    }
    for e in engines:
        a = make_adapter(e)
        h = a.load(a.source(w))
        cases[f"{e}, N=1,000 workload"] = (a.decider(h), [a.prepare(r) for r in w.requests])
    for fn, reqs in cases.values():  # warm up: the detectors import on the first decision
        for r in reqs:
            fn(r)
    samples: dict[str, list[int]] = {k: [] for k in cases}
    loads: list[float] = []
    for _ in range(rounds):
        order = list(cases)
        rng.shuffle(order)
        for name in order:
            fn, reqs = cases[name]
            end = time.perf_counter() + budget_s
            out = samples[name]
            i = 0
            while time.perf_counter() < end or i < 50:
                r = reqs[i % len(reqs)]
                t = time.perf_counter_ns()
                fn(r)
                out.append(time.perf_counter_ns() - t)
                i += 1
        loads.append(os.getloadavg()[0])
    res = []
    for k, v in samples.items():
        v.sort()
        res.append({
            "case": k,
            "p50_us": v[len(v) // 2] / 1000,
            "p99_us": v[min(len(v) - 1, int(len(v) * 0.99))] / 1000,
            "samples": len(v),
            "load_avg_1m": round(max(loads), 2),
        })
    return res


def render(section: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if section.get("cold_start"):
        lines += ["", "### Cold start (fresh process per run, interleaved)", "",
                  "| command | wall median | wall min | CPU median (user+sys) | runs | load avg (1 min, max) |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in section["cold_start"]:
            lines.append(f"| {r['command']} | {r['wall_median_ms']:.0f} ms | {r['wall_min_ms']:.0f} ms | "
                         f"{r['cpu_median_ms']:.0f} ms | {r['runs']} | {r['load_avg_1m']} |")
    if section.get("load_large"):
        lines += ["", "### Load of 10,000 rules in a fresh process (CPU of `load_text` alone)", "",
                  "| tree | CPU median | CPU min | process wall median | runs | load avg (1 min, max) |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in section["load_large"]:
            lines.append(f"| {r['tree']} | {r['load_cpu_median_s']:.2f} s | {r['load_cpu_min_s']:.2f} s | "
                         f"{r['process_wall_median_s']:.2f} s | {r['runs']} | {r['load_avg_1m']} |")
    if section.get("packs_decide"):
        lines += ["", "### decide() with the core vocabulary and the three packs (interleaved with N=1,000)", "",
                  "| case | p50 µs | p99 µs | samples | load avg (1 min, max) |", "|---|---:|---:|---:|---:|"]
        for r in section["packs_decide"]:
            lines.append(f"| {r['case']} | {r['p50_us']:.1f} | {r['p99_us']:.1f} | {r['samples']:,} | "
                         f"{r['load_avg_1m']} |")
    return lines
