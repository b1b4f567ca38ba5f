"""Lint of the names a policy uses without declaring: condition fields and `expect rules` ids.

Input: a compiled `PolicySet`. Output: diagnostics (CXP618, CXP619; `CODES` below, to join
the table of docs/diagnostics.md).

A misspelt field (`context.amout`) compiles: CEL cannot know the request's shape, so the
condition errs on every request and the fail-safe escalates everything it guards. What the
policy *does* know of the request is what it declares (attributes, dimension paths) and what
its own tests send. A field read that none of those mention is almost always a typo, so it
is reported with the nearest known path; `strict` makes it an error, for a team that wants
every field declared. Reading into a `map`/`any` attribute (`signals.pii.card_pan` under
`attribute signals: map`) or a parent of a known path (`has(context.claim)`) is fine.

`expect rules [...]` ids are checked the same way: a full id, or a short one that names a
rule of the test's own package (the test runner resolves those), else CXP619 with the id it
probably meant.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cxpolicy.cel import syntax as cel
from cxpolicy.cel.errors import CelSyntaxError
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.lang import codes
from cxpolicy.lang.checker import CheckedCondition
from cxpolicy.lang.source import Diagnostic, Severity
from cxpolicy.lang.vocabulary import did_you_mean

__all__ = ["CODES", "CXP618", "CXP619", "field_findings", "known_fields", "rule_id_findings"]

# The codes this module reports; their table entries live in cxpolicy.lang.codes.
CXP618 = codes.CXP618.code
CXP619 = codes.CXP619.code
CODES: dict[str, str] = {c.code: c.meaning for c in (codes.CXP618, codes.CXP619)}

# Attribute types whose sub-fields are not declared one by one.
_OPEN_TYPES = frozenset({"map", "any"})


def known_fields(policy: PolicySet) -> tuple[frozenset[str], frozenset[str]]:
    """(every known dotted path, the prefixes under which anything goes).

    Known: attribute paths, dimension paths, and every key path the policy's tests send.
    Open: `map`/`any` attributes, and test values that are objects or lists whose keys a
    condition may read further than one test shows.
    """
    known: set[str] = set()
    open_: set[str] = set()
    for attr in policy.vocabulary.attributes.values():
        known.add(attr.path_text)
        if attr.type in _OPEN_TYPES:
            open_.add(attr.path_text)
    for d in policy.vocabulary.dimensions.values():
        known.add(d.path_text)
    for t in policy.tests:
        for request in t.block.requests:
            _request_paths(request, "", known, open_)
    return frozenset(known), frozenset(open_)


def _request_paths(value: Any, prefix: str, known: set[str], open_: set[str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):  # pragma: no cover - JSON keys are strings
                continue
            path = f"{prefix}.{k}" if prefix else k
            known.add(path)
            _request_paths(v, path, known, open_)
    elif isinstance(value, list) and prefix:
        open_.add(prefix)  # list elements are read by index or macro, not by path


def _is_known(path: str, known: frozenset[str], open_: frozenset[str]) -> bool:
    if path in known:
        return True
    parts = path.split(".")
    for i in range(1, len(parts)):
        if ".".join(parts[:i]) in open_:
            return True
    return any(k.startswith(path + ".") for k in known)  # a parent of a known path


def field_findings(policy: PolicySet, *, strict: bool = False) -> Iterator[Diagnostic]:
    """CXP618 for each field a user condition reads that the policy never mentions."""
    from cxpolicy.tools.lint import REQUEST_ROOTS, _sub_span  # lint imports this module

    known, open_ = known_fields(policy)
    # `signals` is filled by the detectors, whatever the policy declares (core makes it a map).
    checked_roots = (REQUEST_ROOTS | {p.split(".", 1)[0] for p in known}) - {"signals"}
    severity = Severity.ERROR if strict else Severity.WARNING
    for rule in policy.rules:
        checked = rule.checked
        if checked.shipped:
            continue
        for cond in checked.conditions:
            for path, node in _reads(cond):
                if path.split(".", 1)[0] not in checked_roots or _is_known(path, known, open_):
                    continue
                guess = _guess(path, known)
                msg = (
                    f"`{path}` is read here but no attribute, dimension or test of the policy mentions it: "
                    f"if requests do not send it, this condition errs and the rule fails safe"
                )
                hint = f"did you mean `{guess}`?" if guess else f"declare it: `attribute {path}: TYPE`"
                yield Diagnostic(CXP618, severity, msg, _sub_span(cond, node), hint)


def _guess(path: str, known: frozenset[str]) -> str | None:
    """The known path meant: one ending in the same name (`context.roles` → `actor.roles`)
    first, since a wrong parent is a common slip, else the closest spelling."""
    leaf = path.rsplit(".", 1)[-1]
    same_leaf = sorted(k for k in known if k.rsplit(".", 1)[-1] == leaf and k != path)
    if same_leaf:
        return did_you_mean(path, same_leaf) or same_leaf[0]
    return did_you_mean(path, sorted(known))


def _reads(cond: CheckedCondition) -> Iterator[tuple[str, cel.Node]]:
    """Each maximal field path a condition reads, with its node (`has(a.b)` reads `a.b`)."""
    try:
        _, root = cel.parse(cond.expression.text)
    except CelSyntaxError:  # pragma: no cover - the checker compiled it already
        return
    seen: set[str] = set()
    stack: list[cel.Node] = [root]
    while stack:
        node = stack.pop()
        found: tuple[cel.Ident, tuple[str, ...]] | None = None
        if isinstance(node, cel.Has):
            inner = cel.field_path(node.operand)
            if inner is not None:
                found = (inner[0], (*inner[1], node.field))
        elif isinstance(node, cel.Select | cel.Index | cel.Ident):
            found = cel.field_path(node)
        if found is not None:
            ident, keys = found
            if not ident.bound and keys:
                path = ".".join((ident.name, *keys))
                if path not in seen:
                    seen.add(path)
                    yield path, node
            if isinstance(node, cel.Index | cel.Select | cel.Has):
                continue  # the chain's parts are this path; constant keys only
        stack.extend(node.children())


def rule_id_findings(policy: PolicySet) -> Iterator[Diagnostic]:
    """CXP619 for each `expect rules` id (exact, includes, excludes) that names no rule."""
    from cxpolicy.tools.testing import resolve_rule_id

    ids = frozenset(r.id for r in policy.rules)
    by_short: dict[str, list[str]] = {}
    for rid in sorted(ids):
        by_short.setdefault(rid.rsplit(".", 1)[-1], []).append(rid)
    for t in policy.tests:
        for e in t.block.expects:
            if not e.kind.startswith("rules"):
                continue
            for v in e.values:
                if resolve_rule_id(ids, t.package, v.text) is not None:
                    continue
                where = f"package `{t.package}`" if t.package else "the policy set"
                msg = f'test "{t.name}" expects rule `{v.text}`, but no rule has that id (in {where} or in full)'
                same_name = by_short.get(v.text.rsplit(".", 1)[-1], [])
                guess = same_name[0] if len(same_name) == 1 else did_you_mean(v.text, sorted(ids))
                if guess is None and t.package:
                    short = did_you_mean(v.text, sorted(i.removeprefix(t.package + ".") for i in ids))
                    guess = f"{t.package}.{short}" if short and f"{t.package}.{short}" in ids else None
                hint = f"did you mean `{guess}`?" if guess else "write the rule's full id: `package.name`"
                yield Diagnostic(CXP619, Severity.ERROR, msg, v.span, hint)
