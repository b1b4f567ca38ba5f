"""The engines under test, behind one small interface (`Adapter`).

An adapter turns a `Workload` into its engine's own policy text (untimed), loads it (timed as
compile/load), turns each request into the engine's own input shape (untimed, done once before
any timing: the peers get their most convenient input for free), and decides. `decide` is the
timed call and returns the effect; `explain` is the cross-check's view: the effect and, where
the engine can say, the indices of the rules that matched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from bench.workload import Workload

__all__ = ["Adapter"]


class Adapter(Protocol):
    name: str  # as shown in the tables
    native: bool  # True when the loaded policy lives outside the Python heap (RSS, not tracemalloc)

    def source(self, workload: Workload) -> Any:
        """The policy in the engine's own language (text / JSON), untimed."""

    def load(self, source: Any) -> Any:
        """Compile / load; the returned handle is what `decider` uses."""

    def prepare(self, request: dict[str, Any]) -> Any:
        """The request in the engine's input shape."""

    def decider(self, handle: Any) -> Callable[[Any], str]:
        """One decision → effect name. This is the function that is timed."""

    def batch(self, handle: Any) -> Callable[[Sequence[Any]], list[str]]:
        """Many decisions at once, with the engine's best batch API (or a loop)."""

    def explain(self, handle: Any, prepared: Any) -> tuple[str, frozenset[int] | None]:
        """(effect, indices of matched rules or None when the engine reports only one)."""
