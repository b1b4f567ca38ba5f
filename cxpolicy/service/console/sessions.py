"""Reviewer sessions for the console: a signed cookie in, the signed-in reviewer out.

Why a signed cookie and not a server-side table: the service may run several workers (and
replicas), and a reviewer's next click can land on any of them. The cookie holds the
reviewer's name, an expiry, a session id and the CSRF token, with an HMAC over all of it
under a secret every worker shares (`CXPOLICY_CONSOLE_SECRET`, else one derived from the
audit key). It is `HttpOnly`, `SameSite=Strict` and (over HTTPS) `Secure`; it never holds a
credential. Logout revokes the session id in this process and clears the cookie; the short
lifetime (8 hours) bounds a copied cookie elsewhere.

Every form carries the session's CSRF token, compared in constant time; a post without it,
or without a session, is refused. Repeated failed sign-ins lock the name out for a while.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

__all__ = ["COOKIE", "LoginThrottle", "Session", "SessionSigner"]

COOKIE = "cxpolicy_console"
SESSION_SECONDS = 8 * 3600


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in reviewer."""

    name: str
    sid: str
    csrf: str
    expires: float


class SessionSigner:
    """Makes and checks session cookies."""

    def __init__(
        self, secret: bytes, *, lifetime: float = SESSION_SECONDS, clock: Callable[[], float] = time.time
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the console session secret must be at least 16 bytes")
        self._key = hashlib.sha256(b"cxpolicy-console/session" + secret).digest()
        self._lifetime = lifetime
        self._clock = clock
        self._revoked: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self, name: str) -> tuple[Session, str]:
        session = Session(name, secrets.token_urlsafe(12), secrets.token_urlsafe(24), self._clock() + self._lifetime)
        payload = orjson.dumps({"n": session.name, "s": session.sid, "c": session.csrf, "e": session.expires})
        body = base64.urlsafe_b64encode(payload).rstrip(b"=")
        mac = base64.urlsafe_b64encode(hmac.new(self._key, body, hashlib.sha256).digest()).rstrip(b"=")
        return session, (body + b"." + mac).decode()

    def read(self, cookie: str | None) -> Session | None:
        if not cookie or cookie.count(".") != 1 or len(cookie) > 2048:
            return None
        body, mac = cookie.encode().split(b".")
        want = base64.urlsafe_b64encode(hmac.new(self._key, body, hashlib.sha256).digest()).rstrip(b"=")
        if not hmac.compare_digest(mac, want):
            return None
        try:
            data = orjson.loads(base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4)))
            session = Session(str(data["n"]), str(data["s"]), str(data["c"]), float(data["e"]))
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            return None
        if session.expires < self._clock():
            return None
        with self._lock:
            if session.sid in self._revoked:
                return None
        return session

    def revoke(self, session: Session) -> None:
        now = self._clock()
        with self._lock:
            self._revoked = {sid: exp for sid, exp in self._revoked.items() if exp > now}
            self._revoked[session.sid] = session.expires

    @staticmethod
    def csrf_ok(session: Session, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(session.csrf.encode(), token.encode())


class LoginThrottle:
    """Locks a reviewer name (and a client address) after `limit` failures in `window`
    seconds, for `lockout` seconds: password guessing gets a handful of tries, not millions."""

    def __init__(
        self,
        *,
        limit: int = 5,
        window: float = 900.0,
        lockout: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.window, self.lockout = limit, window, lockout
        self._clock = clock
        self._failures: dict[str, list[float]] = {}
        self._locked: dict[str, float] = {}
        self._lock = threading.Lock()

    def locked(self, *keys: str) -> bool:
        now = self._clock()
        with self._lock:
            return any(self._locked.get(k, 0.0) > now for k in keys)

    def failed(self, *keys: str) -> None:
        now = self._clock()
        with self._lock:
            for k in keys:
                recent = [t for t in self._failures.get(k, []) if now - t < self.window] + [now]
                self._failures[k] = recent
                if len(recent) >= self.limit:
                    self._locked[k] = now + self.lockout
                    self._failures[k] = []

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for k in keys:
                self._failures.pop(k, None)
