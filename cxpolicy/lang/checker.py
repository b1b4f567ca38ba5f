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
from cxpolicy.kinds import ConditionKind, Effect, Op, Style
from cxpolicy.lang import ast, codes
from cxpolicy.lang.source import Diagnostic, SourceFile, Span
from cxpolicy.lang.vocabulary import DimensionDef, Vocabulary, build_vocabulary, suggest

# Compiled expressions are immutable and thread-safe, and policies repeat condition texts (the
# bench's 3,000 conditions have 30 distinct texts): compile each text once per process.
_compile_cel = functools.lru_cache(maxsize=8192)(compile_expression)

__all__ = ["CheckedCondition", "CheckedConstraint", "CheckedPolicy", "CheckedRule", "CheckedTest", "check"]

_ORDER_OPS = ("<", "<=", ">", ">=")


@dataclass(frozen=True)
class CheckedConstraint:
    dimension: DimensionDef
    op: Op
    values: tuple[str, ...]
    span: Span
    text: str
    from_scope: bool = False

    def allowed(self) -> frozenset[str]:
        """For a plain/ordered dimension: the values this constraint accepts."""
        d = self.dimension
        vals = set(self.values)
        if self.op in (Op.EQ, Op.IN):
            return frozenset(vals)
        if self.op in (Op.NE, Op.NOT_IN):
            return frozenset(v for v in d.values if v not in vals)
        pos = d.position(self.values[0])
        lo, hi = {Op.LT: (0, pos), Op.LE: (0, pos + 1), Op.GT: (pos + 1, len(d.values)), Op.GE: (pos, len(d.values))}[
            self.op
        ]
        return frozenset(d.values[lo:hi])

    @property
    def positive(self) -> bool:
        return self.op in (Op.EQ, Op.IN)


@dataclass(frozen=True)
class CheckedCondition:
    kind: ConditionKind
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


def check(
    modules: Sequence[ast.Module],
    sources: Sequence[SourceFile],
    diags: list[Diagnostic],
    *,
    vocabulary: Vocabulary | None = None,
) -> CheckedPolicy:
    """Resolve and check the whole set; append every problem to `diags`.

    `vocabulary` is the vocabulary stage's output; without it, it is built here (and its
    diagnostics appended) so `check` can be called on its own.
    """
    shipped = {s.path: s.shipped for s in sources}
    vocab = vocabulary if vocabulary is not None else build_vocabulary(modules, diags)
    cites = _collect_cites(modules, diags)
    default, default_queue, default_span = _collect_default(modules, diags)
    rules: list[CheckedRule] = []
    tests: list[CheckedTest] = []
    seen_ids: dict[str, Span] = {}
    for m in modules:
        packages = [i for i in m.items if isinstance(i, ast.Package)]
        for extra in packages[1:]:
            diags.append(codes.CXP303("a file declares its `package` once", extra.span))
        package = packages[0].name if packages else None
        scope: list[CheckedConstraint] = []
        for item in m.items:
            if isinstance(item, ast.Scope):
                scope.extend(_constraints(item.constraints, vocab, diags, from_scope=True))
        for item in m.items:
            if isinstance(item, ast.Rule):
                if package is None:
                    diags.append(
                        codes.CXP302(
                            f"rule `{item.name}` is in a file without a `package`",
                            item.name_span,
                            "add `package your.team.area` at the top of the file; rule ids are `package.name`",
                        )
                    )
                    continue
                rid = f"{package}.{item.name}"
                if rid in seen_ids:
                    diags.append(
                        codes.CXP301(
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
                        codes.CXP313(
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
                        codes.CXP304(
                            f"a second `default` (the first is at {found.span}); a policy set has at most one",
                            item.span,
                        )
                    )
                    continue
                if item.effect.effect == "redact":
                    diags.append(
                        codes.CXP314(
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
            diags.append(
                codes.CXP201(
                    f"unknown dimension `{c.dimension}`",
                    c.dim_span,
                    suggest(
                        c.dimension, vocab.dimensions, "declare it with `dimension NAME at PATH: {...}` or `use core`"
                    ),
                )
            )
            continue
        ok = True
        if c.op in _ORDER_OPS and not d.is_ordered:
            diags.append(
                codes.CXP203(
                    f"`{c.op}` needs an ordered dimension; `{d.name}` is {d.kind}",
                    c.span,
                    "declare it `ordered {...}`, or use `in [...]`",
                )
            )
            ok = False
        if c.op in ("in", "not in") and not c.values:
            diags.append(codes.CXP220(f"`{c.op} []` lists no values", c.span))
            ok = False
        for v in c.values:
            if v.text not in d.values:
                diags.append(
                    codes.CXP202(
                        f"`{v.text}` is not a value of dimension `{d.name}`",
                        v.span,
                        suggest(v.text, d.values, f"known values: {_few(d.values)}"),
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
    """One rule, checked clause by clause; None if any clause has an error.

    Each clause's check reports into the rule's own `problems`, so whether the rule failed is
    read from what this rule produced, not from a count of a list the whole set shares.
    """
    problems: list[Diagnostic] = []
    try:
        constraints = scope + _constraints(item.matches, vocab, problems)
        spec = _decide_clause(item, problems)
        if spec is None:
            return None
        effect = Effect(spec.effect)
        style = _style(spec, problems)
        redact_classes, implicit = _redact_classes(item, spec, effect, constraints, vocab, problems)
        rule_cites = _rule_cites(item, cites, problems)
        conditions = _conditions(item, problems)
    finally:
        diags.extend(problems)
    if any(d.is_error for d in problems):
        return None
    return CheckedRule(
        id=f"{package}.{item.name}",
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


def _decide_clause(item: ast.Rule, problems: list[Diagnostic]) -> ast.EffectSpec | None:
    """The rule's one `decide` (CXP305 without, CXP306 for each extra), and one `because` (CXP311)."""
    if not item.decides:
        problems.append(
            codes.CXP305(
                f"rule `{item.name}` has no `decide` clause",
                item.name_span,
                'add e.g. `decide escalate to "queue"`',
            )
        )
        return None
    for extra in item.decides[1:]:
        problems.append(codes.CXP306(f"rule `{item.name}` has more than one `decide`", extra.span))
    if len(item.because) > 1:
        problems.append(codes.CXP311(f"rule `{item.name}` has more than one `because`", item.span))
    return item.decides[0]


def _style(spec: ast.EffectSpec, problems: list[Diagnostic]) -> Style:
    """The masking style (`full` unless written); CXP309 for an unknown one."""
    if spec.style is None:
        return Style.FULL
    try:
        return Style(spec.style)
    except ValueError:
        problems.append(
            codes.CXP309(
                f"unknown redaction style `{spec.style}`; expected `full`, `token` or `last4`",
                spec.style_span,
                suggest(spec.style, [s.value for s in Style]),
            )
        )
        return Style.FULL


def _redact_classes(
    item: ast.Rule,
    spec: ast.EffectSpec,
    effect: Effect,
    constraints: Sequence[CheckedConstraint],
    vocab: Vocabulary,
    problems: list[Diagnostic],
) -> tuple[tuple[str, ...] | None, frozenset[str]]:
    """A `redact` rule's classes: (the list, or None when implicit; the implicit classes)."""
    if effect is not Effect.REDACT:
        return None, frozenset()
    data_dim = vocab.data_dimension
    if data_dim is None:
        problems.append(
            codes.CXP310(
                "`redact` needs a set dimension declared `at data_classes` to name data classes",
                spec.span,
                "`use core`, or declare `dimension data_class at data_classes: set {...}`",
            )
        )
        return None, frozenset()
    if spec.classes is not None:
        if not spec.classes:
            problems.append(codes.CXP307("`redact []` lists no classes", spec.span))
        _check_data_classes(spec.classes, data_dim, problems)
        return tuple(dict.fromkeys(v.text for v in spec.classes)), frozenset()
    pos = [c for c in constraints if c.dimension is data_dim and c.positive]
    if not pos:
        problems.append(
            codes.CXP307(
                f"rule `{item.name}`: `redact` without a list needs a `{data_dim.name} = ...` "
                f"or `{data_dim.name} in [...]` constraint to say which classes",
                spec.span,
                "list the classes: `decide redact [card_pan] as last4`",
            )
        )
    return None, frozenset(v for c in pos for v in c.values)


def _rule_cites(
    item: ast.Rule, cites: dict[str, tuple[str, Span]], problems: list[Diagnostic]
) -> list[tuple[str | None, str]]:
    """The rule's cites as (declared name or None, text); CXP312 for an undeclared name."""
    out: list[tuple[str | None, str]] = []
    for ref in item.cites:
        if ref.name is None:
            out.append((None, ref.text or ""))
            continue
        found = cites.get(ref.name)
        if found is None:
            problems.append(
                codes.CXP312(
                    f"unknown cite `{ref.name}`",
                    ref.span,
                    suggest(ref.name, cites, f'declare it: `cite {ref.name} = "..."`'),
                )
            )
            continue
        out.append((ref.name, found[0]))
    return out


def _conditions(item: ast.Rule, problems: list[Diagnostic]) -> list[CheckedCondition]:
    """Every `when`/`unless` compiled; CXP401, positioned inside the expression, if not CEL."""
    out: list[CheckedCondition] = []
    for cond in item.conditions:
        try:
            expr = _compile_cel(cond.cel or cond.text)
        except CelSyntaxError as exc:
            line = cond.span.line + max(0, exc.line - 1)
            col = (cond.span.col + exc.col - 1) if exc.line <= 1 else exc.col
            problems.append(
                codes.CXP401(
                    f"`{cond.kind}` condition is not valid CEL: {exc.message}",
                    Span(cond.span.file, line, max(1, col), line, max(1, col) + 1),
                    exc.hint,
                )
            )
            continue
        out.append(CheckedCondition(cond.kind, cond.text, expr, cond.span))
    return out


def _check_test(block: ast.TestBlock, vocab: Vocabulary, diags: list[Diagnostic]) -> None:
    if len(block.requests) != 1:
        diags.append(
            codes.CXP502(
                f'test "{block.name}" needs exactly one `request {{...}}`',
                block.span,
            )
        )
    effects = [e for e in block.expects if e.kind == "effect"]
    if len(effects) != 1:
        diags.append(
            codes.CXP503(
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
            diags.append(
                codes.CXP308(
                    f"`{v.text}` is not a data class (dimension `{data_dim.name}`)",
                    v.span,
                    suggest(v.text, data_dim.values),
                )
            )
