"""Source positions and diagnostics: every compile error and lint finding is a `Diagnostic`.

Input: file names, texts and positions. Output: `Span`, `Diagnostic`, `PolicyError` and their caret rendering.

Diagnostics are collected, never raised one at a time: the checker gathers every problem, the
caller sorts them by position and prints them as `file:line:col: CXPnnn severity: message`
with the source line and a caret under the offending text (OPA's and Cedar's error style:
lowercase messages, input in backticks, the fix in a `hint`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cxpolicy.kinds import Severity

__all__ = ["Diagnostic", "PolicyError", "Severity", "SourceFile", "Span", "render_diagnostics"]


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """A region of a source file; 1-based lines and columns, end exclusive."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    @staticmethod
    def unknown(file: str = "<unknown>") -> Span:
        return Span(file, 1, 1, 1, 1)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    span: Span
    hint: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == Severity.ERROR

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.span.file, self.span.line, self.span.col, self.code)

    def headline(self) -> str:
        return f"{self.span}: {self.code} {self.severity}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "file": self.span.file,
            "line": self.span.line,
            "col": self.span.col,
            "end_line": self.span.end_line,
            "end_col": self.span.end_col,
            "hint": self.hint,
        }


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A loaded .cxp file: its display path, text, and whether it ships with cxpolicy."""

    path: str
    text: str
    shipped: bool = False  # from the core vocabulary or a compliance pack
    pack: str | None = None
    key: str = ""  # location-independent name used for the policy revision hash

    @property
    def revision_key(self) -> str:
        return self.key or self.path

    def line(self, n: int) -> str:
        lines = self.text.splitlines()
        return lines[n - 1] if 1 <= n <= len(lines) else ""


class PolicyError(Exception):
    """A policy set that does not compile; carries every diagnostic found, sorted by position."""

    def __init__(self, diagnostics: Iterable[Diagnostic], sources: Mapping[str, str] | None = None):
        self.diagnostics: list[Diagnostic] = sorted(diagnostics, key=Diagnostic.sort_key)
        self.sources: dict[str, str] = dict(sources or {})
        errors = [d for d in self.diagnostics if d.is_error]
        first = errors[0].headline() if errors else "policy does not compile"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first + more)

    def render(self, *, color: bool = False) -> str:
        return render_diagnostics(self.diagnostics, self.sources, color=color)


_COLORS = {"error": "\x1b[1;31m", "warning": "\x1b[1;33m", "info": "\x1b[1;36m"}


@dataclass
class _Palette:
    on: bool
    codes: dict[str, str] = field(default_factory=lambda: dict(_COLORS))

    def paint(self, text: str, key: str) -> str:
        if not self.on:
            return text
        code = self.codes.get(key, "\x1b[1m")
        return f"{code}{text}\x1b[0m"


def render_diagnostics(diagnostics: Iterable[Diagnostic], sources: Mapping[str, str], *, color: bool = False) -> str:
    """Text for humans: headline, the source line, a caret under the span, then the hint."""
    pal = _Palette(color)
    out: list[str] = []
    for d in sorted(diagnostics, key=Diagnostic.sort_key):
        head = f"{d.span}: {d.code} {pal.paint(d.severity, d.severity)}: {d.message}"
        out.append(head)
        text = sources.get(d.span.file)
        if text is not None:
            lines = text.splitlines()
            if 1 <= d.span.line <= len(lines):
                src = lines[d.span.line - 1].expandtabs(1)
                width = d.span.end_col - d.span.col if d.span.end_line == d.span.line else len(src) - d.span.col + 1
                width = max(1, width)
                gutter = f"{d.span.line:>4} | "
                out.append(gutter + src)
                out.append(" " * (len(gutter) + d.span.col - 1) + pal.paint("^" * width, d.severity))
        if d.hint:
            out.append(f"     = hint: {d.hint}")
    return "\n".join(out)
