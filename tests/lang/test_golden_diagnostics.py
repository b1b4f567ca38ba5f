"""Golden files: each tests/golden/diagnostics/NAME.cxp compiles to exactly NAME.out.

The expected output is what a policy author sees: every diagnostic, sorted by position, with
the source line, a caret and the hint. Regenerate after an intended change with
`CXPOLICY_UPDATE_GOLDEN=1 pytest tests/lang/test_golden_diagnostics.py`, then review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cxpolicy.engine.loader import load_text
from cxpolicy.lang.source import PolicyError

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "diagnostics"
CASES = sorted(GOLDEN.glob("*.cxp"))


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_diagnostics_match_golden(case: Path) -> None:
    name = f"{case.stem}.cxp"
    with pytest.raises(PolicyError) as info:
        load_text(case.read_text(), name)
    got = info.value.render() + "\n"
    expected = case.with_suffix(".out")
    if os.environ.get("CXPOLICY_UPDATE_GOLDEN"):
        expected.write_text(got)
    assert expected.exists(), f"missing golden file {expected.name}; run with CXPOLICY_UPDATE_GOLDEN=1"
    assert got == expected.read_text()


def test_golden_cases_exist() -> None:
    assert len(CASES) >= 4
