"""Every command line in README.md and docs/ runs as written, or is listed here as not runnable.

A command line is a line of a fenced block that starts with `cxpolicy`, `make`, `curl`, `cat`
(in a `$ ` transcript, only the `$ ` lines; a trailing `\\` continues it). Lines with an
UPPERCASE placeholder (`PATH`, `NAME`, `OLD NEW`, `DB`) or `[--option]` notation are
synopses, not examples. Everything else either is in `NOT_RUNNABLE` with the reason, or runs
in a scratch copy of the repository's example files (so `fmt` may rewrite them) and must exit
0; a transcript's printed lines must match the output where they are not elided (`...`).
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cxpolicy.cli import main
from tests.conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
_PLACEHOLDER = re.compile(r"\b[A-Z][A-Z_]{1,}\b(?![=])|\[-|\[[A-Z]|\.\.\.")
_COMMAND = re.compile(r"^(?:[A-Z_]+=\S+ )*(cxpolicy|make|curl|cat) ")

# (file, start of the command) -> why it cannot run in a test. Keep the reasons honest.
NOT_RUNNABLE: dict[tuple[str, str], str] = {
    ("README.md", "make run"): "starts the decision service and runs until stopped",
    ("README.md", "make test"): "the whole gate, of which this test is a part",
    ("README.md", "cxpolicy serve"): "starts the decision service and runs until stopped",
    ("docs/service.md", "cxpolicy serve"): "starts the decision service and runs until stopped",
    ("docs/service.md", "make run"): "starts the decision service and runs until stopped",
    ("docs/service.md", "curl"): "needs the service that `make run` starts",
    ("docs/performance.md", "make bench"): "benchmarks take minutes and compare with peers",
    ("docs/performance.md", "make bench-full"): "benchmarks take minutes and compare with peers",
    ("docs/cli.md", "cxpolicy lsp"): "a language server: waits for an editor on stdin",
    ("README.md", "cxpolicy lsp"): "a language server: waits for an editor on stdin",
    ("docs/console.md", "make run"): "starts the decision service and runs until stopped",
    ("docs/console.md", "cxpolicy serve"): "starts the decision service and runs until stopped",
    ("docs/operations.md", "cxpolicy serve"): "starts the decision service and runs until stopped",
    ("docs/operations.md", "cxpolicy freeze"): "needs a shared freeze store (PostgreSQL) a fleet writes to",
    ("docs/operations.md", "cxpolicy unfreeze"): "needs a shared freeze store (PostgreSQL) a fleet writes to",
    ("docs/service.md", "cxpolicy shadow report"): "reads the log a running `serve --shadow` writes",
}


def _command_lines(path: Path) -> list[tuple[str, list[str]]]:
    """(command, the transcript's output lines after it) for each command line of the file."""
    out: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", path.read_text(), re.S):
        lines = block.splitlines()
        transcript = any(ln.startswith("$ ") for ln in lines)
        i = 0
        while i < len(lines):
            line = lines[i]
            i += 1
            if transcript and not line.startswith("$ "):
                continue
            text = line[2:] if transcript else line.strip()
            if not _COMMAND.match(text):
                continue
            while text.rstrip().endswith("\\") and i < len(lines):
                text = text.rstrip()[:-1] + " " + lines[i].strip()
                i += 1
            printed: list[str] = []
            while transcript and i < len(lines) and not lines[i].startswith("$ "):
                printed.append(lines[i])
                i += 1
            out.append((text, printed))
    return out


def _all() -> list[tuple[str, str, list[str]]]:
    return [(p.relative_to(ROOT).as_posix(), c, printed) for p in DOCS for c, printed in _command_lines(p)]


def _listed(file: str, command: str) -> str | None:
    return next((why for (f, start), why in NOT_RUNNABLE.items() if f == file and command.startswith(start)), None)


CASES = [(f, c, printed) for f, c, printed in _all() if not _PLACEHOLDER.search(c.split("#")[0])]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files the examples name: the example rulesets, request.json, the guide's demo
    policy (rulesets/demo), a bank policy of one's own (my_bank_rules/), an audit log."""
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(ROOT / "rulesets", root / "rulesets")
    shutil.copy(ROOT / "request.json", root / "request.json")
    guide = (ROOT / "docs" / "language.md").read_text()
    (root / "rulesets" / "demo").mkdir()
    (root / "rulesets" / "demo" / "refunds.cxp").write_text(re.findall(r"```\n(.*?)```", guide, re.S)[0])
    shutil.copytree(ROOT / "rulesets" / "bank", root / "my_bank_rules")
    (root / "var").mkdir()
    from cxpolicy.audit import open_sink
    from cxpolicy.engine.loader import load

    policy = load([root / "rulesets" / "bank"])
    with open_sink(str(root / "var" / "audit.db"), key=None) as sink:
        req = {"action": "account.balance", "channel": "chat", "actor": {"kind": "ai"},
               "customer": {"segment": "retail", "risk_tier": "low", "region": "IN"}}
        sink.record(req, policy.decide(req))
    return root


def test_there_are_examples_and_the_not_runnable_list_is_current() -> None:
    found = _all()
    assert len(CASES) >= 15
    stale = [k for k in NOT_RUNNABLE if not any(f == k[0] and c.startswith(k[1]) for f, c, _ in found)]
    assert stale == []


@pytest.mark.parametrize(("file", "command", "printed"), CASES, ids=[f"{f}: {c[:60]}" for f, c, _ in CASES])
def test_command_line_runs_as_written(
    file: str, command: str, printed: list[str], scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if _listed(file, command):
        pytest.skip(f"not runnable: {_listed(file, command)}")
    words = shlex.split(command, comments=True)
    monkeypatch.chdir(scratch)
    if words[0] == "cat":
        got = "".join((scratch / w).read_text() for w in words[1:])
        assert [ln.rstrip() for ln in got.splitlines()] == [ln.rstrip() for ln in printed]
        return
    assert words[0] == "cxpolicy", f"{file}: `{command}` is neither runnable here nor in NOT_RUNNABLE"
    r = CliRunner().invoke(main, words[1:])
    assert r.exit_code == 0, f"{file}: `{command}` exited {r.exit_code}:\n{r.output}"
    for want in printed:
        if "..." in want or "…" in want:
            continue
        assert want.rstrip() in r.output, f"{file}: `{command}` did not print {want!r}:\n{r.output}"
