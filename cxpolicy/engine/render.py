"""Decisions and traces as text for people (the CLI's `--format text`).

Input: a `Decision` (with its trace, if any). Output: the text `--format text` prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cxpolicy.engine.decision import Decision, Trace
from cxpolicy.kinds import ConditionKind

__all__ = ["decision_text"]

_MARK = {True: "✓", False: "✗", None: "!"}


def decision_text(d: Decision, *, title: str | None = None) -> str:
    out: list[str] = []
    if title:
        out.append(f"── {title}")
    out.append(f"effect: {d.effect.value}")
    out.append(f"why:    {d.summary}")
    if d.escalate_to:
        out.append(f"escalate to: {', '.join(d.escalate_to)}")
    if d.redact:
        out.append("redact: " + ", ".join(f"{r.data_class} ({r.style.value})" for r in d.redact))
    if d.reasons:
        out.append("reasons (strictest first):")
        for r in d.reasons:
            lifted = f"  (lifted by grant {r.lifted_by})" if r.lifted_by else ""
            out.append(f"  - {r.effect.value:<11} {r.rule}{lifted}")
            if r.because:
                out.append(f"                because {r.because}")
            for name, text in zip(r.cite_names or (None,) * len(r.cite), r.cite, strict=False):
                out.append(f"                cite {name + ': ' if name else ''}{text}")
    if d.errors:
        out.append("errors:")
        for e in d.errors:
            out.append(f"  - [{e.kind}] {e}")
    out.append(f"decision {d.decision_id} · policy {d.policy_revision[:19]}")
    if d.trace is not None:
        out.append(trace_text(d.trace))
    return "\n".join(out)


def detection_text(det: Mapping[str, Any]) -> str:
    """One detector finding in words: `card_pan at 5–24 (stdnum.luhn: luhn+iin+cue)`,
    `prompt injection, score 0.75: instruction_override`; anything else as `key=value`."""
    if "prompt_injection" in det:
        pi = det["prompt_injection"]
        if isinstance(pi, Mapping):
            indicators = ", ".join(str(i) for i in pi.get("indicators", ())) or "no indicator named"
            return f"prompt injection, score {pi.get('score')}: {indicators}"
    if "class" in det:
        where = f" at {det['start']}–{det['end']}" if "start" in det and "end" in det else ""
        how = ": ".join(str(det[k]) for k in ("detector", "check") if k in det)
        return f"{det['class']}{where}" + (f" ({how})" if how else "")
    return ", ".join(f"{k}={v}" for k, v in det.items())


def trace_text(t: Trace) -> str:
    out = [f"trace: {len(t.candidates)} candidate rule(s) of {t.rule_count} from the index"]
    for det in t.detections:
        out.append(f"  detected: {detection_text(det)}")
    for e in t.request_errors:
        out.append(f"  request error: {e}")
    for g in t.grants:
        out.append(f"  grant {g.get('jti') or '#' + str(g.get('position'))} ({g.get('kind') or '?'}): {g['note']}")
    for c in t.candidates:
        verdict = "MATCH" if c.matched else "no match"
        out.append(f"  {verdict:<8} {c.rule} → {c.effect.value}   ({c.location})")
        for k in c.constraints:
            out.append(f"      {_MARK[k.holds]} {k.text}   [{k.seen}]")
        for cond in c.conditions:
            shown = "error" if cond.error else str(cond.value).lower()
            lets_match = None if cond.error else (cond.value if cond.kind == ConditionKind.WHEN else not cond.value)
            out.append(f"      {_MARK[lets_match]} {cond.kind} {cond.text}")
            out.append(f"          → {cond.rendered} → {shown}" + (f" ({cond.error})" if cond.error else ""))
        out.append(f"      {c.note}")
    out.append(f"  combined: {t.combination}")
    return "\n".join(out)
