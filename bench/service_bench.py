"""Decision service benchmark: latency and throughput over HTTP on 127.0.0.1.

    .venv/bin/python -m bench.service_bench                  # 1,000 rules; 1 and 2 workers;
                                                             # audit off and on (~2 minutes)
    .venv/bin/python -m bench.service_bench --workers 2 --audit off --seconds 10
    .venv/bin/python -m bench.service_bench --json bench/results/service.json

For each configuration a real `cxpolicy serve` runs in its own process(es) on an ephemeral
port, over the 1,000-rule policy of `bench.workload` (fixed seed) and its request mix. The
load generator is written here on raw asyncio sockets (keep-alive HTTP/1.1, one request in
flight per connection, request bytes prebuilt), because an HTTP client library costs more
CPU per request than the server does and would measure itself; it runs in `--procs`
separate processes so it is not the bottleneck either. Phases per configuration:

1. latency: one connection, requests back to back → p50/p90/p99 of single decisions;
2. throughput: `--connections` connections (default 8) for `--seconds` → decisions/s, and
   p50/p99 at that throughput. A closed loop: with more connections than the server needs to
   stay busy, extra ones only queue (p99 ≈ connections / throughput), so 8 measures the
   latency at full throughput and 32 the queueing behind it.

Every response must be a 200 with a decision; the audit-on rows also check that the audit log
holds at least as many decision records as were answered. Numbers are printed as a markdown
table (they belong in docs/service.md); the goal from issue 6 — ≥ 5,000 decisions/s with 2
workers, p99 < 5 ms at that load — is reported against, never asserted. The load generator shares the
machine's cores with the server: the machine's core count and load average are printed with
the numbers, since on a 2-core machine the client takes a share of the CPU the server wants.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.workload import generate, to_cxp

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    workers: int
    audit: bool
    single_p50_ms: float
    single_p90_ms: float
    single_p99_ms: float
    rps: float
    load_p50_ms: float
    load_p99_ms: float
    connections: int
    requests: int
    errors: int
    answered: int = 0  # every 200 over all phases (warm-up included)
    server_cpu_us: float | None = None  # server CPU (all its processes) per decision, loaded
    audited: int | None = None


# ----------------------------------------------------------------------------- load generator
def _payloads(port: int, requests: list[dict[str, Any]]) -> list[bytes]:
    out = []
    for r in requests:
        body = json.dumps(r, separators=(",", ":")).encode()
        head = (
            f"POST /v1/decide HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


async def _connection(
    port: int, payloads: list[bytes], start: int, deadline: float, limit: int | None
) -> tuple[list[int], int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    latencies: list[int] = []
    errors = 0
    i = start
    try:
        while time.perf_counter() < deadline and (limit is None or len(latencies) < limit):
            req = payloads[i % len(payloads)]
            i += 1
            t0 = time.perf_counter_ns()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter_ns() - t0)
            if head[9:12] != b"200" or b'"effect"' not in body:
                errors += 1
    finally:
        writer.close()
    return latencies, errors


def _load_proc(
    port: int, payloads: list[bytes], conns: int, seconds: float, limit: int | None, q: Any
) -> None:
    async def main() -> tuple[list[int], int]:
        deadline = time.perf_counter() + seconds
        results = await asyncio.gather(
            *(_connection(port, payloads, k * 7, deadline, limit) for k in range(conns))
        )
        lat = [x for r in results for x in r[0]]
        return lat, sum(r[1] for r in results)

    q.put(asyncio.run(main()))


def load(
    port: int, payloads: list[bytes], conns: int, seconds: float, procs: int,
    limit: int | None = None,
) -> tuple[list[int], int, float]:  # fmt: skip
    """Run the load in `procs` processes; (latencies ns, errors, wall seconds)."""
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    per = [conns // procs + (1 if k < conns % procs else 0) for k in range(procs)]
    workers = [
        ctx.Process(target=_load_proc, args=(port, payloads, n, seconds, limit, q))
        for n in per if n
    ]  # fmt: skip
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    lat: list[int] = []
    errors = 0
    for _ in workers:
        got_lat, got_err = q.get(timeout=seconds + 60)
        lat += got_lat
        errors += got_err
    wall = time.perf_counter() - t0
    for w in workers:
        w.join(timeout=10)
    return lat, errors, wall


def pct(values: list[int], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))] / 1e6


# ----------------------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(
    policy: Path, workers: int, audit: str | None, port: int, http: str = "auto"
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "cxpolicy", "serve", "-p", str(policy), "--port", str(port),
           "--workers", str(workers), "--log-level", "warning", "--http", http]  # fmt: skip
    if audit:
        cmd += ["--audit", audit]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"server exited: {err[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return proc
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not become ready in 60 s")


def server_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by `pid` and its children (the workers);
    Linux /proc only. Less sensitive than wall-clock throughput to whatever else runs."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    try:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(entry) == pid or int(fields[1]) == pid:  # fields[1] is the parent pid
                total += (int(fields[11]) + int(fields[12])) / tick
    except OSError:
        return None
    return total


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def audited_count(url: str) -> int:
    from cxpolicy.audit import open_sink

    with open_sink(url, create=False) as sink:
        return len(sink.query(kind="decision"))


# ----------------------------------------------------------------------------- main
def run_one(
    policy: Path, tmp: Path, requests: list[dict[str, Any]], workers: int, audit: bool,
    args: argparse.Namespace,
) -> Row:  # fmt: skip
    port = free_port()
    audit_url = f"sqlite:///{tmp}/audit-{workers}-{time.monotonic_ns()}.db" if audit else None
    proc = start_server(policy, workers, audit_url, port, args.http)
    try:
        payloads = _payloads(port, requests)
        warm, e0, _ = load(port, payloads, max(4, workers * 4), 1.0, 1)  # every worker
        single, e1, _ = load(port, payloads, 1, args.seconds, 1, limit=args.single)
        cpu0 = server_cpu(proc.pid)
        lat, e2, wall = load(port, payloads, args.connections, args.seconds, args.procs)
        cpu1 = server_cpu(proc.pid)
    finally:
        stop_server(proc)
    audited = audited_count(audit_url) if audit_url else None
    return Row(
        workers=workers,
        audit=audit,
        single_p50_ms=pct(single, 50),
        single_p90_ms=pct(single, 90),
        single_p99_ms=pct(single, 99),
        rps=len(lat) / wall,
        load_p50_ms=pct(lat, 50),
        load_p99_ms=pct(lat, 99),
        connections=args.connections,
        requests=len(lat),
        errors=e0 + e1 + e2,
        answered=len(warm) + len(single) + len(lat) - (e0 + e1 + e2),
        audited=audited,
        server_cpu_us=(cpu1 - cpu0) * 1e6 / len(lat) if cpu0 is not None and cpu1 and lat else None,
    )


def table(rows: list[Row]) -> str:
    out = [
        "| workers | audit | single p50 ms | single p99 ms | decisions/s | p50 ms under load "
        "| p99 ms under load | server CPU µs/decision | errors |",
        "|---:|:---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r.workers} | {'on' if r.audit else 'off'} | {r.single_p50_ms:.2f} | "
            f"{r.single_p99_ms:.2f} | {r.rps:,.0f} | {r.load_p50_ms:.2f} | {r.load_p99_ms:.2f} "
            f"| {r.server_cpu_us or float('nan'):.0f} | {r.errors} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rules", type=int, default=1000)
    p.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    p.add_argument("--audit", choices=["off", "on", "both"], default="both")
    p.add_argument("--seconds", type=float, default=6.0, help="per throughput phase")
    p.add_argument("--single", type=int, default=3000, help="requests in the latency phase")
    p.add_argument(
        "--connections", type=int, default=8,
        help="in the throughput phase; more only adds queueing once the server is saturated",
    )  # fmt: skip
    p.add_argument("--procs", type=int, default=2, help="load generator processes")
    p.add_argument("--json", type=Path, help="also write the rows as JSON here")
    p.add_argument(
        "--http", choices=["auto", "h11", "httptools"], default="auto",
        help="server HTTP parser (h11 + asyncio: what a plain install without httptools gets)",
    )  # fmt: skip
    args = p.parse_args(argv)

    workload = generate(args.rules)
    with tempfile.TemporaryDirectory(prefix="cxpolicy-bench-") as t:
        tmp = Path(t)
        policy = tmp / "policy"
        policy.mkdir()
        (policy / "bench.cxp").write_text(to_cxp(workload))
        requests = list(workload.requests)
        rows: list[Row] = []
        audits = {"off": [False], "on": [True], "both": [False, True]}[args.audit]
        for workers in (int(w) for w in args.workers.split(",")):
            for audit in audits:
                row = run_one(policy, tmp, requests, workers, audit, args)
                rows.append(row)
                print(
                    f"workers={workers} audit={'on' if audit else 'off'}: {row.rps:,.0f}/s, "
                    f"single p50 {row.single_p50_ms:.2f} ms p99 {row.single_p99_ms:.2f} ms, "
                    f"under load p99 {row.load_p99_ms:.2f} ms, errors {row.errors}"
                    + (f", audited {row.audited}" if row.audited is not None else ""),
                    file=sys.stderr,
                    flush=True,
                )
    import importlib.util

    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    if args.http == "h11":
        http, loop = "h11", "asyncio"
    cpus = os.cpu_count()
    load1 = os.getloadavg()[0]
    print(f"\n{args.rules} rules, {len(requests)} distinct requests, {cpus} cores, "
          f"load average {load1:.1f} at the end, {args.connections} connections, "
          f"{args.procs} load process(es), Python {sys.version.split()[0]}, uvicorn with "
          f"{http} + {loop}\n")  # fmt: skip
    print(table(rows))
    two = [r for r in rows if r.workers == 2 and not r.audit]
    if two:
        ok = two[0].rps >= 5000 and two[0].load_p99_ms < 5
        verdict = "met" if ok else "NOT met"
        print(f"\ngoal (2 workers, audit off: >= 5,000/s with p99 < 5 ms at that load): {verdict}")
    on = {r.workers: r.rps for r in rows if r.audit}
    off = {r.workers: r.rps for r in rows if not r.audit}
    for w in sorted(set(on) & set(off)):
        print(f"audit cost at {w} worker(s): {100 * (1 - on[w] / off[w]):.0f} % of throughput")
    for r in rows:
        if r.audited is not None and r.audited < r.answered:
            print(f"WARNING: {r.answered} answered, only {r.audited} audited", file=sys.stderr)
        if r.errors:
            print(f"WARNING: {r.errors} failed requests", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
