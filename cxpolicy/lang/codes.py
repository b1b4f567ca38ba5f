"""Diagnostic codes: the one table every `CXPnnn` comes from.

Input: nothing (a table). Output: one `Code` per diagnostic — its code, default severity and a
one-line meaning — and `Code.__call__`, which builds the `Diagnostic` a stage reports. Codes
are stable (tools match on them), so no module spells a code out: it calls `codes.CXP201(...)`,
a misspelt code is a NameError instead of a silent new code, and docs/diagnostics.md is held
equal to this table by tests/lang/test_codes.py (code, severity and, outside lint, meaning).
"""

from __future__ import annotations

from dataclasses import dataclass

from cxpolicy.kinds import Severity
from cxpolicy.lang.source import Diagnostic, Span

__all__ = ["CODES", "Code", "lint_codes"]


@dataclass(frozen=True, slots=True)
class Code:
    """A diagnostic code: `CXP201`, its usual severity, and what it means in one line."""

    code: str
    severity: Severity
    meaning: str
    documented_severity: str = ""  # what docs/diagnostics.md says when it is not one word

    def __call__(
        self, message: str, span: Span, hint: str | None = None, *, severity: Severity | None = None
    ) -> Diagnostic:
        """The diagnostic with this code (`severity` overrides the default, e.g. in packs)."""
        return Diagnostic(self.code, self.severity if severity is None else severity, message, span, hint)


E, W = Severity.ERROR, Severity.WARNING
_PACKS = "error in packs, warning elsewhere"

# Loading (CXP0xx)
CXP001 = Code("CXP001", E, "a path does not exist, or a directory holds no `.cxp` files")
CXP002 = Code("CXP002", E, "a file cannot be read, is not UTF-8, or is larger than 8 MiB")
CXP003 = Code("CXP003", E, "`use NAME` / `--pack NAME` names no shipped pack")
# Syntax (CXP1xx)
CXP101 = Code("CXP101", E, "syntax error: what was found and what was expected (e.g. missing condition after `when`)")
CXP102 = Code(
    "CXP102",
    E,
    "a bracket opened in a condition is never closed: reported at the bracket, with the closer to add "
    "(and without the end-of-file CXP101 it would cause)",
)
CXP103 = Code("CXP103", E, "a string literal with an invalid escape (strings use JSON escapes; a raw tab is kept)")
CXP199 = Code(
    "CXP199", E, "internal error (a bug): formatting would change the policy, or the parser lost a condition's text"
)
# Names and vocabulary (CXP2xx)
CXP201 = Code("CXP201", E, "unknown dimension (with a did-you-mean)")
CXP202 = Code("CXP202", E, "a value that the dimension does not declare (with a did-you-mean)")
CXP203 = Code("CXP203", E, "`<`, `<=`, `>`, `>=` on a dimension that is not `ordered`")
CXP204 = Code("CXP204", E, "a dimension declared twice (use `extend dimension`)")
CXP205 = Code("CXP205", E, "`extend dimension` of an undeclared dimension")
CXP206 = Code("CXP206", W, "a value listed twice in a dimension")
CXP207 = Code("CXP207", E, "a dimension default that is not one of its values, or a default on a set dimension")
CXP210 = Code("CXP210", E, "unknown attribute type (types: string, number, int, bool, list, map, any)")
CXP211 = Code("CXP211", E, "an attribute default of the wrong type")
CXP212 = Code("CXP212", E, "an attribute declared twice differently")
CXP220 = Code("CXP220", E, "`in []` / `not in []` with no values")
# Rules (CXP3xx)
CXP301 = Code("CXP301", E, "duplicate rule id (`package.name`)")
CXP302 = Code("CXP302", E, "a file with rules has no `package`")
CXP303 = Code("CXP303", E, "a file declares `package` twice")
CXP304 = Code("CXP304", E, "a second `default` in the policy set")
CXP305 = Code("CXP305", E, "a rule without `decide`")
CXP306 = Code("CXP306", E, "a rule with more than one `decide`")
CXP307 = Code(
    "CXP307", E, "`redact` without a list and without a positive constraint on the data-class dimension, or `redact []`"
)
CXP308 = Code("CXP308", E, "a redact (or `expect redact`) class that is not a data class")
CXP309 = Code("CXP309", E, "unknown redaction style (full, token, last4)")
CXP310 = Code("CXP310", E, "`redact` in a policy set with no set dimension `at data_classes`")
CXP311 = Code("CXP311", E, "a rule with more than one `because`")
CXP312 = Code("CXP312", E, "a cite name that is not declared")
CXP313 = Code("CXP313", E, "a cite name declared twice with different texts")
CXP314 = Code("CXP314", E, "`default redact`")
# Conditions (CXP4xx)
CXP401 = Code(
    "CXP401",
    E,
    "a `when`/`unless` expression that is not valid CEL (position inside the expression); common slips "
    "get a hint: `=` for `==`, the words `and`, `or`, `not` for CEL's operators, thousands separators "
    "(`50,000`), a misspelt function (did you mean `lowerAscii`?), a bracket left open, an extension "
    "function with the wrong number of arguments",
)
# Tests (CXP5xx)
CXP502 = Code("CXP502", E, "a test block without exactly one `request`")
CXP503 = Code("CXP503", E, "a test block without exactly one `expect EFFECT`")
# Lint (CXP6xx): the meaning is the short form (SARIF's shortDescription); docs explain more.
CXP601 = Code("CXP601", W, "a rule without `because` (error in compliance packs)", _PACKS)
CXP602 = Code("CXP602", W, "a rule without `cite` (error in compliance packs)", _PACKS)
CXP603 = Code("CXP603", E, "a rule that can never match: its constraints (scope included) contradict")
CXP604 = Code("CXP604", W, "a constraint that adds nothing: always true, or implied by the rule's others")
CXP605 = Code("CXP605", W, "a value listed twice in one constraint")
CXP606 = Code("CXP606", W, "an `allow` rule always overridden by an unconditional stricter rule")
CXP607 = Code("CXP607", W, "a duplicate rule: same constraints, conditions and outcome as another")
CXP608 = Code("CXP608", W, "a rule subsumed by another with the same outcome and fewer conditions")
CXP609 = Code("CXP609", W, "a declared `cite` name that no rule uses")
CXP610 = Code("CXP610", W, "a declared attribute that no condition reads")
CXP611 = Code("CXP611", E, "a condition comparing a field with a literal of the wrong type")
CXP612 = Code("CXP612", W, "a condition comparing a dimension field with a value it does not declare")
CXP613 = Code("CXP613", W, "a condition ordering a dimension field as text (`<`, `>=`, ...)")
CXP614 = Code("CXP614", W, "a `matches()` regex with nested quantifiers (catastrophic backtracking elsewhere)")
CXP615 = Code("CXP615", W, "a condition reading a top-level name that is not a request field")
CXP616 = Code("CXP616", E, "a CEL extension function given a field of a declared type it never takes")
CXP618 = Code(
    "CXP618",
    W,
    "a condition reading a field no attribute, dimension or test of the policy mentions",
    "warning (error with `lint --strict`)",
)
CXP619 = Code("CXP619", E, "an `expect rules` id that names no rule of the policy set")

CODES: dict[str, Code] = {c.code: c for c in list(globals().values()) if isinstance(c, Code)}


def lint_codes() -> list[Code]:
    """The codes `cxpolicy lint` adds on top of compiling (CXP6xx)."""
    return [c for c in CODES.values() if c.code.startswith("CXP6")]
