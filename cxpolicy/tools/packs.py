"""Shipped compliance packs as data: what each is, what its rules decide and which clause says so.

Input: a pack name (a directory under `compliance_packs/`, found by `resources` in a checkout or
a wheel) holding `pack.toml` (name, version, description, regions) and `.cxp` files.
Output: a `PackInfo` for `cxpolicy packs` and the pack references in docs/packs/.

The rules, counts and thresholds come from compiling the pack, never from a second list, so
the table a compliance lead reads cannot drift from what the engine runs. A threshold is a
`context.limits.*` attribute that one of the pack's conditions reads (docs/packs/README.md).
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cxpolicy.engine.loader import load
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.kinds import Effect, Style
from cxpolicy.lang.checker import CheckedConstraint
from cxpolicy.lang.vocabulary import DATA_CLASSES_PATH
from cxpolicy.resources import pack_dir, shipped_pack_names

__all__ = [
    "LIMITS_PREFIX",
    "PackInfo",
    "PackNotFoundError",
    "PackRule",
    "Threshold",
    "clause_label",
    "markdown_table",
    "pack_info",
    "shipped_packs",
]

LIMITS_PREFIX = "context.limits."


class PackNotFoundError(LookupError):
    """No shipped pack has this name."""

    def __init__(self, name: str):
        self.name = name
        known = ", ".join(shipped_pack_names()) or "none"
        super().__init__(f"unknown pack `{name}`; shipped packs: {known}")


@dataclass(frozen=True, slots=True)
class PackRule:
    """One rule of a pack, as a row of its reference table."""

    id: str
    effect: Effect
    queue: str | None
    redact: tuple[str, ...] | None  # None: the classes the rule's data-class constraint matched
    implicit: tuple[str, ...]  # for an implicit redact: the classes it masks when present
    style: Style
    because: str
    cites: tuple[tuple[str | None, str], ...]  # (declared name or None, text)
    location: str

    @property
    def decide_text(self) -> str:
        """The effect as the rule writes it: `escalate to "fraud-ops"`, `redact as last4`."""
        if self.effect is Effect.ESCALATE:
            return f'escalate to "{self.queue}"' if self.queue else "escalate"
        if self.effect is Effect.REDACT:
            listed = f" [{', '.join(self.redact)}]" if self.redact is not None else ""
            return f"redact{listed} as {self.style.value}"
        return self.effect.value

    @property
    def clauses(self) -> tuple[str, ...]:
        """The short clause labels this rule cites (the part of each cite text before `: `)."""
        return tuple(clause_label(text) for _, text in self.cites)


@dataclass(frozen=True, slots=True)
class Threshold:
    """A number the pack compares against: the attribute, its default, the rules that read it."""

    path: str
    type: str
    default: Any
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PackInfo:
    name: str
    version: str
    description: str
    regions: tuple[str, ...]
    rules: tuple[PackRule, ...]
    tests: int
    thresholds: tuple[Threshold, ...]
    cites: tuple[tuple[str, str], ...]  # every declared cite the pack's rules use: (name, text)
    fields: tuple[str, ...]  # every request path the pack's rules read (constraints and conditions)

    @property
    def rule_count(self) -> int:
        return len(self.rules)

    def to_dict(self, *, rules: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "regions": list(self.regions),
            "rule_count": self.rule_count,
            "test_count": self.tests,
            "fields": list(self.fields),
            "thresholds": [
                {"path": t.path, "type": t.type, "default": t.default, "rules": list(t.rules)} for t in self.thresholds
            ],
        }
        if rules:
            out["rules"] = [
                {
                    "rule": r.id,
                    "effect": r.effect.value,
                    "decide": r.decide_text,
                    "masks": list(r.redact if r.redact is not None else r.implicit),
                    "because": r.because,
                    "cite": [{"name": n, "text": t} for n, t in r.cites],
                    "location": r.location,
                }
                for r in self.rules
            ]
        return out


def clause_label(text: str) -> str:
    """`"PCI DSS v4.0.1 Req 8.3.3: verify ..."` → `"PCI DSS v4.0.1 Req 8.3.3"`."""
    return text.split(": ", 1)[0].strip()


def shipped_packs() -> list[PackInfo]:
    """Every pack shipped with this installation, by name."""
    return [pack_info(name) for name in shipped_pack_names()]


@lru_cache(maxsize=16)
def pack_info(name: str) -> PackInfo:
    """Compile one shipped pack alone and describe it; `PackNotFoundError` if there is none.

    A pack that does not compile raises `PolicyError` with its diagnostics.
    """
    d = pack_dir(name)
    if d is None or name not in shipped_pack_names():
        raise PackNotFoundError(name)
    meta = _metadata(name)
    policy = load([], packs=[name])
    own_files = {s.path for s in policy.sources if s.pack == name}
    rules = tuple(
        PackRule(
            id=r.id,
            effect=r.effect,
            queue=r.queue,
            redact=r.redact_classes,
            implicit=_implicit_classes(r.checked.constraints) if r.effect is Effect.REDACT else (),
            style=r.style,
            because=r.checked.because or "",
            cites=r.checked.cites,
            location=r.location,
        )
        for r in policy.rules
        if r.checked.file in own_files
    )
    tests = sum(1 for t in policy.tests if t.file in own_files)
    fields: set[str] = set()
    for r in policy.rules:
        if r.checked.file in own_files:
            fields.update(c.dimension.path_text for c in r.checked.constraints)
            for cond in r.conditions:
                fields.update(cond.expression.fields)
    cited = {name: text for r in rules for name, text in r.cites if name is not None}
    return PackInfo(
        name=str(meta.get("name", name)),
        version=str(meta.get("version", "0.0.0")),
        description=str(meta.get("description", "")),
        regions=tuple(str(r) for r in meta.get("regions", ())),
        rules=rules,
        tests=tests,
        thresholds=_thresholds(policy, {r.id for r in rules}),
        cites=tuple(sorted(cited.items())),
        fields=tuple(sorted(fields)),
    )


def _implicit_classes(constraints: Sequence[CheckedConstraint]) -> tuple[str, ...]:
    """The values of a rule's positive constraints on `data_classes`, in the order written."""
    out: list[str] = []
    for c in constraints:
        if c.dimension.path_text == DATA_CLASSES_PATH and c.op in ("=", "in"):
            out.extend(v for v in c.values if v not in out)
    return tuple(out)


def _metadata(name: str) -> dict[str, Any]:
    d = pack_dir(name)
    if d is None:
        raise PackNotFoundError(name)
    path = d / "pack.toml"
    if not path.is_file():
        return {"name": name}
    with path.open("rb") as fh:
        return tomllib.load(fh)


def _thresholds(policy: PolicySet, rule_ids: set[str]) -> tuple[Threshold, ...]:
    readers: dict[str, list[str]] = {}
    for r in policy.rules:
        if r.id not in rule_ids:
            continue
        for cond in r.conditions:
            for path in sorted(cond.expression.fields):
                if path.startswith(LIMITS_PREFIX) and r.id not in readers.setdefault(path, []):
                    readers[path].append(r.id)
    out = []
    for path, ids in sorted(readers.items()):
        attr = policy.vocabulary.attributes.get(path)
        out.append(
            Threshold(
                path=path,
                type=attr.type if attr else "any",
                default=attr.default if attr and attr.has_default else None,
                rules=tuple(ids),
            )
        )
    return tuple(out)


def markdown_table(info: PackInfo) -> str:
    """The rule → effect → clause → explanation table of a pack, as Markdown (docs/packs/)."""
    lines = ["| rule | effect | clauses | plain explanation |", "|---|---|---|---|"]
    for r in info.rules:
        short = r.id.removeprefix(info.name + ".")
        clauses = "; ".join(_md(c) for c in r.clauses)
        effect = f"`{_md(r.decide_text)}`"
        if r.redact is None and r.implicit:
            effect += " (those present of " + ", ".join(r.implicit) + ")"
        lines.append(f"| `{short}` | {effect} | {clauses} | {_md(r.because)} |")
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|")
