"""`cxpolicy shadow report LOG`: what a shadowed candidate revision would change on real traffic.

Input: the JSON-lines log `serve --shadow` writes (`cxpolicy.service.shadow`). Output: the
requests seen, how many the candidate decides differently, each transition (`escalate
desk-1 → allow`) with its count — the same counting `diff --requests` does on a replay —
then the differences by region (action, channel, region, actor) and by rule, and examples.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Any

import click
import orjson

from cxpolicy.cli import ExitCode

__all__ = ["ShadowReport", "read_report", "shadow_cmd"]


@dataclass
class ShadowReport:
    seen: int = 0
    dropped: int = 0
    changed: int = 0
    loosened: int = 0
    candidate_errors: int = 0
    bad_lines: int = 0
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    regions: Counter[str] = field(default_factory=Counter)
    rules: Counter[str] = field(default_factory=Counter)
    revisions: set[tuple[str, str]] = field(default_factory=set)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.seen,
            "changed": self.changed,
            "loosened": self.loosened,
            "dropped": self.dropped,
            "candidate_errors": self.candidate_errors,
            "unreadable_lines": self.bad_lines,
            "revisions": [{"live": a, "candidate": b} for a, b in sorted(self.revisions)],
            "transitions": [{"old": o, "new": n, "count": c} for (o, n), c in self.transitions.most_common()],
            "regions": [{"region": r, "count": c} for r, c in self.regions.most_common()],
            "rules": [{"rule": r, "count": c} for r, c in self.rules.most_common()],
            "examples": self.examples,
        }


def _region_text(region: Any) -> str:
    if not isinstance(region, dict):
        return "(unknown)"
    parts = [f"{k}={v}" for k, v in region.items() if v is not None]
    return " ".join(parts) or "(unknown)"


def read_report(lines: IO[bytes] | IO[str], *, examples: int = 10) -> ShadowReport:
    out = ShadowReport()
    for raw in lines:
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            out.bad_lines += 1
            continue
        kind = obj.get("kind") if isinstance(obj, dict) else None
        if kind == "tally":
            out.seen += int(obj.get("seen") or 0)
            out.dropped += int(obj.get("dropped") or 0)
        elif kind == "candidate_error":
            out.candidate_errors += 1
        elif kind == "difference":
            live, cand = obj.get("live") or {}, obj.get("candidate") or {}
            out.changed += 1
            out.loosened += bool(obj.get("looser"))
            out.transitions[(str(live.get("text")), str(cand.get("text")))] += 1
            out.regions[_region_text(obj.get("region"))] += 1
            for rule in sorted(set(live.get("rules") or ()) ^ set(cand.get("rules") or ())):
                out.rules[rule] += 1
            out.revisions.add((str(obj.get("live_revision")), str(obj.get("candidate_revision"))))
            if len(out.examples) < examples:
                out.examples.append(
                    {
                        "decision_id": obj.get("decision_id"),
                        "old": live.get("text"),
                        "new": cand.get("text"),
                        "region": _region_text(obj.get("region")),
                        "digest": obj.get("digest"),
                    }
                )
        else:
            out.bad_lines += 1
    return out


def _text(r: ShadowReport) -> str:
    lines = [f"{r.seen} requests shadowed; {r.changed} decided differently by the candidate"
             + (f" ({r.loosened} [looser])" if r.loosened else "")]  # fmt: skip
    if r.dropped:
        lines.append(f"{r.dropped} requests not shadowed (the shadow queue was full): counts are a sample")
    if r.candidate_errors:
        lines.append(f"{r.candidate_errors} requests the candidate failed on")
    if r.transitions:
        lines += ["", "changes:"] + [f"  {c:>6}  {o} → {n}" for (o, n), c in r.transitions.most_common()]
    if r.regions:
        lines += ["", "by region:"] + [f"  {c:>6}  {reg}" for reg, c in r.regions.most_common(20)]
    if r.rules:
        lines += ["", "rules matched by only one side:"] + [f"  {c:>6}  {rule}" for rule, c in r.rules.most_common(20)]
    if r.examples:
        lines += ["", "examples:"]
        lines += [f"  {e['decision_id']}  {e['region']}: {e['old']} → {e['new']}" for e in r.examples]
    return "\n".join(lines)


@click.group("shadow")
def shadow_cmd() -> None:
    """Shadow revisions: what a candidate policy would change on live traffic.

    \b
    Start the service with a candidate beside the live policy:
      cxpolicy serve -p rulesets/bank --shadow candidate/bank --audit sqlite:///var/audit.db
    It answers with the live policy and logs every request the candidate decides
    differently; then:
      cxpolicy shadow report var/audit.db.shadow.jsonl
    """


@shadow_cmd.command("report")
@click.argument("log", type=click.File("rb"))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for a terminal; json (the counts and examples) for scripts.")
@click.option("--examples", default=10, show_default=True, type=click.IntRange(0, 1000), help="Differences to show.")
@click.option("--fail-on-loosen", is_flag=True, help="Exit 1 when the candidate would loosen any decision.")
def report_cmd(log: IO[bytes], fmt: str, examples: int, fail_on_loosen: bool) -> None:
    """Summarise a shadow log: changes with counts, by region and by rule."""
    report = read_report(log, examples=examples)
    click.echo(orjson.dumps(report.to_dict()).decode() if fmt == "json" else _text(report))
    if fail_on_loosen and report.loosened:
        sys.exit(int(ExitCode.FAILED))
