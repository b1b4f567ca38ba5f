"""The PostgreSQL store, against a real server the test starts (unix socket only, no TCP).

Skipped, with the reason, where psycopg or the PostgreSQL server binaries are missing or the
server cannot start. Two sinks on one database stand for two service replicas.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_audit_support import KEY, PAN, Clock, make_decision, make_request, sensitive_request

from cxpolicy.audit import (
    DuplicateDecision,
    IllegalTransition,
    RetentionPolicy,
    open_sink,
)
from cxpolicy.audit.sink import ChainedSink
from cxpolicy.kinds import Effect
from tests.conftest import unavailable

psycopg = pytest.importorskip("psycopg", reason='psycopg not installed (pip install "psycopg[binary]")')


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not initdb or not pg_ctl:
        unavailable("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    root = tempfile.mkdtemp(prefix="cxp-audit-pg-")
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        runuser = shutil.which("runuser")
        try:
            import pwd

            pw = pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root and there is no postgres user to run the server")
        if runuser is None:
            unavailable("running as root without runuser to drop to the postgres user")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        as_user = [runuser, "-u", "postgres", "--"]
    data, port = os.path.join(root, "data"), _free_port()

    def run(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120)

    init = run(initdb, "-D", data, "-A", "trust", "-U", "cxp", "--no-sync")
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        unavailable(f"initdb failed: {init.stderr.strip()[:300]}")
    options = f"-p {port} -k {root} -c listen_addresses='' -c fsync=on"
    start = run(pg_ctl, "-D", data, "-o", options, "-l", os.path.join(root, "log"), "-w", "start")
    if start.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        unavailable(f"PostgreSQL did not start: {start.stderr.strip()[:300]}")
    try:
        yield f"postgresql://cxp@/postgres?host={root}&port={port}"
    finally:
        run(pg_ctl, "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def dsn(server: str) -> Iterator[str]:
    """A fresh database per test."""
    name = f"t{os.getpid()}_{threading.get_ident() % 10_000}_{datetime.now().microsecond}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield server.replace("/postgres?", f"/{name}?")
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_record_get_query_and_masking(dsn: str) -> None:
    with pytest.raises(FileNotFoundError):  # an empty database is not an audit log
        open_sink(dsn, create=False)
    with open_sink(dsn, key=KEY) as sink:
        d = make_decision(Effect.ESCALATE, escalate_to=("fraud-desk",), rules=("r.a", "r.b"))
        sink.record(sensitive_request(), d)
        rec = sink.get(d.decision_id)
        assert rec is not None and rec.rules == ("r.a", "r.b") and rec.seq == 1
        assert PAN not in rec.request
        assert len(sink.query(rule="r.b")) == 2  # the decision and its escalation.open
        assert len(sink.query(rule="r.b", kind="decision")) == 1
        assert [r.action for r in sink.history(d.decision_id)] == [
            "refund.execute",
            "escalation.open",
        ]
        with pytest.raises(DuplicateDecision):
            sink.record(make_request(), d)
        assert sink.verify(strict=True).ok


def test_two_replicas_extend_one_chain(dsn: str) -> None:
    replicas = [open_sink(dsn, key=KEY), open_sink(dsn, key=KEY)]
    ids: list[str] = []
    lock = threading.Lock()

    def work(t: int) -> None:
        sink = replicas[t % 2]
        for i in range(50):
            d = make_decision(Effect.ESCALATE if i % 10 == 0 else Effect.ALLOW)
            sink.record(make_request(i), d)
            with lock:
                ids.append(d.decision_id)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    recorded = [r.decision_id for r in replicas[0].iter_records(kind="decision")]
    assert sorted(recorded) == sorted(ids) and len(ids) == 400
    result = replicas[1].verify(strict=True)
    assert result.ok, result.problem
    assert result.checked == 400 + 40
    for sink in replicas:
        sink.close()


def test_tampering_and_triggers(dsn: str) -> None:
    with open_sink(dsn, key=KEY) as sink:
        for i in range(6):
            sink.record(make_request(i), make_decision())
    with psycopg.connect(dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.RaiseException):
            conn.execute("UPDATE records SET effect = 'escalate' WHERE seq = 3")
        with pytest.raises(psycopg.errors.RaiseException):
            conn.execute("DELETE FROM records WHERE seq = 3")
        conn.execute("ALTER TABLE records DISABLE TRIGGER records_append_only")
        conn.execute("UPDATE records SET effect = 'escalate' WHERE seq = 3")
    with open_sink(dsn, key=KEY, create=False) as sink:
        result = sink.verify()
        assert not result.ok and result.broken is not None and result.broken.seq == 3


def test_escalations_and_prune(dsn: str) -> None:
    clock = Clock(datetime(2024, 1, 1, tzinfo=UTC))
    sink = open_sink(dsn, key=KEY)
    assert isinstance(sink, ChainedSink)
    sink._clock = clock  # a replica's clock, fixed for the test
    for i in range(20):
        sink.record(make_request(i), make_decision(Effect.ESCALATE if i == 12 else Effect.ALLOW))
        clock.advance(days=30)
    (esc,) = sink.escalations(state="open")
    with pytest.raises(IllegalTransition):
        sink.resolve(esc.id, by="alice")
    sink.assign(esc.id, to="alice", by="lead")
    assert sink.overdue_count() == 1
    now = datetime(2026, 6, 1, tzinfo=UTC)
    keep = RetentionPolicy.parse("pci")
    cp = sink.prune(keep.earliest_cutoff(now), keep=keep, now=now)
    assert cp is not None and cp.through_seq == 12  # stops at the open escalation's decision
    assert sink.verify(strict=True).ok
    sink.resolve(esc.id, by="alice", note="done")
    cp2 = sink.prune(keep.earliest_cutoff(now), keep=keep, now=now)
    assert cp2 is not None and cp2.prev_mac == cp.mac
    assert sink.escalations() == []
    assert sink.verify(strict=True).ok
    sink.close()


def test_escalation_edits_and_rollback_are_caught_on_postgres(dsn: str, tmp_path: Path) -> None:
    from cxpolicy.audit.witness import read_sightings

    witness = tmp_path / "pg.witness"
    with open_sink(dsn, key=KEY, witness=f"file:{witness}") as sink:
        assert isinstance(sink, ChainedSink) and sink.witness is not None
        sink.witness._interval = 0.0  # every commit is witnessed in this test
        for i in range(3):
            sink.record(make_request(i), make_decision(Effect.ESCALATE, escalate_to=("fraud",)))
        assert sink.verify(witness=list(read_sightings(witness))).ok
    with psycopg.connect(dsn, autocommit=True) as conn:
        saved = conn.execute("SELECT seq, hash, mac FROM head").fetchone()
    with open_sink(dsn, key=KEY, witness=f"file:{witness}") as sink:
        sink.record(make_request(9), make_decision())
    # An attacker with database credentials edits escalation state: caught by the replay.
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE escalations SET state = 'resolved' WHERE ctid IN (SELECT ctid FROM escalations LIMIT 1)")
    with open_sink(dsn, key=KEY) as sink:
        r = sink.verify()
    assert not r.ok and "escalations table" in (r.problem or "")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE escalations SET state = 'open'")
        # ... then rolls the log back to the earlier, validly signed head.
        conn.execute("ALTER TABLE records DISABLE TRIGGER ALL")
        conn.execute("DELETE FROM records WHERE seq > %s", (saved[0],))
        conn.execute("UPDATE head SET seq = %s, hash = %s, mac = %s", saved)
    with open_sink(dsn, key=KEY) as sink:
        assert sink.verify().ok  # consistent inside the database ...
        r = sink.verify(witness=list(read_sightings(witness)))
    assert not r.ok and "rolled back" in (r.problem or "")  # ... but behind its witness
