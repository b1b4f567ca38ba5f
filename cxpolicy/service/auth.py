"""Who is calling the service: a bearer credential in, a `Caller` with roles out.

The service must not take the caller's word for who it is (LANGUAGE.md §10), so every
endpoint that changes state or reveals internals asks `Callers.authenticate` for the
`Caller` behind the request's `Authorization: Bearer ...` header and checks its role.
Secrets are kept only as SHA-256 digests and compared in constant time.

Roles, weakest first: `decide` (ask for decisions), `review` (work escalations, read
explanations), `issue` (an OTP service minting grants), `admin` (reload, freeze, every
other role). Two configurations: the single admin token of `CXPOLICY_ADMIN_TOKEN`
(`from_admin_token`; deciding stays open to anyone who can reach the port), or a callers file
(`cxpolicy.service.callers_config`: per-caller API keys stored as digests, mTLS client
identities, roles and bound fields; deciding then needs the `decide` role too).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

__all__ = ["AuthError", "Caller", "Callers", "Role"]


class Role(StrEnum):
    DECIDE = "decide"
    REVIEW = "review"
    ISSUE = "issue"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: a name for the audit log, its roles, the fields it binds."""

    name: str
    roles: frozenset[Role]
    bound: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def has(self, role: Role) -> bool:
        return role in self.roles or Role.ADMIN in self.roles


class AuthError(Exception):
    """Why a request was refused: 401 (who are you?) or 403 (not allowed to)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.strip().encode()).digest()


class Callers:
    """The credentials the service accepts, each mapped to a `Caller`."""

    def __init__(self, entries: Iterable[tuple[str, Caller]] = ()) -> None:
        self._by_digest: dict[bytes, Caller] = {_digest(secret): c for secret, c in entries}
        self._by_peer: dict[str, Caller] = {}
        #: True: `/v1/decide` needs no credential (the classic single-admin-token setup).
        self.decide_open = True

    @classmethod
    def from_digests(
        cls,
        entries: Iterable[tuple[bytes, Caller]],
        *,
        peers: Mapping[str, Caller] | None = None,
        decide_open: bool = False,
    ) -> Callers:
        """Callers known by the SHA-256 digests of their keys and by mTLS subjects."""
        out = cls()
        out._by_digest = dict(entries)
        out._by_peer = dict(peers or {})
        out.decide_open = decide_open
        return out

    @classmethod
    def from_admin_token(cls, token: str | None) -> Callers:
        """The classic configuration: one admin token (none or empty: nobody is admin)."""
        if not token or not token.strip():
            return cls()
        return cls([(token, Caller("admin", frozenset({Role.ADMIN})))])

    @property
    def configured(self) -> bool:
        return bool(self._by_digest or self._by_peer)

    def authenticate(self, headers: Mapping[str, str], peer: str | None = None) -> Caller | None:
        """The caller behind the bearer token in `headers` (or, without one, behind the
        verified mTLS client subject `peer`), or None when there is none."""
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return self._by_peer.get(peer) if peer else None
        presented = _digest(token)
        found: Caller | None = None
        for stored, caller in self._by_digest.items():  # constant time per entry
            if hmac.compare_digest(presented, stored):
                found = caller
        return found

    def require(self, headers: Mapping[str, str], role: Role, peer: str | None = None) -> Caller:
        """The authenticated caller if it holds `role`; otherwise an `AuthError`."""
        if not self.configured:
            raise AuthError(
                403,
                "admin_disabled",
                "these endpoints are disabled: set CXPOLICY_ADMIN_TOKEN "
                "(or configure callers) on the server to enable them",
            )
        if not headers.get("authorization", "").strip() and not (peer and peer in self._by_peer):
            raise AuthError(401, "unauthorized", "send `Authorization: Bearer <token>`")
        caller = self.authenticate(headers, peer)
        if caller is None:
            raise AuthError(401, "unauthorized", "the bearer token is not valid")
        if not caller.has(role):
            raise AuthError(403, "forbidden", f"this credential lacks the {role} role")
        return caller
