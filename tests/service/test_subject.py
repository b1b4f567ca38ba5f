"""Subject tokens: a JWT signed by the identity provider proves `customer.*`,
`context.identity_verified` and `context.consents`; a forged, expired or foreign token proves
nothing; keys come from PEM files or a JWKS file on disk (no network)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

import cxpolicy
from cxpolicy.engine.loader import load_text
from cxpolicy.kinds import Effect
from cxpolicy.service.subject import SubjectVerifier
from cxpolicy.service.trust import decide_trusted


def _claims(**over: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"sub": "C-42", "region": "EU", "segment": "retail", "identity_verified": True,
                         "consents": ["support"], "iss": "https://idp.test", "aud": "cxpolicy",
                         "exp": int(time.time()) + 300}
    c.update(over)
    return c


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, SubjectVerifier, Any]:
    d = tmp_path_factory.mktemp("idp")
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (d / "idp.pem").write_bytes(pem)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key()))
    (d / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "ES256"}]}))
    verifier = SubjectVerifier.from_config(
        {"public_keys": ["idp.pem"], "jwks_file": "jwks.json", "issuer": "https://idp.test", "audience": "cxpolicy"},
        Path(d),
    )
    return key, verifier, ec_key


def test_a_valid_token_binds_the_customer_fields(idp: tuple[Any, SubjectVerifier, Any]) -> None:
    key, verifier, ec_key = idp
    for token in (jwt.encode(_claims(), key, algorithm="EdDSA"), jwt.encode(_claims(), ec_key, algorithm="ES256")):
        bound, errors = verifier.bound({"x-subject-token": token})
        assert errors == []
        assert bound["customer.region"] == "EU" and bound["customer.id"] == "C-42"
        assert bound["context.consents"] == ["support"] and bound["subject.verified"] is True


@pytest.mark.parametrize(
    "bad",
    ["forged", "expired", "wrong issuer", "wrong audience", "none alg", "garbage"],
)
def test_a_bad_token_proves_nothing(idp: tuple[Any, SubjectVerifier, Any], bad: str) -> None:
    key, verifier, _ = idp
    token = {
        "forged": lambda: jwt.encode(_claims(), ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA"),
        "expired": lambda: jwt.encode(_claims(exp=int(time.time()) - 3600), key, algorithm="EdDSA"),
        "wrong issuer": lambda: jwt.encode(_claims(iss="https://evil"), key, algorithm="EdDSA"),
        "wrong audience": lambda: jwt.encode(_claims(aud="other"), key, algorithm="EdDSA"),
        "none alg": lambda: jwt.encode(_claims(), None, algorithm="none"),
        "garbage": lambda: "not.a.jwt",
    }[bad]()
    bound, errors = verifier.bound({"x-subject-token": token})
    assert bound == {"subject.verified": False}
    assert [e.kind for e in errors] == ["untrusted"]


def test_a_consent_the_agent_asserts_is_not_a_consent(idp: tuple[Any, SubjectVerifier, Any]) -> None:
    key, verifier, _ = idp
    policy = cxpolicy.load([], packs=["gdpr"])
    req = {"action": "marketing.send", "channel": "email", "actor": {"kind": "ai"},
           "customer": {"id": "C-42", "segment": "retail", "risk_tier": "low", "region": "EU"},
           "context": {"consents": ["marketing"], "ai_disclosed": True}}
    assert policy.decide(req).effect is Effect.ALLOW  # the agent's word alone
    bound, errors = verifier.bound({"x-subject-token": jwt.encode(_claims(), key, algorithm="EdDSA")})
    d = decide_trusted(policy.decide, req, bound, False, errors)
    assert d.effect is Effect.ESCALATE
    assert "context.consents" in [e.field for e in d.errors if e.kind == "untrusted"]


def test_policy_can_require_a_subject_token(idp: tuple[Any, SubjectVerifier, Any]) -> None:
    key, verifier, _ = idp
    policy = load_text(
        'use core\npackage t\ndefault allow\n'
        'rule export_needs_subject {\n  match action = data.export\n  unless subject.verified\n'
        '  decide escalate\n  because "an export needs the customer\'s own login"\n}\n'
    )
    req = {"action": "data.export", "channel": "web", "actor": {"kind": "ai"},
           "customer": {"segment": "retail", "risk_tier": "low", "region": "EU"}}
    none, errs = verifier.bound({})
    assert decide_trusted(policy.decide, req, none, False, errs).effect is Effect.ESCALATE
    claimed = {**req, "subject": {"verified": True}}  # the body claiming it is untrusted
    d = decide_trusted(policy.decide, claimed, none, False, errs)
    assert d.effect is Effect.ESCALATE and [e.field for e in d.errors] == ["subject.verified"]
    token = jwt.encode(_claims(region="EU"), key, algorithm="EdDSA")
    good, errs2 = verifier.bound({"x-subject-token": token})
    assert decide_trusted(policy.decide, req, good, False, errs2).effect is Effect.ALLOW
