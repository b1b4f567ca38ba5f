"""Checker: parsed modules → a checked policy (names resolved) or diagnostics.

Input: every `ast.Module` of a policy set, in load order. Output: `CheckedPolicy` with the
vocabulary, each rule's constraints resolved against it (scope included), effects, cites and
parsed conditions. Every problem is collected — the checker never stops at the first — and
each carries a span and, for unknown names, a "did you mean".
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

from cxpolicy.cel import CelSyntaxError, Expression, compile_expression
from cxpolicy.kinds import Effect, Style
from cxpolicy.lang import ast
from cxpolicy.lang.source import Diagnostic, Severity, SourceFile, Span
from cxpolicy.lang.vocabulary import DimensionDef, Vocabulary, build_vocabulary, did_you_mean

# Compiled expressions are immutable and thread-safe, and policies repeat condition texts (the
# bench's 3,000 conditions have 30 distinct texts): compile each text once per process.
_compile_cel = functools.lru_cache(maxsize=8192)(compile_expression)

__all__ = ["CheckedCondition", "CheckedConstraint", "CheckedPolicy", "CheckedRule", "CheckedTest", "check"]

_ORDER_OPS = ("<", "<=", ">", ">=")


@dataclass(frozen=True)
class CheckedConstraint:
    dimension: DimensionDef
    op: str  # = != < <= > >= in "not in"
    values: tuple[str, ...]
    span: Span
    text: str
    from_scope: bool = False

    def allowed(self) -> frozenset[str]:
        """For a plain/ordered dimension: the values this constraint accepts."""
        d = self.dimension
        vals = set(self.values)
        if self.op in ("=", "in"):
            return frozenset(vals)
        if self.op in ("!=", "not in"):
            return frozenset(v for v in d.values if v not in vals)
        pos = d.position(self.values[0])
        lo, hi = {"<": (0, pos), "<=": (0, pos + 1), ">": (pos + 1, len(d.values)), ">=": (pos, len(d.values))}[
            self.op
        ]
        return frozenset(d.values[lo:hi])

    @property
    def positive(self) -> bool:
        return self.op in ("=", "in")


@dataclass(frozen=True)
class CheckedCondition:
    kind: str  # when | unless
    text: str
    expression: Expression
    span: Span


@dataclass(frozen=True)
class CheckedRule:
    id: str
    name: str
    package: str
    file: str
    constraints: tuple[CheckedConstraint, ...]
    conditions: tuple[CheckedCondition, ...]
    effect: Effect
    redact_classes: tuple[str, ...] | None  # None: implicit (the positive constraint's classes)
    implicit_classes: frozenset[str]
    style: Style
    queue: str | None
    because: str | None
    cites: tuple[tuple[str | None, str], ...]  # (declared name or None, text)
    span: Span
    shipped: bool
    order: int


@dataclass(frozen=True)
class CheckedTest:
    name: str
    block: ast.TestBlock
    file: str
    span: Span
    package: str | None = None  # the file's package: short rule ids in `expect rules` resolve in it


@dataclass
class CheckedPolicy:
    vocabulary: Vocabulary
    rules: list[CheckedRule]
    default: Effect
    default_queue: str | None
    default_span: Span | None
    tests: list[CheckedTest]
    cites: dict[str, tuple[str, Span]]
    sources: list[SourceFile]
    uses: list[str] = field(default_factory=list)


def check(modules: Sequence[ast.Module], sources: Sequence[SourceFile], diags: list[Diagnostic]) -> CheckedPolicy:
    """Resolve and check the whole set; append every problem to `diags`."""
    shipped = {s.path: s.shipped for s in sources}
    vocab = build_vocabulary(modules, diags)
    cites = _collect_cites(modules, diags)
    default, default_queue, default_span = _collect_default(modules, diags)
    rules: list[CheckedRule] = []
    tests: list[CheckedTest] = []
    seen_ids: dict[str, Span] = {}
    for m in modules:
        packages = [i for i in m.items if isinstance(i, ast.Package)]
        for extra in packages[1:]:
            diags.append(Diagnostic("CXP303", Severity.ERROR, "a file declares its `package` once", extra.span))
        package = packages[0].name if packages else None
        scope: list[CheckedConstraint] = []
        for item in m.items:
            if isinstance(item, ast.Scope):
                scope.extend(_constraints(item.constraints, vocab, diags, from_scope=True))
        for item in m.items:
            if isinstance(item, ast.Rule):
                if package is None:
                    diags.append(
                        Diagnostic(
                            "CXP302",
                            Severity.ERROR,
                            f"rule `{item.name}` is in a file without a `package`",
                            item.name_span,
                            "add `package your.team.area` at the top of the file; rule ids are `package.name`",
                        )
                    )
                    continue
                rid = f"{package}.{item.name}"
                if rid in seen_ids:
                    diags.append(
                        Diagnostic(
                            "CXP301",
                            Severity.ERROR,
                            f"duplicate rule id `{rid}` (first at {seen_ids[rid]})",
                            item.name_span,
                            "rule names must be unique within a package",
                        )
                    )
                    continue
                seen_ids[rid] = item.name_span
                rule = _check_rule(item, package, m.file, scope, vocab, cites, diags, len(rules))
                if rule is None:
                    continue
                rules.append(_with_shipped(rule, shipped.get(m.file, False)))
            elif isinstance(item, ast.TestBlock):
                _check_test(item, vocab, diags)
                tests.append(CheckedTest(item.name, item, m.file, item.span, package))
    return CheckedPolicy(vocab, rules, default, default_queue, default_span, tests, cites, list(sources))


def _with_shipped(rule: CheckedRule, shipped: bool) -> CheckedRule:
    if rule.shipped == shipped:
        return rule
    from dataclasses import replace

    return replace(rule, shipped=shipped)


def _collect_cites(modules: Sequence[ast.Module], diags: list[Diagnostic]) -> dict[str, tuple[str, Span]]:
    cites: dict[str, tuple[str, Span]] = {}
    for m in modules:
        for item in m.items:
            if isinstance(item, ast.CiteDecl):
                if item.name in cites and cites[item.name][0] != item.text:
                    diags.append(
                        Diagnostic(
                            "CXP313",
                            Severity.ERROR,
                            f"cite `{item.name}` is declared twice with different texts "
                            f"(first at {cites[item.name][1]})",
                            item.span,
                        )
                    )
                    continue
                cites.setdefault(item.name, (item.text, item.span))
    return cites


def _collect_default(modules: Sequence[ast.Module], diags: list[Diagnostic]) -> tuple[Effect, str | None, Span | None]:
    found: ast.DefaultDecl | None = None
    for m in modules:
        for item in m.items:
            if isinstance(item, ast.DefaultDecl):
                if found is not None:
                    diags.append(
                        Diagnostic(
                            "CXP304",
                            Severity.ERROR,
                            f"a second `default` (the first is at {found.span}); a policy set has at most one",
                            item.span,
                        )
                    )
                    continue
                if item.effect.effect == "redact":
                    diags.append(
                        Diagnostic(
                            "CXP314",
                            Severity.ERROR,
                            "`default redact` is not allowed: a default has no data classes to mask",
                            item.span,
                            "use `default allow`, `default require_otp` or `default escalate`",
                        )
                    )
                    continue
                found = item
    if found is None:
        return Effect.ESCALATE, None, None
    return Effect(found.effect.effect), found.effect.queue, found.span


def _constraints(
    items: Sequence[ast.Constraint], vocab: Vocabulary, diags: list[Diagnostic], *, from_scope: bool = False
) -> list[CheckedConstraint]:
    out: list[CheckedConstraint] = []
    for c in items:
        d = vocab.dimensions.get(c.dimension)
        if d is None:
            hint = did_you_mean(c.dimension, vocab.dimensions)
            diags.append(
                Diagnostic(
                    "CXP201",
                    Severity.ERROR,
                    f"unknown dimension `{c.dimension}`",
                    c.dim_span,
                    f"did you mean `{hint}`?"
                    if hint
                    else "declare it with `dimension NAME at PATH: {...}` or `use core`",
                )
            )
            continue
        ok = True
        if c.op in _ORDER_OPS and not d.is_ordered:
            diags.append(
                Diagnostic(
                    "CXP203",
                    Severity.ERROR,
                    f"`{c.op}` needs an ordered dimension; `{d.name}` is {d.kind}",
                    c.span,
                    "declare it `ordered {...}`, or use `in [...]`",
                )
            )
            ok = False
        if c.op in ("in", "not in") and not c.values:
            diags.append(Diagnostic("CXP220", Severity.ERROR, f"`{c.op} []` lists no values", c.span))
            ok = False
        for v in c.values:
            if v.text not in d.values:
                hint = did_you_mean(v.text, d.values)
                diags.append(
                    Diagnostic(
                        "CXP202",
                        Severity.ERROR,
                        f"`{v.text}` is not a value of dimension `{d.name}`",
                        v.span,
                        f"did you mean `{hint}`?" if hint else f"known values: {_few(d.values)}",
                    )
                )
                ok = False
        if ok:
            out.append(CheckedConstraint(d, c.op, tuple(v.text for v in c.values), c.span, c.text(), from_scope))
    return out


def _few(values: Sequence[str]) -> str:
    shown = ", ".join(f"`{v}`" for v in values[:12])
    return shown + (", …" if len(values) > 12 else "")


def _check_rule(
    item: ast.Rule,
    package: str,
    file: str,
    scope: list[CheckedConstraint],
    vocab: Vocabulary,
    cites: dict[str, tuple[str, Span]],
    diags: list[Diagnostic],
    order: int,
) -> CheckedRule | None:
    rid = f"{package}.{item.name}"
    before = len([d for d in diags if d.is_error])
    constraints = scope + _constraints(item.matches, vocab, diags)
    if not item.decides:
        diags.append(
            Diagnostic(
                "CXP305",
                Severity.ERROR,
                f"rule `{item.name}` has no `decide` clause",
                item.name_span,
                'add e.g. `decide escalate to "queue"`',
            )
        )
        return None
    for extra in item.decides[1:]:
        diags.append(Diagnostic("CXP306", Severity.ERROR, f"rule `{item.name}` has more than one `decide`", extra.span))
    if len(item.because) > 1:
        diags.append(Diagnostic("CXP311", Severity.ERROR, f"rule `{item.name}` has more than one `because`", item.span))
    spec = item.decides[0]
    effect = Effect(spec.effect)
    style = Style.FULL
    if spec.style is not None:
        try:
            style = Style(spec.style)
        except ValueError:
            hint = did_you_mean(spec.style, [s.value for s in Style])
            diags.append(
                Diagnostic(
                    "CXP309",
                    Severity.ERROR,
                    f"unknown redaction style `{spec.style}`; expected `full`, `token` or `last4`",
                    spec.style_span,
                    f"did you mean `{hint}`?" if hint else None,
                )
            )
    redact_classes: tuple[str, ...] | None = None
    implicit: frozenset[str] = frozenset()
    if effect is Effect.REDACT:
        data_dim = vocab.data_dimension
        if data_dim is None:
            diags.append(
                Diagnostic(
                    "CXP310",
                    Severity.ERROR,
                    "`redact` needs a set dimension declared `at data_classes` to name data classes",
                    spec.span,
                    "`use core`, or declare `dimension data_class at data_classes: set {...}`",
                )
            )
        elif spec.classes is not None:
            if not spec.classes:
                diags.append(Diagnostic("CXP307", Severity.ERROR, "`redact []` lists no classes", spec.span))
            _check_data_classes(spec.classes, data_dim, diags)
            redact_classes = tuple(dict.fromkeys(v.text for v in spec.classes))
        else:
            pos = [c for c in constraints if c.dimension is data_dim and c.positive]
            if not pos:
                diags.append(
                    Diagnostic(
                        "CXP307",
                        Severity.ERROR,
                        f"rule `{item.name}`: `redact` without a list needs a `{data_dim.name} = ...` "
                        f"or `{data_dim.name} in [...]` constraint to say which classes",
                        spec.span,
                        "list the classes: `decide redact [card_pan] as last4`",
                    )
                )
            implicit = frozenset(v for c in pos for v in c.values)
    elif spec.classes is not None or spec.style is not None:  # pragma: no cover - grammar forbids
        pass
    rule_cites: list[tuple[str | None, str]] = []
    for ref in item.cites:
        if ref.name is not None:
            found = cites.get(ref.name)
            if found is None:
                hint = did_you_mean(ref.name, cites)
                diags.append(
                    Diagnostic(
                        "CXP312",
                        Severity.ERROR,
                        f"unknown cite `{ref.name}`",
                        ref.span,
                        f"did you mean `{hint}`?" if hint else f'declare it: `cite {ref.name} = "..."`',
                    )
                )
                continue
            rule_cites.append((ref.name, found[0]))
        else:
            rule_cites.append((None, ref.text or ""))
    conditions: list[CheckedCondition] = []
    for cond in item.conditions:
        try:
            expr = _compile_cel(cond.cel or cond.text)
        except CelSyntaxError as exc:
            line = cond.span.line + max(0, exc.line - 1)
            col = (cond.span.col + exc.col - 1) if exc.line <= 1 else exc.col
            diags.append(
                Diagnostic(
                    "CXP401",
                    Severity.ERROR,
                    f"`{cond.kind}` condition is not valid CEL: {exc.message}",
                    Span(cond.span.file, line, max(1, col), line, max(1, col) + 1),
                )
            )
            continue
        conditions.append(CheckedCondition(cond.kind, cond.text, expr, cond.span))
    if len([d for d in diags if d.is_error]) > before:
        return None
    return CheckedRule(
        id=rid,
        name=item.name,
        package=package,
        file=file,
        constraints=tuple(constraints),
        conditions=tuple(conditions),
        effect=effect,
        redact_classes=redact_classes,
        implicit_classes=implicit,
        style=style,
        queue=spec.queue,
        because=item.because[0] if item.because else None,
        cites=tuple(rule_cites),
        span=item.span,
        shipped=False,
        order=order,
    )


def _check_test(block: ast.TestBlock, vocab: Vocabulary, diags: list[Diagnostic]) -> None:
    if len(block.requests) != 1:
        diags.append(
            Diagnostic(
                "CXP502",
                Severity.ERROR,
                f'test "{block.name}" needs exactly one `request {{...}}`',
                block.span,
            )
        )
    effects = [e for e in block.expects if e.kind == "effect"]
    if len(effects) != 1:
        diags.append(
            Diagnostic(
                "CXP503",
                Severity.ERROR,
                f'test "{block.name}" needs exactly one `expect EFFECT` (allow, redact, require_otp, escalate)',
                block.span,
            )
        )
    data_dim = vocab.data_dimension
    for e in block.expects:
        if e.kind == "redact" and data_dim is not None:
            _check_data_classes(e.values, data_dim, diags)


def _check_data_classes(values: Sequence[ast.Value], data_dim: DimensionDef, diags: list[Diagnostic]) -> None:
    """CXP308 for each named class the data-class dimension does not declare (redact lists, tests)."""
    for v in values:
        if v.text not in data_dim.values:
            hint = did_you_mean(v.text, data_dim.values)
            diags.append(
                Diagnostic(
                    "CXP308",
                    Severity.ERROR,
                    f"`{v.text}` is not a data class (dimension `{data_dim.name}`)",
                    v.span,
                    f"did you mean `{hint}`?" if hint else None,
                )
            )
