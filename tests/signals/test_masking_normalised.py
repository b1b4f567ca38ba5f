"""Masking reads text through the same normalisation as the detectors: what they find in an
obfuscated value is what gets hidden, in the original characters."""

from __future__ import annotations

import pytest

from cxpolicy.audit.masking import mask_request, mask_text
from cxpolicy.engine.decision import Redaction
from cxpolicy.kinds import Style
from cxpolicy.signals.redact import apply

OBFUSCATED = [
    "4111\u00a01111\u00a01111\u00a01111",
    "4111.1111.1111.1111",
    "4\u200b1\u200b1\u200b1\u200b1111 1111 1111",
    "４１１１ １１１１ １１１１ １１１１",
    "४१११ ११११ ११११ ११११",
    "4111\u00ad1111\u00ad1111\u00ad1111",
    "41 11 11 11 11 11 11 11",
]


@pytest.mark.parametrize("card", OBFUSCATED)
def test_redaction_hides_every_character_of_an_obfuscated_card(card: str) -> None:
    text = f"card: {card} thanks"
    out = apply(text, [Redaction("card_pan", Style.FULL)])
    assert out == "card: [REDACTED:card_pan] thanks"


@pytest.mark.parametrize("card", OBFUSCATED)
def test_audit_masking_hides_obfuscated_cards_without_the_detectors_help(card: str) -> None:
    # scanner=... replaces the detectors: only the shape nets run, on normalised text.
    out = mask_text(f"note {card} end", scanner=lambda t: [])
    assert "[MASKED:" in out and out.startswith("note ") and out.endswith(" end")
    assert not any(ch.isdigit() for ch in out)


def test_audit_masking_of_a_request_uses_the_detectors_on_normalised_text() -> None:
    req = {"payload": {"text": "hi", "html": "<p>SSN 343\u00a067\u00a06258</p>"}, "customer": {"region": "US"}}
    out = mask_request(req)
    assert "6258" not in str(out)
