"""Who is calling the service: a bearer credential in, a `Caller` with roles out.

The service must not take the caller's word for who it is (LANGUAGE.md §10), so every
endpoint that changes state or reveals internals asks `Callers.authenticate` for the
`Caller` behind the request's `Authorization: Bearer ...` header and checks its role.
Secrets are kept only as SHA-256 digests and compared in constant time.

Roles, weakest first: `decide` (ask for decisions), `review` (work escalations, read
explanations), `issue` (an OTP service minting grants), `admin` (reload, freeze, every
other role). Today's configuration is the single admin token of `CXPOLICY_ADMIN_TOKEN`;
richer stores (per-caller keys, bound fields, mTLS identities) build on the same types.
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

    @classmethod
    def from_admin_token(cls, token: str | None) -> Callers:
        """The classic configuration: one admin token (none or empty: nobody is admin)."""
        if not token or not token.strip():
            return cls()
        return cls([(token, Caller("admin", frozenset({Role.ADMIN})))])

    @property
    def configured(self) -> bool:
        return bool(self._by_digest)

    def authenticate(self, headers: Mapping[str, str]) -> Caller | None:
        """The caller behind the bearer token in `headers`, or None when there is none."""
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        presented = _digest(token)
        found: Caller | None = None
        for stored, caller in self._by_digest.items():  # constant time per entry
            if hmac.compare_digest(presented, stored):
                found = caller
        return found

    def require(self, headers: Mapping[str, str], role: Role) -> Caller:
        """The authenticated caller if it holds `role`; otherwise an `AuthError`."""
        if not self.configured:
            raise AuthError(
                403,
                "admin_disabled",
                "these endpoints are disabled: set CXPOLICY_ADMIN_TOKEN "
                "(or configure callers) on the server to enable them",
            )
        if not headers.get("authorization", "").strip():
            raise AuthError(401, "unauthorized", "send `Authorization: Bearer <token>`")
        caller = self.authenticate(headers)
        if caller is None:
            raise AuthError(401, "unauthorized", "the bearer token is not valid")
        if not caller.has(role):
            raise AuthError(403, "forbidden", f"this credential lacks the {role} role")
        return caller
