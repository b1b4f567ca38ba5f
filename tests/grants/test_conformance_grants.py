"""The shared grant conformance cases (LANGUAGE.md §9), run through the CLI like the main suite."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT, SHARED

RUNNER = SHARED / "conformance" / "run.py"
SUITE = SHARED / "conformance-grants"


@pytest.mark.skipif(not (RUNNER.exists() and SUITE.exists()), reason=f"no shared grant suite at {SUITE}")
def test_every_grant_conformance_case_passes() -> None:
    cmd = f"{sys.executable} -m cxpolicy"
    proc = subprocess.run(
        [sys.executable, str(RUNNER), str(SUITE), "--cxpolicy", cmd, "-j", "2"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0, proc.stdout + proc.stderr
    passed, total = last.split()[1].split("/")
    assert passed == total and int(total) >= 2
