"""Effects and redaction styles: the one place their names and severities are defined.

Combining is "most restrictive wins" (LANGUAGE.md §1), so every comparison between effects
goes through `Effect.severity`, and every comparison between masking styles through
`Style.strictness`.
"""

from __future__ import annotations

from enum import StrEnum


class Effect(StrEnum):
    """What a decision tells the agent to do, ordered by severity."""

    ALLOW = "allow"
    REDACT = "redact"
    REQUIRE_OTP = "require_otp"
    ESCALATE = "escalate"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    def __str__(self) -> str:
        return self.value


_SEVERITY = {Effect.ALLOW: 0, Effect.REDACT: 1, Effect.REQUIRE_OTP: 2, Effect.ESCALATE: 3}
EFFECT_BY_SEVERITY = tuple(sorted(Effect, key=lambda e: _SEVERITY[e]))


class Style(StrEnum):
    """How a data class is masked; strictest wins when rules disagree: full > token > last4."""

    FULL = "full"
    TOKEN = "token"
    LAST4 = "last4"

    @property
    def strictness(self) -> int:
        return _STRICTNESS[self]

    def __str__(self) -> str:
        return self.value


_STRICTNESS = {Style.LAST4: 0, Style.TOKEN: 1, Style.FULL: 2}
