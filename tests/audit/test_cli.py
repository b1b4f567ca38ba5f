"""`cxpolicy audit ...` and `cxpolicy escalations ...` through click, on real databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_audit_support import KEY, PAN, Clock, make_decision, make_request, raw, sensitive_request

from cxpolicy.audit.sink import ChainedSink
from cxpolicy.audit.sqlite import SQLiteStore
from cxpolicy.cli.audit import audit_cmd, escalations_cmd
from cxpolicy.kinds import Effect


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Six decisions from 2020 (old enough for any retention) and one open escalation."""
    path = tmp_path / "audit.db"
    clock = Clock(datetime(2020, 1, 1, tzinfo=UTC))
    with ChainedSink(SQLiteStore(path, head_key=KEY), key=KEY, clock=clock) as sink:
        sink.record(make_request(0), make_decision(Effect.ALLOW, rules=("r.allow",)))
        sink.record(sensitive_request(), make_decision(Effect.REDACT, rules=("r.redact",)))
        sink.record(
            make_request(2, action="card.block"),
            make_decision(Effect.REQUIRE_OTP, rules=("r.otp",)),
        )
        clock.advance(days=10)
        for i in range(3):
            sink.record(make_request(3 + i), make_decision(Effect.ALLOW, rules=("r.allow",)))
        sink.record(
            make_request(9),
            make_decision(Effect.ESCALATE, rules=("r.esc",), escalate_to=("refunds-desk",)),
        )
    return path


def run(group: object, *args: str, key: bool = True) -> tuple[int, str, str]:
    runner = CliRunner()
    env = {"CXPOLICY_AUDIT_KEY": KEY.decode() if key else ""}
    result = runner.invoke(group, [str(a) for a in args], env=env)  # type: ignore[arg-type]
    return result.exit_code, result.stdout, result.stderr


def test_verify_ok_and_broken(db: Path) -> None:
    code, out, _ = run(audit_cmd, "verify", db)
    assert code == 0, out
    assert "ok: 8 records verified (seq 1..8)" in out
    conn = raw(db)
    conn.execute("UPDATE records SET effect = 'allow' WHERE seq = 3")
    conn.close()
    code, out, _ = run(audit_cmd, "verify", db)
    assert code == 1
    assert "BROKEN" in out and '"seq":3' in out
    code, out, _ = run(audit_cmd, "verify", f"sqlite:///{db}", "--format", "json")
    assert code == 1
    assert json.loads(out)["broken"]["seq"] == 3


def test_verify_missing_db_is_usage_error(tmp_path: Path) -> None:
    code, _, err = run(audit_cmd, "verify", tmp_path / "nope.db")
    assert code == 64
    assert "no audit database" in err
    assert not (tmp_path / "nope.db").exists()


def test_query_filters_and_formats(db: Path) -> None:
    code, out, _ = run(audit_cmd, "query", db, "--effect", "allow", "--format", "json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 4 and {r["effect"] for r in rows} == {"allow"}
    _, out, _ = run(audit_cmd, "query", db, "--rule", "r.otp")
    header, *lines = out.splitlines()
    assert header.split() == ["SEQ", "TIME", "EFFECT", "ACTION", "ACTOR", "DECISION", "RULES"]
    assert len(lines) == 1 and "require_otp" in out
    assert lines[0].index("require_otp") == header.index("EFFECT")  # the columns line up
    _, out, _ = run(audit_cmd, "query", db, "--action", "card.block", "--format", "json")
    assert json.loads(out)["action"] == "card.block"
    _, out, _ = run(audit_cmd, "query", db, "--since", "2020-01-05", "--kind", "decision")
    assert len(out.splitlines()) == 1 + 4
    _, out, _ = run(audit_cmd, "query", db, "--limit", "1")
    assert "escalation.open" in out
    code, _, err = run(audit_cmd, "query", db, "--since", "yesterday")
    assert code == 64 and "--since" in err


def test_export_is_replayable_json_lines(db: Path) -> None:
    code, out, _ = run(audit_cmd, "export", db)
    assert code == 0
    requests = [json.loads(line) for line in out.splitlines()]
    assert len(requests) == 7
    assert all("action" in r and "channel" in r for r in requests)
    assert PAN not in out
    _, out, _ = run(audit_cmd, "export", db, "--with-decision", "--effect", "escalate")
    (wrapped,) = [json.loads(line) for line in out.splitlines()]
    assert wrapped["effect"] == "escalate" and wrapped["rules"] == ["r.esc"]
    assert wrapped["request"]["customer"]["id"] == "C-9"


def test_prune_needs_key_then_verify_passes(db: Path) -> None:
    code, _, err = run(audit_cmd, "prune", db, "--keep", "pci", key=False)
    assert code == 1 and "CXPOLICY_AUDIT_KEY" in err
    code, _, err = run(audit_cmd, "prune", db)
    assert code == 64
    code, out, _ = run(audit_cmd, "prune", db, "--keep", "pci")
    assert code == 0, out
    assert "pruned 6 records through seq 6" in out  # the escalation is still open
    code, out, _ = run(audit_cmd, "verify", db, "--strict")
    assert code == 0, out
    assert "seq 7..8" in out
    code, out, _ = run(audit_cmd, "prune", db, "--keep", "pci")
    assert code == 0 and "nothing to prune" in out
    code, _, err = run(audit_cmd, "prune", db, "--before", "2999-01-01", "--keep", "pci")
    assert code == 1 and "retention" in err


def test_escalations_commands(db: Path) -> None:
    code, out, _ = run(escalations_cmd, "list", db, "--state", "open", "--format", "json")
    assert code == 0
    (esc,) = [json.loads(line) for line in out.splitlines()]
    assert esc["queue"] == "refunds-desk"
    code, out, err = run(escalations_cmd, "overdue", db)
    assert code == 0 and esc["id"] in out and "1 overdue" in err
    code, _, err = run(escalations_cmd, "overdue", db, "--now", "2020-01-01")
    assert "0 overdue" in err

    code, _, err = run(escalations_cmd, "resolve", db, esc["id"], "--by", "alice")
    assert code == 1 and "assign it first" in err
    code, out, _ = run(escalations_cmd, "assign", db, esc["id"], "--to", "alice", "--by", "lead")
    assert code == 0 and "assigned" in out
    code, out, _ = run(escalations_cmd, "resolve", db, esc["id"], "--by", "alice", "--note", f"card {PAN} ok")
    assert code == 0 and "resolved" in out
    _, out, _ = run(escalations_cmd, "list", db, "--queue", "refunds-desk", "--format", "json")
    done = json.loads(out)
    assert done["state"] == "resolved" and PAN not in done["note"]
    code, _, err = run(escalations_cmd, "assign", db, "missing", "--to", "bob")
    assert code == 1 and "no escalation" in err
    code, out, _ = run(audit_cmd, "verify", db, "--strict")
    assert code == 0, out


def test_help_teaches_by_example() -> None:
    for group, sub in [(audit_cmd, c) for c in ("verify", "query", "export", "prune")] + [
        (escalations_cmd, c) for c in ("list", "assign", "resolve", "overdue")
    ]:
        code, out, _ = run(group, sub, "--help")
        assert code == 0
        assert "cxpolicy " in out, sub


def test_export_replays_through_the_engine(tmp_path: Path) -> None:
    """Decisions of the real engine, recorded, exported, and decided again: same effects."""
    cxpolicy = pytest.importorskip("cxpolicy")
    from cxpolicy.cli import main

    policy = cxpolicy.load([str(Path(__file__).resolve().parents[2] / "rulesets" / "bank")])
    base = {
        "channel": "chat",
        "actor": {"kind": "ai", "id": "agent-1"},
        "customer": {"segment": "retail", "risk_tier": "high", "region": "IN"},
    }
    requests = [
        {**base, "action": "refund.execute", "context": {"amount": 12000}},
        {**base, "action": "card.block", "context": {"card_number": PAN}},
        {**base, "action": "account.password_reset", "context": {"otp_verified": True}},
    ]
    path = tmp_path / "audit.db"
    with ChainedSink(SQLiteStore(path)) as sink:
        decisions = [policy.decide(r) for r in requests]
        for request, decision in zip(requests, decisions, strict=True):
            sink.record(request, decision)
    code, out, _ = run(audit_cmd, "export", path)
    assert code == 0 and PAN not in out
    replayed = [policy.decide(json.loads(line)) for line in out.splitlines()]
    assert [d.effect for d in replayed] == [d.effect for d in decisions]

    exported = tmp_path / "requests.jsonl"
    exported.write_text(out)
    ruleset = str(Path(__file__).resolve().parents[2] / "rulesets" / "bank")
    result = CliRunner().invoke(main, ["eval", "-p", ruleset, "-i", str(exported)])
    assert result.exit_code == 0, result.output
    effects = [json.loads(line)["effect"] for line in result.stdout.splitlines() if line.strip()]
    assert effects == [d.effect.value for d in decisions]
