"""One normalisation pass for every detector and for masking: text in, `Normalised` out.

Input: the text exactly as the caller sent it. Output: a `Normalised` holding the text as a
reader sees it, plus an offset map back to the input, so a span found in the normalised text
still names the characters to mask in the original.

Evasions change the characters, not what a reader sees: a card written with no-break or
thin spaces, a soft hyphen or zero-width space inside "ig\u00adnore", full-width or
Devanagari digits, "&#105;gnore", "%69gnore", "ig<!-- -->nore". The detectors should see
through all of them, and the masker must hide exactly what the detectors found, so both read
the same `normalise()` result (this module is the only place that knows the rules):

1. invisible and bidi-control characters (soft hyphen, zero-width, joiners, bidi embeddings
   and isolates, BOM, tag characters, variation selectors) are removed;
2. runs of whitespace of any kind (tabs, newlines, NBSP, thin spaces, ideographic space)
   collapse to one ASCII space;
3. non-ASCII text that is not in NFKC form is folded to it (full-width letters and digits,
   ligatures, circled digits);
4. decimal digits of every script become ASCII digits ("४१११", "٤١١١");
5. HTML entities, HTML comments and URL percent-escapes are undone where they decode to
   printable text (run to a fixed point, at most twice, so "&amp;#105;" is read too).

`digit_view()` adds one step for the numeric detectors: the separators people put between
digit groups ("." "/" "_" dashes, a space next to a dash) become one space, so
"4111.1111.1111.1111" and "4111 - 1111 - …" read like "4111 1111 1111 1111". It is a view
of its own because the same rewrite would break IP addresses and dates.

Cost: a text with nothing to rewrite (the common case) costs one regex search and one
`is_normalized` call, both in C, and maps offsets as the identity. Otherwise the rewrite is
one regex pass whose callbacks run only on the characters that change, so cost is linear in
the text and proportional to the number of rewrites.
"""

from __future__ import annotations

import html
import re
import unicodedata
from bisect import bisect_right
from urllib.parse import unquote

__all__ = ["Normalised", "digit_view", "fold_digits", "normalise"]

# Unicode decimal-digit zeros (category Nd): each script's digits are ten consecutive code
# points from these. Listed rather than computed so import does not walk all of Unicode.
_DIGIT_ZEROS = (
    0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6,
    0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50,
    0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
)  # fmt: skip
_DIGIT_TABLE = {zero + i: 48 + i for zero in _DIGIT_ZEROS for i in range(10)}
# A decimal digit that is not ASCII (`\\d` is a C test per character, unlike a class of 65
# ranges, which re checks one range after another).
_OTHER_DIGIT = re.compile(r"\d(?<![0-9])")

# Characters that render as nothing (or only change direction): removed.
_INV = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\U0001bca0-\U0001bca3\U000e0000-\U000e007f"
    "\U000e0100-\U000e01ef"
)
# A run of whitespace and invisible characters, unless it is one plain space (which needs no
# rewrite: excluding it keeps the callback count at the number of real rewrites).
_WS_RUN = rf"(?:[{_INV}]|[^\S ]| [\s{_INV}])[\s{_INV}]*"
_ENTITY = r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});?"
_PERCENT = r"(?:%[0-9A-Fa-f]{2})+"
_COMMENT = r"<!--.{0,512}?-->"
_NON_ASCII_RUN = rf"[^\x00-\x7f\s{_INV}]+"

# Each pattern opens with a one-class lookahead, so most positions fail on one test instead
# of trying every alternative.
_BASE_RE = re.compile(
    rf"(?=[\s{_INV}&%<])(?:(?P<ws>{_WS_RUN})|(?P<ent>{_ENTITY})|(?P<pct>{_PERCENT})|(?P<cmt>{_COMMENT}))",
    re.DOTALL,
)
_BASE_NFKC_RE = re.compile(
    rf"(?=[\s{_INV}&%<]|[^\x00-\x7f])(?:(?P<ws>{_WS_RUN})|(?P<ent>{_ENTITY})|(?P<pct>{_PERCENT})"
    rf"|(?P<cmt>{_COMMENT})|(?P<nfkc>{_NON_ASCII_RUN}))",
    re.DOTALL,
)
# Characters that never need a rewrite: printable ASCII, Latin letters with accents,
# Devanagari and Tamil letters (not their digits), quotes, dashes and the rupee sign. A text
# of only these (checked by one small negated class) needs work only for the ASCII triggers.
_UNSAFE = re.compile(
    "[^ !-~\u00c0-\u017f\u0900-\u0965\u0970-\u097f\u0b80-\u0be5\u0bf0-\u0bff\u2013\u2014\u2018-\u201f\u20b9]"
)
_ASCII_WORK = ("  ", "&", "%", "<!--")


def _needs_work(text: str) -> bool:
    if _UNSAFE.search(text) is not None:
        return True
    return any(t in text for t in _ASCII_WORK)


# Between two digits: a separator other than one plain space, and at most three characters.
_DIGIT_SEP = "._/\\-\u2010-\u2015\u2212\u00b7\u2022 "
_DIGIT_SEP_RE = re.compile(rf"(?<=[0-9])(?:[{_DIGIT_SEP}]{{2,3}}|[{_DIGIT_SEP[:-1]}])(?=[0-9])")


# The same test on a class string (digits are "0"), starting with a literal so the regex
# engine skips ahead: a digit, a separator other than one space, a digit.
_CLS_SEP_RE = re.compile(rb"0(?:[._/\\\-] ?| [._/\\\-] ?)0")


def fold_digits(text: str) -> str:
    """`text` with every script's decimal digits as ASCII digits (same length)."""
    return text.translate(_DIGIT_TABLE) if _OTHER_DIGIT.search(text) else text


def _printable(s: str) -> bool:
    return all(ch.isprintable() or ch.isspace() for ch in s)


class Normalised:
    """A rewritten text and the way back to the original's offsets.

    The map is a list of pieces (norm_start, orig_start, norm_len, orig_len) covering every
    character of `text`; characters removed from the original fall in the gaps. Inside a
    piece whose lengths agree, offsets map one to one; a piece that changed length (an
    entity, a whitespace run) maps as a whole, so a span never ends inside "&amp;".
    """

    __slots__ = ("_lens", "_nstarts", "_olens", "_ostarts", "_parent", "capped", "original", "text")

    def __init__(
        self,
        original: str,
        text: str,
        pieces: list[tuple[int, int, int, int]] | None = None,
        parent: Normalised | None = None,
    ) -> None:
        self.original: str = original if parent is None else parent.original
        self.text = text
        self._parent = parent
        # True when a rewrite budget stopped the pass early (the tail is as written).
        self.capped = False
        if pieces is None:
            self._nstarts: list[int] | None = None
            self._ostarts: list[int] = []
            self._lens: list[int] = []
            self._olens: list[int] = []
        else:
            self._nstarts = [p[0] for p in pieces]
            self._ostarts = [p[1] for p in pieces]
            self._lens = [p[2] for p in pieces]
            self._olens = [p[3] for p in pieces]

    @property
    def identity(self) -> bool:
        """Whether offsets are the original's (nothing changed length)."""
        return self._nstarts is None and (self._parent is None or self._parent.identity)

    def _start(self, pos: int) -> int:
        if self._nstarts is None or not self._nstarts:
            return pos
        k = bisect_right(self._nstarts, pos) - 1
        if k < 0:
            return self._ostarts[0]
        off = pos - self._nstarts[k]
        if off >= self._lens[k]:  # at the very end
            return self._ostarts[k] + self._olens[k]
        return self._ostarts[k] + (off if self._lens[k] == self._olens[k] else 0)

    def _end(self, pos: int) -> int:
        if self._nstarts is None or not self._nstarts:
            return pos
        if pos <= 0:
            return self._ostarts[0]
        k = bisect_right(self._nstarts, pos - 1) - 1
        off = pos - self._nstarts[k]
        if self._lens[k] == self._olens[k]:
            return self._ostarts[k] + off
        return self._ostarts[k] + self._olens[k]

    def local_span(self, start: int, end: int) -> tuple[int, int]:
        """The span in the text this one was rewritten from (its parent, or the original)."""
        return self._start(start), self._end(end)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original offsets of the normalised span [start, end)."""
        s, e = self._start(start), self._end(end)
        if self._parent is not None:
            s, e = self._parent.span(s, e)
        return s, e


def _rewrite(m: re.Match[str]) -> str | None:
    """The replacement for one match of the base regex, or None to keep it as it is."""
    kind = m.lastgroup
    raw = m.group()
    if kind == "ws":
        return " " if any(ch.isspace() for ch in raw) else ""
    if kind == "ent":
        out = html.unescape(raw)
        return out if out != raw and _printable(out) else None
    if kind == "pct":
        out = unquote(raw, errors="strict") if len(raw) <= 3 * 2048 else raw
        return out if out != raw and _printable(out) else None
    if kind == "cmt":
        return ""
    out = unicodedata.normalize("NFKC", raw)
    return out if out != raw else None


def _one_pass(
    text: str, regex: re.Pattern[str], budget: int | None
) -> tuple[str, list[tuple[int, int, int, int]], bool] | None:
    """Rewrite every match (at most `budget` of them); None when nothing changed. The flag
    says the budget ran out."""
    parts: list[str] = []
    pieces: list[tuple[int, int, int, int]] = []
    npos = 0
    opos = 0  # original offset up to which text has been copied
    changed = False
    capped = False

    def copy(upto: int) -> None:
        nonlocal npos, opos
        if upto > opos:
            n = upto - opos
            parts.append(text[opos:upto])
            if pieces and pieces[-1][2] == pieces[-1][3] and pieces[-1][1] + pieces[-1][3] == opos:
                last = pieces[-1]
                pieces[-1] = (last[0], last[1], last[2] + n, last[3] + n)
            else:
                pieces.append((npos, opos, n, n))
            npos += n
        opos = upto

    for m in regex.finditer(text):
        if budget is not None:
            budget -= 1
            if budget < 0:
                capped = True
                break
        try:
            rep = _rewrite(m)
        except (UnicodeDecodeError, ValueError):
            rep = None
        if rep is None:
            continue
        start, end = m.span()
        copy(start)
        changed = True
        if rep:
            if m.lastgroup == "nfkc" and len(rep) == end - start:
                pieces.append((npos, start, len(rep), len(rep)))  # one to one
            elif m.lastgroup == "nfkc":
                npos = _nfkc_pieces(text, start, end, npos, parts, pieces)
                opos = end
                continue
            else:
                pieces.append((npos, start, len(rep), end - start))
            parts.append(rep)
            npos += len(rep)
        opos = end
    if not changed:
        return None
    copy(len(text))
    return "".join(parts), pieces, capped


def _nfkc_pieces(
    text: str, start: int, end: int, npos: int, parts: list[str], pieces: list[tuple[int, int, int, int]]
) -> int:
    """NFKC a run whose length changes, character by character, so offsets stay exact;
    returns the normalised offset after it."""
    for i in range(start, end):
        rep = unicodedata.normalize("NFKC", text[i])
        if rep:
            pieces.append((npos, i, len(rep), 1))
            parts.append(rep)
            npos += len(rep)
    return npos


# ASCII text needs a rewrite only if it holds one of these (substring tests run in C, far
# faster than a regex over the whole text; most messages hold none of them).
_ASCII_TRIGGERS = ("  ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "&", "%", "<!--")


def normalise(text: str, budget: int | None = None) -> Normalised:
    """The reader's view of `text` (see the module docstring), with its offset map.

    `budget` caps the rewrites (entities, whitespace runs, invisible characters) so hostile
    text costs a bounded amount; past it the rest of the text is left as written and
    `capped` is set (detect reports it as `truncated`). Masking passes no budget."""
    base = Normalised(text, text)
    if text.isascii():
        if not any(t in text for t in _ASCII_TRIGGERS):
            return base
    elif not _needs_work(text) and unicodedata.is_normalized("NFKC", text):
        return base
    current = base
    for _ in range(2):
        t = current.text
        regex = _BASE_RE if unicodedata.is_normalized("NFKC", t) else _BASE_NFKC_RE
        if regex is _BASE_RE and not _needs_work(t):
            break
        done = _one_pass(t, regex, budget)
        if done is None:
            break
        new_text, pieces, capped = done
        parent = current if current is not base else None
        current = Normalised(text, new_text, pieces, parent=parent)
        current.capped = capped or (parent is not None and parent.capped)
        if capped:
            break
    folded = fold_digits(current.text)
    if folded is not current.text:
        current.text = folded
    return current


def digit_view(norm: Normalised, cls: bytes | None = None, budget: int | None = None) -> Normalised:
    """`norm` with the separators between digit groups unified to one space.

    `cls` is the text's class string (cues.TextView.cls) when the caller has it: ASCII text
    whose class string has no separator after a digit needs no rewrite, a C-speed test.
    `budget` caps the rewrites as in `normalise` (then `capped` is set)."""
    t = norm.text
    if cls is not None and _CLS_SEP_RE.search(cls) is None and (t.isascii() or b"0?" not in cls):
        return norm
    if _DIGIT_SEP_RE.search(t) is None:
        return norm
    pieces: list[tuple[int, int, int, int]] = []
    parts: list[str] = []
    npos = opos = 0
    capped = False
    for m in _DIGIT_SEP_RE.finditer(t):
        if budget is not None:
            budget -= 1
            if budget < 0:
                capped = True
                break
        s, e = m.span()
        if s > opos:
            pieces.append((npos, opos, s - opos, s - opos))
            parts.append(t[opos:s])
            npos += s - opos
        pieces.append((npos, s, 1, e - s))
        parts.append(" ")
        npos += 1
        opos = e
    if opos < len(t):
        pieces.append((npos, opos, len(t) - opos, len(t) - opos))
        parts.append(t[opos:])
    out = Normalised(norm.original, "".join(parts), pieces, parent=norm)
    out.capped = capped or norm.capped
    return out
