"""Subject tokens (LANGUAGE.md §10): a JWT from the channel's identity provider in, the
request fields it proves out (`customer.*`, `context.identity_verified`, `context.consents`,
`subject.verified`).

Why: the customer's region, segment, verification and consents decide which pack rules
apply, and the agent that writes the request is the party the policy constrains. So in the
service those fields come from a token the identity provider signed, verified here with
configured public keys or a JWKS file read from disk (no network fetch, so the decision path
never waits on the IdP). A consent the agent asserts is not a consent: with a token,
`context.consents` is exactly the token's claim.

`subject.verified` is always bound by the service: true with a valid token, false without
one, so a policy can require a subject token for an action
(`unless subject.verified` → `escalate`), and a body that claims it is `untrusted`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxpolicy.engine.decision import DecisionError
from cxpolicy.kinds import ErrorKind

__all__ = ["DEFAULT_CLAIMS", "SUBJECT_HEADER", "SubjectVerifier"]

SUBJECT_HEADER = "x-subject-token"
#: claim name → request path. Configurable per deployment ([subject.claims] in callers.toml).
DEFAULT_CLAIMS: Mapping[str, str] = {
    "sub": "customer.id",
    "region": "customer.region",
    "segment": "customer.segment",
    "risk_tier": "customer.risk_tier",
    "identity_verified": "context.identity_verified",
    "consents": "context.consents",
}
_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA")


@dataclass(frozen=True)
class SubjectVerifier:
    """Verifies subject tokens with fixed keys; `bound(headers)` is what the service binds."""

    keys: Sequence[Any]  # cryptography public keys (from PEM files or a JWKS file)
    issuer: str | None = None
    audience: str | None = None
    header: str = SUBJECT_HEADER
    claims: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CLAIMS))
    algorithms: Sequence[str] = _ALGORITHMS
    leeway: float = 30.0

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], base: Path) -> SubjectVerifier:
        """From the `[subject]` table of callers.toml; relative paths are from the file."""
        import jwt
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        keys: list[Any] = []
        for name in cfg.get("public_keys", []):
            keys.append(load_pem_public_key((base / name).read_bytes()))
        if cfg.get("jwks_file"):
            jwks = json.loads((base / cfg["jwks_file"]).read_text())
            keys.extend(k.key for k in jwt.PyJWKSet.from_dict(jwks).keys)
        if not keys:
            raise ValueError("[subject] needs public_keys or jwks_file")
        return cls(
            keys=tuple(keys),
            issuer=cfg.get("issuer"),
            audience=cfg.get("audience"),
            header=str(cfg.get("header", SUBJECT_HEADER)).lower(),
            claims={**DEFAULT_CLAIMS, **cfg.get("claims", {})},
        )

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims when one of the keys verifies it (signature, exp, iss, aud)."""
        import jwt

        last: Exception = jwt.InvalidTokenError("no key")
        options = {"require": ["exp", "sub"]}
        for key in self.keys:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token, key, algorithms=list(self.algorithms), issuer=self.issuer,
                    audience=self.audience, leeway=self.leeway, options=options,  # type: ignore[arg-type]
                )
                return claims
            except (jwt.InvalidSignatureError, jwt.InvalidKeyError, jwt.InvalidAlgorithmError, TypeError) as exc:
                last = exc  # not this key (or not this key's type): try the next
            except jwt.PyJWTError as exc:
                raise ValueError(str(exc)) from None
        raise ValueError(str(last))

    def bound(self, headers: Mapping[str, str]) -> tuple[dict[str, Any], list[DecisionError]]:
        """The fields the token in `headers` proves, and an `untrusted` error for a bad token.
        Without a valid token only `subject.verified = false` is bound."""
        token = headers.get(self.header, "").strip()
        if not token:
            return {"subject.verified": False}, []
        try:
            claims = self.verify(token)
        except ValueError as exc:
            err = DecisionError(ErrorKind.UNTRUSTED, f"the subject token is not valid: {exc}", field="subject")
            return {"subject.verified": False}, [err]
        out: dict[str, Any] = {"subject.verified": True}
        for claim, path in self.claims.items():
            if claim in claims:
                out[path] = claims[claim]
        if "context.consents" not in out:
            out["context.consents"] = []  # a consent the token does not carry is not a consent
        return out, []
