"""Freezes: matching, the decision they produce, the SQLite store and its history, the
watcher, the service endpoints (two apps on one store), and the CLI."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import orjson
import pytest
from click.testing import CliRunner
from fleet_support import REQUESTS, write_policy
from service_support import wait_for

from cxpolicy.cli import main
from cxpolicy.fleet.freeze import (
    Freeze,
    FreezeError,
    FreezeSet,
    FreezeWatcher,
    SQLiteFreezeStore,
    apply_freezes,
)
from cxpolicy.fleet.models import FreezeListModel, FreezeModel, StatusModel
from cxpolicy.fleet.service import Fleet
from cxpolicy.kinds import Effect
from cxpolicy.service.app import create_app
from cxpolicy.service.reload import Engine

TOKEN = "fleet-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def _freeze(kind: str, value: str, fid: str = "frz-1") -> Freeze:
    from datetime import UTC, datetime

    return Freeze(fid, kind, value, "why", "ops", datetime.now(UTC))


@pytest.mark.parametrize(
    ("kind", "value", "hit", "miss"),
    [
        ("action", "refund.execute", {"action": "refund.execute"}, {"action": "order.status"}),
        ("agent", "agent-1", {"actor": {"id": "agent-1"}}, {"actor": {"id": "agent-2"}}),
        ("channel", "chat", {"channel": "chat"}, {"channel": "voice"}),
        ("region", "IN", {"customer": {"region": "IN"}}, {"customer": {"region": "EU"}}),
        ("tool", "crm.export", {"context": {"tool": "crm.export"}}, {"tool": "crm.read"}),
        ("tool", "crm.export", {"tool": "crm.export"}, {"context": {"tool": 5}}),
    ],
)
def test_each_kind_matches_its_field_only(
    kind: str, value: str, hit: dict[str, object], miss: dict[str, object]
) -> None:
    fs = FreezeSet(1, [_freeze(kind, value)])
    assert [f.id for f, _ in fs.match(hit)] == ["frz-1"]
    assert fs.match(miss) == ()
    for odd in (None, [], "x", {"actor": "agent-1"}, {"customer": None}):
        assert fs.match(odd) == ()  # never raises on what is not a request


def test_a_frozen_decision_is_escalated_and_says_why() -> None:
    policy = load_text_policy()
    allowed = policy.decide(REQUESTS[0])
    assert allowed.effect is Effect.ALLOW
    fs = FreezeSet(3, [_freeze("action", "refund.execute", "frz-abc"), _freeze("agent", "agent-1", "frz-def")])
    frozen = apply_freezes(allowed, fs.match(REQUESTS[0]))
    assert frozen.effect is Effect.ESCALATE and frozen.decision_id == allowed.decision_id
    rules = [r.rule for r in frozen.reasons]
    assert rules[:2] == ["cxpolicy.freeze.frz-abc", "cxpolicy.freeze.frz-def"]
    body = frozen.to_dict()
    assert "frozen by ops" in body["reasons"][0]["because"] and body["effect"] == "escalate"
    assert "cxpolicy.freeze.frz-abc" in body["summary"]
    assert apply_freezes(allowed, ()) is allowed


def load_text_policy():  # type: ignore[no-untyped-def]
    from fleet_support import POLICY

    from cxpolicy.engine.loader import load_text

    return load_text(POLICY.format(limit=100), "rules.cxp")


def test_sqlite_store_history_and_validation(tmp_path: Path) -> None:
    store = SQLiteFreezeStore(tmp_path / "f.db")
    other = SQLiteFreezeStore(tmp_path / "f.db")  # another replica on the same machine
    assert store.version() == 0
    f = store.create("action", "refund.execute", "fraud wave", "alice")
    assert other.version() == 1 and [x.id for x in other.snapshot().freezes] == [f.id]
    for bad in (("nope", "x", "r", "a"), ("action", "", "r", "a"), ("action", "x", " ", "a"), ("action", "x", "r", "")):
        with pytest.raises(FreezeError):
            store.create(*bad)
    with pytest.raises(FreezeError):
        other.lift(by="bob", reason="done", freeze_id="frz-missing")
    lifted = other.lift(by="bob", reason="wave over", kind="action", value="refund.execute")
    assert [x.id for x in lifted] == [f.id] and lifted[0].lifted_by == "bob"
    assert store.snapshot().freezes == () and store.version() == 2
    history = store.history()
    assert [(h["event"], h["by"], h["reason"]) for h in history] == [
        ("unfreeze", "bob", "wave over"),
        ("freeze", "alice", "fraud wave"),
    ]
    conn = sqlite3.connect(tmp_path / "f.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE cxp_freeze_events SET actor = 'mallory'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM cxp_freeze_events")
    conn.close()
    store.close()
    other.close()


def test_the_watcher_follows_the_store_and_keeps_freezes_when_it_breaks(tmp_path: Path) -> None:
    writer = SQLiteFreezeStore(tmp_path / "f.db")
    watcher = FreezeWatcher(SQLiteFreezeStore(tmp_path / "f.db"), fallback=0.5)
    try:
        f = writer.create("channel", "whatsapp", "spam flood", "ops")
        wait_for(lambda: watcher.current.ids() == [f.id], timeout=10)
        assert watcher.status()["version"] == 1 and watcher.status()["active"][0]["reason"] == "spam flood"
        watcher.store.close()  # the store becomes unreadable: the freeze must stay
        watcher.refresh()
        assert watcher.current.ids() == [f.id] and watcher.last_error
    finally:
        watcher._stop.set()
        watcher._thread.join(timeout=5)
        writer.close()


def test_two_services_on_one_store(tmp_path: Path) -> None:
    from service_support import running_server

    db = tmp_path / "freezes.db"
    apps, engines = [], []
    for name in ("a", "b"):
        engine = Engine([write_policy(tmp_path / "policy")])
        fleet = Fleet(replica=name, freezes=FreezeWatcher(SQLiteFreezeStore(db), fallback=0.5))
        apps.append(create_app(engine, admin_token=TOKEN, fleet=fleet, close_on_shutdown=True))
        engines.append(engine)
    with running_server(apps[0]) as a, running_server(apps[1]) as b:
        req = REQUESTS[0]
        assert httpx.post(f"{a}/v1/decide", json=req).json()["effect"] == "allow"
        body = {"kind": "action", "value": "refund.execute", "reason": "INC-1: refunds paused"}
        assert httpx.post(f"{a}/v1/freezes", json=body).status_code == 401
        for bad in ({**body, "kind": "planet"}, {**body, "reason": "  "}, {**body, "extra": 1}, [1]):
            r = httpx.post(f"{a}/v1/freezes", json=bad, headers=ADMIN)
            assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_body", bad
        r = httpx.post(f"{a}/v1/freezes", json={**body, "by": "alice"}, headers=ADMIN)
        assert r.status_code == 201, r.text
        fid = r.json()["id"]
        assert r.json()["created_by"] == "alice (via admin)"
        FreezeModel.model_validate(r.json())  # the published schema is what is served
        d = httpx.post(f"{a}/v1/decide", json=req).json()  # the replica that took it: at once
        assert d["effect"] == "escalate" and d["reasons"][0]["rule"] == f"cxpolicy.freeze.{fid}"
        wait_for(lambda: httpx.get(f"{b}/v1/status").json()["freeze"]["version"] == 1, timeout=10)
        StatusModel.model_validate(httpx.get(f"{b}/v1/status").json())
        d = httpx.post(f"{b}/v1/decide", json=req).json()
        assert d["effect"] == "escalate" and "INC-1" in d["reasons"][0]["because"]
        batch = httpx.post(f"{b}/v1/decide/batch", json=[req, REQUESTS[4]]).json()
        assert [x["effect"] for x in batch] == ["escalate", "allow"]  # only what the freeze covers
        metrics = httpx.get(f"{b}/metrics").text
        assert 'cxpolicy_freezes_active{kind="action"} 1.0' in metrics
        assert "cxpolicy_frozen_decisions_total 2.0" in metrics
        listing = httpx.get(f"{b}/v1/freezes", headers=ADMIN).json()
        assert [h["event"] for h in listing["history"]] == ["freeze"]
        FreezeListModel.model_validate(listing)
        r = httpx.post(f"{b}/v1/freezes/{fid}/lift", json={"reason": "fixed"}, headers=ADMIN)
        assert r.status_code == 200 and r.json()["lifted_by"] == "admin"
        assert httpx.post(f"{b}/v1/freezes/{fid}/lift", json={"reason": "again"}, headers=ADMIN).status_code == 404
        wait_for(lambda: httpx.post(f"{a}/v1/decide", json=req).json()["effect"] == "allow", timeout=10)


def test_a_service_without_a_store_says_so(tmp_path: Path) -> None:
    from service_support import running_server

    app = create_app(Engine([write_policy(tmp_path / "p")]), admin_token=TOKEN)
    with running_server(app) as url:
        status = httpx.get(f"{url}/v1/status").json()
        assert status["revision"].startswith("sha256:") and status["freeze"] is None and status["bundle"] is None
        r = httpx.post(f"{url}/v1/freezes", json={"kind": "action", "value": "x", "reason": "y"}, headers=ADMIN)
        assert r.status_code == 404 and r.json()["error"]["code"] == "freeze_disabled"
        assert httpx.get(f"{url}/v1/anomalies").json() == {"enabled": False, "anomalies": [], "recent": []}


def test_freeze_and_unfreeze_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/f.db"
    runner = CliRunner()
    r = runner.invoke(main, ["freeze", "--action", "refund.execute", "--store", url])
    assert r.exit_code != 0 and "--reason" in r.output
    r = runner.invoke(main, ["freeze", "--action", "a", "--agent", "b", "--reason", "x", "--store", url])
    assert r.exit_code != 0 and "exactly one" in r.output
    r = runner.invoke(main, ["freeze", "--agent", "agent-9", "--reason", "looping", "--by", "carol", "--store", url])
    assert r.exit_code == 0, r.output
    fid = orjson.loads(r.output)["id"]
    r = runner.invoke(main, ["freeze", "--list", "--store", url])
    assert [f["id"] for f in orjson.loads(r.output)] == [fid]
    r = runner.invoke(main, ["unfreeze", "frz-nope", "--reason", "x", "--store", url])
    assert r.exit_code == 1 and "no active freeze" in r.output
    r = runner.invoke(main, ["unfreeze", fid, "--reason", "fixed", "--by", "dave", "--store", url])
    assert r.exit_code == 0 and orjson.loads(r.output)[0]["lifted_by"] == "dave"
    with SQLiteFreezeStore(tmp_path / "f.db") as st:
        assert [(h["event"], h["by"]) for h in st.history()] == [("unfreeze", "dave"), ("freeze", "carol")]


def test_the_decide_path_pays_nothing_without_freezes() -> None:
    """Not a timing assertion: with no freeze the decision object is returned untouched."""
    policy = load_text_policy()
    fleet = Fleet(replica="x")
    d = policy.decide(REQUESTS[0])
    assert fleet.after(REQUESTS[0], d) is d
