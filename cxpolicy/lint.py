"""Lint: compile diagnostics plus findings about policies that compile but are likely wrong.

Input: paths and packs. Output: diagnostics with stable codes (CXP6xx for lint findings; see
docs/diagnostics.md). Compliance-pack rules must carry `because` and `cite` (an error there, a
warning elsewhere): an auditor reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cxpolicy.engine import PolicySet
from cxpolicy.loader import collect_sources, compile_sources
from cxpolicy.source import Diagnostic, PolicyError, Severity

__all__ = ["lint_paths", "lint_policy"]


def lint_paths(paths: Sequence[str], packs: Iterable[str] = ()) -> tuple[list[Diagnostic], dict[str, str]]:
    packs = list(packs)
    sources, diags = collect_sources(paths, packs)
    try:
        policy = compile_sources(sources, diags, packs=packs)
    except PolicyError as exc:
        return exc.diagnostics, exc.sources
    found = list(policy.warnings) + lint_policy(policy)
    texts = {s.path: s.text for s in policy.sources}
    return sorted(found, key=Diagnostic.sort_key), texts


def lint_policy(policy: PolicySet) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for r in policy.rules:
        c = r.checked
        severity = Severity.ERROR if c.shipped else Severity.WARNING
        where = "compliance-pack rule" if c.shipped else "rule"
        if not c.because:
            out.append(
                Diagnostic(
                    "CXP601",
                    severity,
                    f"{where} `{c.id}` has no `because`",
                    c.span,
                    'add one plain sentence: `because "AI may prepare a refund; a human approves it"`',
                )
            )
        if not c.cites:
            out.append(
                Diagnostic(
                    "CXP602",
                    severity,
                    f"{where} `{c.id}` has no `cite`",
                    c.span,
                    'cite the clause behind it: `cite PCI_8_3_3` or `cite "internal policy CX-7"`',
                )
            )
    return out
