"""The callers file (TOML): callers.toml in, `Callers` (+ an optional `SubjectVerifier`) out.

The decision service takes the principal from authenticated context, never from the request
body (LANGUAGE.md §10). Each `[[caller]]` has a name, roles, optional bound fields, and its
credentials: `key_sha256` (the SHA-256 of an API key: the key itself is shown once by
`cxpolicy callers add` and never stored) and/or `mtls_subject` (a client certificate's
subject, e.g. "CN=gateway,O=Acme", when the service terminates TLS with client certs).

    [[caller]]
    name = "agent-gateway"
    roles = ["decide"]
    key_sha256 = "9f86d0…"
    bound = { "actor.kind" = "ai", channel = "chat" }

    [subject]                       # optional: subject tokens (cxpolicy.service.subject)
    jwks_file = "idp-jwks.json"
    issuer = "https://idp.example"

`write_callers` writes the same shape back (for the CLI); secrets never pass through it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cxpolicy.service.auth import Caller, Callers, Role

__all__ = ["CallerEntry", "CallersFile", "load_callers", "new_key", "read_callers_file", "write_callers"]


class CallersConfigError(ValueError):
    """The callers file is malformed; the message names the entry and the field."""


@dataclass
class CallerEntry:
    name: str
    roles: list[str]
    key_sha256: str | None = None
    mtls_subject: str | None = None
    bound: dict[str, Any] = field(default_factory=dict)


@dataclass
class CallersFile:
    callers: list[CallerEntry] = field(default_factory=list)
    subject: dict[str, Any] | None = None


def new_key() -> tuple[str, str]:
    """A fresh API key (shown to the operator once) and the digest stored in the file."""
    key = "cxp_" + secrets.token_urlsafe(32)
    return key, hashlib.sha256(key.encode()).hexdigest()


def read_callers_file(path: Path) -> CallersFile:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except tomllib.TOMLDecodeError as exc:
        raise CallersConfigError(f"{path}: {exc}") from None
    out = CallersFile(subject=data.get("subject"))
    seen: set[str] = set()
    for i, raw in enumerate(data.get("caller", [])):
        where = f"{path}: caller #{i + 1}"
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise CallersConfigError(f"{where}: `name` is required")
        if name in seen:
            raise CallersConfigError(f"{where}: duplicate name {name!r}")
        seen.add(name)
        roles = raw.get("roles", [])
        bad = [r for r in roles if r not in {x.value for x in Role}]
        if bad or not roles:
            raise CallersConfigError(f"{where} ({name}): roles must be some of decide, review, issue, admin")
        key = raw.get("key_sha256")
        if key is not None and (not isinstance(key, str) or len(key) != 64):
            raise CallersConfigError(f"{where} ({name}): key_sha256 must be 64 hex digits")
        mtls = raw.get("mtls_subject")
        if key is None and mtls is None:
            raise CallersConfigError(f"{where} ({name}): needs key_sha256 or mtls_subject")
        bound = raw.get("bound", {})
        json_types = (str, bool, int, float, list)
        if not isinstance(bound, dict) or any(not isinstance(v, json_types) for v in bound.values()):
            raise CallersConfigError(f"{where} ({name}): bound maps request paths to JSON values")
        out.callers.append(CallerEntry(name, list(roles), key, mtls, dict(bound)))
    return out


def load_callers(path: Path) -> tuple[Callers, Any]:
    """`Callers` from the file, and a `SubjectVerifier` when it has a `[subject]` table."""
    cf = read_callers_file(path)
    digests: list[tuple[bytes, Caller]] = []
    peers: dict[str, Caller] = {}
    for e in cf.callers:
        caller = Caller(e.name, frozenset(Role(r) for r in e.roles), MappingProxyType(dict(e.bound)))
        if e.key_sha256:
            digests.append((bytes.fromhex(e.key_sha256), caller))
        if e.mtls_subject:
            peers[e.mtls_subject] = caller
    callers = Callers.from_digests(digests, peers=peers, decide_open=False)
    verifier = None
    if cf.subject:
        from cxpolicy.service.subject import SubjectVerifier

        verifier = SubjectVerifier.from_config(cf.subject, path.parent)
    return callers, verifier


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string


def write_callers(path: Path, cf: CallersFile, *, keep_subject_text: str = "") -> None:
    """Write the `[[caller]]` entries (and the original `[subject]` text) atomically."""
    lines = ["# cxpolicy callers: managed by `cxpolicy callers`; keys are stored as SHA-256 digests.", ""]
    for e in cf.callers:
        lines.append("[[caller]]")
        lines.append(f"name = {_toml_value(e.name)}")
        lines.append(f"roles = {_toml_value(e.roles)}")
        if e.key_sha256:
            lines.append(f"key_sha256 = {_toml_value(e.key_sha256)}")
        if e.mtls_subject:
            lines.append(f"mtls_subject = {_toml_value(e.mtls_subject)}")
        if e.bound:
            inner = ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in sorted(e.bound.items()))
            lines.append(f"bound = {{ {inner} }}")
        lines.append("")
    text = "\n".join(lines) + keep_subject_text
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)


def subject_section_text(path: Path) -> str:
    """The `[subject]` part of an existing file, kept verbatim when the CLI rewrites it."""
    if not path.exists():
        return ""
    text = path.read_text(encoding="utf-8")
    i = text.find("\n[subject")
    if i < 0:
        i = 0 if text.startswith("[subject") else -1
    return "" if i < 0 else text[i:].lstrip("\n") + ("\n" if not text.endswith("\n") else "")


def as_mapping(entry: CallerEntry) -> Mapping[str, Any]:
    """What `cxpolicy callers list` shows: never the digest in full."""
    return {
        "name": entry.name,
        "roles": entry.roles,
        "key": f"sha256:{entry.key_sha256[:8]}…" if entry.key_sha256 else None,
        "mtls_subject": entry.mtls_subject,
        "bound": entry.bound,
    }
