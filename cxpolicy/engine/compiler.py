"""Compiler: checked policy → compiled rules, and the policy set's revision.

Input: a `CheckedPolicy` (the `check` stage's output) and the sources. Output: one
`CompiledRule` per checked rule (effect, prebuilt `Reason`, condition closures split into
`when`/`unless`) — the loader's `lower` stage — and `revision`, the sha256 over the sources
that every decision carries — the `revision` stage. `build_index` (index.py) runs between.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cxpolicy.cel import Expression
from cxpolicy.engine.decision import Reason
from cxpolicy.kinds import ConditionKind, Effect, Style
from cxpolicy.lang.checker import CheckedCondition, CheckedPolicy, CheckedRule
from cxpolicy.lang.source import SourceFile

__all__ = ["CompiledRule", "compile_rules", "revision"]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    index: int
    id: str
    effect: Effect
    severity: int
    reason: Reason
    whens: tuple[Expression, ...]
    unlesses: tuple[Expression, ...]
    conditions: tuple[CheckedCondition, ...]
    redact_classes: tuple[str, ...] | None
    implicit_classes: frozenset[str]
    style: Style
    queue: str | None
    checked: CheckedRule

    @property
    def location(self) -> str:
        return str(self.checked.span)


def compile_rules(checked: CheckedPolicy) -> list[CompiledRule]:
    out: list[CompiledRule] = []
    for i, r in enumerate(checked.rules):
        reason = Reason(
            rule=r.id,
            effect=r.effect,
            because=r.because,
            cite=tuple(text for _, text in r.cites),
            cite_names=tuple(name for name, _ in r.cites),
            location=str(r.span),
        )
        out.append(
            CompiledRule(
                index=i,
                id=r.id,
                effect=r.effect,
                severity=r.effect.severity,
                reason=reason,
                whens=tuple(c.expression for c in r.conditions if c.kind == ConditionKind.WHEN),
                unlesses=tuple(c.expression for c in r.conditions if c.kind == ConditionKind.UNLESS),
                conditions=r.conditions,
                redact_classes=r.redact_classes,
                implicit_classes=r.implicit_classes,
                style=r.style,
                queue=r.queue,
                checked=r,
            )
        )
    return out


def revision(sources: Sequence[SourceFile]) -> str:
    """sha256 over (name, text) of every source in load order; independent of where files sit."""
    h = hashlib.sha256()
    for s in sources:
        # surrogatepass: a text handed to load_text may hold a lone surrogate; it still hashes.
        h.update(s.revision_key.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
        h.update(s.text.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return "sha256:" + h.hexdigest()
