"""What grants cost a decision (issue 14): `python -m bench.grants_bench`.

Input: the test policy of tests/grants (one require_otp rule lifted by an HS256 grant).
Output: per-decision times, in interleaved rounds so the peers share the machine's state:
  - `no grants`: a request without `grants` (the hot path: one dict lookup more than before);
  - `grants: []`: the grant step with nothing to verify (digest skipped);
  - `1 HS256 grant`: digest (RFC 8785) + PyJWT verify + lift;
  - the parts alone: `request_digest`, `verify`.
Target: one HS256 grant adds at most 30 µs; no grants adds nothing measurable.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from cxpolicy.grants import request_digest, verify
from tests.grants.support import PAY, policy, token, with_grants

ROUNDS = 7
N = 3000


def _time(fn: Callable[[], object], n: int = N) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    ps = policy()
    plain = policy()
    plain.grant_keys = None  # the engine as before grants: no key configured
    big = {**PAY, "context": {"amount": 9000}}
    tok = token(big, "otp", ["t.g.pay_static_otp"])
    granted = with_grants(big, tok)
    empty = with_grants(big)
    digest = request_digest(big)
    assert ps.decide(granted).grants_used
    cases: dict[str, Callable[[], object]] = {
        "no grants, no key (before grants)": lambda: plain.decide(big),
        "no grants, key configured": lambda: ps.decide(big),
        "grants: [] (grant step, nothing to verify)": lambda: ps.decide(empty),
        "1 HS256 grant (whole decision)": lambda: ps.decide(granted),
        "  request_digest alone": lambda: request_digest(big),
        "  verify alone (PyJWT HS256 + claims)": lambda: verify(tok, ps.grant_keys, digest=digest),
    }
    for fn in cases.values():  # warm up
        _time(fn, 200)
    samples: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(ROUNDS):
        for name, fn in cases.items():
            samples[name].append(_time(fn))
    base = statistics.median(samples["no grants, key configured"])
    print(f"{'case':<46} {'median µs':>10} {'min µs':>8} {'vs no grants':>13}")
    for name, xs in samples.items():
        med = statistics.median(xs)
        print(f"{name:<46} {med:>10.2f} {min(xs):>8.2f} {med - base:>+12.2f}")


if __name__ == "__main__":
    main()
