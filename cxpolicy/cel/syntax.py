"""From CEL text to a small, typed syntax tree, with the checks that belong to compile time.

cel-python's Lark grammar nests every expression nine levels deep (`expr → conditionalor →
... → primary`) and spreads operators over helper rules. The compiler, the field collector
and the renderer all want the same flat view, so it is built once here.

Constructs the closure compiler does not handle become `Opaque` nodes that still carry their
children: the expression then runs on cel-python, but `fields` and `render` keep working.

Some mistakes are reported now rather than on every request, because a condition that can
only ever fail is a policy bug (cel-python would report each of them as an evaluation error):
unknown functions, a wrong number of arguments to a known one, `has()` without a field
selection, macro variables that are not plain names, int literals outside int64 and
constant regular expressions RE2 rejects.
"""

from __future__ import annotations

import re
from typing import Any, cast

import lark
from celpy.celparser import CELParseError, CELParser
from celpy.evaluation import CEL_ESCAPES, base_functions

from cxpolicy.cel import extensions, runtime
from cxpolicy.cel.errors import CelEvalError, CelSyntaxError
from cxpolicy.cel.nodes import (
    And,
    Binary,
    Call,
    Comprehension,
    Cond,
    Has,
    Ident,
    Index,
    ListLit,
    Lit,
    MapLit,
    Node,
    Opaque,
    OptIndex,
    OptItem,
    OptSelect,
    Or,
    Select,
    Unary,
    field_path,
    read_path,
)

__all__ = [
    "And",
    "Binary",
    "Call",
    "Comprehension",
    "Cond",
    "Has",
    "Ident",
    "Index",
    "ListLit",
    "Lit",
    "MapLit",
    "Node",
    "Opaque",
    "OptIndex",
    "OptItem",
    "OptSelect",
    "Or",
    "Select",
    "Unary",
    "field_path",
    "parse",
    "read_path",
]


_RELATIONS = {
    "relation_lt": "<",
    "relation_le": "<=",
    "relation_gt": ">",
    "relation_ge": ">=",
    "relation_eq": "==",
    "relation_ne": "!=",
    "relation_in": "in",
}
_ADDITIONS = {"addition_add": "+", "addition_sub": "-"}
_MULTIPLICATIONS = {"multiplication_mul": "*", "multiplication_div": "/", "multiplication_mod": "%"}
_MACROS = {"all": 2, "exists": 2, "exists_one": 2, "filter": 2, "map": 2, "existsOne": 2, "optMap": 2, "optFlatMap": 2}
# cel-go's two-variable comprehensions (macros2): argument counts with two variables.
_TWO_VARIABLE = {"all": (3,), "exists": (3,), "existsOne": (3,), "transformList": (3, 4), "transformMap": (3, 4)}
# cel-python's own macros; kept on its evaluator with their variables bound.
_EXTENSION_MACROS = {"reduce": 4, "min": 0}
_METHOD_ARITY = {"contains": 1, "startsWith": 1, "endsWith": 1, "matches": 1, "size": 0}
_FUNCTION_ARITY = {"size": 1, "matches": 2}
# Every name cel-python can call; names outside it and the macros can never evaluate.
_KNOWN = frozenset(name for name in base_functions if name[0] != "_") | {"dyn", "has"}
# Bare identifiers cel-python resolves to a type, a function or a protobuf package.
_BUILTIN_NAMES = frozenset(base_functions) | {"google"}

Tree = lark.Tree[Any]

_PARSER: CELParser | None = None
_OPTIONAL_PARSER: lark.Lark | None = None


def _optional_parser() -> lark.Lark:
    """cel-python's grammar plus cel-go's optional syntax: `a.?b`, `a[?k]`, `[?x]`, `{?k: v}`.

    cel-python 0.5 has no optional syntax, so its evaluator cannot run these trees: the
    parser is tried only when cel-python's own fails on a text with a `?`, and whatever it
    accepts runs on the compiled path or is refused (see `expression._require_compiled`).
    """
    global _OPTIONAL_PARSER
    if _OPTIONAL_PARSER is None:
        from importlib.resources import files

        grammar = files("celpy").joinpath("cel.lark").read_text()
        replacements = {
            "member         : member_dot | member_dot_arg | member_index | member_object | primary": (
                "member         : member_dot | member_dot_arg | member_index | member_object | primary"
                " | member_dot_opt | member_index_opt\n"
                'member_dot_opt : member "." "?" IDENT\n'
                'member_index_opt : member "[" "?" expr "]"'
            ),
            'exprlist       : expr ("," expr)*': (
                'exprlist       : optexpr ("," optexpr)*\n?optexpr : expr | opt_expr\nopt_expr : "?" expr'
            ),
            'mapinits       : expr ":" expr ("," expr ":" expr)*': (
                'mapinits       : optexpr ":" expr ("," optexpr ":" expr)*'
            ),
        }
        for old, new in replacements.items():
            if old not in grammar:  # pragma: no cover - a cel-python upgrade changed its grammar
                raise RuntimeError(f"cel-python's grammar changed: cannot add optional syntax at {old!r}")
            grammar = grammar.replace(old, new)
        _OPTIONAL_PARSER = lark.Lark(
            grammar,
            parser="lalr",
            start="expr",
            g_regex_flags=re.M,
            lexer_callbacks={"IDENT": CELParser.ambiguous_literals},
            propagate_positions=True,
            maybe_placeholders=False,
            priority="invert",
        )
    return _OPTIONAL_PARSER


def parse(text: str) -> tuple[Tree, Node]:
    """Parse with cel-python's grammar and convert; raises `CelSyntaxError` with a position.

    The Lark tree is returned too: the fallback hands it to cel-python's evaluator.
    """
    global _PARSER
    _check_string_literals(text)
    if _PARSER is None:
        _PARSER = CELParser()
    tree: Tree | None
    try:
        tree = _PARSER.parse(text)
    except CELParseError as exc:
        tree = _parse_optional(text)
        if tree is None:
            raise _syntax_error(text, exc) from None
    except RecursionError:
        raise CelSyntaxError("expression is nested too deeply") from None
    try:
        node = _Converter(text).convert(tree, frozenset())
    except RecursionError:
        raise CelSyntaxError("expression is nested too deeply") from None
    _check_optional_items(text, node)
    return tree, node


def _parse_optional(text: str) -> Tree | None:
    """The tree of a text that uses optional syntax, or None (cel-python's error stands)."""
    if "?" not in text:
        return None
    try:
        return _optional_parser().parse(text)
    except (lark.exceptions.LarkError, RecursionError):
        return None


def _check_optional_items(text: str, root: Node) -> None:
    """`?x` marks an entry of a list or map literal only (not a call argument or map value)."""
    stack = [root]
    while stack:
        node = stack.pop()
        allowed: tuple[Node, ...] = ()
        if isinstance(node, ListLit):
            allowed = node.items
        elif isinstance(node, MapLit):
            allowed = tuple(key for key, _ in node.entries)
        for child in node.children():
            if isinstance(child, OptItem) and not any(child is a for a in allowed):
                line = text.count("\n", 0, child.start) + 1
                col = child.start - (text.rfind("\n", 0, child.start) + 1) + 1
                raise CelSyntaxError("`?` marks an optional list element or map key only", line, col)
            stack.append(child)


def _check_string_literals(text: str) -> None:
    """Reject an unterminated string literal in one linear pass, before cel-python's lexer.

    cel-python's string regexes let a backslash be read both as an escape and as any
    character, so on an unterminated literal Python's `re` backtracks exponentially in the
    number of backslashes (found by fuzzing: 60 backslashes would take over a day). A literal
    that this scan finds closed is left to Lark, which stays the authority on what is valid.
    """
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c not in "\"'":
            i += 1
            continue
        # r/R (raw: backslashes do not escape), optionally with b/B, right before the quote.
        j = i
        while j > 0 and text[j - 1] in "rRbB" and j > i - 2:
            j -= 1
        raw = any(ch in "rR" for ch in text[j:i]) and (j == 0 or not (text[j - 1].isalnum() or text[j - 1] == "_"))
        quote = text[i : i + 3] if text.startswith(c * 3, i) else c
        k = i + len(quote)
        closed = False
        while k < n:
            ch = text[k]
            if ch == "\\" and not raw:
                k += 2
                continue
            if text.startswith(quote, k):
                k += len(quote)
                closed = True
                break
            if ch == "\n" and len(quote) == 1:
                break
            k += 1
        if not closed:
            line = text.count("\n", 0, i) + 1
            col = i - (text.rfind("\n", 0, i) + 1) + 1
            raise CelSyntaxError("unterminated string literal", line, col)
        i = k


def _syntax_error(text: str, exc: CELParseError) -> CelSyntaxError:
    cause = exc.__context__
    line = exc.line or 1
    col = exc.column or 1
    offset = _offset(text, line, col)
    if isinstance(cause, lark.exceptions.UnexpectedCharacters):
        return CelSyntaxError(f"unexpected character {cause.char!r}", line, col, _slip_hint(text, offset, cause.char))
    if isinstance(cause, lark.exceptions.UnexpectedToken):
        token = cause.token
        if token.type == "$END":
            lines = text.splitlines() or [""]
            hint = _unclosed_hint(text)
            return CelSyntaxError("unexpected end of expression", len(lines), len(lines[-1]) + 1, hint)
        return CelSyntaxError(f"unexpected `{token}`", line, col, _slip_hint(text, offset, str(token)))
    return CelSyntaxError(str(exc).splitlines()[0] if str(exc) else "invalid CEL", line, col)


def _offset(text: str, line: int, col: int) -> int:
    starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
    return starts[min(line, len(starts)) - 1] + col - 1


#: Words from other languages that CEL spells as operators.
_WORD_OPERATORS = {"and": "&&", "or": "||", "AND": "&&", "OR": "||"}
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def _slip_hint(text: str, offset: int, found: str) -> str | None:
    """The fix for a slip authors make coming from SQL, Python or spreadsheets, or None."""
    if found == "=":
        return "compare with `==`: a single `=` is not a CEL operator"
    if found in _WORD_OPERATORS:
        return f"CEL writes `{found}` as `{_WORD_OPERATORS[found]}`"
    before = text[:offset].rstrip()
    if re.search(r"(?:^|[^\w.])not$", before):
        return "CEL writes `not` as `!`: `!x`, or `!(a && b)`"
    if found == ",":
        for match in _THOUSANDS.finditer(text):
            if match.start() < offset < match.end():
                plain = match.group().replace(",", "")
                return f"CEL numbers have no thousands separators: write `{plain}`"
    return None


def _unclosed_hint(text: str) -> str | None:
    """Which bracket is still open at the end, so the author closes the right one."""
    stack: list[str] = []
    pairs = {"(": ")", "[": "]", "{": "}"}
    for c in _without_strings(text):
        if c in pairs:
            stack.append(c)
        elif c in pairs.values() and stack and pairs[stack[-1]] == c:
            stack.pop()
    if stack:
        return f"a `{stack[-1]}` is still open: close it with `{pairs[stack[-1]]}`"
    return None


def _without_strings(text: str) -> str:
    return re.sub(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'", "", text)


class _Converter:
    """One pass over cel-python's Lark tree; `bound` holds the macro variables in scope."""

    def __init__(self, text: str) -> None:
        self.text = text

    def convert(self, tree: Tree, bound: frozenset[str]) -> Node:
        # Skip the single-child levels of the precedence ladder without recursing.
        while tree.data in _PASS_THROUGH and len(tree.children) == 1:
            tree = cast(Tree, tree.children[0])
        method = getattr(self, f"_{tree.data}", None)
        if method is None:  # pragma: no cover - the grammar has no other rules
            raise CelSyntaxError(f"unsupported construct {tree.data}", *self._pos(tree))
        return cast(Node, method(tree, bound))

    # -- positions ------------------------------------------------------------------------
    @staticmethod
    def _pos(tree: Tree | lark.Token) -> tuple[int, int]:
        if isinstance(tree, lark.Token):
            return tree.line or 1, tree.column or 1
        return getattr(tree.meta, "line", 1), getattr(tree.meta, "column", 1)

    @staticmethod
    def _span(tree: Tree) -> tuple[int, int]:
        return getattr(tree.meta, "start_pos", 0), getattr(tree.meta, "end_pos", 0)

    def _error(self, message: str, at: Tree | lark.Token) -> CelSyntaxError:
        return CelSyntaxError(message, *self._pos(at))

    # -- operators ------------------------------------------------------------------------
    def _expr(self, tree: Tree, bound: frozenset[str]) -> Node:
        test, then, other = (self.convert(cast(Tree, c), bound) for c in tree.children)
        return Cond(*self._span(tree), test, then, other)

    def _conditionalor(self, tree: Tree, bound: frozenset[str]) -> Node:
        left, right = (self.convert(cast(Tree, c), bound) for c in tree.children)
        return Or(*self._span(tree), left, right)

    def _conditionaland(self, tree: Tree, bound: frozenset[str]) -> Node:
        left, right = (self.convert(cast(Tree, c), bound) for c in tree.children)
        return And(*self._span(tree), left, right)

    def _binary(self, tree: Tree, bound: frozenset[str], ops: dict[str, str]) -> Node:
        op_tree, right_tree = cast(tuple[Tree, Tree], tree.children)
        left = self.convert(cast(Tree, op_tree.children[0]), bound)
        right = self.convert(right_tree, bound)
        return Binary(*self._span(tree), ops[op_tree.data], left, right)

    def _relation(self, tree: Tree, bound: frozenset[str]) -> Node:
        return self._binary(tree, bound, _RELATIONS)

    def _addition(self, tree: Tree, bound: frozenset[str]) -> Node:
        return self._binary(tree, bound, _ADDITIONS)

    def _multiplication(self, tree: Tree, bound: frozenset[str]) -> Node:
        return self._binary(tree, bound, _MULTIPLICATIONS)

    def _unary(self, tree: Tree, bound: frozenset[str]) -> Node:
        op_tree, operand = cast(tuple[Tree, Tree], tree.children)
        op = "!" if op_tree.data == "unary_not" else "-"
        return Unary(*self._span(tree), op, self.convert(operand, bound))

    # -- members --------------------------------------------------------------------------
    def _member_dot(self, tree: Tree, bound: frozenset[str]) -> Node:
        operand, name = tree.children
        return Select(*self._span(tree), self.convert(cast(Tree, operand), bound), str(name))

    def _member_index(self, tree: Tree, bound: frozenset[str]) -> Node:
        operand, key = (self.convert(cast(Tree, c), bound) for c in tree.children)
        return Index(*self._span(tree), operand, key)

    def _member_dot_opt(self, tree: Tree, bound: frozenset[str]) -> Node:
        operand, name = tree.children
        return OptSelect(*self._span(tree), self.convert(cast(Tree, operand), bound), str(name))

    def _member_index_opt(self, tree: Tree, bound: frozenset[str]) -> Node:
        operand, key = (self.convert(cast(Tree, c), bound) for c in tree.children)
        return OptIndex(*self._span(tree), operand, key)

    def _opt_expr(self, tree: Tree, bound: frozenset[str]) -> Node:
        return OptItem(*self._span(tree), self.convert(cast(Tree, tree.children[0]), bound))

    def _member_object(self, tree: Tree, bound: frozenset[str]) -> Node:
        return Opaque(*self._span(tree), "message construction", self._all(tree, bound))

    def _member_dot_arg(self, tree: Tree, bound: frozenset[str]) -> Node:
        target_tree, name_token = tree.children[:2]
        name = str(name_token)
        arg_trees = self._args(tree.children[2] if len(tree.children) == 3 else None)
        if name in _MACROS or name in _EXTENSION_MACROS or name in _TWO_VARIABLE:
            return self._macro(tree, cast(Tree, target_tree), name, arg_trees, bound)
        namespace = self._namespace(cast(Tree, target_tree), name, bound)
        args = tuple(self.convert(a, bound) for a in arg_trees)
        if namespace is not None:  # `math.greatest(...)`: a global with a dotted name
            return self._extension(tree, namespace, None, args, name_token)
        target = self.convert(cast(Tree, target_tree), bound)
        return self._call(tree, name, target, args, name_token)

    def _namespace(self, target: Tree, name: str, bound: frozenset[str]) -> str | None:
        """`ns.name` when `target` is the bare namespace `math`, `strings`, `ip`, ..."""
        while target.data in _PASS_THROUGH and len(target.children) == 1:
            target = cast(Tree, target.children[0])
        if target.data != "ident":
            return None
        ns = str(target.children[0])
        full = f"{ns}.{name}"
        if ns in extensions.NAMESPACES and ns not in bound and full in extensions.FUNCTIONS:
            return full
        return None

    def _extension(
        self, tree: Tree, name: str, target: Node | None, args: tuple[Node, ...], name_token: Any
    ) -> Node:
        function = extensions.FUNCTIONS.get(name)
        if target is not None and name in extensions.METHOD_ALIASES:
            function = extensions.METHOD_ALIASES[name]
        assert function is not None
        if function.method != (target is not None):
            form = f"x.{name}(...)" if function.method else f"{name}(...)"
            raise self._error(f"`{name}` is called as `{form}`", name_token)
        low = min(function.arities)
        if function.variadic:
            if len(args) < low:
                raise self._error(f"`{name}` takes at least {low} argument{'s' * (low != 1)}, not 0", tree)
        elif len(args) not in function.arities:
            counts = " or ".join(str(n) for n in sorted(function.arities))
            raise self._error(f"`{name}` takes {counts} argument{'s' * (counts != '1')}, not {len(args)}", tree)
        return Call(*self._span(tree), name, target, args)

    def _macro(
        self,
        tree: Tree,
        target_tree: Tree,
        name: str,
        arg_trees: list[Tree],
        bound: frozenset[str],
    ) -> Node:
        target = self.convert(target_tree, bound)
        arity = _MACROS.get(name, _EXTENSION_MACROS.get(name))
        two = _TWO_VARIABLE.get(name, ())
        if len(arg_trees) in two:
            names = [self._variable(a) for a in arg_trees[:2]]
            if names[0] == names[1]:
                raise self._error(f"`{name}` needs two different variable names", tree)
            inner = bound | frozenset(names)
            args = tuple(self.convert(a, inner) for a in arg_trees[2:])
            macro = {"existsOne": "exists_one"}.get(name, name)
            return Comprehension(*self._span(tree), macro, target, names[0], args, names[1])
        if len(arg_trees) != arity and not (name == "map" and len(arg_trees) == 3):
            counts = " or ".join(str(n) for n in sorted({*(() if arity is None else (arity,)), *two}))
            raise self._error(f"`{name}` takes {counts} arguments, not {len(arg_trees)}", tree)
        if name == "min":
            return Opaque(*self._span(tree), "min()", (target,))
        if name == "existsOne":
            name = "exists_one"
        variables = 2 if name == "reduce" else 1
        names = [self._variable(a) for a in arg_trees[:variables]]
        inner = bound | frozenset(names)
        if name == "reduce":  # reduce(r, i, init, body): init sees no variables
            parts = (target, self.convert(arg_trees[2], bound), self.convert(arg_trees[3], inner))
            return Opaque(*self._span(tree), "reduce()", parts)
        args = tuple(self.convert(a, inner) for a in arg_trees[1:])
        return Comprehension(*self._span(tree), name, target, names[0], args)

    def _variable(self, tree: Tree) -> str:
        node = tree
        while node.data in _PASS_THROUGH and len(node.children) == 1:
            node = cast(Tree, node.children[0])
        if node.data == "ident":
            return str(node.children[0])
        raise self._error("a macro variable must be a simple name", tree)

    # -- primaries ------------------------------------------------------------------------
    def _ident(self, tree: Tree, bound: frozenset[str]) -> Node:
        name = str(tree.children[0])
        if name in bound:
            return Ident(*self._span(tree), name, True)
        if name in _BUILTIN_NAMES:
            return Opaque(*self._span(tree), f"built-in name {name}", ())
        return Ident(*self._span(tree), name, False)

    def _ident_arg(self, tree: Tree, bound: frozenset[str]) -> Node:
        name_token = tree.children[0]
        name = str(name_token)
        arg_trees = self._args(tree.children[1] if len(tree.children) == 2 else None)
        if name == "has":
            return self._has(tree, arg_trees, bound)
        args = tuple(self.convert(a, bound) for a in arg_trees)
        if name in extensions.FUNCTIONS:
            return self._extension(tree, name, None, args, name_token)
        if name == "dyn":
            if len(args) != 1:
                raise self._error(f"`dyn` takes 1 argument, not {len(args)}", tree)
            return args[0]
        return self._call(tree, name, None, args, name_token)

    def _has(self, tree: Tree, arg_trees: list[Tree], bound: frozenset[str]) -> Node:
        if len(arg_trees) == 1:
            arg = self.convert(arg_trees[0], bound)
            if isinstance(arg, Select):
                return Has(*self._span(tree), arg.operand, arg.field)
        raise self._error("`has` takes one field selection, such as has(context.amount)", tree)

    def _call(
        self,
        tree: Tree,
        name: str,
        target: Node | None,
        args: tuple[Node, ...],
        name_token: Any,
    ) -> Node:
        if name in extensions.FUNCTIONS or (target is not None and name in extensions.METHOD_ALIASES):
            return self._extension(tree, name, target, args, name_token)
        if name not in _KNOWN:
            error = self._error(f"unknown function `{name}`", name_token)
            error.hint = _function_hint(name, target is not None)
            raise error
        arity = (_FUNCTION_ARITY if target is None else _METHOD_ARITY).get(name)
        if arity is None:
            parts = args if target is None else (target, *args)
            return Opaque(*self._span(tree), f"function {name}", parts)
        if len(args) != arity:
            raise self._error(f"`{name}` takes {arity} arguments, not {len(args)}", tree)
        if name == "matches":
            pattern = args[-1]
            if isinstance(pattern, Lit) and isinstance(pattern.value, str):
                try:
                    runtime.regex(pattern.value)
                except CelEvalError as exc:
                    raise self._error(exc.message, tree) from None
        return Call(*self._span(tree), name, target, args)

    def _literal(self, tree: Tree, bound: frozenset[str]) -> Node:
        token = cast(lark.Token, tree.children[0])
        start, end = self._span(tree)
        kind = token.type
        text = str(token)
        if kind == "INT_LIT":
            digits = text.lstrip("-")
            value = int(digits[2:], 16) if digits[:2].lower() == "0x" else int(digits)
            value = -value if text.startswith("-") else value
            if not runtime.INT_MIN <= value <= runtime.INT_MAX:
                raise self._error(f"int literal {text} is outside the int64 range", token)
            return Lit(start, end, value)
        if kind == "FLOAT_LIT":
            return Lit(start, end, float(text))
        if kind in ("STRING_LIT", "MLSTRING_LIT"):
            try:
                return Lit(start, end, _decode_string(text))
            except ValueError as exc:  # an escape naming no code point, e.g. \U00110000
                raise self._error(f"invalid string literal: {exc}", token) from None
        if kind == "BOOL_LIT":
            return Lit(start, end, text == "true")
        if kind == "NULL_LIT":
            return Lit(start, end, None)
        return Opaque(start, end, f"{kind.lower()} literal", ())  # uint, bytes

    def _paren_expr(self, tree: Tree, bound: frozenset[str]) -> Node:
        return self.convert(cast(Tree, tree.children[0]), bound)

    def _list_lit(self, tree: Tree, bound: frozenset[str]) -> Node:
        items = self._args(tree.children[0] if tree.children else None)
        return ListLit(*self._span(tree), tuple(self.convert(i, bound) for i in items))

    def _map_lit(self, tree: Tree, bound: frozenset[str]) -> Node:
        parts = self._args(tree.children[0] if tree.children else None)
        nodes = [self.convert(p, bound) for p in parts]
        for entry_key, key_tree in zip(nodes[0::2], parts[0::2], strict=True):
            key = entry_key.expr if isinstance(entry_key, OptItem) else entry_key
            if isinstance(key, Lit) and (key.value is None or type(key.value) is float):
                kind = "null" if key.value is None else "double"
                raise self._error(f"a map key must be a string, int, uint or bool, not {kind}", key_tree)
            if isinstance(key, ListLit | MapLit):
                raise self._error("a map key must be a string, int, uint or bool, not a list or map", key_tree)
        return MapLit(*self._span(tree), tuple(zip(nodes[0::2], nodes[1::2], strict=True)))

    def _dot_ident(self, tree: Tree, bound: frozenset[str]) -> Node:
        return Opaque(*self._span(tree), "root-scoped name", ())

    def _dot_ident_arg(self, tree: Tree, bound: frozenset[str]) -> Node:
        return Opaque(*self._span(tree), "root-scoped call", self._all(tree, bound))

    # -- helpers --------------------------------------------------------------------------
    @staticmethod
    def _args(exprlist: Any) -> list[Tree]:
        if exprlist is None:
            return []
        return [c for c in cast(Tree, exprlist).children if isinstance(c, lark.Tree)]

    def _all(self, tree: Tree, bound: frozenset[str]) -> tuple[Node, ...]:
        """Every expression below `tree`, so fields inside opaque constructs are still seen."""
        found: list[Node] = []
        for child in tree.children:
            if not isinstance(child, lark.Tree):
                continue
            if child.data in ("exprlist", "fieldinits", "mapinits"):
                found.extend(self._all(child, bound))
            else:
                found.append(self.convert(child, bound))
        return tuple(found)


def _function_hint(name: str, method: bool) -> str | None:
    import difflib

    names = sorted(
        {n for n in _KNOWN if n[0].isalpha()}
        | {f.name for f in extensions.FUNCTIONS.values() if f.method == method}
        | (set(_MACROS) if method else set())
    )
    guess = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if not guess:
        lowered = {n.lower(): n for n in names}
        guess = [lowered[name.lower()]] if name.lower() in lowered else []
    return f"did you mean `{guess[0]}`?" if guess else None


# cel-python's escape pattern, completed to the CEL definition (`\?`, `` \` ``, `\X`), and
# with `.` matching newlines: its own decoder drops them from triple-quoted strings.
_ESCAPE = re.compile(
    r"""\\[abfnrtv"'\\?`]|\\[0-3][0-7]{2}|\\[xX][0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}|\\U[0-9a-fA-F]{8}|.""",
    re.DOTALL,
)
_PUNCTUATION_ESCAPES = {**CEL_ESCAPES, "\\?": "?", "\\`": "`"}


def _decode_string(text: str) -> str:
    raw = text[0] in "rR"
    body = text[1:] if raw else text
    quotes = 3 if body[:3] in ('"""', "'''") else 1
    body = body[quotes:-quotes]
    if raw:
        return body
    out: list[str] = []
    for match in _ESCAPE.finditer(body):
        piece = match.group()
        if len(piece) == 1:
            out.append(piece)
        elif piece[1] in "xXuU":
            out.append(chr(int(piece[2:], 16)))
        elif len(piece) == 4:
            out.append(chr(int(piece[1:], 8)))
        else:
            out.append(_PUNCTUATION_ESCAPES.get(piece, piece))
    return "".join(out)


_PASS_THROUGH = frozenset(
    {
        "expr",
        "conditionalor",
        "conditionaland",
        "relation",
        "addition",
        "multiplication",
        "unary",
        "member",
        "primary",
    }
)
