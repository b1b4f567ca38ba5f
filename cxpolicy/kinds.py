"""Effects and redaction styles: the one place their names and severities are defined.

Input: nothing (definitions). Output: the enums every module names kinds with.

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


# ----------------------------------------------------------------------------------- kinds
# The other kinds the engine and its tools branch on. StrEnums, so JSON and text output keep
# the very strings LANGUAGE.md and docs/ name, and a comparison with the string still holds.


class ErrorKind(StrEnum):
    """What went wrong while deciding (`DecisionError.kind`); every kind leaves the decision safe."""

    REQUEST = "request"  # the request is invalid: no rule was evaluated
    CONDITION = "condition"  # a rule's condition failed; the fail-safe decided whether it matched
    LIMIT = "limit"  # a resource limit was exceeded
    INTERNAL = "internal"  # a bug in cxpolicy: reported, never raised
    GRANT = "grant"  # a grant failed verification
    UNTRUSTED = "untrusted"  # input from an untrusted source tried to steer the decision


class Severity(StrEnum):
    """How bad a diagnostic is: an `error` fails the load (or the lint run), the rest inform."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class DimensionKind(StrEnum):
    """A dimension's shape (LANGUAGE.md §2): one value, one value of an ordered scale, or a set."""

    PLAIN = "plain"
    ORDERED = "ordered"
    SET = "set"


class ConditionKind(StrEnum):
    """A rule's condition: every `when` must be true, every `unless` false."""

    WHEN = "when"
    UNLESS = "unless"


class Op(StrEnum):
    """A constraint's operator, spelled as in a rule."""

    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    IN = "in"
    NOT_IN = "not in"
