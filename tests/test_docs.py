"""The guide's examples are runnable: every .cxp block in docs/language.md that declares a
package compiles, and the first one decides as the guide says."""

from __future__ import annotations

import re

from cxpolicy import Effect
from cxpolicy.engine.loader import load_text
from tests.conftest import ROOT

GUIDE = (ROOT / "docs" / "language.md").read_text()
BLOCKS = re.findall(r"```\n(.*?)```", GUIDE, re.S)


def test_guide_policies_compile() -> None:
    policies = [b for b in BLOCKS if "\npackage " in "\n" + b and "rule " in b and "NAME" not in b]
    assert policies, "the guide has no complete policy example"
    for text in policies:
        src = text if "use core" in text else "use core\n" + text
        load_text(src, "guide.cxp")


def test_first_example_decides_as_shown() -> None:
    policy = load_text(BLOCKS[0], "refunds.cxp")
    req = {
        "action": "refund.execute",
        "channel": "chat",
        "actor": {"kind": "ai"},
        "customer": {"segment": "retail", "risk_tier": "high", "region": "IN"},
        "context": {"amount": 12000},
    }
    d = policy.decide(req, explain=True)
    assert d.effect is Effect.ESCALATE and d.escalate_to == ("refunds-desk",)
    assert d.trace is not None
    (cond,) = d.trace.candidates[0].conditions
    assert cond.rendered == '12000 <= 500 && "high" == "low"'
    assert '12000 <= 500 && "high" == "low" → false' in GUIDE
