"""Formatter: .cxp text → the same policy in the one canonical layout, comments kept.

Input: the text of one file. Output: its canonical text, or `FormatError` with the syntax
diagnostics when the file does not parse (a file that does not parse is never rewritten).

Why it prints from Lark's parse tree and not from `ast.Module`: the AST merges repeated
`match` and `cite` clauses and forgets token spellings (`1e3`, `"\\u00e9"`),
and the formatter must keep every one of those, because its contract is
parse(fmt(x)) == parse(x) and "your text, only re-spaced". The tree is the parse stage's
own (`syntax.parse(...).tree`): one parser, one parse, so the two cannot drift apart.

Layout (docs/cli.md, "fmt"): 2-space indent inside blocks; clause keywords padded to 8
columns (`match   `, `decide  `, `because `); one blank line around blocks and at most one
between single-line declarations; lists one line when they fit in 100 columns, otherwise one
item per line aligned under the first (constraints, cites), filled (dimension values), or
indented one per line (JSON). CEL text is printed exactly as written, so a multi-line
condition keeps its own continuation lines.

Comments: each one is attached to the nearest element that can carry it — before it
(own-line), after it on its line (trailing), or at the end of a block (dangling) — and
printed there. A comment inside something printed on one line (a `[...]` inside a
constraint, a `redact` list) moves to its own line before that element; comments inside a
CEL expression stay in the expression. After printing, the result is parsed again and
compared with the input's AST; if they differ the formatter refuses (CXP199) rather than
change a policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from lark import Token, Tree

from cxpolicy.lang import codes
from cxpolicy.lang.prepass import Comment, CondText, PrePass
from cxpolicy.lang.source import Diagnostic, Span
from cxpolicy.lang.syntax import parse, parse_reference

__all__ = ["WIDTH", "FormatError", "format_source"]

WIDTH = 100
INDENT = "  "
_KW = 8  # clause keywords are padded to this width: `because ` is the longest
_FAR = (1 << 30, 0)


class FormatError(Exception):
    """The file cannot be formatted; `diagnostics` says why (syntax errors, or CXP199)."""

    def __init__(self, diagnostics: list[Diagnostic]):
        super().__init__(diagnostics[0].headline() if diagnostics else "cannot format")
        self.diagnostics = diagnostics


def format_source(text: str, file: str = "<stdin>") -> str:
    """The canonical text of one .cxp file; raises `FormatError` if it does not parse.

    The printer walks the concrete parse tree (comments and layout included), which only the
    reference (Lark) parser builds; the fast parser checks that the output means the same."""
    before = parse_reference(text, file)
    errors = [d for d in before.diagnostics if d.is_error]
    if before.module is None or before.tree is None or errors:
        raise FormatError(errors or before.diagnostics)
    out = _Printer(text, before.pre).print(before.tree)
    after = parse(out, file)
    if after.module != before.module or any(d.is_error for d in after.diagnostics):
        raise FormatError(
            [
                codes.CXP199(
                    "internal: formatting would change the policy; file left unchanged",
                    Span.unknown(file),
                    "please report this file",
                )
            ]
        )
    return out


# ------------------------------------------------------------------------ comment placement

_HEADED = frozenset({"rule", "test", "dimension", "extend"})  # `{` can carry a comment
_JSON_CONTAINERS = frozenset({"json_object", "json_array"})


@dataclass(eq=False)
class _Node:
    """An element that comments can attach to, with the span it covers in the source."""

    kind: str
    tree: Tree[Token]
    start: tuple[int, int]
    end: tuple[int, int]
    children: list[_Node] = field(default_factory=list)
    json: Tree[Token] | None = None  # the JSON object/array this node prints, if any
    leading: list[Comment] = field(default_factory=list)
    trailing: Comment | None = None
    dangling: list[Comment] = field(default_factory=list)
    header: Comment | None = None

    def has_inner_comments(self) -> bool:
        if self.dangling or self.header:
            return True
        return any(c.leading or c.trailing or c.has_inner_comments() for c in self.children)


def _trees(items: Sequence[Tree[Token] | Token | None]) -> list[Tree[Token]]:
    return [c for c in items if isinstance(c, Tree)]


class _Printer:
    def __init__(self, text: str, pre: PrePass):
        self.text = text
        self.lines = text.split("\n")
        self.pre = pre

    # -- building the comment-carrying skeleton

    def _node(self, t: Tree[Token]) -> _Node:
        m = t.meta
        start, end = (m.line, m.column), (m.end_line, m.end_column)
        kind = str(t.data)
        if kind in ("when", "unless"):
            ct = self._cond(t)
            end = (ct.end_line, ct.end_col)  # the COND token also swallows the newlines after it
        node = _Node(kind, t, start, end)
        kids: list[Tree[Token]] = []
        if kind in ("rule", "test", "match", "scope", "cite"):
            kids = _trees(t.children)
        elif kind in ("dimension", "extend"):
            vl = next((c for c in _trees(t.children) if c.data == "value_list"), None)
            kids = _trees(vl.children) if vl is not None else []
        elif kind == "request":
            node.json = _trees(t.children)[0]
        elif kind == "json_pair" and isinstance(t.children[1], Tree) and t.children[1].data in _JSON_CONTAINERS:
            node.json = t.children[1]
        elif kind in _JSON_CONTAINERS:
            node.json = t
        if node.json is not None:
            kids = _trees(node.json.children)
        node.children = [self._node(k) for k in kids]
        return node

    def _cond(self, t: Tree[Token]) -> CondText:
        tok = t.children[0]
        assert isinstance(tok, Token) and tok.start_pos is not None
        return self.pre.conds[tok.start_pos]

    def _attach(self, node: _Node, c: Comment) -> None:
        pos = (c.line, c.col)
        for ch in node.children:
            if ch.start < pos < ch.end:
                if ch.kind in ("when", "unless"):
                    return  # inside the CEL text, which is printed verbatim with it
                if ch.children or ch.json is not None or ch.kind in _HEADED:
                    self._attach(ch, c)
                else:
                    ch.leading.append(c)
                return
        if not c.own_line:
            before = [ch for ch in node.children if ch.end <= pos and ch.end[0] == c.line]
            if before:
                before[-1].trailing = c
                return
            if node.kind in _HEADED and node.start[0] == c.line and node.header is None:
                node.header = c
                return
        nxt = next((ch for ch in node.children if ch.start > pos), None)
        if nxt is not None:
            nxt.leading.append(c)
        else:
            node.dangling.append(c)

    # -- the file

    def print(self, tree: Tree[Token]) -> str:
        root = _Node("start", tree, (0, 0), _FAR, [self._node(t) for t in _trees(tree.children)])
        for c in self.pre.comments:
            self._attach(root, c)
        out: list[str] = []
        prev_end, prev_block = 0, False
        for item in root.children:
            body = self._item(item)
            if item.trailing:
                body[-1] += "  " + item.trailing.text
            block = len(body) > 1 or item.kind in ("rule", "test")
            parts = [(c.line, c.line, [c.text]) for c in item.leading]
            parts.append((item.start[0], item.end[0], body))
            for j, (first, last, text) in enumerate(parts):
                if out and ((j == 0 and (block or prev_block)) or self._blank_between(prev_end, first)):
                    out.append("")
                out.extend(text)
                prev_end = last
            prev_block = block
        for c in root.dangling:
            if out and (prev_block or self._blank_between(prev_end, c.line)):
                out.append("")
            out.append(c.text)
            prev_end, prev_block = c.line, False
        return "\n".join(out) + "\n" if out else ""

    def _blank_between(self, a: int, b: int) -> bool:
        """Whether the source has an empty line strictly between lines a and b (1-based)."""
        return any(not self.lines[k - 1].strip() for k in range(a + 1, b) if 0 < k <= len(self.lines))

    def _item(self, n: _Node) -> list[str]:
        t, kind = n.tree, n.kind
        ch = t.children
        if kind in ("package", "use"):
            return [f"{kind} {ch[0]}"]
        if kind == "scope":
            return self._aligned(n, "", "scope ", _trees(ch))
        if kind == "default":
            return [f"default {self._effect(_trees(ch)[0])}"]
        if kind == "cite_decl":
            return [f"cite {ch[0]} = {ch[1]}"]
        if kind == "attribute":
            line = f"attribute {ch[0]}: {ch[1]}"
            if len(ch) > 2 and isinstance(ch[2], Tree):
                line += " = " + _json_compact(ch[2])
            return [line]
        if kind in ("dimension", "extend"):
            return self._dimension(n)
        if kind in ("rule", "test"):
            return self._block(n)
        raise AssertionError(f"unknown item {kind}")  # pragma: no cover - grammar shape guard

    # -- blocks and clauses

    def _block(self, n: _Node) -> list[str]:
        name = n.tree.children[0]
        head = f"{n.kind} {name} {{"
        if not n.children and not n.dangling and n.header is None:
            return [head + "}"]
        lines = [head + ("  " + n.header.text if n.header else "")]
        for ch in n.children:
            lines.extend(INDENT + c.text for c in ch.leading)
            body = self._clause(ch, INDENT)
            if ch.trailing:
                body[-1] += "  " + ch.trailing.text
            lines.extend(body)
        lines.extend(INDENT + c.text for c in n.dangling)
        lines.append("}")
        return lines

    def _clause(self, n: _Node, indent: str) -> list[str]:
        t, kind = n.tree, n.kind
        kw = indent + kind.ljust(_KW - 1) + " "
        if kind in ("match", "cite"):
            return self._aligned(n, indent, kw, _trees(t.children))
        if kind in ("when", "unless"):
            return (kw + self._cond(t).raw).split("\n")
        if kind == "decide":
            head, values, tail = self._effect_parts(_trees(t.children)[0])
            return [kw + head + tail] if values is None else _bracketed(kw + head, values, tail)
        if kind == "because":
            return [kw + str(t.children[0])]
        if kind == "request":
            assert n.json is not None
            return self._fill(n, n.json, indent + "request ", "", spaced=True)
        if kind == "expect":
            e = _trees(t.children)[0]
            if e.data in _LISTED_EXPECTS:
                head = f"{indent}expect {_LISTED_EXPECTS[str(e.data)]} "
                return _bracketed(head, _value_texts(e.children[0]), "")
            return [indent + "expect " + _expectation(e)]
        raise AssertionError(f"unknown clause {kind}")  # pragma: no cover - grammar shape guard

    def _aligned(self, n: _Node, indent: str, prefix: str, items: list[Tree[Token]]) -> list[str]:
        """A comma list after a keyword: one line if it fits, else one item a line, aligned
        after the keyword (a constraint's own `[...]` list is filled if still too long)."""
        texts = [_constraint(t) if t.data.endswith("constraint") else str(t.children[0]) for t in items]
        one = prefix + ", ".join(texts)
        # The first item's own-line comments go above the keyword, so they do not force a break.
        kids = n.children
        inner = any(ch.trailing or ch.has_inner_comments() for ch in kids) or any(ch.leading for ch in kids[1:])
        if not inner and len(one) <= WIDTH:
            return [indent + c.text for c in kids[0].leading] + [one]
        pad = " " * len(prefix)
        lines = [indent + c.text for c in kids[0].leading]
        for i, (ch, t, text) in enumerate(zip(kids, items, texts, strict=True)):
            if i:
                lines.extend(pad + c.text for c in ch.leading)
            first, sep = (pad if i else prefix), ("," if i < len(texts) - 1 else "")
            if t.data in ("in_constraint", "not_in_constraint"):
                op = "in" if t.data == "in_constraint" else "not in"
                body = _bracketed(f"{first}{t.children[0]} {op} ", _value_texts(t.children[1]), sep)
            else:
                body = [first + text + sep]
            if ch.trailing:
                body[-1] += "  " + ch.trailing.text
            lines.extend(body)
        return lines

    def _dimension(self, n: _Node) -> list[str]:
        ch = n.tree.children
        if n.kind == "extend":
            head, default = f"extend dimension {ch[0]}: ", ""
        else:
            name, path, kind, _, dflt = ch
            head = f"dimension {name}" + (f" at {path}" if path is not None else "") + ": "
            head += f"{kind} " if kind is not None else ""
            default = f" default {_value(dflt)}" if isinstance(dflt, Tree) else ""
        values = [_value(v.tree) for v in n.children]
        one = head + "{" + ", ".join(values) + "}" + default
        if not n.has_inner_comments() and len(one) <= WIDTH:
            return [one]
        lines = [head + "{" + ("  " + n.header.text if n.header else "")]
        cur: str | None = None
        for i, (v, text) in enumerate(zip(n.children, values, strict=True)):
            piece = text + ("," if i < len(values) - 1 else "")
            if v.leading:
                if cur is not None:
                    lines.append(cur)
                    cur = None
                lines.extend(INDENT + c.text for c in v.leading)
            if cur is not None and len(cur) + 1 + len(piece) <= WIDTH:
                cur += " " + piece
            else:
                if cur is not None:
                    lines.append(cur)
                cur = INDENT + piece
            if v.trailing:
                lines.append(cur + "  " + v.trailing.text)
                cur = None
        if cur is not None:
            lines.append(cur)
        lines.extend(INDENT + c.text for c in n.dangling)
        lines.append("}" + default)
        return lines

    def _effect(self, t: Tree[Token]) -> str:
        head, values, tail = self._effect_parts(t)
        return head + tail if values is None else head + "[" + ", ".join(values) + "]" + tail

    def _effect_parts(self, t: Tree[Token]) -> tuple[str, list[str] | None, str]:
        """An effect as (text before a `[...]` list, the list or None, text after it)."""
        kind = str(t.data)
        if kind == "escalate" and t.children and t.children[0] is not None:
            return f"escalate to {t.children[0]}", None, ""
        if kind != "redact":
            return kind, None, ""
        listed, style = t.children
        tail = f" as {style}" if style is not None else ""
        if isinstance(listed, Tree):  # `redact [...]`, possibly `redact []` (a checker error to keep)
            values = listed.children[0] if listed.children else None
            return "redact ", _value_texts(values), tail
        return "redact", None, tail

    # -- JSON in test requests

    def _fill(self, n: _Node, t: Tree[Token], head: str, end: str, spaced: bool = False) -> list[str]:
        """A JSON object or array after `head`: on one line when it fits and holds no comment,
        else its members filled into lines aligned after the opening bracket (LANGUAGE.md §7
        style); a member that does not fit on a line of its own is broken the same way."""
        opening, closing = ("{", "}") if t.data == "json_object" else ("[", "]")
        if spaced:  # the request itself: `request { "action": ... }`
            opening, closing = opening + " ", " " + closing
        kids = n.children
        texts = [_member(ch) for ch in kids]
        if not kids and not n.dangling:
            return [head + opening.strip() + closing.strip() + end]
        one = head + opening + ", ".join(texts) + closing + end
        if kids and not n.has_inner_comments() and len(one) <= WIDTH:
            return [one]
        prefix = head + opening
        pad = " " * len(prefix)
        # A comment after the last member must stay inside: the bracket then closes on its own line.
        own_close = bool(n.dangling or kids[-1].trailing)
        lines: list[str] = []
        cur: str | None = prefix  # the line being filled; None: the next member starts a line
        if not kids or kids[0].leading:
            lines.append(head + opening.rstrip())
            cur = None
        for i, (ch, text) in enumerate(zip(kids, texts, strict=True)):
            last = i == len(kids) - 1
            tail = ("" if own_close else closing + end) if last else ","
            if ch.leading:
                if cur is not None:
                    lines.append(cur)
                lines.extend(pad + c.text for c in ch.leading)
                cur = None
            if ch.json is not None and (ch.has_inner_comments() or len(pad + text + tail) > WIDTH):
                start = pad if cur is None else cur
                if cur is not None and cur != prefix:
                    lines.append(cur)
                    start = pad
                key = f"{ch.tree.children[0]}: " if ch.kind == "json_pair" else ""
                lines.extend(self._fill(ch, ch.json, start + key, tail))
                cur = None
            elif cur is None:
                cur = pad + text + tail
            elif cur == prefix:
                cur += text + tail
            elif len(cur) + 1 + len(text + tail) <= WIDTH:
                cur += " " + text + tail
            else:
                lines.append(cur)
                cur = pad + text + tail
            if ch.trailing:
                if cur is None:
                    lines[-1] += "  " + ch.trailing.text
                else:
                    lines.append(cur + "  " + ch.trailing.text)
                    cur = None
        if cur is not None:
            lines.append(cur)
        lines.extend(pad + c.text for c in n.dangling)
        if own_close:
            lines.append(" " * len(head) + closing.strip() + end)
        return lines


# ------------------------------------------------------------------------ one-line pieces


def _value(t: Tree[Token] | Token | None) -> str:
    assert isinstance(t, Tree)
    return str(t.children[0])


def _value_texts(t: Tree[Token] | Token | None) -> list[str]:
    """The values of an optional value_list (absent when the brackets are empty)."""
    return [_value(v) for v in _trees(t.children)] if isinstance(t, Tree) else []


def _values(t: Tree[Token] | Token | None) -> str:
    return "[" + ", ".join(_value_texts(t)) + "]"


def _bracketed(head: str, items: list[str], tail: str) -> list[str]:
    """`head[a, b, ...]tail` on one line if it fits, else filled, aligned after the `[`."""
    one = head + "[" + ", ".join(items) + "]" + tail
    if len(one) <= WIDTH or len(items) < 2:
        return [one]
    pad = " " * (len(head) + 1)
    lines: list[str] = []
    cur = head + "["
    for i, item in enumerate(items):
        piece = item + ("," if i < len(items) - 1 else "]" + tail)
        if i == 0:
            cur += piece
        elif len(cur) + 1 + len(piece) <= WIDTH:
            cur += " " + piece
        else:
            lines.append(cur)
            cur = pad + piece
    return [*lines, cur]


def _constraint(t: Tree[Token]) -> str:
    dim = t.children[0]
    if t.data == "cmp_constraint":
        return f"{dim} {t.children[1]} {_value(t.children[2])}"
    op = "in" if t.data == "in_constraint" else "not in"
    return f"{dim} {op} {_values(t.children[1])}"


# An `expect` with a list, by grammar alias: the words written before the `[`.
_LISTED_EXPECTS = {
    "expect_rules": "rules",
    "expect_rules_includes": "rules includes",
    "expect_rules_excludes": "rules excludes",
    "expect_redact": "redact",
    "expect_escalate_to": "escalate_to",
}


def _expectation(t: Tree[Token]) -> str:
    kind = str(t.data)
    if kind in _LISTED_EXPECTS:
        return f"{_LISTED_EXPECTS[kind]} {_values(t.children[0])}"
    return {"expect_redact_effect": "redact"}.get(kind, kind.removeprefix("expect_"))


def _member(n: _Node) -> str:
    """A JSON object member (`"key": value`) or array item, on one line."""
    if n.kind == "json_pair":
        return f"{n.tree.children[0]}: {_json_compact(_jv(n.tree.children[1]))}"
    return _json_compact(n.tree)


def _json_compact(t: Tree[Token]) -> str:
    kind = t.data
    if kind == "json_object":
        pairs = _trees(t.children)
        return "{" + ", ".join(f"{p.children[0]}: {_json_compact(_jv(p.children[1]))}" for p in pairs) + "}"
    if kind == "json_array":
        return "[" + ", ".join(_json_compact(v) for v in _trees(t.children)) + "]"
    if kind in ("json_true", "json_false", "json_null"):
        return str(kind).removeprefix("json_")
    return str(t.children[0])  # json_string, json_number: the token as written


def _jv(v: Tree[Token] | Token | None) -> Tree[Token]:
    assert isinstance(v, Tree)
    return v
