"""The shipped deploy/ files name only metrics the service exports, and parse."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from fleet_support import write_policy
from service_support import running_server

from cxpolicy.audit import open_sink
from cxpolicy.fleet.anomalies import AnomalyConfig, AnomalyDetector
from cxpolicy.fleet.freeze import FreezeWatcher, SQLiteFreezeStore
from cxpolicy.fleet.service import Fleet
from cxpolicy.service.app import create_app
from cxpolicy.service.reload import Engine

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
FILES = [DEPLOY / "prometheus" / "alerts.yml", DEPLOY / "grafana" / "cxpolicy-dashboard.json"]


def _exported(tmp_path: Path) -> set[str]:
    watcher = FreezeWatcher(SQLiteFreezeStore(tmp_path / "f.db"))
    fleet = Fleet(replica="r", freezes=watcher, anomalies=AnomalyDetector(AnomalyConfig()))
    audit = open_sink(f"sqlite:///{tmp_path}/audit.db", key=None)
    app = create_app(Engine([write_policy(tmp_path / "p")]), audit=audit, fleet=fleet, close_on_shutdown=True)
    with running_server(app) as url:
        httpx.post(f"{url}/v1/decide", json={"action": "order.status"})
        text = httpx.get(f"{url}/metrics").text
    names: set[str] = set()
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            name, kind = m.groups()
            base = name.removesuffix("_total")
            names |= {name, base}
            if kind == "counter":
                names.add(base + "_total")
            if kind == "histogram":
                names |= {base + "_bucket", base + "_sum", base + "_count"}
    return names


def test_dashboards_and_alerts_use_exported_metrics(tmp_path: Path) -> None:
    exported = _exported(tmp_path)
    assert "cxpolicy_freeze_version" in exported and "cxpolicy_anomaly_active" in exported
    for path in FILES:
        used = set(re.findall(r"\bcxpolicy_[a-z_]+[a-z]", path.read_text()))
        assert used, path
        assert used <= exported, f"{path.name}: not exported: {sorted(used - exported)}"


def test_deploy_files_parse() -> None:
    dash = json.loads((DEPLOY / "grafana" / "cxpolicy-dashboard.json").read_text())
    assert dash["uid"] == "cxpolicy-fleet" and len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    replicas = [s for s in compose["services"] if s.startswith("replica")]
    assert len(replicas) == 3
    for name in replicas:
        svc = compose["services"][name]
        assert "--freeze-store postgresql://" in svc["command"] and "--audit postgresql://" in svc["command"]
        assert svc["environment"]["CXPOLICY_REPLICA"] == name
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    assert all("expr" in r and "alert" in r for g in rules["groups"] for r in g["rules"])
