"""Keyed by default: where the service's audit key comes from, and what is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cxpolicy.audit import MissingKey, open_service_sink, open_sink, resolve_key


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CXPOLICY_AUDIT_KEY", raising=False)
    monkeypatch.delenv("CXPOLICY_AUDIT_WITNESS", raising=False)


def test_the_service_makes_a_private_key_file_once_and_reuses_it(tmp_path: Path) -> None:
    db = tmp_path / "var" / "audit.db"
    with open_service_sink(f"sqlite:///{db}"):
        pass
    key_file = Path(str(db) + ".key")
    assert key_file.stat().st_mode & 0o777 == 0o600
    first = key_file.read_bytes()
    assert len(first.strip()) >= 32
    with open_service_sink(f"sqlite:///{db}"):
        pass
    assert key_file.read_bytes() == first
    assert resolve_key(str(db)) == first.strip()


def test_an_environment_key_wins_and_no_file_is_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXPOLICY_AUDIT_KEY", "an-operator-provided-key-0123456789")
    db = tmp_path / "audit.db"
    with open_service_sink(str(db)):
        pass
    assert not Path(str(db) + ".key").exists()
    assert resolve_key(str(db)) == b"an-operator-provided-key-0123456789"


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    with open_service_sink(str(db)):
        pass
    os.chmod(str(db) + ".key", 0o644)
    with pytest.raises(MissingKey, match="readable by others"):
        open_sink(str(db))


def test_postgres_without_a_key_is_refused_by_the_service() -> None:
    with pytest.raises(MissingKey, match="CXPOLICY_AUDIT_KEY"):
        open_service_sink("postgresql://nobody@/nowhere?host=/nonexistent")


def test_the_witness_can_be_turned_off(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    with open_service_sink(str(db), witness="none") as sink:
        assert getattr(sink, "witness", "missing") is None
    with open_service_sink(str(db)) as sink:
        assert getattr(sink, "witness", None) is not None
