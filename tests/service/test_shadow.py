"""Shadow revisions: the answer is always the live decision; every difference is logged once;
the report counts what a replay through `diff --requests` counts."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson

from cxpolicy.cli.shadow import read_report
from cxpolicy.engine.loader import load
from cxpolicy.engine.requests import iter_requests
from cxpolicy.service.app import create_app
from cxpolicy.service.reload import Engine
from cxpolicy.service.shadow import Shadow
from cxpolicy.tools.diff import replay
from tests.service_support import REQUEST, policy_dir, running_server, wait_for


def _requests() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(30):
        req = {**REQUEST, "customer": {**REQUEST["customer"], "id": f"C-{i}"}}
        if i % 3 == 0:
            req["action"] = "order.status"  # decided the same by both revisions
        out.append(req)
    return out


def _lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]


def test_answers_are_live_and_each_difference_is_logged_once(tmp_path: Path) -> None:
    live = Engine([policy_dir(tmp_path, 1, "live")])
    shadow = Shadow(Engine([policy_dir(tmp_path, 2, "candidate")]), tmp_path / "shadow.jsonl")
    app = create_app(live, shadow=shadow)
    reqs = _requests()
    with running_server(app) as url, httpx.Client(base_url=url) as http:
        answers = [http.post("/v1/decide", json=r).json() for r in reqs[:20]]
        answers += http.post("/v1/decide/batch", json=reqs[20:]).json()
        assert shadow.flush()
    refunds = [a for a, r in zip(answers, reqs, strict=True) if r["action"] == "refund.execute"]
    assert refunds and all(a["escalate_to"] == ["desk-1"] for a in refunds)  # always the live answer
    diffs = [x for x in _lines(tmp_path / "shadow.jsonl") if x["kind"] == "difference"]
    assert sorted(x["decision_id"] for x in diffs) == sorted(a["decision_id"] for a in refunds)
    assert all(x["live"]["escalate_to"] == ["desk-1"] and x["candidate"]["escalate_to"] == ["desk-2"] for x in diffs)
    report = read_report(io.BytesIO((tmp_path / "shadow.jsonl").read_bytes()))
    assert report.seen == len(reqs) and report.changed == len(refunds) and report.dropped == 0


def test_the_report_matches_a_replay_through_diff(tmp_path: Path) -> None:
    old_dir, new_dir = policy_dir(tmp_path, 1, "live"), policy_dir(tmp_path, 2, "candidate")
    shadow = Shadow(Engine([new_dir]), tmp_path / "shadow.jsonl")
    live = load([old_dir])
    reqs = _requests()
    for r in reqs:
        shadow.observe(r, live.decide(r))
    assert shadow.flush()
    shadow.close()
    report = read_report(io.BytesIO((tmp_path / "shadow.jsonl").read_bytes()))
    jsonl = "\n".join(orjson.dumps(r).decode() for r in reqs) + "\n"
    replayed = replay(live, load([new_dir]), iter_requests(jsonl))
    assert (report.seen, report.changed, report.loosened) == (replayed.total, replayed.changed, replayed.loosened)
    assert report.transitions == replayed.transitions


def test_a_failing_candidate_never_changes_the_answer(tmp_path: Path) -> None:
    live = Engine([policy_dir(tmp_path, 1, "live")])
    candidate = Engine([policy_dir(tmp_path, 2, "candidate")])

    class Broken:
        revision = "broken"

        def decide(self, request: Any, explain: bool = False) -> Any:
            raise RuntimeError("candidate exploded")

    candidate._policy = Broken()  # type: ignore[assignment]
    shadow = Shadow(candidate, tmp_path / "shadow.jsonl")
    with running_server(create_app(live, shadow=shadow)) as url:
        answer = httpx.post(f"{url}/v1/decide", json=REQUEST).json()
        assert shadow.flush()
    assert answer["escalate_to"] == ["desk-1"] and not answer["errors"]
    kinds = [x["kind"] for x in _lines(tmp_path / "shadow.jsonl")]
    assert "candidate_error" in kinds


def test_a_full_queue_drops_and_says_so(tmp_path: Path) -> None:
    live = load([policy_dir(tmp_path, 1, "live")])
    shadow = Shadow(Engine([policy_dir(tmp_path, 2, "candidate")]), tmp_path / "shadow.jsonl", max_queue=1)
    for _ in range(200):
        shadow.observe(REQUEST, live.decide(REQUEST))
    shadow.flush()
    shadow.close()
    report = read_report(io.BytesIO((tmp_path / "shadow.jsonl").read_bytes()))
    assert report.dropped > 0 and report.seen + report.dropped == 200


def test_serve_shadow_and_the_report_command(tmp_path: Path) -> None:
    live_dir, cand_dir = policy_dir(tmp_path, 1, "live"), policy_dir(tmp_path, 2, "candidate")
    log = tmp_path / "shadow.jsonl"
    from tests.service.test_service import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cxpolicy", "serve", "-p", str(live_dir), "--shadow", str(cand_dir),
         "--shadow-log", str(log), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ),
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=30, interval=0.1)
        for _ in range(5):
            assert httpx.post(f"{url}/v1/decide", json=REQUEST).json()["escalate_to"] == ["desk-1"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    out = subprocess.run(
        [sys.executable, "-m", "cxpolicy", "shadow", "report", str(log), "--format", "json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = orjson.loads(out.stdout)
    assert report["requests"] == 5 and report["changed"] == 5
    assert report["transitions"][0]["old"].endswith("desk-1") and report["transitions"][0]["new"].endswith("desk-2")
