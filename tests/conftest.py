"""Shared fixtures: compile a policy from text, find the shared conformance suite."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest

from cxpolicy.engine.loader import load_text
from cxpolicy.engine.policy_set import PolicySet

ROOT = Path(__file__).resolve().parent.parent
# The CLI's per-user CEL tree cache (engine/celcache.py) stays off in tests: no writes to $HOME.
os.environ.setdefault("CXPOLICY_NO_CACHE", "1")
SHARED = Path(os.environ.get("CXPOLICY_SHARED", ROOT.parent / "shared"))
IN_CI = bool(os.environ.get("CXPOLICY_CI"))


def unavailable(reason: str) -> NoReturn:
    """Skip a test whose outside program is missing, except in CI (`.ci/run` sets
    CXPOLICY_CI and installs the program), where a missing component must fail loudly."""
    if IN_CI:
        pytest.fail(f"{reason} (CI must provide it: see .ci/run)")
    pytest.skip(reason)


@pytest.fixture
def compile_policy() -> Callable[..., PolicySet]:
    def _compile(text: str, name: str = "policy.cxp", packs: tuple[str, ...] = ()) -> PolicySet:
        return load_text(text, name, packs=packs)

    return _compile


def base_request(**overrides: object) -> dict[str, object]:
    """A valid request over the core vocabulary; tests override what they care about."""
    req: dict[str, object] = {
        "action": "refund.execute",
        "channel": "chat",
        "actor": {"kind": "ai", "id": "agent-1", "roles": ["tier1"]},
        "customer": {"id": "C-1", "segment": "retail", "risk_tier": "low", "region": "IN"},
        "data_classes": [],
        "context": {},
    }
    req.update(overrides)
    return req
