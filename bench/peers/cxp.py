"""cxpolicy itself, behind the same adapter as the peers.

The generated .cxp (one file, its own vocabulary) is compiled with `cxpolicy.engine.loader.load_text`;
a decision is `PolicySet.decide(request)` — the full public call: request validation, index,
conditions, combining, the `Decision` with its reasons and a fresh UUIDv7 decision id. The
request is the JSON object of LANGUAGE.md §2 as a dict (what a Python caller holds).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bench.workload import Workload, to_cxp
from cxpolicy.engine.loader import load_text
from cxpolicy.engine.policy_set import PolicySet

__all__ = ["CxpolicyAdapter"]


class CxpolicyAdapter:
    name = "cxpolicy"
    native = False

    def source(self, workload: Workload) -> str:
        return to_cxp(workload)

    def load(self, source: str) -> PolicySet:
        return load_text(source, "bench.cxp")

    def prepare(self, request: dict[str, Any]) -> dict[str, Any]:
        return request

    def decider(self, h: PolicySet) -> Callable[[Any], str]:
        decide = h.decide

        def one(req: Any) -> str:
            return decide(req).effect.value

        return one

    def batch(self, h: PolicySet) -> Callable[[Sequence[Any]], list[str]]:
        decide = h.decide

        def run(reqs: Sequence[Any]) -> list[str]:
            return [decide(r).effect.value for r in reqs]

        return run

    def explain(self, h: PolicySet, prepared: Any) -> tuple[str, frozenset[int] | None]:
        d = h.decide(prepared)
        if d.errors:
            raise RuntimeError(f"cxpolicy reported errors: {[str(e) for e in d.errors]}")
        matched = frozenset(int(r.rule.rsplit(".r", 1)[1]) for r in d.reasons)
        return d.effect.value, matched
