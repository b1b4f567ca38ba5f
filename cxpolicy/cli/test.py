"""`cxpolicy test`: run the policy's `test` blocks; exit 1 when any fails.

Input: a policy set. Output: each test's result (and coverage on request); exit 1 on a failure.

Output is shaped like pytest's, because policy authors already read that: a line of dots per
file, then each failure with the expectations (which held, which did not), the decision the
engine actually made and the rules it looked at. `--format json` and `--format junit` are for
CI; `--coverage` says what the tests never exercised.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

import click
import orjson

from cxpolicy.cli import ExitCode
from cxpolicy.cli.options import load_or_exit, policy_options, use_color
from cxpolicy.engine.render import trace_text
from cxpolicy.tools.compose import ComposedRun, run_composed
from cxpolicy.tools.testing import Coverage, TestOutcome, coverage, run_tests

__all__ = ["coverage_text", "failure_text", "interactions_text", "junit_xml", "test_cmd"]


@click.command("test")
@policy_options
@click.option("-k", "pattern", metavar="PATTERN", help="Run only tests whose name contains PATTERN (or a glob).")
@click.option("--coverage", "show_coverage", is_flag=True, help="Also list rules no test made match, and constraints "
              "and conditions the tests never saw both true and false.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit"]), default="text", show_default=True,
              help="text for people; json for scripts; junit (XML) for CI test reports.")
@click.option("-v", "--verbose", is_flag=True, help="One line per test (PASS/FAIL file:line: name).")
@click.option("--detect/--no-detect", default=False, show_default=True,
              help="Run the PII and prompt-injection detectors before each test's decision, as `eval` does. "
              "Off by default: a test block tests the rules on the request as written.")
@click.option("--fail-on-interaction", is_flag=True,
              help="With --pack: exit 1 when a test decides differently with your rules and the packs together.")
def test_cmd(
    paths: tuple[str, ...], packs: tuple[str, ...], pattern: str | None, show_coverage: bool, fmt: str, verbose: bool,
    detect: bool, fail_on_interaction: bool,
) -> None:
    """Run the `test` blocks under PATHS (and in the packs named).

    \b
    A test block sits in any .cxp file of the set:
      test "AI cannot execute a refund" {
        request { "action": "refund.execute", "actor": {"kind": "ai"}, ... }
        expect escalate
        expect rules [bank.refunds.ai_never_executes]
      }

    \b
    Examples:
      cxpolicy test rulesets/bank
      cxpolicy test --pack bfsi_rbi --pack hipaa --pack gdpr
      cxpolicy test rulesets/bank -k "refund" --coverage
      cxpolicy test rulesets/bank --format junit > test-results.xml

    \b
    With --pack, each test runs against the set it was written for: yours against your files
    (and what they `use`), a pack's against that pack alone. Where your rules and a pack
    together decide a test differently, that is listed under "interactions".

    Exit 0 when every test passes (or there are none), 1 when one fails (or, with
    --fail-on-interaction, when there is an interaction), 2 when the policy does not compile.
    """
    policy = load_or_exit(paths, packs, detect=detect)
    composed = run_composed(policy, paths, packs, pattern, detect=detect)
    outcomes = composed.outcomes
    failed = [o for o in outcomes if not o.passed]
    cov = coverage(policy, run_tests(policy, pattern)) if show_coverage else None
    if fmt == "json":
        doc: dict[str, Any] = {
            "passed": len(outcomes) - len(failed),
            "failed": len(failed),
            "tests": [_outcome_dict(o) for o in outcomes],
            "interactions": [i.to_dict() for i in composed.interactions],
        }
        if cov is not None:
            doc["coverage"] = cov.to_dict()
        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    elif fmt == "junit":
        click.echo(junit_xml(outcomes))
    else:
        color = use_color(sys.stdout)
        click.echo(_text(outcomes, verbose, color))
        if composed.interactions or composed.notes:
            click.echo("")
            click.echo(interactions_text(composed))
        if cov is not None:
            click.echo("")
            click.echo(coverage_text(cov))
    if not outcomes:
        click.echo(f"no test blocks{' match ' + repr(pattern) if pattern else ''}", err=True)
    interacted = fail_on_interaction and composed.interactions
    sys.exit(ExitCode.FAILED if failed or interacted else ExitCode.OK)


def interactions_text(run: ComposedRun) -> str:
    """The interactions section: each test your rules and a pack decide differently together."""
    out = [f"note: {n}" for n in run.notes]
    if run.interactions:
        out.append(_rule_line(f" {len(run.interactions)} interaction(s) between your rules and the packs ", "-"))
        changed = [i for i in run.interactions if i.effect_alone != i.effect_together]
        out.extend(i.text() for i in changed)  # a changed effect first: the ones to read
        out.extend(i.text() for i in run.interactions if i not in changed)
    return "\n".join(out)


def _text(outcomes: Sequence[TestOutcome], verbose: bool, color: bool) -> str:
    out: list[str] = []
    if verbose:
        for o in outcomes:
            mark = click.style("PASS", fg="green") if o.passed else click.style("FAIL", fg="red", bold=True)
            out.append(f"{mark if color else ('PASS' if o.passed else 'FAIL')} {o.file}:{o.span.line}: {o.name}")
    else:
        by_file: dict[str, list[TestOutcome]] = {}
        for o in outcomes:
            by_file.setdefault(o.file, []).append(o)
        for file, items in by_file.items():
            dots = "".join("." if o.passed else "F" for o in items)
            if color:
                dots = "".join(click.style(c, fg="green" if c == "." else "red", bold=c == "F") for c in dots)
            out.append(f"{file} {dots}")
    failed = [o for o in outcomes if not o.passed]
    if failed:
        out.append("")
        out.append(_rule_line(" FAILURES ", "="))
        for o in failed:
            out.append(failure_text(o))
    passed = len(outcomes) - len(failed)
    summary = f" {passed} passed, {len(failed)} failed " if failed else f" {passed} passed "
    line = _rule_line(summary, "=")
    if color:
        line = click.style(line, fg="red" if failed else "green", bold=True)
    out.append(line)
    return "\n".join(out)


def _rule_line(title: str, ch: str, width: int = 78) -> str:
    side = max(3, (width - len(title)) // 2)
    return ch * side + title + ch * side


def failure_text(o: TestOutcome) -> str:
    """One failed test: where it is, every expectation, and what the engine did instead."""
    out = [_rule_line(f" {o.name} ", "_"), f"{o.file}:{o.span.line}", ""]
    out.append("  request: " + _short_json(o.request))
    for e in o.expectations:
        if e.ok:
            out.append(f"  ✓ {e.source}")
        else:
            out.append(f"  ✗ {e.source}   (line {e.line})")
            out.append(f"      {e.message()}")
            if e.kind == "rules":
                for rid, failing in o.why_not.items():
                    out.append(f"      {rid} did not match:")
                    out.extend(f"        ✗ {f}" for f in failing)
    d = o.decision
    if d is not None:
        out.append("")
        out.append(f"  decision: {d.summary}")
        for r in d.reasons:
            out.append(f"    - {r.effect.value:<11} {r.rule}   ({r.location})")
            if r.because:
                out.append(f"                  because {r.because}")
        for err in d.errors:
            out.append(f"    ! [{err.kind}] {err}")
        if d.trace is not None:
            out.extend("  " + ln for ln in trace_text(d.trace).splitlines())
    out.append("")
    return "\n".join(out)


def _short_json(value: Any, limit: int = 240) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _outcome_dict(o: TestOutcome) -> dict[str, Any]:
    return {
        "name": o.name,
        "file": o.file,
        "line": o.span.line,
        "passed": o.passed,
        "shipped": o.shipped,
        "seconds": round(o.seconds, 6),
        "expectations": [
            {"kind": e.kind, "want": list(e.want), "got": list(e.got), "ok": e.ok, "line": e.line}
            for e in o.expectations
        ],
        "failures": list(o.failures),
        "decision": o.decision.to_dict(include_trace=False) if o.decision is not None else None,
    }


def junit_xml(outcomes: Sequence[TestOutcome]) -> str:
    """JUnit XML, the report format CI systems (GitHub, GitLab, Jenkins) display natively."""
    failed = [o for o in outcomes if not o.passed]
    total = sum(o.seconds for o in outcomes)
    suites = ET.Element("testsuites", tests=str(len(outcomes)), failures=str(len(failed)), time=f"{total:.6f}")
    suite = ET.SubElement(
        suites, "testsuite", name="cxpolicy", tests=str(len(outcomes)), failures=str(len(failed)),
        errors="0", time=f"{total:.6f}",
    )
    for o in outcomes:
        case = ET.SubElement(
            suite, "testcase", classname=o.file, name=o.name, file=o.file, line=str(o.span.line),
            time=f"{o.seconds:.6f}",
        )
        if not o.passed:
            failure = ET.SubElement(case, "failure", message="; ".join(o.failures), type="PolicyTestFailure")
            failure.text = failure_text(o)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode")


def coverage_text(cov: Coverage) -> str:
    items = cov.items
    both = len([i for i in items if i.both_ways])
    matched = len(cov.rules) - len(cov.unmatched)
    out = [
        f"coverage: {matched} of {len(cov.rules)} rule(s) matched by a test; "
        f"{both} of {len(items)} constraint(s)/condition(s) seen both true and false ({cov.tests} test request(s))"
    ]
    if cov.unmatched:
        out.append("  rules no test made match:")
        for r in cov.unmatched:
            out.append(f"    {r.rule}   ({r.location})")
    half = [(r, i) for r in cov.rules for i in r.half_exercised]
    if half:
        out.append("  not exercised both ways:")
        for r, i in half:
            what = i.text if i.kind == "constraint" else f"{i.kind} {i.text}"
            out.append(f"    {r.rule}: {what} — {i.missing()}   ({i.location})")
    return "\n".join(out)
