"""`cxpolicy.Engine`: atomic swap, last good revision on failure, debounced watching."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from service_support import (
    BAD_RULES,
    REQUEST,
    VOCAB,
    policy_dir,
    revision_of,
    rules_v,
    wait_for,
    write_atomic,
)

import cxpolicy
from cxpolicy import Effect, PolicyError
from cxpolicy.service.reload import Engine, ReloadResult


def queue_of(engine: Engine) -> str:
    d = engine.decide(REQUEST)
    assert d.effect is Effect.ESCALATE, d.to_dict()
    return d.escalate_to[0]


def test_initial_load_failure_raises(tmp_path: Path) -> None:
    d = policy_dir(tmp_path)
    (d / "rules.cxp").write_text(BAD_RULES[0])
    with pytest.raises(PolicyError) as err:
        Engine([d])
    assert any(diag.code.startswith("CXP") for diag in err.value.diagnostics)


def test_engine_is_public_and_decides_with_current_revision(tmp_path: Path) -> None:
    d = policy_dir(tmp_path, 1)
    with cxpolicy.Engine([d]) as engine:
        decision = engine.decide(REQUEST)
        assert decision.escalate_to == ("desk-1",)
        assert decision.policy_revision == engine.revision == revision_of(tmp_path, rules_v(1))
        assert engine.last_reload.trigger == "initial" and engine.last_reload.ok
        assert engine.decide(REQUEST, explain=True).trace is not None
        assert engine.reject("too large").effect is Effect.ESCALATE


def test_manual_reload_swaps_and_reports(tmp_path: Path) -> None:
    d = policy_dir(tmp_path, 1)
    seen: list[ReloadResult] = []
    with Engine([d], on_reload=seen.append) as engine:
        first = engine.revision
        write_atomic(d / "rules.cxp", rules_v(2))
        result = engine.reload()
        assert result.ok and result.changed and result.trigger == "manual"
        assert result.previous == first and result.revision == engine.revision != first
        assert queue_of(engine) == "desk-2"
        assert seen == [result]
        again = engine.reload()  # same text: compiles, nothing changes
        assert again.ok and not again.changed and again.revision == result.revision
        assert engine.reloads_ok == 2 and engine.reloads_failed == 0
        assert result.to_dict()["changed"] is True


@pytest.mark.parametrize("bad", BAD_RULES)
def test_invalid_policy_is_rejected_whole_and_last_good_keeps_serving(
    tmp_path: Path, bad: str
) -> None:
    d = policy_dir(tmp_path, 1)
    with Engine([d]) as engine:
        good = engine.revision
        write_atomic(d / "rules.cxp", bad)
        result = engine.reload()
        assert not result.ok and not result.changed
        assert result.revision == good == engine.revision
        assert result.diagnostics and all(x.code.startswith("CXP") for x in result.diagnostics)
        assert "rules.cxp" in result.rendered and result.error
        assert engine.last_reload is result and engine.last_good.revision == good
        assert engine.reloads_failed == 1
        assert queue_of(engine) == "desk-1"
        body = result.to_dict()
        assert body["ok"] is False and body["diagnostics"][0]["file"].endswith("rules.cxp")


def test_listener_errors_do_not_break_reloading(tmp_path: Path) -> None:
    d = policy_dir(tmp_path, 1)

    def broken(result: ReloadResult) -> None:
        raise RuntimeError("listener bug")

    with Engine([d], on_reload=broken) as engine:
        write_atomic(d / "rules.cxp", rules_v(2))
        assert engine.reload().ok
        assert queue_of(engine) == "desk-2"


def test_files_changing_during_compile_are_compiled_again(tmp_path: Path) -> None:
    """A write that lands while a compile runs (a torn write) is never swapped in as is."""
    d = policy_dir(tmp_path, 1)
    with Engine([d]) as engine:
        real_compile = engine._compile
        calls = {"n": 0}

        def racing_compile() -> Any:
            calls["n"] += 1
            policy = real_compile()
            if calls["n"] == 1:  # the file changes after it was read, before the swap
                time.sleep(0.01)
                write_atomic(d / "rules.cxp", rules_v(3))
            return policy

        engine._compile = racing_compile  # type: ignore[method-assign]
        write_atomic(d / "rules.cxp", rules_v(2))
        result = engine.reload()
        assert calls["n"] == 2
        assert result.ok and result.revision == revision_of(tmp_path, rules_v(3))
        assert queue_of(engine) == "desk-3"


def test_watch_reloads_after_a_change(tmp_path: Path) -> None:
    d = policy_dir(tmp_path, 1)
    with Engine([d], watch=True, debounce=0.05) as engine:
        assert engine.watching
        write_atomic(d / "rules.cxp", rules_v(2))
        wait_for(lambda: queue_of(engine) == "desk-2")
        assert engine.last_reload.trigger == "watch"
        # An invalid write is rejected; the last good revision keeps serving.
        write_atomic(d / "rules.cxp", BAD_RULES[1])
        wait_for(lambda: not engine.last_reload.ok)
        assert queue_of(engine) == "desk-2" and engine.reloads_failed == 1
        # A new file in a subdirectory counts too.
        sub = d / "more"
        sub.mkdir()
        write_atomic(d / "rules.cxp", rules_v(4))
        wait_for(lambda: queue_of(engine) == "desk-4")
        (sub / "extra.cxp").write_text(
            'package extra\nrule block_status {\n  match action = order.status\n'
            '  decide require_otp\n}\n'
        )
        wait_for(lambda: engine.decide({**REQUEST, "action": "order.status"}).effect
                 is Effect.REQUIRE_OTP)  # fmt: skip
    assert not engine.watching


def test_watch_debounces_a_burst_of_writes(tmp_path: Path) -> None:
    d = policy_dir(tmp_path, 1)
    with Engine([d], watch=True, debounce=1.0) as engine:
        for v in range(2, 12):  # ten saves, 20 ms apart: well inside the debounce window
            write_atomic(d / "rules.cxp", rules_v(v))
            time.sleep(0.02)
        wait_for(lambda: queue_of(engine) == "desk-11")
        time.sleep(1.2)
        # Not one compile per save (a heavily loaded machine may stretch a gap past the
        # window once or twice).
        assert engine.reloads_ok + engine.reloads_failed <= 3


def test_watch_a_single_file_and_ignore_other_files(tmp_path: Path) -> None:
    d = policy_dir(tmp_path, 1)
    single = d / "vocab.cxp"
    both = single.read_text() + rules_v(1)  # one file holding the whole policy
    single.write_text(both)
    (d / "rules.cxp").unlink()
    with Engine([single], watch=True, debounce=0.05) as engine:
        (d / "notes.txt").write_text("not a policy")
        (d / "other.cxp").write_text("this file is not watched: it is not one of the paths")
        time.sleep(0.4)
        assert engine.reloads_ok + engine.reloads_failed == 0
        write_atomic(single, both.replace("desk-1", "desk-7"))
        wait_for(lambda: queue_of(engine) == "desk-7")


def test_decisions_during_reloads_always_match_their_revision(tmp_path: Path) -> None:
    d = policy_dir(tmp_path, 0)
    versions = {revision_of(tmp_path, rules_v(v)): f"desk-{v}" for v in range(6)}
    stop = threading.Event()
    problems: list[str] = []
    counts = {"n": 0}

    def client(engine: Engine) -> None:
        while not stop.is_set() and counts["n"] < 200_000:
            dec = engine.decide(REQUEST)
            counts["n"] += 1
            want = versions.get(dec.policy_revision)
            if want is None or dec.escalate_to != (want,):
                problems.append(f"{dec.policy_revision} gave {dec.escalate_to}")

    with Engine([d]) as engine:
        threads = [threading.Thread(target=client, args=(engine,)) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            for v in (1, 2, 3, 4, 5):
                write_atomic(d / "rules.cxp", rules_v(v))
                assert engine.reload().ok
                write_atomic(d / "rules.cxp", BAD_RULES[v % len(BAD_RULES)])
                assert not engine.reload().ok
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=10)
    assert counts["n"] > 0 and not problems, problems[:5]
    assert queue_of(engine) == "desk-5"


def test_close_is_idempotent(tmp_path: Path) -> None:
    engine = Engine([policy_dir(tmp_path)], watch=True)
    engine.close()
    engine.close()
    assert not engine.watching
    assert queue_of(engine) == "desk-1"  # a closed engine still decides with what it has


def test_import_cxpolicy_stays_light() -> None:
    code = (
        "import sys, cxpolicy\n"
        "cxpolicy.Engine\n"
        "heavy = [m for m in ('uvicorn', 'starlette', 'watchdog', 'prometheus_client') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_watch_a_configmap_style_symlink_swap(tmp_path: Path) -> None:
    """Kubernetes publishes a ConfigMap update by pointing the `..data` symlink at a new
    timestamped directory; the files the policy path shows are symlinks through it."""
    mount = tmp_path / "mount"
    mount.mkdir()
    first = mount / "..2026_01"
    first.mkdir()
    (first / "policy.cxp").write_text(VOCAB + rules_v(1))
    (mount / "..data").symlink_to(first.name)
    (mount / "policy.cxp").symlink_to("..data/policy.cxp")
    with Engine([mount / "policy.cxp"], watch=True, debounce=0.05) as engine:
        assert queue_of(engine) == "desk-1"
        second = mount / "..2026_02"
        second.mkdir()
        (second / "policy.cxp").write_text(VOCAB + rules_v(2))
        (mount / "..data_tmp").symlink_to(second.name)
        os.replace(mount / "..data_tmp", mount / "..data")
        wait_for(lambda: queue_of(engine) == "desk-2")
