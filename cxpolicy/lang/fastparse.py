"""Hand-written recursive-descent parser for .cxp: pre-pass output → `ast.Module`, or None.

Input: the pre-pass result (`PrePass`: the masked text and its conditions) and the file's
display name. Output: exactly the `ast.Module` — spans included — that the Lark LALR parser in
`syntax.py` builds from `grammar/cxp.lark`, or None for anything that is not well-formed.

Why it exists: Lark took ~75 % of the time to load 10,000 rules (its lexer, parse-tree and
position propagation cost ~20 µs a rule; this reads the tokens once, straight into the AST).

Why None instead of diagnostics: `grammar/cxp.lark` stays the one grammar and Lark the
reference. On any input this parser does not accept — a syntax error, a bad string escape, a
keyword glued to a name that Lark's contextual lexer would split — `syntax.parse` runs the
Lark parser, so every diagnostic (code, message, file:line:col) is Lark's by construction.
This parser only has to be right on what it accepts; tests/lang/test_fastparse.py holds its
trees equal to Lark's on every golden file, pack, ruleset, the benchmark workload and fuzzed
sources (tests/test_fuzz.py's generator).

Lexing matches Lark's contextual lexer on accepted input because no parser state accepts both
IDENT and a keyword (checked by the test against Lark's parse table): where a name may stand
any word is a name, and where a keyword is expected the whole word must equal it.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from itertools import accumulate, repeat
from operator import add, itemgetter, sub
from typing import Any

from cxpolicy.kinds import ConditionKind, DimensionKind, Op
from cxpolicy.lang import ast
from cxpolicy.lang.prepass import PrePass
from cxpolicy.lang.source import Span

__all__ = ["fast_parse"]

# Every terminal of grammar/cxp.lark, each match being (skipped WS and COMMENTs, token, any
# other character); the skip is possessive, so a comment is never cut short to find a token in
# it, and the last match may be only the skip up to the end. Matches tile the text, so offsets
# are running sums of lengths and the whole tokenizer runs in C (`findall`, `accumulate`,
# `map`): a Python loop per token cost 1 µs.
_TOKEN = re.compile(
    r"((?:[ \t\f\r\n]+|#[^\n]*)*+)"
    r"(?:("
    r"[A-Za-z_][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_][A-Za-z0-9_\-]*)*"  # IDENT and keywords
    r'|"(?:[^"\\\n]|\\[^\n])*"'  # STRING
    r"|!=|<=|>=|[=<>{}\[\],:]"  # CMP and punctuation
    r"|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"  # NUMBER
    r"|\x02(?:[\x01\n]*\x01)?"  # COND (a pre-pass placeholder)
    r"|\x03efault"  # _DIM_DEFAULT
    r")|([^ \t\f\r\n#])|\Z)",
    re.DOTALL,
)
_CMP = frozenset({"!=", "<=", ">=", "=", "<", ">"})
_EFFECT_EXPECT = frozenset({"allow", "redact", "require_otp", "escalate"})
_WORD_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_END = ""  # the token after the last one
_first, _second, _third = itemgetter(0), itemgetter(1), itemgetter(2)


class _Fail(Exception):
    """Not accepted here: `syntax.parse` asks the Lark parser instead."""


class _Tokens:
    """The tokens as parallel sequences: text, offset, line, column (1-based, as Lark's)."""

    __slots__ = ("cols", "lines", "starts", "texts")

    def __init__(self, texts: list[str], starts: list[int], lines: list[int], cols: list[int]):
        self.texts = texts
        self.starts = starts
        self.lines = lines
        self.cols = cols


def _tokens(masked: str) -> _Tokens | None:
    parts = _TOKEN.findall(masked)
    while parts and not parts[-1][1] and not parts[-1][2]:
        parts.pop()  # what follows the last token: blanks, comments, the end
    if not parts:
        return _Tokens([_END], [len(masked)], [1], [1])
    if any(map(_third, parts)):
        return None
    texts = list(map(_second, parts))
    tok_len = list(map(len, texts))
    ends = list(accumulate(map(add, map(len, map(_first, parts)), tok_len)))
    starts = list(map(sub, ends, tok_len))
    # line k starts at line_starts[k - 1]; a column is 1 + the offset from there
    line_starts = [0, *(m.end() for m in _NEWLINE.finditer(masked))]
    lines = list(map(bisect_right, repeat(line_starts, len(starts)), starts))
    col_base = [0, *(x - 1 for x in line_starts)]
    cols = list(map(sub, starts, map(col_base.__getitem__, lines)))
    texts.append(_END)
    starts.append(len(masked))
    lines.append(lines[-1])
    cols.append(1)
    return _Tokens(texts, starts, lines, cols)


_NEWLINE = re.compile("\n")


def _unquote(text: str) -> str:
    """A STRING token's value, as syntax.py's `_unquote` reads it (JSON escapes)."""
    if "\\" not in text:
        return text[1:-1]  # nothing to unescape: json.loads would return exactly this
    try:
        s: str = json.loads(text, strict=False)
    except json.JSONDecodeError:
        raise _Fail from None
    return s


def fast_parse(pre: PrePass, file: str) -> ast.Module | None:
    """The module Lark would build from `pre.masked`, or None if this parser does not accept it."""
    toks = _tokens(pre.masked)
    if toks is None:
        return None
    try:
        return _Parser(toks, file, pre).module()
    except (_Fail, IndexError, ValueError, RecursionError):
        return None  # RecursionError: JSON nested thousands deep; Lark's path decides what it is


class _Parser:
    __slots__ = ("cols", "conds", "file", "i", "lines", "starts", "t")

    def __init__(self, toks: _Tokens, file: str, pre: PrePass):
        self.t = toks.texts
        self.starts = toks.starts
        self.lines = toks.lines
        self.cols = toks.cols
        self.file = file
        self.conds = pre.conds
        self.i = 0

    # ------------------------------------------------------------------ token helpers

    def _span(self, first: int) -> Span:
        """From the start of token `first` to the end of the last token consumed."""
        last = self.i - 1
        return Span(
            self.file, self.lines[first], self.cols[first], self.lines[last], self.cols[last] + len(self.t[last])
        )

    def _tspan(self, k: int) -> Span:
        line = self.lines[k]
        col = self.cols[k]
        return Span(self.file, line, col, line, col + len(self.t[k]))

    def _word(self) -> int:
        """Consume a name (any IDENT, keywords included: no state takes both); its index."""
        k = self.i
        if self.t[k][:1] not in _WORD_START:
            raise _Fail
        self.i = k + 1
        return k

    def _string(self) -> int:
        k = self.i
        if self.t[k][:1] != '"':
            raise _Fail
        self.i = k + 1
        return k

    def _punct(self, p: str) -> None:
        if self.t[self.i] != p:
            raise _Fail
        self.i += 1

    # -------------------------------------------------------------------------- items

    def module(self) -> ast.Module:
        items: list[ast.Item] = []
        t = self.t
        while t[self.i] != _END:
            fn = _ITEMS.get(t[self.i])
            if fn is None:
                raise _Fail
            items.append(fn(self))
        if items:
            a, b = items[0].span, items[-1].span
            span = Span(self.file, a.line, a.col, b.end_line, b.end_col)
        else:
            span = Span(self.file, 1, 1, 1, 1)
        return ast.Module(self.file, tuple(items), span)

    def package(self) -> ast.Package:
        kw = self.i
        self.i += 1
        name = self._word()
        return ast.Package(self.t[name], self._span(kw))

    def use(self) -> ast.Use:
        kw = self.i
        self.i += 1
        name = self._word()
        return ast.Use(self.t[name], self._span(kw))

    def scope(self) -> ast.Scope:
        kw = self.i
        self.i += 1
        cs = self._constraints()
        return ast.Scope(tuple(cs), self._span(kw))

    def default(self) -> ast.DefaultDecl:
        kw = self.i
        self.i += 1
        spec = self._effect_spec()
        return ast.DefaultDecl(spec, self._span(kw))

    def cite_decl(self) -> ast.CiteDecl:
        kw = self.i
        self.i += 1
        name = self._word()
        self._punct("=")
        text = self._string()
        return ast.CiteDecl(self.t[name], _unquote(self.t[text]), self._span(kw))

    def dimension(self) -> ast.Dimension:
        t = self.t
        kw = self.i
        self.i += 1
        name = self._word()
        path: str | None = None
        if t[self.i] == "at":
            self.i += 1
            path = t[self._word()]
        self._punct(":")
        kind = "plain"
        if t[self.i] in ("ordered", "set"):
            kind = t[self.i]
            self.i += 1
        self._punct("{")
        values = self._values_until("}")
        default: ast.Value | None = None
        if t[self.i][:1] == "\x03":
            self.i += 1
            default = self._value()
        return ast.Dimension(t[name], path, DimensionKind(kind), values, default, self._span(kw), self._tspan(name))

    def extend(self) -> ast.ExtendDimension:
        t = self.t
        kw = self.i
        self.i += 1
        if t[self.i] != "dimension":
            raise _Fail
        self.i += 1
        name = self._word()
        self._punct(":")
        self._punct("{")
        values = self._values_until("}")
        return ast.ExtendDimension(t[name], values, self._span(kw), self._tspan(name))

    def attribute(self) -> ast.Attribute:
        t = self.t
        kw = self.i
        self.i += 1
        path = self._word()
        self._punct(":")
        typ = self._word()
        default: Any = None
        has_default = False
        if t[self.i] == "=":
            self.i += 1
            default = self._json()
            has_default = True
        return ast.Attribute(t[path], t[typ], default, has_default, self._span(kw), self._tspan(typ))

    def rule(self) -> ast.Rule:
        t = self.t
        kw = self.i
        self.i += 1
        name = self._word()
        self._punct("{")
        matches: list[ast.Constraint] = []
        conds: list[ast.Condition] = []
        decides: list[ast.EffectSpec] = []
        because: list[str] = []
        cites: list[ast.CiteRef] = []
        while True:
            word = t[self.i]
            self.i += 1
            if word == "match":
                matches.extend(self._constraints())
            elif word == "decide":
                decides.append(self._effect_spec())
            elif word == "}":
                break
            elif word == "when" or word == "unless":
                k = self.i
                if t[k][:1] != "\x02":
                    raise _Fail
                self.i = k + 1
                ct = self.conds.get(self.starts[k])
                if ct is None:
                    raise _Fail
                span = Span(self.file, ct.line, ct.col, ct.end_line, ct.end_col)
                conds.append(ast.Condition(ConditionKind(word), ct.raw, ct.cel, span))
            elif word == "because":
                because.append(_unquote(t[self._string()]))
            elif word == "cite":
                while True:
                    r = self.i
                    self.i += 1
                    first = t[r][:1]
                    if first in _WORD_START:
                        cites.append(ast.CiteRef(t[r], None, self._tspan(r)))
                    elif first == '"':
                        cites.append(ast.CiteRef(None, _unquote(t[r]), self._tspan(r)))
                    else:
                        raise _Fail
                    if t[self.i] != ",":
                        break
                    self.i += 1
            else:
                raise _Fail
        return ast.Rule(
            t[name],
            tuple(matches),
            tuple(conds),
            tuple(decides),
            tuple(because),
            tuple(cites),
            self._span(kw),
            self._tspan(name),
        )

    def test(self) -> ast.TestBlock:
        t = self.t
        kw = self.i
        self.i += 1
        name = _unquote(t[self._string()])
        self._punct("{")
        requests: list[Any] = []
        expects: list[ast.Expect] = []
        while True:
            word = t[self.i]
            self.i += 1
            if word == "}":
                break
            if word == "request":
                if t[self.i] != "{":
                    raise _Fail
                requests.append(self._json())
            elif word == "expect":
                expects.append(self._expectation(self.i - 1))
            else:
                raise _Fail
        return ast.TestBlock(name, tuple(requests), tuple(expects), self._span(kw))

    def _expectation(self, kw: int) -> ast.Expect:
        k = self._word()
        word = self.t[k]
        if word == "rules" and self.t[self.i] in ("includes", "excludes"):
            which = self.t[self.i]
            self.i += 1
            self._punct("[")
            values = self._values_until("]")
            return ast.Expect(f"rules_{which}", values, self._span(kw))
        if word in ("rules", "escalate_to") or (word == "redact" and self.t[self.i] == "["):
            self._punct("[")
            values = self._values_until("]")
            return ast.Expect(word, values, self._span(kw))
        if word in _EFFECT_EXPECT:
            return ast.Expect("effect", (ast.Value(word, False, self._tspan(k)),), self._span(kw))
        raise _Fail

    # ------------------------------------------------------------------------ pieces

    def _constraints(self) -> list[ast.Constraint]:
        out = [self._constraint()]
        t = self.t
        while t[self.i] == ",":
            self.i += 1
            out.append(self._constraint())
        return out

    def _constraint(self) -> ast.Constraint:
        t = self.t
        dim = self._word()
        op = t[self.i]
        self.i += 1
        if op in _CMP:
            values: tuple[ast.Value, ...] = (self._value(),)
        elif op == "in":
            self._punct("[")
            values = self._values_until("]")
        elif op == "not":
            if t[self.i] != "in":
                raise _Fail
            self.i += 1
            op = "not in"
            self._punct("[")
            values = self._values_until("]")
        else:
            raise _Fail
        return ast.Constraint(t[dim], Op(op), values, self._span(dim), self._tspan(dim))

    def _effect_spec(self) -> ast.EffectSpec:
        t = self.t
        k = self.i
        word = t[k]
        self.i = k + 1
        if word == "allow" or word == "require_otp":
            return ast.EffectSpec(word, span=self._tspan(k))
        if word == "escalate":
            queue = None
            if t[self.i] == "to":
                self.i += 1
                queue = _unquote(t[self._string()])
            return ast.EffectSpec("escalate", queue=queue, span=self._span(k))
        if word == "redact":
            classes: tuple[ast.Value, ...] | None = None
            if t[self.i] == "[":
                self.i += 1
                classes = self._values_until("]")
            style: int | None = None
            if t[self.i] == "as":
                self.i += 1
                style = self._word()
            span = self._span(k)
            return ast.EffectSpec(
                "redact",
                classes=classes,
                style=t[style] if style is not None else None,
                span=span,
                style_span=self._tspan(style) if style is not None else span,
            )
        raise _Fail

    def _value(self) -> ast.Value:
        k = self.i
        text = self.t[k]
        self.i = k + 1
        first = text[:1]
        line = self.lines[k]
        col = self.cols[k]
        span = Span(self.file, line, col, line, col + len(text))
        if first in _WORD_START:
            return ast.Value(text, False, span)
        if first == '"':
            return ast.Value(_unquote(text), True, span)
        raise _Fail

    def _values_until(self, close: str) -> tuple[ast.Value, ...]:
        """`[value_list]` then `close`: values separated by commas, one trailing comma allowed."""
        t = self.t
        if t[self.i] == close:
            self.i += 1
            return ()
        out = [self._value()]
        while True:
            p = t[self.i]
            self.i += 1
            if p == close:
                return tuple(out)
            if p != ",":
                raise _Fail
            if t[self.i] == close:
                self.i += 1
                return tuple(out)
            out.append(self._value())

    def _json(self) -> Any:
        t = self.t
        text = t[self.i]
        self.i += 1
        first = text[:1]
        if first == '"':
            return _unquote(text)
        if first == "{":
            obj: dict[str, Any] = {}
            if t[self.i] == "}":
                self.i += 1
                return obj
            while True:
                key = _unquote(t[self._string()])
                self._punct(":")
                obj[key] = self._json()
                p = t[self.i]
                self.i += 1
                if p == "}":
                    return obj
                if p != ",":
                    raise _Fail
        if first == "[":
            arr: list[Any] = []
            if t[self.i] == "]":
                self.i += 1
                return arr
            while True:
                arr.append(self._json())
                p = t[self.i]
                self.i += 1
                if p == "]":
                    return arr
                if p != ",":
                    raise _Fail
        if text == "true":
            return True
        if text == "false":
            return False
        if text == "null":
            return None
        if first == "-" or first.isdigit():
            if "." in text or "e" in text or "E" in text:
                return float(text)
            return int(text)
        raise _Fail


_ITEMS: dict[str, Any] = {
    "package": _Parser.package,
    "use": _Parser.use,
    "scope": _Parser.scope,
    "default": _Parser.default,
    "cite": _Parser.cite_decl,
    "dimension": _Parser.dimension,
    "extend": _Parser.extend,
    "attribute": _Parser.attribute,
    "rule": _Parser.rule,
    "test": _Parser.test,
}
