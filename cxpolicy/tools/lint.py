"""Lint: compile diagnostics plus findings about policies that compile but are likely wrong.

Input: paths and packs (or a compiled `PolicySet`). Output: diagnostics with stable codes
(CXP6xx; the table is `CODES` and docs/diagnostics.md). Lint works on the checked rules, so
names are already resolved and every finding can be exact about the vocabulary:

- Constraints are reasoned about per dimension, exactly: a plain or ordered dimension as the
  set of values a rule accepts; a set dimension (the request carries a *set* of values) as
  "must contain", "must meet one of", "must avoid". From that follow rules that can never
  match, constraints that add nothing, and one rule covering another.
- Conditions are CEL; lint never evaluates them. It compares them as text (two conditions
  are "the same" only if written the same, so it may miss equivalent ones but never invents
  a match) and walks their syntax tree for literal comparisons, regexes and field names.

Compliance-pack rules must carry `because` and `cite` (an error there, a warning elsewhere):
an auditor reads them. Declarations shipped with cxpolicy (core vocabulary, packs) are never
reported as unused because a user's policy does not happen to read them. A finding can be
silenced with `# cxpolicy: ignore[CXP608]` on its line or on its rule's first line.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from cxpolicy.cel import extensions
from cxpolicy.cel import syntax as cel
from cxpolicy.cel.errors import CelSyntaxError
from cxpolicy.engine.loader import collect_sources, compile_sources
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.lang import codes
from cxpolicy.lang.checker import CheckedCondition, CheckedConstraint, CheckedRule
from cxpolicy.lang.prepass import prepass
from cxpolicy.lang.source import Diagnostic, PolicyError, Severity, Span
from cxpolicy.lang.vocabulary import DimensionDef, Vocabulary, did_you_mean, suggest
from cxpolicy.tools import lint_fields

__all__ = ["CODES", "lint_paths", "lint_policy"]

CODES: dict[str, str] = {c.code: c.meaning for c in codes.lint_codes()}  # for SARIF and the docs test

# Top-level request fields of LANGUAGE.md §2, and `signals` (filled in by the detectors).
REQUEST_ROOTS = frozenset({"action", "channel", "actor", "customer", "data_classes", "context", "payload", "signals"})
_IGNORE = re.compile(r"cxpolicy:\s*ignore\[([A-Z0-9, ]+)\]")


def lint_paths(
    paths: Sequence[str], packs: Iterable[str] = (), *, strict: bool = False
) -> tuple[list[Diagnostic], dict[str, str]]:
    """Diagnostics (compile errors, or warnings plus lint findings) and the source texts.

    `strict`: reading a field or top-level name the policy never declares (CXP615, CXP618)
    is an error, not a warning."""
    packs = list(packs)
    sources, diags = collect_sources(paths, packs)
    try:
        policy = compile_sources(sources, diags, packs=packs)
    except PolicyError as exc:
        return exc.diagnostics, exc.sources
    found = list(policy.warnings) + lint_policy(policy, strict=strict)
    texts = {s.path: s.text for s in policy.sources}
    return sorted(found, key=Diagnostic.sort_key), texts


def lint_policy(policy: PolicySet, *, strict: bool = False) -> list[Diagnostic]:
    """Every lint finding for a compiled policy set, deduplicated, unsorted."""
    rules = [r.checked for r in policy.rules]
    shipped = {s.path for s in policy.sources if s.shipped}
    vocab = policy.vocabulary
    out: list[Diagnostic] = []
    regions: dict[str, _Region | None] = {}
    for r in rules:
        out.extend(_documentation(r))
        out.extend(_constraint_findings(r))
        regions[r.id] = _region(r.constraints)
        for cond in r.conditions:
            out.extend(_condition_findings(cond, vocab))
    out.extend(_rule_pairs(rules, regions))
    out.extend(_unused(policy, rules, shipped))
    out.extend(lint_fields.field_findings(policy, strict=strict))
    out.extend(lint_fields.rule_id_findings(policy))
    if strict:
        out = [dataclasses.replace(d, severity=Severity.ERROR) if d.code == "CXP615" else d for d in out]
    unique = list(dict.fromkeys(out))  # a scope constraint is shared by every rule of its file
    return _without_ignored(unique, rules, {s.path: s.text for s in policy.sources})


# ------------------------------------------------------------------------ documentation


def _documentation(c: CheckedRule) -> Iterator[Diagnostic]:
    severity = Severity.ERROR if c.shipped else Severity.WARNING
    where = "compliance-pack rule" if c.shipped else "rule"
    if not c.because:
        hint = 'add one plain sentence: `because "AI may prepare a refund; a human approves it"`'
        yield codes.CXP601(f"{where} `{c.id}` has no `because`", c.span, hint, severity=severity)
    if not c.cites:
        hint = 'cite the clause behind it: `cite PCI_8_3_3` or `cite "internal policy CX-7"`'
        yield codes.CXP602(f"{where} `{c.id}` has no `cite`", c.span, hint, severity=severity)


# ------------------------------------------------------------------------ regions


@dataclass(frozen=True)
class _SetReq:
    """What a rule asks of one set dimension: contain all of `required`, meet each of
    `any_of`, avoid all of `excluded` (LANGUAGE.md §4 semantics of `=`, `in`, `!=`, `not in`)."""

    required: frozenset[str] = frozenset()
    any_of: tuple[frozenset[str], ...] = ()
    excluded: frozenset[str] = frozenset()

    def add(self, c: CheckedConstraint) -> _SetReq:
        vals = frozenset(c.values)
        if c.op == "=":
            return _SetReq(self.required | vals, self.any_of, self.excluded)
        if c.op == "in":
            return _SetReq(self.required, (*self.any_of, vals), self.excluded)
        return _SetReq(self.required, self.any_of, self.excluded | vals)

    def satisfiable(self) -> bool:
        """Exact: take `required` plus one non-excluded value of each `any_of`."""
        return not (self.required & self.excluded) and all(a - self.excluded for a in self.any_of)

    def implies(self, c: CheckedConstraint) -> bool:
        """Whether every set meeting this requirement meets `c` (exact, for a satisfiable one)."""
        vals = frozenset(c.values)
        if c.op == "=":
            forced = self.required | {v for a in self.any_of if len(a - self.excluded) == 1 for v in a - self.excluded}
            return c.values[0] in forced
        if c.op == "!=":
            return c.values[0] in self.excluded
        if c.op == "in":
            return bool(self.required & vals) or any(a - self.excluded <= vals for a in self.any_of)
        return vals <= self.excluded  # not in


_Accept = frozenset[str] | _SetReq
_Region = dict[str, _Accept]  # dimension name -> what the rule accepts; absent: anything


def _region(constraints: Sequence[CheckedConstraint]) -> _Region | None:
    """The requests a rule's constraints accept, per dimension; None if there are none."""
    region: _Region = {}
    for c in constraints:
        d = c.dimension
        prev = region.get(d.name)
        if d.is_set:
            region[d.name] = (prev if isinstance(prev, _SetReq) else _SetReq()).add(c)
        else:
            region[d.name] = (prev if isinstance(prev, frozenset) else frozenset(d.values)) & c.allowed()
    ok = all(a.satisfiable() if isinstance(a, _SetReq) else a for a in region.values())
    return region if ok else None


def _implies(acc: _Accept | None, c: CheckedConstraint) -> bool:
    """Whether everything `acc` accepts on c's dimension (None: anything) satisfies `c`."""
    if c.dimension.is_set:
        return (acc if isinstance(acc, _SetReq) else _SetReq()).implies(c)
    accepted = acc if isinstance(acc, frozenset) else frozenset(c.dimension.values)
    return accepted <= c.allowed()


def _covers(outer: CheckedRule, inner: _Region) -> bool:
    """Whether every request `inner` accepts is accepted by `outer`'s constraints."""
    return all(_implies(inner.get(c.dimension.name), c) for c in outer.constraints)


def _constraint_findings(r: CheckedRule) -> Iterator[Diagnostic]:
    by_dim: dict[str, list[CheckedConstraint]] = {}
    for c in r.constraints:
        by_dim.setdefault(c.dimension.name, []).append(c)
        twice = sorted({v for v in c.values if c.values.count(v) > 1})
        if twice:
            listed = ", ".join(f"`{v}`" for v in twice)
            yield codes.CXP605(f"{listed} listed twice in `{c.text}`", c.span)
    for name, cs in by_dim.items():
        if _region(cs) is None:
            yield _never_matches(r, name, cs)
            continue
        working = list(cs)
        for c in reversed(cs):  # report the later of two duplicates
            if c.from_scope:
                continue
            others = [o for o in working if o is not c]
            if not others and not c.dimension.is_set and c.allowed() == frozenset(c.dimension.values):
                msg = f"`{c.text}` holds for every value of `{name}`: it constrains nothing"
                yield codes.CXP604(msg, c.span, "remove it")
            elif others and _implies(_region_of_dim(others), c):
                said = ", ".join(f"`{o.text}`" + (" (scope)" if o.from_scope else "") for o in others)
                msg = f"`{c.text}` adds nothing: {said} already implies it"
                yield codes.CXP604(msg, c.span, "remove it")
                working.remove(c)


def _region_of_dim(cs: Sequence[CheckedConstraint]) -> _Accept | None:
    region = _region(cs)
    return None if region is None else region.get(cs[0].dimension.name)


def _never_matches(r: CheckedRule, name: str, cs: list[CheckedConstraint]) -> Diagnostic:
    at = next((c for c in reversed(cs) if not c.from_scope), cs[-1])
    said = " and ".join(f"`{c.text}`" + (" (from the file's scope)" if c.from_scope else "") for c in cs)
    what = "accepts" if len(cs) == 1 else "together accept"
    msg = f"rule `{r.id}` can never match: {said} {what} no value of `{name}`"
    if cs[0].dimension.is_set:
        msg = f"rule `{r.id}` can never match: {said} cannot all hold for `{name}`"
    return codes.CXP603(msg, at.span, "fix or remove the contradicting constraint")


# ------------------------------------------------------------------------ rule against rule


def _outcome_within(a: CheckedRule, b: CheckedRule) -> bool:
    """Whether `b` does everything `a` does to a decision: effect, queue, style, masking."""
    if (a.effect, a.queue, a.style) != (b.effect, b.queue, b.style):
        return False
    if a.redact_classes is not None:
        return b.redact_classes is not None and set(a.redact_classes) <= set(b.redact_classes)
    masked_b = set(b.redact_classes) if b.redact_classes is not None else b.implicit_classes
    return a.implicit_classes <= masked_b


def _conditions(r: CheckedRule) -> frozenset[tuple[str, Any]]:
    """Each condition as (kind, syntax tree without positions): equal when written alike up
    to spacing, comments and parentheses; equivalent conditions written otherwise differ."""
    return frozenset((c.kind, _shape(c.expression.text)) for c in r.conditions)


@functools.lru_cache(maxsize=4096)
def _shape(text: str) -> Any:
    try:
        return _strip(cel.parse(text)[1])
    except CelSyntaxError:  # pragma: no cover - the checker compiled it already
        return text


def _strip(node: Any) -> Any:
    if isinstance(node, cel.Node):
        fields = (f.name for f in dataclasses.fields(node) if f.name not in ("start", "end"))
        return (type(node).__name__, *(_strip(getattr(node, f)) for f in fields))
    if isinstance(node, tuple):
        return tuple(_strip(x) for x in node)
    return (type(node).__name__, node)  # `1`, `1.0` and `true` stay apart


def _narrowed(r: CheckedRule) -> frozenset[str]:
    """Dimensions on which `r` rules something out. A rule can only cover another that
    narrows at least these: an unconstrained dimension implies nothing but "any value"."""
    return frozenset(
        c.dimension.name for c in r.constraints if c.dimension.is_set or c.allowed() != frozenset(c.dimension.values)
    )


def _rule_pairs(rules: list[CheckedRule], regions: dict[str, _Region | None]) -> Iterator[Diagnostic]:
    """CXP606 (allow overridden), CXP607 (duplicate), CXP608 (subsumed): at most one per rule.

    Pairwise, but only between rules that can relate: the same effect, queue and style for
    607/608, and a candidate whose narrowed dimensions the rule also narrows.
    """
    narrowed = {r.id: _narrowed(r) for r in rules}
    conditions = {r.id: _conditions(r) for r in rules}
    stricter = [r for r in rules if r.effect.severity > 0 and not r.conditions]
    by_outcome: dict[tuple[str, str | None, str], list[CheckedRule]] = {}
    for r in rules:
        by_outcome.setdefault((r.effect, r.queue, r.style), []).append(r)
    for a in rules:
        region = regions[a.id]
        if region is None:
            continue
        mine = narrowed[a.id]
        if a.effect.severity == 0:
            over = next(
                (
                    s
                    for s in stricter
                    if narrowed[s.id] <= mine and not (a.shipped and not s.shipped) and _covers(s, region)
                ),
                None,
            )
            if over is not None:
                msg = (
                    f"allow rule `{a.id}` never decides: `{over.id}` ({over.effect}, no conditions) "
                    f"matches every request it matches, and the strictest effect wins"
                )
                hint = f"make it an `unless` on `{over.id}` ({over.span}), or narrow that rule"
                yield codes.CXP606(msg, a.span, hint)
                continue
        conds = conditions[a.id]
        for b in by_outcome[(a.effect, a.queue, a.style)]:
            if b is a or not narrowed[b.id] <= mine or (a.shipped and not b.shipped):
                continue
            if not conditions[b.id] <= conds or not _outcome_within(a, b) or not _covers(b, region):
                continue
            b_region = regions[b.id]
            same = conditions[b.id] == conds and _outcome_within(b, a)
            if same and b_region is not None and _covers(a, b_region):
                if a.order > b.order:  # report the later one (shipped rules load first)
                    msg = f"rule `{a.id}` duplicates `{b.id}` ({b.span}): same constraints, conditions and outcome"
                    yield codes.CXP607(msg, a.span, "remove one of them")
                    break
                continue
            extra = "" if conditions[b.id] == conds else " and fewer conditions"
            msg = f"rule `{a.id}` is subsumed by `{b.id}` ({b.span}): same outcome, wider match{extra}"
            hint = "it adds only its `because`/`cite` to decisions; merge them or remove it"
            yield codes.CXP608(msg, a.span, hint)
            break


# ------------------------------------------------------------------------ unused declarations


def _unused(policy: PolicySet, rules: list[CheckedRule], shipped: set[str]) -> Iterator[Diagnostic]:
    used_cites = {name for r in rules for name, _ in r.cites if name is not None}
    for name, (_, span) in policy.checked.cites.items():
        if span.file not in shipped and name not in used_cites:
            hint = "cite it from a rule (`cite NAME`) or remove the declaration"
            yield codes.CXP609(f"cite `{name}` is declared but no rule cites it", span, hint)
    fields = {f for r in rules for c in r.conditions for f in c.expression.fields}
    for path, attr in policy.vocabulary.attributes.items():
        if attr.span.file in shipped:
            continue
        if not any(f == path or f.startswith(path + ".") or path.startswith(f + ".") for f in fields):
            msg = f"attribute `{path}` is declared but no condition reads it"
            hint = "read it in a `when`/`unless`, or remove the declaration"
            yield codes.CXP610(msg, attr.span, hint)


# ------------------------------------------------------------------------ conditions

_COMPARE = frozenset({"==", "!=", "<", "<=", ">", ">="})
_ORDER = frozenset({"<", "<=", ">", ">="})
_TYPE_OK: dict[str, Callable[[object], bool]] = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "int": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "list": lambda v: False,
    "map": lambda v: False,
}


def _condition_findings(cond: CheckedCondition, vocab: Vocabulary) -> Iterator[Diagnostic]:
    text = cond.expression.text
    try:
        _, root = cel.parse(text)
    except CelSyntaxError:  # pragma: no cover - the checker compiled it already
        return
    known = REQUEST_ROOTS | {d.path[0] for d in vocab.dimensions.values()}
    known |= {a.path[0] for a in vocab.attributes.values()}
    unknown: dict[str, cel.Node] = {}
    stack: list[cel.Node] = [root]
    while stack:
        node = stack.pop()
        stack.extend(node.children())
        if isinstance(node, cel.Ident) and not node.bound and node.name not in known:
            if node.name not in unknown or node.start < unknown[node.name].start:
                unknown[node.name] = node
        elif isinstance(node, cel.Binary) and node.op in _COMPARE:
            for field, lit in ((node.left, node.right), (node.right, node.left)):
                if isinstance(lit, cel.Lit):
                    yield from _compare(cond, node, field, [lit], vocab)
        elif isinstance(node, cel.Binary) and node.op == "in" and isinstance(node.right, cel.ListLit):
            lits = [i for i in node.right.items if isinstance(i, cel.Lit)]
            yield from _compare(cond, node, node.left, lits, vocab)
        elif isinstance(node, cel.Call) and node.function == "matches" and node.args:
            yield from _regex(cond, node.args[-1])
        elif isinstance(node, cel.Call):
            yield from _function_types(cond, node, vocab)
    for name, ident in sorted(unknown.items()):
        msg = f"`{name}` is not a request field: this condition errs on every request without it"
        hint = suggest(name, sorted(known), f"request fields: {', '.join(sorted(REQUEST_ROOTS))}")
        yield codes.CXP615(msg, _sub_span(cond, ident), hint)


#: What each argument of a global extension function must be, by declared type.
_ARGUMENT_KIND = {name: "number" for name in extensions.FUNCTIONS if name.startswith("math.")}
_ARGUMENT_KIND |= {"ip": "string", "cidr": "string", "isIP": "string", "isCIDR": "string"}
_ARGUMENT_KIND |= {"ip.isCanonical": "string", "strings.quote": "string"}
#: Declared types (attribute types, and "string"/"list" for dimensions) each kind accepts.
_ACCEPTS = {"string": {"string"}, "number": {"number", "int"}, "list": {"list"}}


def _declared_type(path: str, vocab: Vocabulary) -> str | None:
    attr = vocab.attributes.get(path)
    if attr is not None:
        return None if attr.type == "any" else attr.type
    dim = next((d for d in vocab.dimensions.values() if d.path_text == path), None)
    return None if dim is None else ("list" if dim.is_set else "string")


def _function_types(cond: CheckedCondition, node: cel.Call, vocab: Vocabulary) -> Iterator[Diagnostic]:
    """A field of a declared type handed to a function that never takes it: always an error."""
    function = extensions.lookup(node.function, node.target is not None)
    if function is None:
        return
    checks: list[tuple[cel.Node, str | None]]
    if node.target is not None:
        checks = [(node.target, function.receiver)] if function.receiver in _ACCEPTS else []
    else:
        checks = [(arg, _ARGUMENT_KIND.get(function.name)) for arg in node.args]
    for arg, kind in checks:
        found = cel.field_path(arg)
        if kind is None or kind not in _ACCEPTS or found is None or found[0].bound:
            continue
        path = ".".join((found[0].name, *found[1]))
        declared = _declared_type(path, vocab)
        if declared is None or declared in _ACCEPTS[kind]:
            continue
        msg = f"`{function.name}` takes a {kind}, but `{path}` is declared `{declared}`: always an error"
        hint = "convert it first (`string(x)`, `double(x)`) or use a field of that type"
        yield codes.CXP616(msg, _sub_span(cond, node), hint)


#: Case and space functions lint can see through when it checks a dimension's values.
_TRANSFORMS: dict[str, Callable[[str], str]] = {
    "lowerAscii": extensions.lower_ascii,
    "upperAscii": extensions.upper_ascii,
    "trim": extensions.trim,
}


def _unwrap(field: cel.Node) -> tuple[cel.Node, Callable[[str], str] | None, str]:
    """`customer.tier.lowerAscii()` as the field and the transform applied to its values."""
    if isinstance(field, cel.Call) and field.target is not None and not field.args and field.function in _TRANSFORMS:
        return field.target, _TRANSFORMS[field.function], f".{field.function}()"
    return field, None, ""


def _regex(cond: CheckedCondition, pattern: cel.Node) -> Iterator[Diagnostic]:
    if isinstance(pattern, cel.Lit) and isinstance(pattern.value, str):
        nested = nested_quantifier(pattern.value)
        if nested is not None:
            msg = f"regex `{pattern.value}` nests quantifiers (`{nested}`): it can backtrack exponentially"
            hint = "RE2 runs it in linear time here, but a copy in a backtracking engine can hang"
            yield codes.CXP614(msg, _sub_span(cond, pattern), hint)


def _compare(
    cond: CheckedCondition, node: cel.Binary, field: cel.Node, lits: list[cel.Lit], vocab: Vocabulary
) -> Iterator[Diagnostic]:
    field, transform, suffix = _unwrap(field)
    found = cel.field_path(field)
    if found is None or found[0].bound:
        return
    path = ".".join((found[0].name, *found[1]))
    attr = vocab.attributes.get(path)
    dim = next((d for d in vocab.dimensions.values() if d.path_text == path), None)
    if transform is not None:
        if dim is not None and not dim.is_set:
            for lit in lits:
                if isinstance(lit.value, str):
                    yield from _dimension_compare(dim, node, lit.value, _sub_span(cond, node), path + suffix, transform)
        return
    declared = attr.type if attr is not None else ("list" if dim and dim.is_set else "string" if dim else None)
    span = _sub_span(cond, node)
    for lit in lits:
        v = lit.value
        if v is None or declared is None or declared == "any":
            continue
        if not _TYPE_OK[declared](v):
            what = f"attribute declared `{declared}`" if attr is not None else f"dimension `{dim.name if dim else ''}`"
            msg = f"`{path}` ({what}) is compared with {_kind(v)} literal {_lit(v)}: always false or an error"
            yield codes.CXP611(msg, span, f"compare it with {_article(declared)} value")
        elif dim is not None and not dim.is_set and isinstance(v, str):
            yield from _dimension_compare(dim, node, v, span, path)


def _dimension_compare(
    dim: DimensionDef,
    node: cel.Binary,
    v: str,
    span: Span,
    path: str,
    transform: Callable[[str], str] | None = None,
) -> Iterator[Diagnostic]:
    values = list(dim.values) if transform is None else list(dict.fromkeys(map(transform, dim.values)))
    if v not in values:
        guess = did_you_mean(v, values)
        verdict = "always true" if node.op == "!=" else "never true"
        msg = f"{_lit(v)} is not a value of dimension `{dim.name}` (at `{path}`): the comparison is {verdict}"
        hint = f"did you mean {_lit(guess)}?" if guess else f"values: {', '.join(dim.values[:12])}"
        yield codes.CXP612(msg, span, hint)
    elif node.op in _ORDER:
        msg = f"CEL orders `{path}` as text, not in the declared order of `{dim.name}`"
        hint = f"use a constraint: `match {dim.name} {node.op} {v}`" if dim.is_ordered else "compare with `==` or `in`"
        yield codes.CXP613(msg, span, hint)


def _sub_span(cond: CheckedCondition, node: cel.Node) -> Span:
    """The .cxp span of a sub-expression (CEL offsets are into the condition's text)."""
    text, s = cond.expression.text, cond.span

    def at(offset: int) -> tuple[int, int]:
        before = text[:offset]
        nl = before.rfind("\n")
        return (s.line + before.count("\n"), s.col + offset if nl < 0 else offset - nl)

    start, end = node.start, node.end
    if not isinstance(start, int):  # a node the CEL parser left without a position
        return s
    end = end if isinstance(end, int) else len(text.rstrip())
    (line, col), (end_line, end_col) = at(start), at(max(end, start + 1))
    return Span(s.file, line, col, end_line, end_col)


def _kind(v: object) -> str:
    return "a bool" if isinstance(v, bool) else "a string" if isinstance(v, str) else "a number"


def _article(t: str) -> str:
    return f"an {t}" if t[0] in "aeiou" else f"a {t}"


def _lit(v: object) -> str:
    if isinstance(v, str):
        return "`" + json.dumps(v, ensure_ascii=False) + "`"
    return f"`{str(v).lower() if isinstance(v, bool) else v}`"


def nested_quantifier(pattern: str) -> str | None:
    """The first repeated group whose body can itself repeat and has nothing it must match
    every time, e.g. `(a+)+` or `(\\d+\\s*)*`; None if there is none.

    That shape lets a backtracking engine split the same text into iterations in
    exponentially many ways. A body with a mandatory part in every branch (`(,[a-z]+)*`)
    is not reported. A scan, not a regex parser: escapes and character classes are skipped;
    overlapping alternatives (`(a|aa)+`) and overlapping mandatory parts (`(a[a-z]+)*`) are
    not found.
    """
    # per open group: [start, body repeats, every earlier branch has a mandatory atom,
    #                  the current branch has one]
    groups: list[list[Any]] = []
    i, n = 0, len(pattern)

    def atom(end: int) -> int:
        q = _quantifier(pattern, end)
        if groups:
            if not q:
                groups[-1][3] = True
            elif _repeats(q):
                groups[-1][1] = True
        return end + len(q)

    while i < n:
        ch = pattern[i]
        if ch == "\\":
            i = i + 2 if pattern[i + 1 : i + 2] in ("b", "B", "A", "z") else atom(i + 2)
        elif ch == "[":
            j = i + 1 + (pattern[i + 1 : i + 2] == "^")
            j += pattern[j : j + 1] == "]"
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i = atom(j + 1)
        elif ch == "(":
            k = i + 1
            if pattern[k : k + 1] == "?":  # (?:...), (?P<name>...), (?i), (?i:...)
                while k < n and pattern[k] not in ":>)":
                    k += 1
                if pattern[k : k + 1] == ")":
                    i = k + 1
                    continue
            groups.append([i, False, True, False])
            i = k + 1 if k > i + 1 else k
        elif ch == ")" and groups:
            start, repeats, earlier, current = groups.pop()
            mandatory = earlier and current
            q = _quantifier(pattern, i + 1)
            if q and _repeats(q) and repeats and not mandatory:
                return pattern[start : i + 1 + len(q)]
            if groups:
                groups[-1][1] = groups[-1][1] or repeats or (bool(q) and _repeats(q))
                groups[-1][3] = groups[-1][3] or (mandatory and not q)
            i += 1 + len(q)
        elif ch == "|":
            if groups:
                groups[-1][2], groups[-1][3] = groups[-1][2] and groups[-1][3], False
            i += 1
        elif ch in "^$":
            i += 1
        else:
            i = atom(i + 1)
    return None


def _quantifier(p: str, i: int) -> str:
    """The quantifier at p[i] (`*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}`, maybe lazy), or ""."""
    m = re.match(r"(?:\*|\+|\?|\{\d+(?:,\d*)?\})\??", p[i:])
    return m.group(0) if m else ""


def _repeats(q: str) -> bool:
    """Whether a quantifier lets its atom match a varying number of times, more than once."""
    if q[0] in "*+":
        return True
    if q[0] != "{":
        return False
    lo, comma, hi = q.strip("{}?").partition(",")
    return comma == "," and (not hi or int(hi) > max(1, int(lo)))


# ------------------------------------------------------------------------ suppression


def _without_ignored(diags: list[Diagnostic], rules: list[CheckedRule], texts: dict[str, str]) -> list[Diagnostic]:
    """Drop findings silenced by `# cxpolicy: ignore[CODE, ...]` on their line or rule's first line."""
    ignored: dict[tuple[str, int], set[str]] = {}
    for path, text in texts.items():
        if "cxpolicy:" not in text:
            continue
        for c in prepass(text).comments:
            m = _IGNORE.search(c.text)
            if m:
                codes = {code.strip() for code in m.group(1).split(",")}
                for line in (c.line, c.line + 1):  # on the line, or on its own line just above
                    ignored.setdefault((path, line), set()).update(codes)
    if not ignored:
        return diags
    rule_lines = [(r.span.file, r.span.line, r.span.end_line) for r in rules]

    def silenced(d: Diagnostic) -> bool:
        if d.code in ignored.get((d.span.file, d.span.line), ()):
            return True
        for file, line, end in rule_lines:
            if file == d.span.file and line <= d.span.line <= end:
                return d.code in ignored.get((file, line), ())
        return False

    return [d for d in diags if not silenced(d)]
