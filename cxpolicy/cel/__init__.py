"""CEL conditions for `when` / `unless`: the common subset compiled to closures, the rest on
cel-python, with one meaning for both (docs/cel.md)."""

from cxpolicy.cel.errors import CelEvalError, CelSyntaxError
from cxpolicy.cel.expression import Expression, compile_expression

__all__ = ["CelEvalError", "CelSyntaxError", "Expression", "compile_expression"]
