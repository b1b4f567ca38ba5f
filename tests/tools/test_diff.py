"""`cxpolicy diff`: golden reports, exit codes, git revisions, replay.

Each directory under tests/golden/diff/ holds `old/`, `new/`, optionally `requests.jsonl`, and
the expected `expected.txt`, `expected.md`, `expected.json`. Regenerate after an intended
change with `CXPOLICY_UPDATE_GOLDEN=1 pytest tests/tools/test_diff.py` and read the diff. The
exactness of the regions themselves is property-tested in test_analysis.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from cxpolicy.cli import main
from cxpolicy.engine.loader import load
from cxpolicy.engine.requests import iter_requests
from cxpolicy.tools.diff import outcome_of, replay
from tests.conftest import ROOT

GOLDEN = ROOT / "tests" / "golden" / "diff"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "old").is_dir())
UPDATE = os.environ.get("CXPOLICY_UPDATE_GOLDEN") == "1"


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["diff", *args], catch_exceptions=False)
    return result.exit_code, result.output


def _args(case: str) -> list[str]:
    d = GOLDEN.relative_to(ROOT) / case
    args = [str(d / "old"), str(d / "new")]
    if (GOLDEN / case / "requests.jsonl").exists():
        args += ["--requests", str(d / "requests.jsonl")]
    return args


def _compare(path: Path, got: str) -> None:
    if UPDATE or not path.exists():
        path.write_text(got, encoding="utf-8")
    assert got == path.read_text(encoding="utf-8"), f"{path} differs; rerun with CXPOLICY_UPDATE_GOLDEN=1 and review"


@pytest.mark.parametrize("fmt,suffix", [("text", "txt"), ("markdown", "md"), ("json", "json")])
@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, fmt: str, suffix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, out = _invoke(*_args(case), "--format", fmt)
    assert code == 0
    _compare(GOLDEN / case / f"expected.{suffix}", out)


def test_issue_example_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    _, out = _invoke(*_args("refund_cap"))
    # `critical` escalates to fraud-ops in both revisions, so only `high` changes.
    assert "  action=refund.execute actor=ai risk_tier=high: allow → escalate (+ rule refunds.ai_cap)\n" in out


@pytest.mark.parametrize(
    "case,flag,code", [
        ("refund_cap", "--exit-code", 1),
        ("refund_cap", "--fail-on-loosen", 0),  # only stricter
        ("loosen_mask", "--fail-on-loosen", 1),
        ("vocab_extend", "--fail-on-loosen", 1),  # a new value that was rejected is now allowed
    ],
)
def test_exit_codes(case: str, flag: str, code: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert _invoke(*_args(case), flag)[0] == code


def test_no_change_exits_0_even_with_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    d = str(GOLDEN.relative_to(ROOT) / "refund_cap" / "old")
    code, out = _invoke(d, d, "--exit-code", "--fail-on-loosen")
    assert code == 0 and "no region of the request space changes" in out


def test_replay_counts_match_deciding_directly() -> None:
    old = load([GOLDEN / "loosen_mask" / "old"])
    new = load([GOLDEN / "loosen_mask" / "new"])
    lines = list(iter_requests((GOLDEN / "loosen_mask" / "requests.jsonl").read_text()))
    r = replay(old, new, lines)
    good = [x.value for x in lines if x.error is None]
    changed = [q for q in good if outcome_of(old.decide(q)) != outcome_of(new.decide(q))]
    assert (r.total, r.changed, r.unreadable) == (len(good), len(changed), 1)
    assert r.loosened == 2  # the PAN is masked less in both


def test_missing_path_is_usage_error() -> None:
    result = CliRunner().invoke(main, ["diff", "no/such/dir", "also/missing"])
    assert result.exit_code == 64
    assert "no such file or directory: `no/such/dir`" in result.output


def test_compile_error_names_the_side(tmp_path: Path) -> None:
    (tmp_path / "bad.cxp").write_text("use core\npackage t\nrule r { match action = nope\n decide allow }\n")
    result = CliRunner().invoke(main, ["diff", str(GOLDEN / "refund_cap" / "old"), str(tmp_path)])
    assert result.exit_code == 2
    assert "NEW" in result.output


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=cwd, check=True, capture_output=True,
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_revisions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    (repo / "policy" / "more").mkdir(parents=True)
    shutil.copy(GOLDEN / "refund_cap" / "old" / "refunds.cxp", repo / "policy" / "refunds.cxp")
    (repo / "policy" / "more" / "notes.md").write_text("not a policy\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "old")
    shutil.copy(GOLDEN / "refund_cap" / "new" / "refunds.cxp", repo / "policy" / "refunds.cxp")
    monkeypatch.chdir(repo)
    expected = "action=refund.execute actor=ai risk_tier=high: allow → escalate (+ rule refunds.ai_cap)"
    for old in ("HEAD:policy", "git:HEAD:policy", "git:HEAD:policy/refunds.cxp"):
        code, out = _invoke(old, "policy", "--exit-code")
        assert code == 1 and expected in out, (old, out)
    monkeypatch.chdir(repo / "policy")  # paths are relative to where you stand, as in git
    code, out = _invoke("HEAD:refunds.cxp", "refunds.cxp")
    assert code == 0 and expected in out
    code, out = _invoke("HEAD:.", ".", "--format", "json")
    assert json.loads(out)["rules"]["added"] == ["refunds.ai_cap"]
    assert _invoke("git:HEAD:nothing", ".")[0] == 64
    assert _invoke("git:no-such-rev:refunds.cxp", ".")[0] == 64
