"""What the language server knows about one open .cxp document, without any LSP plumbing.

Input: a document's path and text, and the other .cxp files of its directory (the policy set
it belongs to). Output: `Analysis`, holding the diagnostics (compile errors, else compile
warnings and lint findings) for that document, and the last policy set that compiled, which
hover, completion and go-to-definition read (so they keep working while the text is broken).

Positions here are 0-based lines and characters, as in LSP; cxpolicy spans are 1-based with
an exclusive end (lang/source.py). Every function answers None or [] rather than raising:
an editor calls them on every keystroke, on text that is usually half-written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from cxpolicy.engine.compiler import CompiledRule
from cxpolicy.engine.loader import compile_sources
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.lang.source import Diagnostic, PolicyError, SourceFile, Span
from cxpolicy.tools.fmt import FormatError, format_source
from cxpolicy.tools.lint import lint_policy
from cxpolicy.tools.testing import resolve_rule_id

__all__ = [
    "Analysis",
    "Target",
    "analyse",
    "completions",
    "definition",
    "format_document",
    "hover",
    "replacement",
    "word_at",
]

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_][A-Za-z0-9_\-]*)*")
_GUESS = re.compile(r"did you mean `([^`]+)`\?")
_KEYWORDS = (
    "package", "use", "scope", "default", "cite", "dimension", "extend", "attribute", "rule",
    "match", "when", "unless", "decide", "because", "test", "request", "expect",
    "allow", "redact", "require_otp", "escalate",
)  # fmt: skip


@dataclass
class Analysis:
    path: str
    text: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    policy: PolicySet | None = None  # None when this text does not compile (see `last_good`)


def analyse(path: str, text: str, siblings: dict[str, str] | None = None) -> Analysis:
    """Compile `text` (as `path`) with its directory's other files; lint it when it compiles.

    `siblings`: {path: text} of the other files; None reads them from the document's directory.
    """
    if siblings is None:
        siblings = _siblings(path)
    sources = [SourceFile(p, t, key=Path(p).name) for p, t in sorted(siblings.items()) if p != path]
    sources.append(SourceFile(path, text, key=Path(path).name))
    out = Analysis(path, text)
    try:
        policy = compile_sources(sources, [])
    except PolicyError as exc:
        out.diagnostics = [d for d in exc.diagnostics if d.span.file == path]
        return out
    except Exception:  # an editor keystroke must never kill the server
        return out
    out.policy = policy
    found = list(policy.warnings) + lint_policy(policy)
    out.diagnostics = sorted({d for d in found if d.span.file == path}, key=Diagnostic.sort_key)
    return out


def _siblings(path: str) -> dict[str, str]:
    p = Path(path)
    out: dict[str, str] = {}
    if not p.parent.is_dir():
        return out
    for other in sorted(p.parent.glob("*.cxp")):
        if other != p:
            try:
                out[str(other)] = other.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
    return out


def replacement(d: Diagnostic) -> str | None:
    """The text a did-you-mean hint proposes for the diagnostic's range, if it is a plain name."""
    m = _GUESS.search(d.hint or "")
    return m.group(1) if m and _WORD.fullmatch(m.group(1)) else None


def word_at(text: str, line: int, character: int) -> tuple[str, int, int] | None:
    """The dotted name under (line, character), with its start and end characters."""
    lines = text.splitlines()
    if not 0 <= line < len(lines):
        return None
    for m in _WORD.finditer(lines[line]):
        if m.start() <= character <= m.end():
            return m.group(0), m.start(), m.end()
    return None


# ------------------------------------------------------------------------ hover


def hover(policy: PolicySet, text: str, line: int, character: int) -> str | None:
    """Markdown about the name under the cursor: dimension, value, attribute, cite or rule."""
    found = word_at(text, line, character)
    if found is None:
        return None
    word = found[0]
    vocab = policy.vocabulary
    dim = vocab.dimensions.get(word) or next((d for d in vocab.dimensions.values() if d.path_text == word), None)
    if dim is not None:
        default = f", default `{dim.default}`" if dim.default is not None else ""
        values = ", ".join(f"`{v}`" for v in dim.values)
        return f"**dimension `{dim.name}`** ({dim.kind}) at `{dim.path_text}`{default}\n\nvalues: {values}"
    attr = vocab.attributes.get(word)
    if attr is not None:
        default = f" = `{_json(attr.default)}`" if attr.has_default else " (no default)"
        return f"**attribute `{attr.path_text}`**: `{attr.type}`{default}"
    if word in policy.checked.cites and _after_word(text, line, found[1]) in ("cite", ",", "="):
        return f"**cite `{word}`**\n\n{policy.checked.cites[word][0]}"
    rule = _rule(policy, text, line, word)
    if rule is not None:
        c = rule.checked
        clauses = [f"match {k.text}" for k in c.constraints if not k.from_scope]
        clauses += [f"{k.kind} {k.text}" for k in c.conditions]
        queue = f' to "{c.queue}"' if c.queue else ""
        body = "\n".join(f"    {x}" for x in clauses)
        because = f"\n\nbecause: {c.because}" if c.because else ""
        cites = "; ".join(t for _, t in c.cites)
        cite_text = f"\n\ncite: {cites}" if cites else ""
        return f"**rule `{c.id}`** → `{c.effect.value}{queue}`\n\n{body}{because}{cite_text}"
    if word in policy.checked.cites:
        return f"**cite `{word}`**\n\n{policy.checked.cites[word][0]}"
    owners = [d for d in vocab.dimensions.values() if word in d.values]
    if owners:
        return "\n\n".join(
            f"value of **dimension `{d.name}`** ({d.kind}): " + ", ".join(f"`{v}`" for v in d.values) for d in owners
        )
    return None


def _after_word(text: str, line: int, start: int) -> str:
    """The word (or `,`) just before `start` on the line: what introduces the name."""
    before = text.splitlines()[line][:start].rstrip()
    if before.endswith(","):
        return ","
    m = re.search(r"([A-Za-z_]+)$", before)
    return m.group(1) if m else ""


def _package(text: str) -> str | None:
    m = re.search(r"^\s*package\s+(\S+)", text, re.M)
    return m.group(1) if m else None


def _rule(policy: PolicySet, text: str, line: int, word: str) -> CompiledRule | None:
    ids = frozenset(r.id for r in policy.rules)
    rid = resolve_rule_id(ids, _package(text), word)
    return policy.rule(rid) if rid is not None else None


def _json(v: object) -> str:
    import json

    return json.dumps(v, ensure_ascii=False)


# ------------------------------------------------------------------------ completion

_CONSTRAINT = re.compile(r"(?:match|scope|,)\s*([A-Za-z_][\w\-]*)\s*(?:!=|<=|>=|=|<|>|in|not\s+in)\s*\[?[\w\-\s,.]*$")


def completions(policy: PolicySet, text: str, line: int, character: int) -> list[tuple[str, str, str]]:
    """(label, kind, detail) items for the cursor: dimension values after a constraint's
    operator, cite names after `cite`, fields in a condition, else dimensions and keywords.
    Kinds: value | dimension | attribute | cite | keyword."""
    lines = text.splitlines() or [""]
    prefix = lines[line][:character] if 0 <= line < len(lines) else ""
    vocab = policy.vocabulary
    m = _CONSTRAINT.search(prefix)
    if m and m.group(1) in vocab.dimensions:
        d = vocab.dimensions[m.group(1)]
        return [(v, "value", f"{d.name} ({d.kind})") for v in d.values]
    stripped = prefix.lstrip()
    if re.match(r"cite\s", stripped):
        return [(name, "cite", t) for name, (t, _) in sorted(policy.checked.cites.items())]
    if re.match(r"(when|unless)\s", stripped) or _in_condition(lines, line):
        items = [(a.path_text, "attribute", a.type) for a in vocab.attributes.values()]
        items += [(d.path_text, "dimension", f"dimension {d.name}") for d in vocab.dimensions.values()]
        return sorted(set(items))
    if re.match(r"(match|scope)\s", stripped) or stripped.endswith(","):
        return [(d.name, "dimension", f"{d.kind} at {d.path_text}") for d in vocab.dimensions.values()]
    if re.match(r"expect\s+rules", stripped):
        return [(r.id, "rule", r.effect.value) for r in policy.rules]
    return [(k, "keyword", "") for k in _KEYWORDS]


def _in_condition(lines: list[str], line: int) -> bool:
    """Whether `line` continues a `when`/`unless` whose brackets are still open."""
    depth = 0
    for i in range(max(0, line - 20), line):
        s = lines[i].strip()
        if s.startswith(("when ", "unless ")):
            depth = 0
        depth += s.count("(") + s.count("[") - s.count(")") - s.count("]")
    return depth > 0


# ------------------------------------------------------------------------ definition


@dataclass(frozen=True)
class Target:
    path: str
    span: Span


def definition(policy: PolicySet, text: str, line: int, character: int) -> Target | None:
    """Where the name under the cursor is declared: dimension, attribute, cite or rule."""
    found = word_at(text, line, character)
    if found is None:
        return None
    word = found[0]
    vocab = policy.vocabulary
    dim = vocab.dimensions.get(word) or next((d for d in vocab.dimensions.values() if d.path_text == word), None)
    if dim is not None:
        return Target(dim.span.file, dim.span)
    attr = vocab.attributes.get(word)
    if attr is not None:
        return Target(attr.span.file, attr.span)
    rule = _rule(policy, text, line, word)
    if rule is not None:
        return Target(rule.checked.span.file, rule.checked.span)
    if word in policy.checked.cites:
        span = policy.checked.cites[word][1]
        return Target(span.file, span)
    return None


# ------------------------------------------------------------------------ formatting


def format_document(path: str, text: str) -> str | None:
    """The canonical text, or None when it does not parse (nothing is changed then)."""
    try:
        return format_source(text, path)
    except FormatError:
        return None
