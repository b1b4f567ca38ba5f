"""Grant tokens: issue, verify and inspect compact JWS grants (LANGUAGE.md §9).

Input: claims to sign (issue), or a token plus the keys the policy trusts (verify).
Output: a compact JWS string, or a `Verification` — the verified `Grant` or the one reason it
is not valid. Verification never raises: a grant is untrusted input, and every way it can be
wrong (bad base64, another key, `alg: none`, an HS256 token presented against an Ed25519 key,
a claim of the wrong type, an expired one) is a `problem` string the engine reports.

Two algorithms only: `HS256` with a shared secret of at least 32 bytes (an issuer the service
trusts with the same secret), and `EdDSA` (Ed25519), where the OTP service signs with a
private key cxpolicy never holds and cxpolicy verifies with the public key. Which key checks a
token is chosen from the header: `kid` when present (rotation: several keys, each with its
id), else every configured key of that algorithm in turn. The algorithm list passed to PyJWT
always holds exactly the algorithm of the key being tried, so an HS256 token can never be
checked against an Ed25519 public key used as an HMAC secret (algorithm confusion).

Clock skew: `exp` is enforced strictly on this host's clock (a late grant is refused, the safe
side); `iat` may lie up to `leeway` seconds in the future, for an issuer whose clock runs ahead.

PyJWT and `cryptography` are imported on first use, so `import cxpolicy.grants` stays light.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "ALGORITHMS",
    "KINDS",
    "MAX_TOKEN_BYTES",
    "MIN_SECRET_BYTES",
    "Grant",
    "GrantKeyError",
    "GrantKeys",
    "GrantSigner",
    "Verification",
    "inspect",
    "issue",
    "verify",
]

KINDS: dict[str, str] = {"otp": "require_otp", "approval": "escalate"}
"""Grant kind → the only effect its grants lift."""
ALGORITHMS = ("HS256", "EdDSA")
MIN_SECRET_BYTES = 32
MAX_TOKEN_BYTES = 8192
"""A longer token is refused before any decoding (a grant holds a handful of short claims)."""
ENV_KEY = "CXPOLICY_GRANT_KEY"


class GrantKeyError(ValueError):
    """A key that cannot be used: too short, unreadable, not Ed25519."""


@dataclass(frozen=True, slots=True)
class Grant:
    """The claims of a grant whose signature verified (LANGUAGE.md §9)."""

    jti: str
    kind: str
    decision: str
    digest: str
    rules: tuple[str, ...]
    iat: int
    exp: int
    iss: str
    by: str | None = None
    alg: str = "HS256"
    kid: str | None = None

    @property
    def lifts(self) -> str:
        """The effect this grant's kind lifts (`require_otp` or `escalate`)."""
        return KINDS[self.kind]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "jti": self.jti,
            "kind": self.kind,
            "decision": self.decision,
            "digest": self.digest,
            "rules": list(self.rules),
            "iat": self.iat,
            "exp": self.exp,
            "iss": self.iss,
        }
        if self.by is not None:
            out["by"] = self.by
        return out


@dataclass(frozen=True, slots=True)
class Verification:
    """The result of `verify`: `grant` is set when the token's signature and claims check out;
    `problem` says why not (then `grant` may still hold the claims, for a trace, when only a
    request-bound check failed: expiry or digest)."""

    grant: Grant | None
    problem: str | None
    jti: str | None = None

    @property
    def valid(self) -> bool:
        return self.problem is None and self.grant is not None


def _load_public_key(pem: bytes, source: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(pem)
    except ValueError as exc:
        raise GrantKeyError(f"{source}: not a PEM public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise GrantKeyError(f"{source}: grants are verified with Ed25519 keys, not {type(key).__name__}")
    return key


def _check_secret(secret: bytes, source: str) -> bytes:
    if len(secret) < MIN_SECRET_BYTES:
        raise GrantKeyError(f"{source}: an HS256 grant key needs at least {MIN_SECRET_BYTES} bytes, got {len(secret)}")
    return secret


@dataclass(frozen=True, slots=True)
class GrantKeys:
    """The keys a policy set trusts to verify grants, each with an optional `kid`.

    `hmac`: (kid, secret) pairs for HS256. `ed25519`: (kid, public key) pairs for EdDSA.
    Several of each allow rotation: issue with the new key's `kid`, keep the old one until
    the last grant it signed has expired, then drop it.
    """

    hmac: tuple[tuple[str | None, bytes], ...] = ()
    ed25519: tuple[tuple[str | None, Any], ...] = ()
    leeway: int = 60

    def __post_init__(self) -> None:
        for _, secret in self.hmac:
            _check_secret(secret, "grant key")

    @property
    def empty(self) -> bool:
        return not self.hmac and not self.ed25519

    @classmethod
    def from_secret(cls, secret: bytes | str, *, kid: str | None = None, leeway: int = 60) -> GrantKeys:
        raw = secret.encode() if isinstance(secret, str) else secret
        return cls(hmac=((kid, raw),), leeway=leeway)

    @classmethod
    def from_options(
        cls,
        *,
        key_files: Iterable[str] = (),
        public_keys: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
        leeway: int = 60,
    ) -> GrantKeys:
        """Keys from the command line and the environment (raises `GrantKeyError`).

        `key_files`: files holding an HS256 secret (surrounding whitespace stripped).
        `public_keys`: PEM files of Ed25519 public keys. A `KID=PATH` form names the key's id.
        `env[CXPOLICY_GRANT_KEY]`: one HS256 secret.
        """
        env = os.environ if env is None else env
        hmac: list[tuple[str | None, bytes]] = []
        eddsa: list[tuple[str | None, Any]] = []
        value = env.get(ENV_KEY)
        if value:
            hmac.append((None, _check_secret(value.encode(), ENV_KEY)))
        for spec in key_files:
            kid, path = _kid_and_path(spec)
            hmac.append((kid, _check_secret(_read(path).strip(), path)))
        for spec in public_keys:
            kid, path = _kid_and_path(spec)
            eddsa.append((kid, _load_public_key(_read(path), path)))
        return cls(hmac=tuple(hmac), ed25519=tuple(eddsa), leeway=leeway)

    def candidates(self, alg: str, kid: str | None) -> list[Any]:
        pool: Sequence[tuple[str | None, Any]] = self.hmac if alg == "HS256" else self.ed25519
        if kid is not None:
            named = [k for i, k in pool if i == kid]
            if named:
                return named
        return [k for _, k in pool]


def _kid_and_path(spec: str) -> tuple[str | None, str]:
    kid, sep, path = spec.partition("=")
    if sep and kid and not os.path.exists(spec):
        return kid, path
    return None, spec


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise GrantKeyError(f"{path}: cannot read the grant key ({exc.strerror or exc})") from exc


@dataclass(frozen=True, slots=True)
class GrantSigner:
    """What an issuer signs with: an HS256 secret, or an Ed25519 private key (EdDSA)."""

    key: Any
    alg: str = "HS256"
    kid: str | None = None
    iss: str = "cxpolicy"

    @classmethod
    def hs256(cls, secret: bytes | str, *, kid: str | None = None, iss: str = "cxpolicy") -> GrantSigner:
        raw = secret.encode() if isinstance(secret, str) else secret
        return cls(_check_secret(raw, "grant key"), "HS256", kid, iss)

    @classmethod
    def ed25519(cls, private_pem: bytes, *, kid: str | None = None, iss: str = "cxpolicy") -> GrantSigner:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            key = load_pem_private_key(private_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise GrantKeyError(f"not a PEM private key ({exc})") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise GrantKeyError(f"grants are signed with Ed25519 keys, not {type(key).__name__}")
        return cls(key, "EdDSA", kid, iss)

    @classmethod
    def from_options(
        cls, *, key_file: str | None = None, env: Mapping[str, str] | None = None, iss: str = "cxpolicy"
    ) -> GrantSigner:
        """`key_file` (an HS256 secret, or an Ed25519 private key in PEM) else `CXPOLICY_GRANT_KEY`."""
        env = os.environ if env is None else env
        if key_file:
            kid, path = _kid_and_path(key_file)
            raw = _read(path)
            if raw.lstrip().startswith(b"-----BEGIN"):
                return cls.ed25519(raw, kid=kid, iss=iss)
            return cls(_check_secret(raw.strip(), path), "HS256", kid, iss)
        value = env.get(ENV_KEY)
        if not value:
            raise GrantKeyError(f"no grant key: set {ENV_KEY} or give --key-file")
        return cls.hs256(value, iss=iss)


def issue(
    signer: GrantSigner,
    *,
    kind: str,
    decision: str,
    digest: str,
    rules: Sequence[str],
    ttl: int = 300,
    by: str | None = None,
    jti: str | None = None,
    now: float | None = None,
) -> str:
    """Sign one grant. `ttl` seconds until `exp`; approvals must say `by` whom."""
    import jwt

    if kind not in KINDS:
        raise ValueError(f"unknown grant kind {kind!r}: expected otp or approval")
    if kind == "approval" and not by:
        raise ValueError("an approval grant must say who approved (by)")
    if not rules:
        raise ValueError("a grant must name the rules it lifts")
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    iat = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "jti": jti or str(uuid.uuid4()),
        "kind": kind,
        "decision": decision,
        "digest": digest,
        "rules": list(rules),
        "iat": iat,
        "exp": iat + int(ttl),
        "iss": signer.iss,
    }
    if by is not None:
        claims["by"] = by
    headers = {"kid": signer.kid} if signer.kid else None
    return jwt.encode(claims, signer.key, algorithm=signer.alg, headers=headers)


_VERIFIERS: dict[str, Any] = {}


def _verifier(alg: str) -> Any:
    """PyJWT's algorithm object for `alg`, made once: the signature check itself is PyJWT's
    (`HMACAlgorithm.verify` compares in constant time, `OKPAlgorithm.verify` is Ed25519).
    The token is parsed here rather than by `jwt.decode`, which costs ~100 µs a grant in
    PyJWT 2.15 (per-character base64 checks, and key-format sniffing of the secret on every
    call); `bench/grants_bench.py` measures both."""
    found = _VERIFIERS.get(alg)
    if found is None:
        from jwt.algorithms import get_default_algorithms

        found = _VERIFIERS[alg] = get_default_algorithms()[alg]
    return found


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def inspect(token: str) -> dict[str, Any]:
    """Header and claims, UNVERIFIED (for people and logs); raises `ValueError` when malformed."""
    if not isinstance(token, str) or token.count(".") != 2:
        raise ValueError("not a compact JWS (three base64url parts separated by dots)")
    head, body, _ = token.split(".")
    try:
        header = orjson.loads(_b64(head))
        claims = orjson.loads(_b64(body))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not a compact JWS: {exc}") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("not a compact JWS: header and claims must be JSON objects")
    return {"header": header, "claims": claims}


def _grant_from(claims: Mapping[str, Any], alg: str, kid: str | None) -> Grant | str:
    """The typed grant, or the first claim that is missing or of the wrong type."""

    def text(name: str) -> str | None:
        v = claims.get(name)
        return v if isinstance(v, str) and v and len(v) <= 512 else None

    def number(name: str) -> int | None:
        v = claims.get(name)
        return v if type(v) is int else None

    jti = text("jti")
    if jti is None:
        return "claim `jti` (the grant id) is missing or not a string"
    kind = text("kind")
    if kind is None:
        return "claim `kind` is missing"
    if kind not in KINDS:
        return f"unknown grant kind `{kind[:40]}`: expected otp or approval"
    for name in ("decision", "digest", "iss"):
        if text(name) is None:
            return f"claim `{name}` is missing or not a string"
    rules = claims.get("rules")
    if not isinstance(rules, list) or not rules or not all(isinstance(r, str) and r for r in rules):
        return "claim `rules` must be a non-empty list of rule ids"
    iat, exp = number("iat"), number("exp")
    if iat is None or exp is None:
        return "claims `iat` and `exp` must be integers (seconds since the epoch)"
    by = text("by")
    if kind == "approval" and by is None:
        return "an approval grant must say who approved (claim `by`)"
    return Grant(
        jti, kind, text("decision") or "", text("digest") or "", tuple(rules), iat, exp, text("iss") or "", by, alg, kid
    )


def verify(token: Any, keys: GrantKeys | None, *, digest: str | None = None, now: float | None = None) -> Verification:
    """Verify one token: signature, claim types, `iat`/`exp`, and `digest` when given. Never raises."""
    if not isinstance(token, str):
        return Verification(None, "a grant must be a string (a compact JWS)")
    if len(token) > MAX_TOKEN_BYTES:
        return Verification(None, f"the grant is longer than {MAX_TOKEN_BYTES} bytes")
    if token.count(".") != 2:
        return Verification(None, "not a compact JWS (three base64url parts separated by dots)")
    head, body, sig = token.split(".")
    try:
        header = orjson.loads(_b64(head))
    except (binascii.Error, ValueError) as exc:
        return Verification(None, f"not a compact JWS: {exc}")
    if not isinstance(header, dict):
        return Verification(None, "not a compact JWS: the header must be a JSON object")
    try:  # one spelling per signature: base64url's spare bits would let one grant take several forms
        canonical = base64.urlsafe_b64encode(_b64(sig)).rstrip(b"=").decode() == sig
    except (binascii.Error, ValueError):
        canonical = False
    if not canonical:
        return Verification(None, "the signature is not canonical base64url")
    if "crit" in header:  # RFC 7515 §4.1.11: extensions we do not implement must be refused
        return Verification(None, "the grant's header has `crit` extensions this verifier does not implement")
    alg = header.get("alg")
    kid = header.get("kid") if isinstance(header.get("kid"), str) else None
    if alg not in ALGORITHMS:
        return Verification(None, f"algorithm {str(alg)[:20]!r} is not accepted (HS256 or EdDSA only)")
    if keys is None or keys.empty:
        return Verification(None, "no grant key is configured, so no grant can be verified")
    candidates = keys.candidates(alg, kid)
    if not candidates:
        return Verification(None, f"no {alg} key is configured to verify this grant")
    message = f"{head}.{body}".encode()
    signature = _b64(sig)
    verifier = _verifier(alg)
    try:
        signed = any(verifier.verify(message, key, signature) for key in candidates)
    except Exception:  # a library error on hostile input is a bad signature, never a raise
        signed = False
    if not signed:
        return Verification(None, "bad signature: no trusted key signed this grant")
    try:
        payload = _b64(body)
    except (binascii.Error, ValueError):
        return Verification(None, "the grant's claims are not base64url")
    try:
        claims = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return Verification(None, "the grant's claims are not JSON")
    if not isinstance(claims, dict):
        return Verification(None, "the grant's claims are not a JSON object")
    grant = _grant_from(claims, alg, kid)
    if isinstance(grant, str):
        jti = claims.get("jti") if isinstance(claims.get("jti"), str) else None
        return Verification(None, grant, jti)
    t = time.time() if now is None else now
    if grant.exp <= t:
        return Verification(grant, f"expired at {grant.exp} ({int(t - grant.exp)} s ago)", grant.jti)
    if grant.iat > t + keys.leeway:
        return Verification(grant, f"issued in the future (iat {grant.iat}, beyond {keys.leeway} s of skew)", grant.jti)
    if digest is not None and grant.digest != digest:
        return Verification(grant, "the grant is for another request (digest differs)", grant.jti)
    return Verification(grant, None, grant.jti)
