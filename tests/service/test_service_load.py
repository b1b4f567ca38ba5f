"""Reload under load: a real uvicorn answers a few thousand requests while the policy files
are rewritten with valid and invalid versions. Zero failed requests; every decision names a
valid revision and matches it; an invalid write leaves the last good revision serving."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from service_support import (
    BAD_RULES,
    REQUEST,
    policy_dir,
    revision_of,
    rules_v,
    running_server,
    wait_for,
    write_atomic,
)

from cxpolicy.service.app import create_app
from cxpolicy.service.reload import Engine

TOKEN = "load-test-token"
CLIENTS = 4
MIN_PER_CLIENT = 500  # calls each client makes at least (~700 decisions with the batches)
MAX_PER_CLIENT = 5000  # the bound: a client stops here even if the writer is still going
BATCH_EVERY = 10  # every 10th call is a batch of BATCH_SIZE
BATCH_SIZE = 5


@dataclass
class ClientLog:
    versions: list[int] = field(default_factory=list)  # per decision, in the order answered
    failures: list[str] = field(default_factory=list)
    decisions: int = 0


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Engine, Path]]:
    d = policy_dir(tmp_path, 1)
    engine = Engine([d], watch=True, debounce=0.05)
    with running_server(create_app(engine, admin_token=TOKEN)) as url:
        yield url, engine, d
    engine.close()


def test_reload_under_load(served: tuple[str, Engine, Path], tmp_path: Path) -> None:
    url, engine, d = served
    valid = {revision_of(tmp_path, rules_v(v)): v for v in range(1, 7)}
    stop = threading.Event()
    logs = [ClientLog() for _ in range(CLIENTS)]

    def check(log: ClientLog, body: dict[str, object]) -> None:
        version = valid.get(str(body.get("policy_revision")))
        if version is None:
            log.failures.append(f"unknown revision {body.get('policy_revision')}")
            return
        if body.get("escalate_to") != [f"desk-{version}"] or body.get("effect") != "escalate":
            log.failures.append(f"revision of v{version} answered {body}")
        log.versions.append(version)
        log.decisions += 1

    def client(log: ClientLog) -> None:
        with httpx.Client(base_url=url, timeout=10) as c:
            for i in range(MAX_PER_CLIENT):
                if stop.is_set() and i >= MIN_PER_CLIENT:
                    break
                try:
                    if i % BATCH_EVERY == 0:
                        r = c.post("/v1/decide/batch", json=[REQUEST] * BATCH_SIZE)
                        if r.status_code != 200:
                            log.failures.append(f"batch: HTTP {r.status_code} {r.text[:200]}")
                            continue
                        batch = r.json()
                        if len({b["policy_revision"] for b in batch}) != 1:
                            log.failures.append("a batch mixed revisions")
                        for b in batch:
                            check(log, b)
                    else:
                        r = c.post("/v1/decide", json=REQUEST)
                        if r.status_code != 200:
                            log.failures.append(f"HTTP {r.status_code} {r.text[:200]}")
                            continue
                        check(log, r.json())
                except (httpx.HTTPError, ValueError) as exc:  # a failed request, not a crash
                    log.failures.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client, args=(log,)) for log in logs]
    for t in threads:
        t.start()
    admin = httpx.Client(base_url=url, timeout=10, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        # valid and invalid versions, alternating; the watcher picks most of them up, one
        # goes through the reload endpoint while the watcher may be compiling too.
        steps: list[tuple[str, int | None]] = [
            (BAD_RULES[0], None), (rules_v(2), 2), (BAD_RULES[1], None), (rules_v(3), 3),
            (rules_v(4), 4), (BAD_RULES[2], None), (rules_v(5), 5), (BAD_RULES[0], None),
            (rules_v(6), 6), (BAD_RULES[1], None),
        ]  # fmt: skip
        for n, (text, version) in enumerate(steps):
            failed_before = engine.reloads_failed
            write_atomic(d / "rules.cxp", text)
            if n == 4:
                assert admin.post("/v1/policy/reload").status_code == 200
            if version is None:
                wait_for(lambda b=failed_before: engine.reloads_failed > b)  # type: ignore[misc]
            else:
                wait_for(lambda v=version: valid.get(engine.revision) == v)  # type: ignore[misc]
            threading.Event().wait(0.15)  # let the clients see this state for a while
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)

    failures = [f for log in logs for f in log.failures]
    total = sum(log.decisions for log in logs)
    assert not failures, failures[:10]
    assert total >= 2000, total  # a few thousand decisions
    seen = {v for log in logs for v in log.versions}
    assert len(seen) >= 4, seen  # reloads really happened under load
    for log in logs:  # a client never sees an older revision come back after a swap
        assert log.versions == sorted(log.versions)

    # The last write was invalid: v6 keeps serving, and the failure is visible.
    last_good = revision_of(tmp_path, rules_v(6))
    info = admin.get("/v1/policy").json()
    assert info["revision"] == last_good and info["last_good"]["revision"] == last_good
    assert info["last_reload"]["ok"] is False and info["last_reload"]["diagnostics"]
    assert info["reloads"]["failed"] >= 5
    assert httpx.post(f"{url}/v1/decide", json=REQUEST).json()["escalate_to"] == ["desk-6"]
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(admin.get("/metrics").text)
        for s in fam.samples
    }
    assert samples[("cxpolicy_policy_info", (("revision", last_good),))] == 1
    assert samples[("cxpolicy_policy_last_reload_ok", ())] == 0
    assert samples[("cxpolicy_reloads_total", (("result", "failed"),))] >= 5
    assert samples[("cxpolicy_reloads_total", (("result", "ok"),))] >= 5
    answered = samples[("cxpolicy_decisions_total", (("effect", "escalate"), ("rule", "svc.refunds")))]
    assert answered >= total
    admin.close()
