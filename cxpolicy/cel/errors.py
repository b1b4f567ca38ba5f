"""The two ways a CEL condition can fail.

A syntax error is found once, when a policy compiles, and must point into the `.cxp` file; an
evaluation error happens per request and must never escape the engine as anything but a
`CelEvalError`, because LANGUAGE.md §5 turns it into a fail-safe decision. They live apart
from the compiler so that `cxpolicy.cel.errors` can be imported without loading Lark.
"""

from __future__ import annotations

__all__ = ["CelEvalError", "CelSyntaxError"]


class CelSyntaxError(ValueError):
    """The expression text is not CEL this engine accepts.

    `line` and `col` are 1-based and relative to the expression text, so the checker can add
    the offset of the `when`/`unless` clause and report a `.cxp` position. `hint` is the fix
    for a common slip (`=` for `==`, `and` for `&&`, `50,000`), when one is recognised.
    """

    def __init__(self, message: str, line: int = 1, col: int = 1, hint: str | None = None) -> None:
        super().__init__(f"{line}:{col}: {message}")
        self.message = message
        self.line = line
        self.col = col
        self.hint = hint


class CelEvalError(Exception):
    """Evaluation failed for this activation (missing field, type mismatch, overflow, ...).

    It is raised by `Expression.__call__` and returned by `Expression.evaluate`; `field` names
    the dotted path when the failure was a field that is absent, so a decision's `errors`
    entry can name it.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __repr__(self) -> str:
        return f"CelEvalError({self.message!r})"
