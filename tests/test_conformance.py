"""The shared black-box conformance suite, run through the CLI exactly as outside checks run it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT, SHARED

RUNNER = SHARED / "conformance" / "run.py"


@pytest.mark.skipif(not RUNNER.exists(), reason=f"no shared conformance suite at {RUNNER.parent}")
def test_every_conformance_case_passes() -> None:
    cmd = f"{sys.executable} -m cxpolicy"
    proc = subprocess.run(
        [sys.executable, str(RUNNER), str(RUNNER.parent), "--cxpolicy", cmd, "-j", "2"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert last.startswith("conformance:") and "cases pass" in last
    passed, total = last.split()[1].split("/")
    assert passed == total and int(total) > 0
