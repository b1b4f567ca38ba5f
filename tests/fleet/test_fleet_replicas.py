"""Three replicas (`cxpolicy serve` processes) on 127.0.0.1, a bundle server and PostgreSQL.

A new signed bundle reaches all three; a tampered or an unsigned one reaches none and the
last good keeps serving; `cxpolicy fleet status` agrees or says why not; a freeze written to
PostgreSQL is observed by all three (the delay is printed: run with -s to see it; it is
measured, never asserted). Skipped where PostgreSQL cannot run.
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from fleet_support import REQUESTS, BundleServer, free_port, keypair, postgres_server, signed_bundle, write_policy
from service_support import wait_for

from cxpolicy.cli.fleet import compare
from cxpolicy.fleet import bundle as B
from cxpolicy.fleet.models import StatusModel

TOKEN = "replica-admin-token-0123456789"
CXPOLICY = str(Path(sys.executable).with_name("cxpolicy"))


@pytest.fixture(scope="module")
def pg() -> Iterator[str]:
    with postgres_server() as dsn:
        yield dsn


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _status(url: str) -> dict[str, object]:
    r = httpx.get(f"{url}/v1/status", timeout=5)
    r.raise_for_status()
    data = r.json()
    assert isinstance(data, dict)
    return data


def _fleet_status(*urls: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CXPOLICY, "fleet", "status", *urls], capture_output=True, text=True, timeout=60)


def test_three_replicas_bundles_and_a_freeze(tmp_path: Path, pg: str) -> None:
    private, public = keypair(tmp_path)
    v1 = signed_bundle(write_policy(tmp_path / "v1", limit=100), private)
    v2 = signed_bundle(write_policy(tmp_path / "v2", limit=1000), private)
    rev1, rev2 = B.read(v1).revision, B.read(v2).revision
    server = BundleServer()
    server.files["/bank.tar.gz"] = v1
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    env = {**os.environ, "CXPOLICY_ADMIN_TOKEN": TOKEN}
    try:
        for i in range(3):
            port = free_port()
            cmd = [
                CXPOLICY, "serve", "--port", str(port), "--bundle", f"{server.url}/bank.tar.gz",
                "--bundle-key", str(public), "--bundle-poll", "0.2", "--freeze-store", pg,
                "--replica", f"r{i + 1}", "--log-level", "warning",
            ]  # fmt: skip
            procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
            urls.append(f"http://127.0.0.1:{port}")

        def up(url: str) -> bool:
            try:
                return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        for url, proc in zip(urls, procs, strict=True):
            wait_for(lambda u=url, p=proc: up(u) or p.poll() is not None, timeout=60, interval=0.1)  # type: ignore[misc]
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""

        def revisions() -> set[object]:
            return {_status(u)["revision"] for u in urls}

        assert revisions() == {rev1}
        assert _fleet_status(*urls).returncode == 0

        # A new signed bundle reaches all three.
        server.files["/bank.tar.gz"] = v2
        wait_for(lambda: revisions() == {rev2}, timeout=30)
        for u in urls:
            d = httpx.post(f"{u}/v1/decide", json=REQUESTS[1]).json()
            assert d["policy_revision"] == rev2 and d["effect"] == "allow"  # 150 <= 1000 now

        # A tampered one (a file changed after signing) and an unsigned one reach none.
        with tarfile.open(fileobj=io.BytesIO(v1), mode="r:gz") as tar:
            entries = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
        entries["policy/rules.cxp"] = entries["policy/rules.cxp"].replace(b"<= 100", b"<= 99999")
        for bad, code in ((B._archive(entries), "mismatch"), (B.build([tmp_path / "v1"]), "unsigned")):
            server.files["/bank.tar.gz"] = bad

            def refused(c: str = code) -> bool:
                return all((_status(u)["bundle"] or {}).get("last_refusal", {}) and  # type: ignore[union-attr]
                           _status(u)["bundle"]["last_refusal"]["code"] == c for u in urls)  # type: ignore[index]

            wait_for(refused, timeout=30)
            assert revisions() == {rev2}
            StatusModel.model_validate(_status(urls[0]))  # the published schema, bundle and freeze parts filled
            for u in urls:
                d = httpx.post(f"{u}/v1/decide", json=REQUESTS[1]).json()
                assert d["policy_revision"] == rev2
            out = _fleet_status(*urls)
            assert out.returncode == 1 and "refused" in out.stdout

        server.files["/bank.tar.gz"] = v2  # the good one again: every replica is healthy again
        wait_for(lambda: _fleet_status(*urls).returncode == 0, timeout=30)

        # Freezes, written straight to PostgreSQL, observed by all three.
        from cxpolicy.fleet.freeze import PostgresFreezeStore

        delays: list[float] = []
        with PostgresFreezeStore(pg) as store:
            for round_ in range(5):
                f = store.create("action", "refund.execute", f"drill {round_}", "ops")

                def seen(fid: str = f.id) -> list[dict[str, object]] | None:
                    statuses = [_status(u) for u in urls]
                    ok = all(fid in [a["id"] for a in s["freeze"]["active"]] for s in statuses)  # type: ignore[index]
                    return statuses if ok else None

                statuses = wait_for(seen, timeout=30, interval=0.01)
                for s in statuses:
                    delays.append((_parse(s["freeze"]["observed_at"]) - f.created_at).total_seconds())  # type: ignore[index]
                for u in urls:
                    d = httpx.post(f"{u}/v1/decide", json=REQUESTS[0]).json()
                    assert d["effect"] == "escalate" and d["reasons"][0]["rule"] == f"cxpolicy.freeze.{f.id}"
                    assert f"drill {round_}" in d["reasons"][0]["because"]
                assert _fleet_status(*urls).returncode == 0
                store.lift(by="ops", reason="drill over", freeze_id=f.id)
                wait_for(lambda: all(not _status(u)["freeze"]["active"] for u in urls), timeout=30)  # type: ignore[index]
                for u in urls:
                    assert httpx.post(f"{u}/v1/decide", json=REQUESTS[0]).json()["effect"] == "allow"
        print(
            f"\nfreeze observed by 3 replicas (PostgreSQL LISTEN/NOTIFY), {len(delays)} observations: "
            f"median {statistics.median(delays) * 1000:.1f} ms, max {max(delays) * 1000:.1f} ms"
        )
        assert all(d >= 0 for d in delays)  # observed after it was made: the clocks are one clock
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        server.close()


def _st(revision: str, digest: str | None, version: int, ids: list[str], ok: bool = True) -> dict[str, object]:
    return {
        "replica": revision[-1],
        "revision": revision,
        "bundle": {"serving": {"digest": digest}} if digest else None,
        "freeze": {"version": version, "active": [{"id": i} for i in ids]},
        "last_reload": {"ok": ok, "error": None if ok else "bundle refused (unsigned)"},
    }


def test_fleet_status_says_what_differs() -> None:
    same = [_st("sha256:a", "sha256:x", 2, ["f1"]) for _ in range(3)]
    assert compare(same) == []
    assert any("revision differs" in p for p in compare([*same[:2], _st("sha256:b", "sha256:x", 2, ["f1"])]))
    assert any("bundle differs" in p for p in compare([*same[:2], _st("sha256:a", "sha256:y", 2, ["f1"])]))
    assert any("freeze" in p for p in compare([*same[:2], _st("sha256:a", "sha256:x", 1, [])]))
    assert any("refused" in p for p in compare([*same[:2], _st("sha256:a", "sha256:x", 2, ["f1"], ok=False)]))
    assert any("unreachable" in p for p in compare([*same[:2], {"error": "connection refused"}]))


def test_workers_share_bundle_freezes_and_summed_metrics(tmp_path: Path) -> None:
    """`--workers 2`: the fleet options reach every worker (through the environment), each
    worker enforces the freeze, and the frozen-decision counter sums over both."""
    from prometheus_client.parser import text_string_to_metric_families

    from cxpolicy.fleet.freeze import SQLiteFreezeStore

    private, public = keypair(tmp_path)
    bundle = tmp_path / "bank.tar.gz"
    bundle.write_bytes(signed_bundle(write_policy(tmp_path / "v1", limit=100), private))
    rev2_bytes = signed_bundle(write_policy(tmp_path / "v2", limit=1000), private)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [CXPOLICY, "serve", "--port", str(port), "--workers", "2", "--bundle", str(bundle),
           "--bundle-key", str(public), "--bundle-poll", "0.2", "--freeze-store", f"sqlite:///{tmp_path}/f.db",
           "--replica", "w", "--log-level", "warning"]  # fmt: skip
    proc = subprocess.Popen(cmd, env={**os.environ, "CXPOLICY_ADMIN_TOKEN": TOKEN},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        def up() -> bool:
            try:
                return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                return False

        wait_for(up, timeout=60, interval=0.1)
        with SQLiteFreezeStore(tmp_path / "f.db") as store:
            f = store.create("channel", "chat", "workers drill", "ops")
        # Both workers must hold it: every one of many answers (spread over the workers) escalates.
        def frozen() -> bool:  # a worker that has not seen it yet answers with no reasons at all
            reasons = httpx.post(f"{url}/v1/decide", json=REQUESTS[0]).json()["reasons"]
            return [r["rule"] for r in reasons][:1] == [f"cxpolicy.freeze.{f.id}"]

        wait_for(lambda: all(frozen() for _ in range(10)), timeout=30)
        before = _frozen_total(url, text_string_to_metric_families)
        for _ in range(20):
            assert httpx.post(f"{url}/v1/decide", json=REQUESTS[0]).json()["effect"] == "escalate"
        assert _frozen_total(url, text_string_to_metric_families) - before == 20  # summed over workers
        tmp = bundle.with_suffix(".tmp")
        tmp.write_bytes(rev2_bytes)
        tmp.replace(bundle)
        rev2 = B.read(rev2_bytes).revision
        wait_for(lambda: all(httpx.post(f"{url}/v1/decide", json=REQUESTS[4]).json()["policy_revision"] == rev2
                             for _ in range(10)), timeout=30)  # fmt: skip
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _frozen_total(url: str, parse: object) -> float:
    text = httpx.get(f"{url}/metrics").text
    return sum(
        s.value for fam in parse(text) for s in fam.samples  # type: ignore[operator]
        if s.name == "cxpolicy_frozen_decisions_total"
    )  # fmt: skip
