"""Audit sink micro-benchmark: durable records per second, group commit vs one commit each.

    .venv/bin/python bench/audit_bench.py                 # default matrix, ~1 minute
    .venv/bin/python bench/audit_bench.py --records 2000 --threads 1,4,16 --sync full

`max_batch=1` forces one transaction (one fsync) per record: what a sink without group commit
pays. Each configuration writes to a fresh database in a temporary directory; the numbers go
into docs/audit.md. Decisions are built directly, so the engine's cost is not included;
`encode` is the per-record cost in the caller's thread (masking, digest, encoding) alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from cxpolicy.audit import open_sink
from cxpolicy.audit.records import now_utc
from cxpolicy.audit.sink import decision_draft
from cxpolicy.engine.decision import Decision, Reason, new_decision_id
from cxpolicy.kinds import Effect

REQUEST = {
    "action": "refund.execute",
    "channel": "chat",
    "actor": {"kind": "ai", "id": "agent-42", "roles": ["tier1"]},
    "customer": {"id": "C-1009", "segment": "premium", "risk_tier": "high", "region": "IN"},
    "data_classes": ["card_pan"],
    "context": {"amount": 12000, "currency": "INR", "otp_verified": False},
    "payload": {"text": "Please refund my card 4111 1111 1111 1111, it was charged twice."},
}


def decision(i: int) -> Decision:
    effect = Effect.ESCALATE if i % 50 == 0 else Effect.ALLOW
    reason = Reason("bank.refunds.rule", effect, "because", ("RBI/2017-18/15",))
    return Decision(new_decision_id(), effect, (), ("refunds-desk",), (reason,), (), "sha256:bench")


def run(records: int, threads: int, max_batch: int, sync: str) -> tuple[float, float]:
    """Records/s, and the mean records per commit."""
    with tempfile.TemporaryDirectory() as tmp:
        sink = open_sink(
            str(Path(tmp) / "audit.db"), key=None, synchronous=sync, max_batch=max_batch
        )
        per_thread = records // threads
        start_line = threading.Barrier(threads + 1)

        def work(t: int) -> None:
            start_line.wait()
            for i in range(per_thread):
                sink.record(REQUEST, decision(t * per_thread + i))

        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        start_line.wait()
        t0 = time.perf_counter()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - t0
        stats = sink.stats
        sink.close()
    return per_thread * threads / elapsed, stats.ops / max(stats.batches, 1)


def encode_cost(n: int = 5000) -> float:
    """Microseconds per record spent in the caller's thread before the writer sees it."""
    now = now_utc()
    decisions = [decision(i) for i in range(n)]
    t0 = time.perf_counter()
    for d in decisions:
        decision_draft(REQUEST, d, now)
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=3200)
    parser.add_argument("--threads", default="1,4,16")
    parser.add_argument("--sync", default="full,normal")
    parser.add_argument("--repeat", type=int, default=5, help="median of N runs")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"encode (mask + digest + canonical JSON): {encode_cost():.1f} µs/record")
    print(f"{'sync':<7}{'threads':>8}{'group commit rec/s':>21}{'rec/commit':>12}"
          f"{'commit each rec/s':>20}{'speed-up':>10}")  # fmt: skip
    for sync in args.sync.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            group, single = [], []
            for _ in range(args.repeat):  # interleaved, so drift in machine load hits both
                group.append(run(args.records, threads, 512, sync))
                single.append(run(args.records, threads, 1, sync))
            g = statistics.median(r for r, _ in group)
            batch = statistics.median(b for _, b in group)
            s = statistics.median(r for r, _ in single)
            print(f"{sync:<7}{threads:>8}{g:>21.0f}{batch:>12.1f}{s:>20.0f}{g / s:>9.1f}x")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
