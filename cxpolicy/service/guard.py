"""Connection-level limits for the decision service: bytes and timers in, closed sockets out.

Input: the raw connection events uvicorn's HTTP protocols see (connection made, data
received, response complete). Output: a connection that is cut off when it breaks a limit,
before any of its bytes reach the app: headers larger than `max_header_bytes`, headers that
take longer than `header_timeout` seconds to arrive (slowloris), a body that takes longer
than `body_timeout` seconds, or a connection beyond `max_connections`.

Why here and not in the app: an ASGI app only sees a request once its headers are complete,
so a client trickling (or inflating) headers, or holding a half-sent body, is invisible to it;
uvicorn itself bounds neither the header-reading time nor (with httptools) the header size
(measured on main: ten 50 MB headers held ~500 MB; half-sent requests stayed open 40 s+).
`guarded_protocol(base, limits)` returns a subclass of uvicorn's h11 or httptools protocol
with the checks added around the parser: the parser itself is uvicorn's.

When the server runs with TLS and asks for client certificates (`--ssl-ca-certs` with
`CERT_REQUIRED`), the verified peer certificate's subject is put in `scope["state"]` under
`PEER_KEY`, so `service.auth.Callers` can map an mTLS identity to a caller.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from cxpolicy.limits import (
    SERVICE_BODY_TIMEOUT,
    SERVICE_HEADER_TIMEOUT,
    SERVICE_MAX_CONNECTIONS,
    SERVICE_MAX_HEADER_BYTES,
)

__all__ = ["PEER_KEY", "ConnectionLimits", "guarded_protocol", "peer_identity"]

log = logging.getLogger("cxpolicy.service.guard")

PEER_KEY = "cxpolicy.peer"


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The per-connection bounds; every one of them answers one attack in docs/security.md."""

    max_header_bytes: int = SERVICE_MAX_HEADER_BYTES
    header_timeout: float = SERVICE_HEADER_TIMEOUT
    body_timeout: float = SERVICE_BODY_TIMEOUT
    max_connections: int = SERVICE_MAX_CONNECTIONS


def peer_identity(transport: asyncio.BaseTransport) -> str | None:
    """The verified client certificate's subject as `CN=...,O=...` (None without mTLS)."""
    cert = transport.get_extra_info("peercert")
    if not cert:
        return None
    parts: list[str] = []
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            short = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU"}.get(key, key)
            parts.append(f"{short}={value}")
    return ",".join(parts) or None


def guarded_protocol(base: type[asyncio.Protocol], limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """A subclass of uvicorn's `base` HTTP protocol that enforces `limits` per connection."""

    class Guarded(base):  # type: ignore[valid-type,misc]
        _limits = limits

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pending = 0  # bytes received for a request whose headers are not complete
            self._timer: asyncio.TimerHandle | None = None
            self._timer_cycle: Any = None

        # -- connection ------------------------------------------------------------
        def connection_made(self, transport: asyncio.Transport) -> None:
            peer = peer_identity(transport)
            if peer is not None:  # per connection: the mTLS identity travels in scope["state"]
                state: dict[str, Any] = dict(getattr(self, "app_state", {}))
                self.app_state = {**state, PEER_KEY: peer}
            super().connection_made(transport)
            if len(self.connections) > self._limits.max_connections:
                log.warning("connection refused: over the cap of %d connections", self._limits.max_connections)
                transport.abort()
                return
            self._arm(self._limits.header_timeout)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        # -- reading ---------------------------------------------------------------
        def _reading_headers(self) -> bool:
            cycle = getattr(self, "cycle", None)
            return cycle is None or bool(cycle.response_complete)

        def data_received(self, data: bytes) -> None:
            was_reading = self._reading_headers()
            if was_reading and self._timer is None:
                self._arm(self._limits.header_timeout)
            super().data_received(data)
            if self.transport.is_closing():
                return
            if self._reading_headers():
                self._pending += len(data)
                if self._pending > self._limits.max_header_bytes:
                    log.warning("connection cut: request headers over %d bytes", self._limits.max_header_bytes)
                    self._refuse(b"431 Request Header Fields Too Large")
            elif was_reading:  # headers just completed: now the body has its own deadline
                self._pending = 0
                self._arm(self._limits.body_timeout)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._pending = 0
            self._disarm()  # keep-alive idling is uvicorn's timeout_keep_alive

        # -- timers ----------------------------------------------------------------
        def _arm(self, seconds: float) -> None:
            self._disarm()
            self._timer_cycle = getattr(self, "cycle", None)
            self._timer = self.loop.call_later(seconds, self._expired)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expired(self) -> None:
            self._timer = None
            if self.transport is None or self.transport.is_closing():
                return
            cycle: Any = getattr(self, "cycle", None)
            if self._reading_headers():
                log.warning("connection cut: request headers not complete within %.1fs", self._limits.header_timeout)
                self._refuse(b"408 Request Timeout")
            elif cycle is self._timer_cycle and cycle is not None and cycle.more_body:
                log.warning("connection cut: request body not complete within %.1fs", self._limits.body_timeout)
                cycle.disconnected = True
                cycle.message_event.set()  # the app's receive() answers http.disconnect
                self.transport.close()

        def _refuse(self, status: bytes) -> None:
            self._disarm()
            body = b'{"error":{"status":' + status[:3] + b',"code":"connection_limit","message":"' + status[4:] + b'"}}'
            head = b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\nconnection: close\r\n"
            self.transport.write(head + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            self.transport.close()

    Guarded.__name__ = f"Guarded{base.__name__}"
    Guarded.__qualname__ = Guarded.__name__
    return Guarded


def _base(http_impl: str) -> type[asyncio.Protocol]:
    if http_impl in ("auto", "httptools"):
        try:
            from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

            return HttpToolsProtocol
        except ImportError:  # httptools not installed: h11
            if http_impl == "httptools":
                raise
    from uvicorn.protocols.http.h11_impl import H11Protocol

    return H11Protocol


def server_options(limits: ConnectionLimits, http_impl: str = "auto") -> dict[str, Any]:
    """The uvicorn options that carry `limits`: the guarded protocol, h11's own header-size
    bound, a concurrency cap (503 beyond it) and a short keep-alive."""
    return {
        "http": guarded_protocol(_base(http_impl), limits),
        "h11_max_incomplete_event_size": limits.max_header_bytes,
        "limit_concurrency": limits.max_connections,
        "timeout_keep_alive": 5,
    }


#: Importable by name for uvicorn's multi-process mode (workers import their protocol):
#: the default limits.
GuardedH11Protocol = guarded_protocol(_base("h11"), ConnectionLimits())
GuardedAutoProtocol = guarded_protocol(_base("auto"), ConnectionLimits())
