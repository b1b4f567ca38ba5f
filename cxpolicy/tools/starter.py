"""What `cxpolicy init` writes: a starter policy, its tests and example requests that pass.

Input: a pack name (or none). Output: `Starter`, the files as {relative path: text}. The
policy uses the core vocabulary (and the pack, with `use`); its tests use `expect rules
includes [...]`, so they keep passing when a pack adds its own reasons. The example requests
are in the pack's region, so the pack's rules apply to them. tests/cli/test_init.py loads
every variant and runs its tests and lint; the expectations below are what a reviewer
checked against the pack's rules, not a recording of the engine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["EXAMPLES", "REGION", "Starter", "starter"]

# The region of a pack's requests (where its rules apply); `None`: no pack.
REGION: dict[str | None, str] = {None: "IN", "bfsi_rbi": "IN", "hipaa": "US", "gdpr": "EU"}

# name -> (request, expected effect per pack, the starter rules that must decide it)
_Example = tuple[dict[str, Any], dict[str | None, str], tuple[str, ...]]
EXAMPLES: dict[str, _Example] = {
    "order_status": (
        {"action": "order.status", "channel": "chat", "actor": {"kind": "ai"},
         "customer": {"segment": "retail", "risk_tier": "low"}},
        {None: "allow", "bfsi_rbi": "allow", "hipaa": "allow", "gdpr": "allow"},
        ("everyday_service",),
    ),
    "large_refund": (
        {"action": "refund.execute", "channel": "chat", "actor": {"kind": "ai"},
         "customer": {"segment": "retail", "risk_tier": "low"}, "context": {"amount": 12000}},
        {None: "escalate", "bfsi_rbi": "escalate", "hipaa": "escalate", "gdpr": "escalate"},
        ("refunds_need_a_person",),
    ),
    "card_number": (
        {"action": "order.status", "channel": "chat", "actor": {"kind": "ai"},
         "customer": {"segment": "retail", "risk_tier": "low"}, "data_classes": ["card_pan"]},
        {None: "redact", "bfsi_rbi": "redact", "hipaa": "redact", "gdpr": "redact"},
        ("card_numbers_masked",),
    ),
}  # fmt: skip

_POLICY = """\
# A starter policy written by `cxpolicy init`. Edit it freely; `cxpolicy test {dir}` runs
# the tests at the bottom, `cxpolicy lint {dir}` checks it, and
# `cxpolicy eval {dir} -i {dir}/requests/large_refund.json --explain --format text`
# shows a decision. The language: docs/language.md.
use core
{use}package starter.service

cite HANDBOOK = "Contact-centre handbook, section 1 (replace with your own reference)"

rule everyday_service {{
  match   action in [order.status, faq.answer, account.balance]
  decide  allow
  because "Everyday questions are answered without a person."
  cite    HANDBOOK
}}

rule refunds_need_a_person {{
  match   action = refund.execute, actor = ai
  unless  context.amount <= 500
  decide  escalate to "refunds-desk"
  because "AI may pay small refunds; a person approves the rest."
  cite    HANDBOOK
}}

rule card_numbers_masked {{
  match   data_class = card_pan
  decide  redact [card_pan] as last4
  because "Card numbers are never shown in full."
  cite    HANDBOOK
}}
"""


@dataclass(frozen=True)
class Starter:
    files: dict[str, str]  # relative path -> text


def starter(pack: str | None = None, directory: str = ".") -> Starter:
    """The files for `pack` (None: core vocabulary only); `directory` is named in comments."""
    region = REGION.get(pack, "IN")
    text = _POLICY.format(dir=directory, use=f"use {pack}\n" if pack else "")
    files: dict[str, str] = {}
    for name, (request, effects, rules) in EXAMPLES.items():
        req = json.loads(json.dumps(request))
        req["customer"]["region"] = region
        files[f"requests/{name}.json"] = json.dumps(req, indent=2) + "\n"
        effect = effects.get(pack, effects[None])
        body = json.dumps(req, separators=(", ", ": "))
        text += (
            f'\ntest "{name.replace("_", " ")}" {{\n'
            f"  request {body}\n"
            f"  expect {effect}\n"
            f"  expect rules includes [{', '.join(rules)}]\n"
            "}\n"
        )
    files["policy.cxp"] = text
    return Starter(files)
