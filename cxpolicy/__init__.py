"""cxpolicy: a policy engine for AI agents in customer experience.

Input: paths or policy text (`load`). Output: a `PolicySet` whose `decide` gives a `Decision`.

    >>> import cxpolicy
    >>> policy = cxpolicy.load(["rulesets/bank"], packs=["bfsi_rbi"])
    >>> decision = policy.decide({"action": "account.password_reset", ...})
    >>> decision.effect, decision.summary

Public names only; everything else is internal and may change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cxpolicy.engine.decision import Decision
from cxpolicy.engine.loader import load
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.kinds import Effect, Style
from cxpolicy.lang.source import Diagnostic, PolicyError

if TYPE_CHECKING:
    from cxpolicy.client import Client
    from cxpolicy.service.reload import Engine

__all__ = [
    "Client",
    "Decision",
    "Diagnostic",
    "Effect",
    "Engine",
    "PolicyError",
    "PolicySet",
    "Style",
    "load",
]


def __getattr__(name: str) -> Any:
    # `Engine` watches files with watchdog; import it only when asked so `import cxpolicy` stays light.
    if name == "Engine":
        from cxpolicy.service.reload import Engine

        return Engine
    if name == "Client":  # the decision service over HTTP, with PolicySet's decide()
        from cxpolicy.client import Client

        return Client
    raise AttributeError(f"module 'cxpolicy' has no attribute {name!r}")
