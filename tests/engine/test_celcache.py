"""engine/celcache.py: the CLI's per-user CEL tree cache.

Input: a ruleset with conditions, a private temporary cache directory, and spoiled caches.
Output of each check: a second CLI run compiles without cel-python and decides the same; a
cache another user could write, a malformed or foreign file is ignored (and the CLI still
answers); `CXPOLICY_NO_CACHE` writes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cxpolicy.engine import celcache, precompiled
from tests.conftest import ROOT

REQUEST = json.dumps(
    {"action": "refund.execute", "channel": "chat", "actor": {"kind": "ai"},
     "customer": {"risk_tier": "low", "segment": "retail", "region": "IN"}, "context": {"amount": 50}}
)
# Run the CLI in-process and report whether cel-python was imported while compiling.
PROBE = """
import sys
from cxpolicy.cli import main
try:
    main(["eval", "--no-detect", "-p", "rulesets/shop", "-i", sys.argv[1]])
except SystemExit as e:
    assert e.code in (0, None), e.code
print("CELPY" if "celpy" in sys.modules else "NO-CELPY", file=sys.stderr)
"""


def _run(cache: Path, req: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CXPOLICY_NO_CACHE"}
    env.update({"CXPOLICY_CACHE_DIR": str(cache), **extra})
    return subprocess.run([sys.executable, "-c", PROBE, str(req)], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=120)


@pytest.fixture
def req(tmp_path: Path) -> Path:
    p = tmp_path / "req.json"
    p.write_text(REQUEST)
    return p


def _decision(out: str) -> dict[str, object]:
    d = json.loads(out.splitlines()[0])
    d.pop("decision_id")
    return d


def test_second_run_compiles_conditions_without_cel_python(tmp_path: Path, req: Path) -> None:
    cache = tmp_path / "cache"
    first = _run(cache, req)
    assert first.returncode == 0, first.stderr
    assert "NO-CELPY" not in first.stderr  # the shop ruleset has conditions: parsed the first time
    files = list(cache.glob(f"{celcache.FILE_PREFIX}*.json"))
    assert len(files) == 1
    assert oct(cache.stat().st_mode & 0o777) == "0o700"
    second = _run(cache, req)
    assert second.returncode == 0, second.stderr
    assert "NO-CELPY" in second.stderr
    assert _decision(second.stdout) == _decision(first.stdout)


@pytest.mark.parametrize("spoil", ["group-writable", "garbage", "fingerprint", "node-class"])
def test_a_spoiled_cache_is_ignored(tmp_path: Path, req: Path, spoil: str) -> None:
    cache = tmp_path / "cache"
    assert _run(cache, req).returncode == 0
    f = next(cache.glob(f"{celcache.FILE_PREFIX}*.json"))
    doc = json.loads(f.read_text())
    if spoil == "group-writable":
        f.chmod(0o664)
    elif spoil == "garbage":
        f.write_text("{")
    elif spoil == "fingerprint":
        doc["fingerprint"] = "0" * 64
        f.write_text(json.dumps(doc))
    else:
        doc["cel"] = {t: {"$": "Exploit", "start": 0, "end": 1} for t in doc["cel"]}
        f.write_text(json.dumps(doc))
    again = _run(cache, req)
    assert again.returncode == 0, again.stderr
    assert "NO-CELPY" not in again.stderr  # nothing usable: parsed from the text


def test_no_cache_writes_nothing(tmp_path: Path, req: Path) -> None:
    cache = tmp_path / "cache"
    assert _run(cache, req, CXPOLICY_NO_CACHE="1").returncode == 0
    assert not cache.exists()


def test_cache_file_name_follows_the_fingerprint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CXPOLICY_NO_CACHE", raising=False)
    monkeypatch.setenv("CXPOLICY_CACHE_DIR", str(tmp_path))
    p = celcache.cache_file()
    assert p is not None and precompiled.fingerprint()[:16] in p.name
