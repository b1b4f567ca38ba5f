"""Benchmarks: cxpolicy against the engines a team would pick instead (issue 9).

`bench.workload` generates CX policy workloads (a fixed seed, N rules, requests that hit few and
many rules); `bench.peers` expresses the same rules for cedarpy (Cedar) and zen-engine (GoRules
decision tables); `bench.run` cross-checks every engine on every request, then times them in
interleaved rounds (`python -m bench.run --quick|--full`).
"""
