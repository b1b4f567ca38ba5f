"""Serving a bundle: a location (file, unpacked directory, HTTP(S) URL) in, an `Engine` out.

Input: where the bundle lives, the trusted Ed25519 public keys (or none), a poll interval.
Output: `BundleEngine`, an `Engine` whose policy comes from the newest bundle that passed
every check, and which reports what it serves and what it last refused.

Why it is shaped this way:

- **Verify, then compile, then swap** — and any failure keeps the last good bundle. A new
  bundle is read (safe entries, files equal to the manifest), its signature checked when
  keys are configured (an unsigned one is refused then), its files compiled, and its
  compiled revision compared with the manifest's; only then does it replace the serving
  one, in the one-reference swap `Engine` already does. A refusal is a `ReloadResult` with
  `ok=False` and the reason, exactly like a policy that does not compile from files.
- **Poll cheaply.** A URL is polled with `If-None-Match` (a 304 costs no body and no
  compile); a file by its size and mtime; a directory by every file's size and mtime. The
  same bytes are not compiled twice, and bytes that were refused are not retried until
  they change (a bad bundle is logged once, not every poll).
- **A network error is not a refusal.** The poller logs it, keeps serving, and says so
  in `status()`; only content that arrived and failed a check counts as refused.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxpolicy.engine.loader import load
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.fleet.bundle import MAX_ARCHIVE_BYTES, Bundle, BundleError, extract, read, read_dir, verify
from cxpolicy.lang.source import Diagnostic, PolicyError
from cxpolicy.service.reload import Engine, ReloadResult

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from cxpolicy.grants.tokens import GrantKeys

__all__ = ["BundleEngine", "BundleSource"]

log = logging.getLogger("cxpolicy.fleet.source")

Fetched = bytes | Path  # an archive's bytes, or an unpacked bundle directory


class BundleSource:
    """Where a bundle comes from. `fetch(conditional=True)` returns None when nothing changed."""

    def __init__(self, location: str, *, timeout: float = 10.0, headers: dict[str, str] | None = None) -> None:
        self.location = location
        self.timeout = timeout
        self.headers = dict(headers or {})
        if location.startswith(("http://", "https://")):
            self.kind = "url"
        elif Path(location).is_dir():
            self.kind = "dir"
        else:
            self.kind = "file"
        self.etag: str | None = None
        self._stamp: object = None

    def fetch(self, *, conditional: bool) -> Fetched | None:
        if self.kind == "url":
            return self._get(conditional)
        path = Path(self.location)
        stamp = self._stat(path)
        if conditional and stamp == self._stamp:
            return None
        self._stamp = stamp
        if self.kind == "dir":
            return path
        return path.read_bytes()

    def _stat(self, path: Path) -> object:
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        out = []
        for f in files:
            try:
                st = f.stat()
            except OSError:
                out.append((str(f), -1, -1))
                continue
            out.append((str(f), st.st_size, st.st_mtime_ns))
        return tuple(out)

    def _get(self, conditional: bool) -> bytes | None:
        headers = {"Accept": "application/gzip, application/octet-stream", **self.headers}
        if conditional and self.etag:
            headers["If-None-Match"] = self.etag
        req = urllib.request.Request(self.location, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                body = resp.read(MAX_ARCHIVE_BYTES + 1)
                etag = resp.headers.get("ETag")
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return None
            raise
        if len(body) > MAX_ARCHIVE_BYTES:
            raise BundleError("broken", f"the bundle at {self.location} is over {MAX_ARCHIVE_BYTES} bytes")
        self.etag = etag
        return bytes(body)


def _fingerprint(fetched: Fetched) -> str:
    if isinstance(fetched, bytes):
        return hashlib.sha256(fetched).hexdigest()
    return repr(BundleSource(str(fetched))._stat(fetched))


class BundleEngine(Engine):
    """An `Engine` serving the newest good bundle from `location`.

    `keys`: the trusted public keys; when given, only bundles signed by one of them serve.
    `poll`: seconds between checks of the location (0: only `reload()` looks again).
    The first load raises `BundleError` or `PolicyError` (there is nothing to fall back to).
    """

    def __init__(
        self,
        location: str,
        *,
        keys: Sequence[Ed25519PublicKey] | None = None,
        poll: float = 5.0,
        detect: bool = False,
        on_reload: Callable[[ReloadResult], None] | None = None,
        headers: dict[str, str] | None = None,
        grant_keys: GrantKeys | None = None,
    ) -> None:
        self.source = BundleSource(location, headers=headers)
        self.keys: tuple[Ed25519PublicKey, ...] | None = tuple(keys) if keys is not None else None
        self.poll_interval = max(0.0, poll)
        self._workdir = Path(tempfile.mkdtemp(prefix="cxp-bundles-"))
        self._pending: Fetched | None = None
        self._candidate: Bundle | None = None
        self._seen: str | None = None  # fingerprint of the last content tried (good or bad)
        self.bundle: Bundle | None = None
        self.last_refusal: dict[str, Any] | None = None
        self.last_poll_error: str | None = None
        self.last_poll_at: datetime | None = None
        self._stop = threading.Event()
        try:
            super().__init__([], packs=(), watch=False, detect=detect, on_reload=on_reload, grant_keys=grant_keys)
        except BaseException:
            shutil.rmtree(self._workdir, ignore_errors=True)
            raise
        self.bundle, self._candidate = self._candidate, None
        self._poller: threading.Thread | None = None
        if self.poll_interval > 0:
            self._poller = threading.Thread(target=self._poll_loop, name="cxpolicy-bundle-poll", daemon=True)
            self._poller.start()

    # ------------------------------------------------------------------ loading
    def _prepare(self, fetched: Fetched) -> tuple[Bundle, Path]:
        """Read, check and unpack one bundle (BundleError when it must not serve)."""
        bundle = read(fetched) if isinstance(fetched, bytes) else read_dir(fetched)
        if self.keys is not None:
            verify(bundle, self.keys)
        return bundle, extract(bundle, self._workdir / bundle.digest.removeprefix("sha256:")[:24])

    def _compile(self) -> PolicySet:
        fetched = self._pending if self._pending is not None else self.source.fetch(conditional=False)
        assert fetched is not None  # an unconditional fetch always returns content
        self._pending = None
        self._seen = _fingerprint(fetched)
        bundle, root = self._prepare(fetched)
        policy = load(
            [root],
            packs=list(bundle.manifest.packs),
            detect=self.detect,
            detector=self._detector,
            grant_keys=self.grant_keys,
        )
        if policy.revision != bundle.manifest.revision:
            raise BundleError(
                "revision",
                f"the bundle compiles to {policy.revision} here, not {bundle.manifest.revision} as its "
                "manifest says (are this replica's packs the versions the bundle was built with?)",
            )
        self._candidate = bundle
        return policy

    def _fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        return ()  # a bundle is unpacked by us: nothing writes under it while it compiles

    def _reload_locked(self, trigger: str) -> ReloadResult:
        previous = self._policy.revision
        started = time.perf_counter()
        error: str | None = None
        diagnostics: tuple[Diagnostic, ...] = ()
        rendered = ""
        policy: PolicySet | None = None
        try:
            policy = self._compile()
        except BundleError as exc:
            error = f"bundle refused ({exc.code}): {exc}"
            self.last_refusal = {"code": exc.code, "message": str(exc), "at": _now_iso()}
        except PolicyError as exc:
            diagnostics, rendered, error = tuple(exc.diagnostics), exc.render(), f"bundle does not compile: {exc}"
            self.last_refusal = {"code": "compile", "message": str(exc), "at": _now_iso()}
        except Exception as exc:  # a fetch or loader failure must not take the service down
            log.exception("bundle reload crashed")
            error = f"bundle could not be loaded: {type(exc).__name__}: {exc}"
            self.last_refusal = {"code": "error", "message": error, "at": _now_iso()}
        elapsed = (time.perf_counter() - started) * 1000
        if policy is None:
            self.reloads_failed += 1
            result = ReloadResult(
                ok=False, revision=previous, previous=previous, trigger=trigger, at=datetime.now(UTC),
                duration_ms=elapsed, rule_count=self._policy.rule_count, diagnostics=diagnostics,
                error=error, rendered=rendered,
            )  # fmt: skip
            log.error("bundle reload (%s) refused; still serving %s: %s", trigger, previous, error)
        else:
            self._policy = policy  # the swap: one reference assignment
            self.bundle, self._candidate = self._candidate, None
            self._drop_old_unpacked()
            self.reloads_ok += 1
            result = ReloadResult(
                ok=True, revision=policy.revision, previous=previous, trigger=trigger, at=datetime.now(UTC),
                duration_ms=elapsed, rule_count=policy.rule_count, diagnostics=tuple(policy.warnings),
            )  # fmt: skip
            self.last_good = result
            if result.changed:
                log.info("bundle reload (%s): now serving %s", trigger, policy.revision)
        self.last_reload = result
        return result

    def _drop_old_unpacked(self) -> None:
        """Unpacked files of bundles no longer serving (the compiled policy holds its texts)."""
        keep = self.bundle.digest.removeprefix("sha256:")[:24] if self.bundle is not None else None
        for d in self._workdir.iterdir():
            if d.name != keep:
                shutil.rmtree(d, ignore_errors=True)

    # ------------------------------------------------------------------ polling
    def check_now(self) -> ReloadResult | None:
        """Look at the location once; reload if it holds new content. None: nothing new."""
        try:
            fetched = self.source.fetch(conditional=True)
            self.last_poll_error = None
        except Exception as exc:  # the network or the file system: keep serving
            self.last_poll_error = f"{type(exc).__name__}: {exc}"
            log.warning("bundle poll of %s failed: %s", self.source.location, self.last_poll_error)
            return None
        finally:
            self.last_poll_at = datetime.now(UTC)
        if fetched is None or _fingerprint(fetched) == self._seen:
            return None
        with self._lock:
            self._pending = fetched
            result = self._reload_locked("poll")
        self._notify(result)
        return result

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_interval):
            self.check_now()

    def status(self) -> dict[str, Any]:
        """What `/v1/status` reports about the bundle."""
        return {
            "source": _public(self.source.location),
            "kind": self.source.kind,
            "verification": "ed25519" if self.keys is not None else "off",
            "serving": self.bundle.describe() if self.bundle is not None else None,
            "last_refusal": self.last_refusal,
            "etag": self.source.etag,
            "poll_seconds": self.poll_interval,
            "last_poll_at": self.last_poll_at.isoformat().replace("+00:00", "Z") if self.last_poll_at else None,
            "last_poll_error": self.last_poll_error,
        }

    def close(self) -> None:
        self._stop.set()
        if self._poller is not None and self._poller is not threading.current_thread():
            self._poller.join(timeout=30)
        super().close()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"<BundleEngine {self.revision[:19]} from {self.source.location}>"


def _public(location: str) -> str:
    """A location fit for a status page: no credentials, no query (a presigned URL's token)."""
    from urllib.parse import urlsplit, urlunsplit

    if "://" not in location:
        return location
    parts = urlsplit(location)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")

