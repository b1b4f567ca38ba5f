"""The callers file and `cxpolicy callers`: keys are shown once and stored only as digests;
roles, bound fields and mTLS subjects round-trip; malformed files are refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cxpolicy.cli import main
from cxpolicy.service.auth import Role
from cxpolicy.service.callers_config import CallersConfigError, load_callers, read_callers_file


def test_add_list_remove_round_trip(tmp_path: Path) -> None:
    f = tmp_path / "callers.toml"
    runner = CliRunner()
    r = runner.invoke(main, ["callers", "add", "gateway", "--role", "decide", "--bind", "actor.kind=ai",
                             "--bind", "channel=chat", "-f", str(f)])
    assert r.exit_code == 0, r.output
    key = r.stdout.strip().splitlines()[0]
    assert key.startswith("cxp_") and key not in f.read_text()  # only the digest is stored
    r = runner.invoke(main, ["callers", "add", "ops", "--role", "admin", "--mtls-subject", "CN=ops,O=Acme",
                             "--no-key", "-f", str(f)])
    assert r.exit_code == 0, r.output
    callers, subject = load_callers(f)
    assert subject is None
    gw = callers.require({"authorization": f"Bearer {key}"}, Role.DECIDE)
    assert gw.name == "gateway" and dict(gw.bound) == {"actor.kind": "ai", "channel": "chat"}
    assert callers.require({}, Role.ADMIN, peer="CN=ops,O=Acme").name == "ops"
    assert callers.authenticate({}, peer="CN=other") is None and not callers.decide_open
    listed = runner.invoke(main, ["callers", "list", "-f", str(f)]).stdout
    assert "gateway" in listed and key not in listed and read_callers_file(f).callers[0].key_sha256 not in listed
    assert runner.invoke(main, ["callers", "add", "gateway", "--role", "decide", "-f", str(f)]).exit_code == 1
    assert runner.invoke(main, ["callers", "remove", "gateway", "-f", str(f)]).exit_code == 0
    assert [e.name for e in read_callers_file(f).callers] == ["ops"]
    assert runner.invoke(main, ["callers", "remove", "gateway", "-f", str(f)]).exit_code == 1


@pytest.mark.parametrize(
    "text",
    [
        '[[caller]]\nroles = ["decide"]\nkey_sha256 = "' + "a" * 64 + '"\n',
        '[[caller]]\nname = "x"\nroles = ["root"]\nkey_sha256 = "' + "a" * 64 + '"\n',
        '[[caller]]\nname = "x"\nroles = ["decide"]\n',
        '[[caller]]\nname = "x"\nroles = ["decide"]\nkey_sha256 = "short"\n',
        '[[caller]]\nname = "x"\nroles = ["decide"]\nkey_sha256 = "' + "a" * 64 + '"\n'
        '[[caller]]\nname = "x"\nroles = ["decide"]\nkey_sha256 = "' + "b" * 64 + '"\n',
        "not toml [",
    ],
)
def test_malformed_files_are_refused(tmp_path: Path, text: str) -> None:
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(CallersConfigError):
        read_callers_file(f)
