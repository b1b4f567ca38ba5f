"""Syntax: .cxp text → `ast.Module`, or syntax diagnostics.

No semantics here: names are not resolved and values are not checked (that is checker.py).
The conds pre-pass runs first so CEL text never reaches the .cxp lexer.

Two parsers, one grammar (grammar/cxp.lark): the hand-written one in fastparse.py reads what
it accepts (~10× faster); anything else goes to Lark's LALR parser, which is the reference
and the only source of syntax diagnostics. `parse_reference` is Lark alone (the differential
test compares the two).
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any

from cxpolicy.kinds import ConditionKind, DimensionKind, Op
from cxpolicy.lang import ast, codes
from cxpolicy.lang.fastparse import fast_parse
from cxpolicy.lang.prepass import PrePass, prepass
from cxpolicy.lang.source import Diagnostic, Span
from cxpolicy.lang.vocabulary import suggest
from cxpolicy.resources import grammar_text

if TYPE_CHECKING:  # lark is imported only when a file needs the reference parser
    from lark import Lark, Token, Tree
    from lark.exceptions import UnexpectedInput

__all__ = ["ParseResult", "parse", "parse_reference"]


@cache
def _parser() -> Lark:
    from lark import Lark

    return Lark(grammar_text(), parser="lalr", propagate_positions=True, maybe_placeholders=True)


class ParseResult:
    """The parse stage's output for one file: the AST (None if it does not parse), the
    diagnostics, the pre-pass (conditions and comments) and the concrete parse tree, which
    the formatter prints from (it keeps what the AST merges: clause order, comments' places)."""

    __slots__ = ("comments", "diagnostics", "module", "pre", "tree")

    def __init__(
        self,
        module: ast.Module | None,
        diagnostics: list[Diagnostic],
        pre: PrePass,
        tree: Tree[Token] | None = None,
    ):
        self.module = module
        self.diagnostics = diagnostics
        self.pre = pre
        self.comments = pre.comments
        self.tree = tree


def parse(text: str, file: str) -> ParseResult:
    """Parse one file. Never raises on bad input: problems come back as diagnostics."""
    pre = prepass(text)
    diags = _prepass_diagnostics(pre, file)
    module = fast_parse(pre, file)
    if module is not None:
        return ParseResult(module, diags, pre)
    return _parse_lark(pre, file, diags)


def parse_reference(text: str, file: str) -> ParseResult:
    """`parse` with the Lark parser only: the reference the fast parser is tested against."""
    pre = prepass(text)
    return _parse_lark(pre, file, _prepass_diagnostics(pre, file))


def _prepass_diagnostics(pre: PrePass, file: str) -> list[Diagnostic]:
    return [
        codes.CXP102(msg, Span(file, line, col, line, col + 1), _problem_hint(msg))
        for line, col, msg in pre.problems
    ]


def _parse_lark(pre: PrePass, file: str, diags: list[Diagnostic]) -> ParseResult:
    from lark.exceptions import UnexpectedEOF, UnexpectedInput, UnexpectedToken

    try:
        tree = _parser().parse(pre.masked)
    except UnexpectedInput as exc:
        if not (isinstance(exc, UnexpectedEOF | UnexpectedToken) and _swallowed(exc, diags)):
            diags.append(_syntax_diagnostic(exc, pre, file))
        return ParseResult(None, diags, pre)
    try:
        module = _Builder(file, pre).transform(tree)
    except _BuildError as exc:
        diags.append(exc.diagnostic)
        return ParseResult(None, diags, pre)
    except _BadString as exc:
        t = exc.tok
        line, col = t.line or 1, t.column or 1
        diags.append(
            codes.CXP103(
                f"invalid string literal: {exc.reason.lower()}",
                Span(file, line, col, t.end_line or line, t.end_column or col + 1),
                'strings use JSON escapes: \\" \\\\ \\n \\t \\uXXXX',
            )
        )
        return ParseResult(None, diags, pre)
    assert isinstance(module, ast.Module)
    return ParseResult(module, diags, pre, tree)


# ---------------------------------------------------------------------------------- errors


def _problem_hint(message: str) -> str | None:
    if message.startswith("unclosed `"):
        closer = {"(": ")", "[": "]", "{": "}"}.get(message[10], ")")
        return f"close it with `{closer}`: a condition continues onto the next lines while a bracket is open"
    return None


def _swallowed(exc: UnexpectedInput, diags: list[Diagnostic]) -> bool:
    """An end-of-file error caused by a condition whose open bracket ate the rest of the file:
    the CXP102 already says so, at the bracket; a CXP101 at the same place would mislead."""
    from lark.exceptions import UnexpectedEOF

    at_end = isinstance(exc, UnexpectedEOF) or getattr(getattr(exc, "token", None), "type", None) == "$END"
    return at_end and any(d.code == "CXP102" and d.message.startswith("unclosed `") for d in diags)

_FRIENDLY = {
    "IDENT": "a name",
    "STRING": 'a "string"',
    "NUMBER": "a number",
    "COND": "a condition",
    "CMP": "`=`, `!=`, `<`, `<=`, `>` or `>=`",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "COMMA": "`,`",
    "COLON": "`:`",
    "EQUAL": "`=`",
    "DIMKIND": "`ordered` or `set`",
    "$END": "the end of the file",
}


def _friendly(term: str) -> str:
    if term in _FRIENDLY:
        return _FRIENDLY[term]
    if term.isupper() and term.replace("_", "").isalpha():
        return f"`{term.lower()}`"
    return term


class _BuildError(Exception):
    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def _syntax_diagnostic(exc: UnexpectedInput, pre: PrePass, file: str) -> Diagnostic:
    from lark import Token
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    line = getattr(exc, "line", 1) or 1
    col = getattr(exc, "column", 1) or 1
    if line < 1:
        line, col = 1, 1
    span = Span(file, line, col, line, col + 1)
    hint = None
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        ch = pre.masked[pos] if pos < len(pre.masked) else ""
        shown = repr(ch) if ch in ("\x01", "\x02") else f"`{ch}`"
        msg = f"unexpected character {shown}"
        if ch == "'":
            hint = 'strings in .cxp are written in double quotes: "like this"'
        return codes.CXP101(msg, span, hint)
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        accepts = getattr(exc, "accepts", None) or exc.expected
        expected = sorted(_friendly(t) for t in accepts if not t.startswith("__"))
        prev = exc.state.value_stack[-1] if exc.state is not None and exc.state.value_stack else None
        prev_type = prev.type if isinstance(prev, Token) else None
        found = "end of file" if tok.type == "$END" else f"`{tok.value}`"
        if tok.type == "COND":
            found = "a condition"
        keyword = _keyword_before(pre.masked, tok.start_pos or 0)
        if keyword is not None:
            k_line, k_col, k_word = keyword
            msg = f"`{k_word}` starts a clause, but the clause before it is incomplete"
            hint = "finish the previous clause (a missing value or `]`?)"
            return codes.CXP101(
                msg, Span(file, k_line, k_col, k_line, k_col + len(k_word)), hint
            )
        if prev_type in ("WHEN", "UNLESS") and "a condition" in expected:
            msg = f"missing condition after `{prev.value}`"  # type: ignore[union-attr]
            hint = "write the CEL expression on the same line, e.g. `when context.otp_verified`"
        else:
            msg = f"unexpected {found}; expected {_join(expected)}"
        words = [e.strip("`") for e in expected if e.startswith("`") and e.strip("`").isidentifier()]
        if tok.type == "IDENT" and hint is None:
            hint = suggest(str(tok.value), words)
        if "`decide`" in expected and tok.type == "RBRACE":
            hint = "every rule needs a `decide` clause"
        return codes.CXP101(msg, span, hint)
    if isinstance(exc, UnexpectedEOF):
        return codes.CXP101("unexpected end of file", span)
    return codes.CXP101(str(exc).splitlines()[0], span)


_CLAUSE_WORDS = frozenset({"match", "decide", "because", "cite", "rule", "test", "expect", "request"})


def _keyword_before(masked: str, pos: int) -> tuple[int, int, str] | None:
    """A clause keyword read as a value (`match action =` then `decide` on the next line)."""
    import re

    m = re.search(r"([A-Za-z_][A-Za-z0-9_.\-]*)\s*$", masked[:pos])
    if m is None or m.group(1) not in _CLAUSE_WORDS:
        return None
    before = masked[: m.start(1)].rstrip()
    if not before.endswith(("=", "<", ">", ",", "[")):
        return None
    line = masked.count("\n", 0, m.start(1)) + 1
    col = m.start(1) - (masked.rfind("\n", 0, m.start(1)) + 1) + 1
    return line, col, m.group(1)


def _join(items: list[str]) -> str:
    items = list(dict.fromkeys(items))
    if len(items) > 8:
        items = [*items[:8], "…"]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


# --------------------------------------------------------------------------------- builder


class _BadString(Exception):
    def __init__(self, tok: Token, reason: str):
        super().__init__(reason)
        self.tok = tok
        self.reason = reason


def _unquote(tok: Token) -> str:
    """A .cxp string literal: JSON's escapes; a raw tab or other control character is kept."""
    try:
        s: str = json.loads(tok.value, strict=False)
    except json.JSONDecodeError as exc:
        raise _BadString(tok, exc.msg) from None
    return s


class _Builder:
    """Lark tree → ast nodes. Spans come from Lark's propagated positions.

    A plain dispatcher rather than `lark.Transformer` with `v_args(meta=True)`: that wraps
    every callback on every call, which tripled the time to build a 10,000-rule policy.
    """

    def __init__(self, file: str, pre: PrePass):
        self.file = file
        self.pre = pre
        self._methods: dict[str, Any] = {}
        from lark import Tree

        self._tree = Tree

    def transform(self, tree: Tree[Token]) -> Any:
        methods = self._methods
        tree_type = self._tree
        children = [self.transform(c) if isinstance(c, tree_type) else c for c in tree.children]
        fn = methods.get(tree.data)
        if fn is None:
            fn = methods[tree.data] = getattr(self, str(tree.data))
        return fn(tree.meta, children)

    def _span(self, meta: Any) -> Span:
        if getattr(meta, "empty", True):
            return Span(self.file, 1, 1, 1, 1)
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tspan(self, tok: Token) -> Span:
        return Span(
            self.file,
            tok.line or 1,
            tok.column or 1,
            tok.end_line or tok.line or 1,
            tok.end_column or (tok.column or 1) + len(tok.value),
        )

    # top level
    def start(self, meta: Any, items: list[Any]) -> ast.Module:
        return ast.Module(self.file, tuple(items), self._span(meta))

    def package(self, meta: Any, ch: list[Token]) -> ast.Package:
        return ast.Package(str(ch[0]), self._span(meta))

    def use(self, meta: Any, ch: list[Token]) -> ast.Use:
        return ast.Use(str(ch[0]), self._span(meta))

    def scope(self, meta: Any, ch: list[ast.Constraint]) -> ast.Scope:
        return ast.Scope(tuple(ch), self._span(meta))

    def default(self, meta: Any, ch: list[ast.EffectSpec]) -> ast.DefaultDecl:
        return ast.DefaultDecl(ch[0], self._span(meta))

    def cite_decl(self, meta: Any, ch: list[Token]) -> ast.CiteDecl:
        return ast.CiteDecl(str(ch[0]), _unquote(ch[1]), self._span(meta))

    def dimension(self, meta: Any, ch: list[Any]) -> ast.Dimension:
        name, path, kind, values, default = ch
        return ast.Dimension(
            str(name),
            str(path) if path is not None else None,
            DimensionKind(str(kind)) if kind is not None else DimensionKind.PLAIN,
            tuple(values or ()),
            default,
            self._span(meta),
            self._tspan(name),
        )

    def extend(self, meta: Any, ch: list[Any]) -> ast.ExtendDimension:
        name, values = ch
        return ast.ExtendDimension(str(name), tuple(values or ()), self._span(meta), self._tspan(name))

    def attribute(self, meta: Any, ch: list[Any]) -> ast.Attribute:
        path, typ = ch[0], ch[1]
        has_default = len(ch) > 2 and ch[2] is not _ABSENT and ch[2] is not None
        default = ch[2] if has_default else None
        if len(ch) > 2 and isinstance(ch[2], _Null):
            has_default, default = True, None
        return ast.Attribute(str(path), str(typ), default, has_default, self._span(meta), self._tspan(typ))

    # rules
    def rule(self, meta: Any, ch: list[Any]) -> ast.Rule:
        name = ch[0]
        clauses = ch[1:]
        matches: list[ast.Constraint] = []
        conds: list[ast.Condition] = []
        decides: list[ast.EffectSpec] = []
        because: list[str] = []
        cites: list[ast.CiteRef] = []
        for c in clauses:
            if isinstance(c, _Match):
                matches.extend(c.constraints)
            elif isinstance(c, ast.Condition):
                conds.append(c)
            elif isinstance(c, _Decide):
                decides.append(c.spec)
            elif isinstance(c, _Because):
                because.append(c.text)
            elif isinstance(c, _Cites):
                cites.extend(c.refs)
        return ast.Rule(
            str(name),
            tuple(matches),
            tuple(conds),
            tuple(decides),
            tuple(because),
            tuple(cites),
            self._span(meta),
            self._tspan(name),
        )

    def match(self, meta: Any, ch: list[ast.Constraint]) -> _Match:
        return _Match(tuple(ch))

    def _cond(self, kind: ConditionKind, tok: Token) -> ast.Condition:
        start = tok.start_pos or 0
        ct = self.pre.conds.get(start)
        if ct is None:  # cannot happen: every COND token comes from the pre-pass
            raise _BuildError(codes.CXP199("internal: lost condition text", self._tspan(tok)))
        span = Span(self.file, ct.line, ct.col, ct.end_line, ct.end_col)
        return ast.Condition(kind, ct.raw, ct.cel, span)

    def when(self, meta: Any, ch: list[Token]) -> ast.Condition:
        return self._cond(ConditionKind.WHEN, ch[0])

    def unless(self, meta: Any, ch: list[Token]) -> ast.Condition:
        return self._cond(ConditionKind.UNLESS, ch[0])

    def decide(self, meta: Any, ch: list[ast.EffectSpec]) -> _Decide:
        return _Decide(ch[0])

    def because(self, meta: Any, ch: list[Token]) -> _Because:
        return _Because(_unquote(ch[0]))

    def cite(self, meta: Any, ch: list[ast.CiteRef]) -> _Cites:
        return _Cites(tuple(ch))

    def cite_name(self, meta: Any, ch: list[Token]) -> ast.CiteRef:
        return ast.CiteRef(str(ch[0]), None, self._span(meta))

    def cite_text(self, meta: Any, ch: list[Token]) -> ast.CiteRef:
        return ast.CiteRef(None, _unquote(ch[0]), self._span(meta))

    def _constraint(self, meta: Any, dim: Token, op: str, values: list[ast.Value] | None) -> ast.Constraint:
        return ast.Constraint(str(dim), Op(op), tuple(values or ()), self._span(meta), self._tspan(dim))

    def cmp_constraint(self, meta: Any, ch: list[Any]) -> ast.Constraint:
        return self._constraint(meta, ch[0], str(ch[1]), [ch[2]])

    def in_constraint(self, meta: Any, ch: list[Any]) -> ast.Constraint:
        return self._constraint(meta, ch[0], "in", ch[1])

    def not_in_constraint(self, meta: Any, ch: list[Any]) -> ast.Constraint:
        return self._constraint(meta, ch[0], "not in", ch[1])

    # effects
    def allow(self, meta: Any, ch: list[Any]) -> ast.EffectSpec:
        return ast.EffectSpec("allow", span=self._span(meta))

    def require_otp(self, meta: Any, ch: list[Any]) -> ast.EffectSpec:
        return ast.EffectSpec("require_otp", span=self._span(meta))

    def escalate(self, meta: Any, ch: list[Any]) -> ast.EffectSpec:
        queue = _unquote(ch[0]) if ch and ch[0] is not None else None
        return ast.EffectSpec("escalate", queue=queue, span=self._span(meta))

    def redact(self, meta: Any, ch: list[Any]) -> ast.EffectSpec:
        # children: [redact_list (a list, maybe empty) or None when no brackets, style or None]
        values, style = ch
        classes = None if values is None else tuple(values)
        return ast.EffectSpec(
            "redact",
            classes=classes,
            style=str(style) if style is not None else None,
            span=self._span(meta),
            style_span=self._tspan(style) if style is not None else self._span(meta),
        )

    def redact_list(self, meta: Any, ch: list[Any]) -> list[ast.Value]:
        return list(ch[0] or [])

    # values
    def value_list(self, meta: Any, ch: list[Any]) -> list[ast.Value]:
        return [v for v in ch if v is not None]

    def name_value(self, meta: Any, ch: list[Token]) -> ast.Value:
        return ast.Value(str(ch[0]), False, self._tspan(ch[0]))

    def string_value(self, meta: Any, ch: list[Token]) -> ast.Value:
        return ast.Value(_unquote(ch[0]), True, self._tspan(ch[0]))

    # tests
    def test(self, meta: Any, ch: list[Any]) -> ast.TestBlock:
        name = _unquote(ch[0])
        requests = tuple(c.value for c in ch[1:] if isinstance(c, _Request))
        expects = tuple(c for c in ch[1:] if isinstance(c, ast.Expect))
        return ast.TestBlock(name, requests, expects, self._span(meta))

    def request(self, meta: Any, ch: list[Any]) -> _Request:
        return _Request(ch[0])

    def expect(self, meta: Any, ch: list[ast.Expect]) -> ast.Expect:
        e = ch[0]
        return ast.Expect(e.kind, e.values, self._span(meta))

    def _effect_expect(self, meta: Any, effect: str) -> ast.Expect:
        return ast.Expect("effect", (ast.Value(effect, False, self._span(meta)),), self._span(meta))

    def expect_allow(self, meta: Any, ch: list[Any]) -> ast.Expect:
        return self._effect_expect(meta, "allow")

    def expect_redact_effect(self, meta: Any, ch: list[Any]) -> ast.Expect:
        return self._effect_expect(meta, "redact")

    def expect_require_otp(self, meta: Any, ch: list[Any]) -> ast.Expect:
        return self._effect_expect(meta, "require_otp")

    def expect_escalate(self, meta: Any, ch: list[Any]) -> ast.Expect:
        return self._effect_expect(meta, "escalate")

    def expect_rules(self, meta: Any, ch: list[Any]) -> ast.Expect:
        return ast.Expect("rules", tuple(ch[0] or ()), self._span(meta))

    def expect_rules_includes(self, meta: Any, ch: list[Any]) -> ast.Expect:
        return ast.Expect("rules_includes", tuple(ch[0] or ()), self._span(meta))

    def expect_rules_excludes(self, meta: Any, ch: list[Any]) -> ast.Expect:
        return ast.Expect("rules_excludes", tuple(ch[0] or ()), self._span(meta))

    def expect_redact(self, meta: Any, ch: list[Any]) -> ast.Expect:
        return ast.Expect("redact", tuple(ch[0] or ()), self._span(meta))

    def expect_escalate_to(self, meta: Any, ch: list[Any]) -> ast.Expect:
        return ast.Expect("escalate_to", tuple(ch[0] or ()), self._span(meta))

    # JSON
    def json_object(self, meta: Any, ch: list[Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for pair in ch:
            if pair is None:
                continue
            k, v = pair
            out[k] = None if isinstance(v, _Null) else v
        return out

    def json_pair(self, meta: Any, ch: list[Any]) -> tuple[str, Any]:
        return (_unquote(ch[0]), ch[1])

    def json_array(self, meta: Any, ch: list[Any]) -> list[Any]:
        if ch == [None]:
            return []
        return [None if isinstance(v, _Null) else v for v in ch]

    def json_string(self, meta: Any, ch: list[Token]) -> str:
        return _unquote(ch[0])

    def json_number(self, meta: Any, ch: list[Token]) -> int | float:
        text = ch[0].value
        if any(c in text for c in ".eE"):
            return float(text)
        return int(text)

    def json_true(self, meta: Any, ch: list[Any]) -> bool:
        return True

    def json_false(self, meta: Any, ch: list[Any]) -> bool:
        return False

    def json_null(self, meta: Any, ch: list[Any]) -> _Null:
        return _NULL


class _Null:
    """JSON null inside the builder (None already means "absent" in Lark's placeholders)."""


_NULL = _Null()
_ABSENT = object()


class _Match:
    __slots__ = ("constraints",)

    def __init__(self, constraints: tuple[ast.Constraint, ...]):
        self.constraints = constraints


class _Decide:
    __slots__ = ("spec",)

    def __init__(self, spec: ast.EffectSpec):
        self.spec = spec


class _Because:
    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


class _Cites:
    __slots__ = ("refs",)

    def __init__(self, refs: tuple[ast.CiteRef, ...]):
        self.refs = refs


class _Request:
    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = None if isinstance(value, _Null) else value
