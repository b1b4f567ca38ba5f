"""Pre-pass over .cxp text: find `when`/`unless` expressions and comments.

Input: the file text. Output: the same text with each CEL expression replaced by a COND
placeholder of exactly the same length (so Lark's line/col stay true), the expressions with
their spans, and every comment with its position (the formatter keeps them).

Why a pre-pass: a CEL expression runs to the end of its line, or further while a parenthesis
or bracket is open, and may contain any character; no regular terminal can say that, and
CEL's own parser (cel-python) is the one that should read it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Comment", "CondText", "PrePass", "prepass"]

MARK = "\x02"  # first character of a placeholder
FILL = "\x01"  # the rest (newlines are kept)
_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_OPEN = {"(": ")", "[": "]", "{": "}"}
# What the scan stops at: a string, a comment, or `when`/`unless` as a whole word.
_INTERESTING = re.compile(
    r'"|#|[{}]|(?<![A-Za-z0-9_.\-])(when|unless|extend|dimension|rule|test)(?![A-Za-z0-9_.\-])'
)
_DEFAULT_AFTER = re.compile(r"[ \t]*default(?![A-Za-z0-9_.\-])")
DIM_DEFAULT = "\x03"  # replaces the `d` of a `default` on the line of a dimension's closing brace
_CLOSE = frozenset(")]}")
_NEWLINE = re.compile("\n")


@dataclass(frozen=True, slots=True)
class Comment:
    line: int
    col: int
    text: str  # including the leading '#'
    own_line: bool  # nothing but whitespace before it on its line


@dataclass(frozen=True, slots=True)
class CondText:
    offset: int  # where the expression starts in the file
    line: int
    col: int
    end_line: int
    end_col: int
    raw: str  # exactly as written (inner comments included)
    cel: str  # what CEL parses: comments blanked out, same length as raw


@dataclass(frozen=True, slots=True)
class PrePass:
    masked: str
    conds: dict[int, CondText]  # by offset
    comments: tuple[Comment, ...]
    problems: tuple[tuple[int, int, str], ...]  # (line, col, message): unterminated strings etc.


def _line_col(text: str, offset: int, line_starts: list[int]) -> tuple[int, int]:
    import bisect

    i = bisect.bisect_right(line_starts, offset) - 1
    return i + 1, offset - line_starts[i] + 1


def prepass(text: str) -> PrePass:
    n = len(text)
    line_starts = [0, *(m.end() for m in _NEWLINE.finditer(text))]
    out = _Edits(text)
    conds: dict[int, CondText] = {}
    comments: list[Comment] = []
    problems: list[tuple[int, int, str]] = []
    braces: list[bool] = []  # per open `{`: does it open a dimension's value list?
    in_dimension = False  # the last top-level keyword declared a dimension
    extending = False  # ... after `extend`, which takes no default
    i = 0
    while i < n:
        m = _INTERESTING.search(text, i)
        if m is None:
            break
        i = m.start()
        ch = text[i]
        if ch == '"':
            i = _skip_string(text, i, '"')
            continue
        if ch == "#":
            j = text.find("\n", i)
            j = n if j < 0 else j
            line, col = _line_col(text, i, line_starts)
            own = text[line_starts[line - 1] : i].strip() == ""
            comments.append(Comment(line, col, text[i:j].rstrip(), own))
            i = j
            continue
        if ch == "{":
            # Only the `}` closing a dimension's value list may be followed by its `default`.
            braces.append(in_dimension and not braces)
            in_dimension = False
            i += 1
            continue
        if ch == "}":
            closes_values = braces.pop() if braces else False
            d = _DEFAULT_AFTER.match(text, i + 1)
            if closes_values and d is not None:
                out[d.end() - len("default")] = DIM_DEFAULT
            i += 1
            continue
        word = m.group(1)
        if word in ("extend", "dimension", "rule", "test"):
            if not braces:  # `extend dimension` takes no default
                in_dimension = word == "dimension" and not extending
                extending = word == "extend"
            i = m.end()
            continue
        i = _take_condition(text, m.end(), out, conds, comments, problems, line_starts)
    return PrePass(out.text(), conds, tuple(comments), tuple(problems))


class _Edits:
    """The masked text as the original plus a few replaced characters, joined once at the end.

    Why not `list(text)`: a list of every character of a 1.5 MB file, and joining it back, cost
    more than the scan; placeholders touch a small part of the text.
    """

    __slots__ = ("edits", "source")

    def __init__(self, source: str):
        self.source = source
        self.edits: dict[int, str] = {}

    def __setitem__(self, i: int, ch: str) -> None:
        self.edits[i] = ch

    def text(self) -> str:
        if not self.edits:
            return self.source
        src = self.source
        parts: list[str] = []
        pos = 0
        for i in sorted(self.edits):
            parts.append(src[pos:i])
            parts.append(self.edits[i])
            pos = i + 1
        parts.append(src[pos:])
        return "".join(parts)


def _skip_string(text: str, i: int, quote: str) -> int:
    """Index just past the string literal starting at i (or the end of its line if unterminated)."""
    n = len(text)
    j = i + 1
    while j < n:
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if c == quote:
            return j + 1
        if c == "\n":
            return j
        j += 1
    return n


def _take_condition(
    text: str,
    start: int,
    out: _Edits,
    conds: dict[int, CondText],
    comments: list[Comment],
    problems: list[tuple[int, int, str]],
    line_starts: list[int],
) -> int:
    n = len(text)
    i = start
    while i < n and text[i] in " \t":
        i += 1
    begin = i
    depth: list[str] = []
    opened: list[int] = []  # where each bracket in `depth` was opened
    cel = []
    last_code = begin  # one past the last non-blank character of the expression
    while i < n:
        c = text[i]
        if c == "\n":
            if not depth:
                break
            cel.append(c)
            i += 1
            continue
        if c == "#":
            j = text.find("\n", i)
            j = n if j < 0 else j
            if not depth:
                break  # trailing comment: left in place for the grammar to ignore
            line, col = _line_col(text, i, line_starts)
            comments.append(Comment(line, col, text[i:j].rstrip(), False))
            cel.append(" " * (j - i))
            i = j
            continue
        if c in "\"'":
            j = _skip_cel_string(text, i)
            cel.append(text[i:j])
            i = j
            last_code = i
            continue
        if c in _OPEN:
            depth.append(_OPEN[c])
            opened.append(i)
        elif c in _CLOSE and depth and depth[-1] == c:
            depth.pop()
            opened.pop()
        cel.append(c)
        i += 1
        if c not in " \t\r":
            last_code = i
    end = last_code
    if end <= begin:
        return i  # empty condition: the parser reports the missing expression
    if depth:
        # The outermost bracket left open: the author's slip is there, not at the end of file.
        line, col = _line_col(text, opened[0], line_starts)
        bracket = text[opened[0]]
        problems.append(
            (line, col, f"unclosed `{bracket}` in condition: it runs to the end of the file")
        )
    raw = text[begin:end]
    cel_text = "".join(cel)[: end - begin]
    line, col = _line_col(text, begin, line_starts)
    end_line, end_col = _line_col(text, end, line_starts)
    conds[begin] = CondText(begin, line, col, end_line, end_col, raw, cel_text)
    out[begin] = "\x02"
    for k in range(begin + 1, end):
        out[k] = "\n" if text[k] == "\n" else FILL
    return end


def _skip_cel_string(text: str, i: int) -> int:
    q = text[i]
    if text.startswith(q * 3, i):
        j = text.find(q * 3, i + 3)
        return len(text) if j < 0 else j + 3
    return _skip_string(text, i, q)
