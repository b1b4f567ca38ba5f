"""`compile_expression` and the `Expression` it returns: the interface the engine relies on.

The engine evaluates conditions on every decision and must never be surprised by an
exception (LANGUAGE.md §5), so an `Expression` is a callable whose only failure is
`CelEvalError`, with `evaluate` for callers that prefer errors as values. Whether the fast
closures or cel-python run underneath is visible (`compiled`) but never changes the meaning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cxpolicy.cel import compiler, nodes, render
from cxpolicy.cel.errors import CelEvalError, CelSyntaxError
from cxpolicy.cel.nodes import Node

__all__ = ["Expression", "compile_expression", "known_trees"]

# CEL text → its syntax tree, read from precompiled packs (cxpolicy.engine.precompiled): a
# text found here compiles without cel-python's parser (whose tables take ~350 ms to build).
# Only trees the closure compiler accepts are stored; anything else is parsed as usual.
known_trees: dict[str, Node] = {}
# Trees this process parsed and compiled (the CLI's per-user cache saves them: engine/celcache.py).
parsed_trees: dict[str, Node] = {}


class Expression:
    """A compiled CEL condition. Immutable, and safe to share between threads."""

    __slots__ = ("_fn", "_references", "compiled", "fields", "roots", "text")

    text: str
    fields: frozenset[str]
    roots: frozenset[str]
    compiled: bool

    def __init__(
        self,
        text: str,
        fn: compiler.Fn,
        compiled: bool,
        fields: frozenset[str],
        roots: frozenset[str],
        references: tuple[render.Reference, ...],
    ) -> None:
        self.text = text
        self.fields = fields  # dotted paths read, e.g. "context.amount"
        self.roots = roots  # the top-level request fields those paths start from
        self.compiled = compiled
        self._fn = fn
        self._references = references

    def __call__(self, activation: Mapping[str, Any]) -> Any:
        """The value of the expression; raises `CelEvalError` and nothing else."""
        try:
            return self._fn(activation)
        except CelEvalError:
            raise
        except Exception as exc:  # a bug or an exhausted stack must still fail safe
            message = f"internal error evaluating CEL: {type(exc).__name__}: {exc}"
            raise CelEvalError(message) from exc

    def evaluate(self, activation: Mapping[str, Any]) -> Any:
        """The value, or the `CelEvalError` instance when evaluation fails; never raises."""
        try:
            return self._fn(activation)
        except CelEvalError as exc:
            return exc
        except Exception as exc:
            error = CelEvalError(f"internal error evaluating CEL: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            return error

    def render(self, activation: Mapping[str, Any]) -> str:
        """The source text with each field reference replaced by its value in `activation`."""
        return render.render(self.text, self._references, activation)

    def __repr__(self) -> str:
        path = "compiled" if self.compiled else "cel-python"
        return f"Expression({self.text!r}, {path})"


def _require_compiled(text: str, node: Node, reason: str) -> None:
    """Two-variable comprehensions and optionals exist only on the compiled path (cel-python
    0.5 has neither); combined with a construct that needs cel-python, the expression cannot
    run at all, which is better said now than on every request."""
    stack = [node]
    while stack:
        current = stack.pop()
        what = None
        if isinstance(current, nodes.Comprehension) and current.var2 is not None:
            what = f"a two-variable `{current.macro}`"
        elif isinstance(current, nodes.Comprehension) and current.macro in ("optMap", "optFlatMap"):
            what = f"`{current.macro}`"
        elif isinstance(current, nodes.OptSelect | nodes.OptIndex | nodes.OptItem):
            what = "optional syntax (`.?`, `[?]`)"
        if what is not None:
            line = text.count("\n", 0, current.start) + 1
            col = current.start - (text.rfind("\n", 0, current.start) + 1) + 1
            message = f"{what} cannot be combined with {reason}: cel-python, which runs that, has no such form"
            raise CelSyntaxError(message, line, col)
        stack.extend(current.children())


def compile_expression(text: str) -> Expression:
    """Parse and compile `text`; raises `CelSyntaxError` (with line and column) if invalid."""
    known = known_trees.get(text)
    if known is not None:
        fields, roots, references = render.collect(known)
        try:
            return Expression(text, compiler.compile_node(known), True, fields, roots, references)
        except compiler.Unsupported:
            pass  # not a tree this build compiles: parse it
    from cxpolicy.cel import syntax  # cel-python and Lark: only for text not seen before

    tree, node = syntax.parse(text)
    fields, roots, references = render.collect(node)
    fn: compiler.Fn
    try:
        fn = compiler.compile_node(node)
        compiled = True
        if len(parsed_trees) < 10_000:
            parsed_trees[text] = node
    except compiler.Unsupported as exc:
        _require_compiled(text, node, str(exc))
        from cxpolicy.cel.fallback import Fallback

        fn = Fallback(tree, roots)
        compiled = False
    return Expression(text, fn, compiled, fields, roots, references)
