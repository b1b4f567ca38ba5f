"""How long a freeze takes to reach every replica's watcher: SQLite (polled) vs PostgreSQL
(LISTEN/NOTIFY), measured side by side in one run.

    python -m bench.freeze_propagation                    # SQLite only
    python -m bench.freeze_propagation --pg postgresql://… # and PostgreSQL

For each store: `--replicas` watchers (each with its own connection, as each replica has),
`--rounds` freezes; the delay is the time from the writer's commit returning until each
watcher swapped in the version holding it (one clock: everything runs in this process).
The in-process watchers are what `cxpolicy serve` runs; the HTTP test of three real replicas
(tests/fleet/test_fleet_replicas.py, run with -s) prints the same measurement end to end.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from cxpolicy.fleet.freeze import FreezeStore, FreezeWatcher, open_freeze_store


def measure(url: str, replicas: int, rounds: int) -> list[float]:
    watchers = [FreezeWatcher(open_freeze_store(url)) for _ in range(replicas)]
    writer: FreezeStore = open_freeze_store(url)
    delays: list[float] = []
    try:
        for i in range(rounds):
            f = writer.create("action", "refund.execute", f"bench {i}", "bench")
            t0 = time.perf_counter()
            pending = set(range(replicas))
            while pending:
                for j in list(pending):
                    if f.id in watchers[j].current.ids():
                        delays.append(time.perf_counter() - t0)
                        pending.discard(j)
                time.sleep(0.0005)
            writer.lift(by="bench", reason="done", freeze_id=f.id)
            time.sleep(0.05)
    finally:
        for w in watchers:
            w.close()
        writer.close()
    return delays


def _report(name: str, delays: list[float]) -> None:
    q = statistics.quantiles(delays, n=100)
    print(f"{name:<12} n={len(delays):<4} median {statistics.median(delays) * 1000:6.1f} ms  "
          f"p95 {q[94] * 1000:6.1f} ms  max {max(delays) * 1000:6.1f} ms")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pg", help="a PostgreSQL DSN to measure too")
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        _report("sqlite", measure(f"sqlite:///{Path(tmp) / 'f.db'}", args.replicas, args.rounds))
    if args.pg:
        _report("postgresql", measure(args.pg, args.replicas, args.rounds))


if __name__ == "__main__":
    main()
