"""Hot reload: `Engine` serves one `PolicySet` and swaps in a new one without a failed request.

Input: policy paths and pack names. Output: `Engine.decide(request)` answered by whichever
compiled revision is current at the moment the call starts.

Why it is shaped this way:

- **One reference, swapped atomically.** The current `PolicySet` lives in one attribute.
  `decide()` reads it once and hands the whole request to that set, so a decision is never
  half one revision and half another, and no lock sits on the request path (a reference
  assignment is atomic in CPython; a compiled `PolicySet` is immutable).
- **Compile off the request path.** With `watch=True`, watchdog reports file events to a
  background thread, which waits until the files have been quiet for `debounce` seconds (an
  editor's save or `git checkout` is a burst of events) and compiles there; callers of
  `reload()` compile in their own thread (the service runs it in a worker thread).
- **Rejected whole.** A policy set that does not compile never replaces the one serving:
  the failure is kept as a `ReloadResult` with every diagnostic, logged, and counted, so
  `/v1/policy` and the metrics can show that the files on disk are not what is serving.
- **A torn write is not a revision.** If the files change while they are being compiled
  (a writer that truncates and rewrites in place), the result is thrown away and the
  compile runs again, so a half-written file is not swapped in as if it were a policy.

`import cxpolicy` does not import this module (watchdog is imported only when watching).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from cxpolicy.engine.decision import Decision
from cxpolicy.engine.loader import load
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.grants.tokens import GrantKeys
from cxpolicy.lang.source import Diagnostic, PolicyError

__all__ = ["Engine", "ReloadResult"]

log = logging.getLogger("cxpolicy.service.reload")

PathLike = str | os.PathLike[str]
Detector = Callable[[Mapping[str, Any]], Mapping[str, Any]]
# How often a compile is retried when the files keep changing under it before giving up on
# this round (the next file event starts another).
_MAX_TORN_RETRIES = 5


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What one load attempt did. `revision` is what serves *after* the attempt."""

    ok: bool
    revision: str
    previous: str | None
    trigger: str  # "initial", "manual" (reload()), "watch" (a file change)
    at: datetime
    duration_ms: float
    rule_count: int
    diagnostics: tuple[Diagnostic, ...] = ()
    error: str | None = None
    rendered: str = field(default="", repr=False)  # diagnostics with source lines, for logs

    @property
    def changed(self) -> bool:
        """Whether a new revision started serving (a recompile of the same text does not)."""
        return self.ok and self.revision != self.previous

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "changed": self.changed,
            "revision": self.revision,
            "previous": self.previous,
            "trigger": self.trigger,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "duration_ms": round(self.duration_ms, 3),
            "rule_count": self.rule_count,
            "error": self.error,
            "diagnostics": [d.to_dict() for d in self.diagnostics],
        }


class Engine:
    """A policy set that can be reloaded while it serves; use it as a context manager.

        >>> with cxpolicy.Engine(["rulesets/bank"], packs=["bfsi_rbi"], watch=True) as engine:
        ...     engine.decide(request).effect

    The first load happens in the constructor and raises `PolicyError` when it fails (there
    is no last good revision to fall back to yet). Later loads never raise: see `reload()`.
    `on_reload` is called with every `ReloadResult` after the initial one, from the thread
    that compiled it.
    """

    def __init__(
        self,
        paths: PathLike | Iterable[PathLike],
        packs: Iterable[str] = (),
        watch: bool = False,
        detect: bool = True,
        debounce: float = 0.2,
        on_reload: Callable[[ReloadResult], None] | None = None,
        *,
        detector: Detector | None = None,
        grant_keys: GrantKeys | None = None,
    ) -> None:
        self.grant_keys = grant_keys  # every revision verifies grants with these (LANGUAGE.md §9)
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        self.paths: tuple[str, ...] = tuple(os.fspath(p) for p in paths)
        self.packs: tuple[str, ...] = tuple(packs)
        self.detect = detect
        self.debounce = max(0.0, float(debounce))
        self._detector = detector
        self._listeners: list[Callable[[ReloadResult], None]] = [on_reload] if on_reload else []
        self._lock = threading.Lock()  # one compile at a time; never taken by decide()
        self.reloads_ok = 0
        self.reloads_failed = 0
        started = time.perf_counter()
        policy = self._compile()  # raises PolicyError: nothing to serve yet
        self._policy: PolicySet = policy
        self.last_reload = ReloadResult(
            ok=True,
            revision=policy.revision,
            previous=None,
            trigger="initial",
            at=datetime.now(UTC),
            duration_ms=(time.perf_counter() - started) * 1000,
            rule_count=policy.rule_count,
            diagnostics=tuple(policy.warnings),
        )
        self.last_good = self.last_reload
        self._closed = False
        self._observer: Any = None
        self._wake = threading.Condition()
        self._dirty_at: float | None = None
        self._thread: threading.Thread | None = None
        if watch:
            self._start_watching()

    # ------------------------------------------------------------------ serving
    @property
    def policy(self) -> PolicySet:
        """The policy set serving now. Read it once per unit of work and keep the reference."""
        return self._policy

    @property
    def revision(self) -> str:
        return self._policy.revision

    @property
    def watching(self) -> bool:
        return self._observer is not None

    def decide(self, request: Any, explain: bool = False) -> Decision:
        """Decide with the current revision; the decision's `policy_revision` names it."""
        return self._policy.decide(request, explain)

    def reject(self, message: str, *, explain: bool = False) -> Decision:
        """The escalate decision for input that never became a request (see PolicySet.reject)."""
        return self._policy.reject(message, explain=explain)

    def add_listener(self, fn: Callable[[ReloadResult], None]) -> None:
        """Also call `fn` after every reload attempt (the service hooks its log and metrics)."""
        self._listeners.append(fn)

    # ------------------------------------------------------------------ reloading
    def reload(self, *, trigger: str = "manual") -> ReloadResult:
        """Compile the files as they are now and swap the result in if it compiles.

        Never raises for a bad policy: the result says `ok=False`, carries the diagnostics,
        and the previous revision keeps serving. Concurrent calls are serialised, so two
        reloads cannot race each other into serving an older text.
        """
        with self._lock:
            result = self._reload_locked(trigger)
        self._notify(result)
        return result

    def _reload_locked(self, trigger: str) -> ReloadResult:
        previous = self._policy.revision
        started = time.perf_counter()
        diagnostics: tuple[Diagnostic, ...] = ()
        rendered = ""
        error: str | None = None
        policy: PolicySet | None = None
        for _ in range(_MAX_TORN_RETRIES):
            before = self._fingerprint()
            try:
                candidate = self._compile()
            except PolicyError as exc:
                if self._fingerprint() != before:
                    continue  # the files moved under us: what failed may be a torn write
                diagnostics = tuple(exc.diagnostics)
                rendered = exc.render()
                error = str(exc)
                break
            except Exception as exc:  # a loader bug must not take the service down
                log.exception("policy reload crashed")
                error = f"internal error while compiling: {type(exc).__name__}: {exc}"
                break
            if self._fingerprint() != before:
                continue
            policy = candidate
            break
        else:
            error = "the policy files kept changing while being compiled; try again"
        elapsed = (time.perf_counter() - started) * 1000
        now = datetime.now(UTC)
        if policy is None:
            self.reloads_failed += 1
            result = ReloadResult(
                ok=False,
                revision=previous,
                previous=previous,
                trigger=trigger,
                at=now,
                duration_ms=elapsed,
                rule_count=self._policy.rule_count,
                diagnostics=diagnostics,
                error=error,
                rendered=rendered,
            )
            log.error(
                "policy reload (%s) rejected; still serving %s: %s\n%s",
                trigger,
                previous,
                error,
                rendered,
            )
        else:
            self._policy = policy  # the swap: one reference assignment
            self.reloads_ok += 1
            result = ReloadResult(
                ok=True,
                revision=policy.revision,
                previous=previous,
                trigger=trigger,
                at=now,
                duration_ms=elapsed,
                rule_count=policy.rule_count,
                diagnostics=tuple(policy.warnings),
            )
            self.last_good = result
            if result.changed:
                log.info(
                    "policy reload (%s): now serving %s (%d rules, %.1f ms)",
                    trigger,
                    policy.revision,
                    policy.rule_count,
                    elapsed,
                )
        self.last_reload = result
        return result

    def _compile(self) -> PolicySet:
        return load(
            list(self.paths),
            packs=list(self.packs),
            detect=self.detect,
            detector=self._detector,
            grant_keys=self.grant_keys,
        )

    def _fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        """(path, size, mtime) of every policy file: changes if anything was written meanwhile."""
        out: list[tuple[str, int, int]] = []
        for p in self.paths:
            path = Path(p)
            files = sorted(path.rglob("*.cxp")) if path.is_dir() else [path]
            for f in files:
                try:
                    st = f.stat()
                except OSError:
                    out.append((str(f), -1, -1))
                    continue
                out.append((str(f), st.st_size, st.st_mtime_ns))
        return tuple(out)

    def _notify(self, result: ReloadResult) -> None:
        for fn in list(self._listeners):
            try:
                fn(result)
            except Exception:  # a listener's bug must not break reloading
                log.exception("reload listener %r failed", fn)

    # ------------------------------------------------------------------ watching
    def _start_watching(self) -> None:
        from watchdog.observers import Observer

        handler = _Handler(self._targets(), self._file_changed)
        observer: Any = Observer()  # duck-typed handler: see _Handler
        for directory, recursive in self._watch_dirs():
            observer.schedule(handler, directory, recursive=recursive)
        observer.daemon = True
        self._thread = threading.Thread(
            target=self._debounce_loop, name="cxpolicy-reload", daemon=True
        )
        self._thread.start()
        try:
            observer.start()  # fails e.g. when the inotify watch limit is reached
        except Exception:
            self.close()
            raise
        self._observer = observer
        log.info("watching %s for policy changes", ", ".join(self.paths))

    def _targets(self) -> tuple[frozenset[str], tuple[str, ...]]:
        """Single files to match exactly, and directories whose `.cxp` files all count.

        Paths are taken as given (absolute, symlinks kept): watchdog reports events under
        the path it was asked to watch, and a file that is a symlink (a Kubernetes ConfigMap
        volume) changes when the link's target is swapped, next to the link, not the target.
        """
        files: set[str] = set()
        dirs: list[str] = []
        for p in self.paths:
            path = os.path.abspath(p)
            if os.path.isdir(path):
                dirs.append(path.rstrip(os.sep) + os.sep)
            else:
                files.update({path, os.path.realpath(path)})
        return frozenset(files), tuple(dirs)

    def _watch_dirs(self) -> list[tuple[str, bool]]:
        """Directories watched recursively; a single file is watched through its parent (and
        its target's, when it is a symlink), because editors and `os.replace` swap a file by
        renaming a new inode over it."""
        out: dict[str, bool] = {}
        for p in self.paths:
            path = os.path.abspath(p)
            if os.path.isdir(path):
                out[path] = True
                continue
            for f in (path, os.path.realpath(path)):
                parent = os.path.dirname(f) or "."
                if os.path.isdir(parent):
                    out.setdefault(parent, False)
        return list(out.items())

    def _file_changed(self) -> None:
        with self._wake:
            self._dirty_at = time.monotonic()
            self._wake.notify()

    def _debounce_loop(self) -> None:
        while True:
            with self._wake:
                while self._dirty_at is None and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                # Wait until the files have been quiet for `debounce` seconds.
                while self._dirty_at is not None and not self._closed:
                    quiet_for = time.monotonic() - self._dirty_at
                    if quiet_for >= self.debounce:
                        break
                    self._wake.wait(self.debounce - quiet_for)
                if self._closed:
                    return
                self._dirty_at = None
            self.reload(trigger="watch")

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Stop watching (waiting for a compile in progress to finish). Idempotent."""
        with self._wake:
            if self._closed:
                return
            self._closed = True
            self._wake.notify_all()
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=30)

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "watching" if self.watching else "static"
        return f"<Engine {self.revision[:19]} rules={self._policy.rule_count} {state}>"


class _Handler:
    """A watchdog event handler that reports only events touching policy files.

    Duck-typed (`dispatch` is all watchdog calls) so this module does not import watchdog
    at import time.
    """

    def __init__(
        self, targets: tuple[frozenset[str], tuple[str, ...]], changed: Callable[[], None]
    ) -> None:
        self._files, self._dirs = targets
        self._changed = changed

    def dispatch(self, event: Any) -> None:
        kind = getattr(event, "event_type", "")
        if kind in ("opened", "closed_no_write"):
            return  # reads (our own compile opens every file) are not changes
        if event.is_directory and kind == "modified":
            return  # a file created or removed inside reports its own event
        paths = [event.src_path, getattr(event, "dest_path", "") or ""]
        for raw in paths:
            path = os.fsdecode(raw) if raw else ""
            if path and self._relevant(path, bool(event.is_directory)):
                self._changed()
                return

    def _relevant(self, path: str, is_directory: bool) -> bool:
        if path in self._files:
            return True
        if os.path.basename(path) == "..data":
            # The symlink a Kubernetes ConfigMap volume swaps to publish new files; events
            # only come from directories we watch, so this is next to a policy path.
            return True
        inside = any(path.startswith(d) or path + os.sep == d for d in self._dirs)
        # A directory created, removed or renamed inside a watched tree can add or drop files.
        return inside and (is_directory or path.endswith(".cxp"))
