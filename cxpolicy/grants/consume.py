"""One-use grants at an enforcement point: decide, record, and decide again if a grant was spent.

Input: a policy set, one request, and a `record(request, decision)` callable (an audit sink's
`record`) that raises `GrantAlreadyUsed` when a grant the decision used was consumed first
by someone else. Output: the decision that was actually recorded — the one the caller obeys.

The consumption itself is atomic in the store (`cxpolicy.audit.grants`); this loop only turns
"someone used it first" into a decision that treats those grants as `already used`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from cxpolicy.audit.grants import GrantAlreadyUsed
from cxpolicy.grants.apply import MAX_GRANTS, decide_with_grants

if TYPE_CHECKING:
    from cxpolicy.engine.decision import Decision
    from cxpolicy.engine.policy_set import PolicySet

__all__ = ["SpentInMemory", "adecide_once", "decide_once"]


def _redecide(policy: PolicySet, request: Any, explain: bool, spent: set[str]) -> Decision:
    return decide_with_grants(policy, request, explain, policy.detector is not None, spent=spent)


def decide_once(
    policy: PolicySet,
    request: Any,
    record: Callable[[Mapping[str, Any], Decision], None],
    *,
    explain: bool = False,
    first: Decision | None = None,
) -> Decision:
    """Decide `request` (or take `first`), record it; on `GrantAlreadyUsed` decide again."""
    decision = first if first is not None else policy.decide(request, explain)
    spent: set[str] = set()
    for _ in range(MAX_GRANTS + 1):
        try:
            record(request if isinstance(request, dict) else {"non_object_request": request}, decision)
            return decision
        except GrantAlreadyUsed as exc:
            spent |= exc.jtis
            decision = _redecide(policy, request, explain, spent)
    raise RuntimeError("grants kept being spent while deciding")  # pragma: no cover - bounded above


async def adecide_once(
    policy: PolicySet,
    request: Any,
    record: Callable[[Any, Decision], Awaitable[None]],
    *,
    explain: bool = False,
    first: Decision | None = None,
) -> Decision:
    """`decide_once` for an asyncio caller (the service)."""
    decision = first if first is not None else policy.decide(request, explain)
    spent: set[str] = set()
    for _ in range(MAX_GRANTS + 1):
        try:
            await record(request, decision)
            return decision
        except GrantAlreadyUsed as exc:
            spent |= exc.jtis
            decision = _redecide(policy, request, explain, spent)
    raise RuntimeError("grants kept being spent while deciding")  # pragma: no cover - bounded above


class SpentInMemory:
    """One-use for a process without an audit store (a service started without --audit):
    grant ids used here, forgotten at exit. Only the audit store makes one-use hold across
    replicas and restarts; docs/grants.md says so."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._spent: set[str] = set()

    def record(self, request: Mapping[str, Any], decision: Decision) -> None:
        if not decision.grants_used:
            return
        with self._lock:
            again = self._spent.intersection(decision.grants_used)
            if again:
                raise GrantAlreadyUsed(again)
            self._spent.update(decision.grants_used)
