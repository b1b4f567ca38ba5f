"""Grant tokens and the request digest: every way a token can be wrong is a problem, never a raise."""

from __future__ import annotations

import base64
import time

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from cxpolicy.grants import (
    DigestError,
    GrantKeyError,
    GrantKeys,
    GrantSigner,
    inspect,
    issue,
    request_digest,
    verify,
)
from tests.grants.support import OTHER_SECRET, SECRET, SIGNER

KEYS = GrantKeys.from_secret(SECRET)
DIGEST = request_digest({"action": "pay"})


def _issue(signer: GrantSigner = SIGNER, **kw: object) -> str:
    args: dict[str, object] = {"kind": "otp", "decision": "d", "digest": DIGEST, "rules": ["t.g.r"], "ttl": 60}
    args.update(kw)
    return issue(signer, **args)  # type: ignore[arg-type]


def _forge(claims: dict[str, object], header: dict[str, object] | None = None, sig: str = "") -> str:
    def enc(v: object) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(v)).rstrip(b"=").decode()

    return f"{enc(header or {'alg': 'HS256', 'typ': 'JWT'})}.{enc(claims)}.{sig}"


def test_round_trip_hs256() -> None:
    v = verify(_issue(), KEYS, digest=DIGEST)
    assert v.valid and v.grant is not None
    assert v.grant.kind == "otp" and v.grant.rules == ("t.g.r",) and v.grant.iss == "tests"


def test_eddsa_verified_with_the_public_key_only() -> None:
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    signer = GrantSigner.ed25519(pem, kid="otp-1")
    keys = GrantKeys(ed25519=(("otp-1", private.public_key()),))
    tok = _issue(signer)
    assert inspect(tok)["header"]["alg"] == "EdDSA"
    assert verify(tok, keys, digest=DIGEST).valid
    # The same token is not valid against HMAC keys, and an HMAC token is not valid against Ed25519 keys.
    assert not verify(tok, KEYS, digest=DIGEST).valid
    assert not verify(_issue(), keys, digest=DIGEST).valid
    other = GrantKeys(ed25519=((None, Ed25519PrivateKey.generate().public_key()),))
    assert verify(tok, other, digest=DIGEST).problem == "bad signature: no trusted key signed this grant"


def test_kid_rotation_picks_the_named_key_and_old_keys_still_verify() -> None:
    keys = GrantKeys(hmac=(("old", OTHER_SECRET), ("new", SECRET)))
    assert verify(_issue(GrantSigner.hs256(SECRET, kid="new")), keys, digest=DIGEST).valid
    assert verify(_issue(GrantSigner.hs256(OTHER_SECRET, kid="old")), keys, digest=DIGEST).valid
    assert verify(_issue(GrantSigner.hs256(OTHER_SECRET)), keys, digest=DIGEST).valid  # no kid: every key tried
    dropped = GrantKeys(hmac=(("new", SECRET),))
    assert not verify(_issue(GrantSigner.hs256(OTHER_SECRET, kid="old")), dropped, digest=DIGEST).valid


def test_short_secret_is_refused() -> None:
    with pytest.raises(GrantKeyError):
        GrantKeys.from_secret(b"x" * 31)
    with pytest.raises(GrantKeyError):
        GrantSigner.hs256("short")
    with pytest.raises(GrantKeyError):
        GrantKeys.from_options(env={"CXPOLICY_GRANT_KEY": "short"})


@pytest.mark.parametrize(
    ("tok", "problem"),
    [
        (_forge({"jti": "x"}, {"alg": "none"}), "algorithm 'none' is not accepted"),
        (_forge({"jti": "x"}, {"alg": "HS512"}), "algorithm 'HS512' is not accepted"),
        (_forge({"jti": "x"}, sig="AAAA"), "bad signature"),
        ("a.b", "not a compact JWS"),
        ("@@@.@@@.@@@", "not a compact JWS"),
        (123, "a grant must be a string"),
        ("x" * 9000, "longer than"),
    ],
)
def test_malformed_tokens_are_problems(tok: object, problem: str) -> None:
    v = verify(tok, KEYS, digest=DIGEST)
    assert not v.valid and v.problem is not None and problem in v.problem


def test_claims_are_checked_after_the_signature() -> None:
    import jwt

    def signed(claims: dict[str, object]) -> str:
        return jwt.encode(claims, SECRET, algorithm="HS256")

    now = int(time.time())
    good = {
        "jti": "j",
        "kind": "otp",
        "decision": "d",
        "digest": DIGEST,
        "rules": ["r"],
        "iat": now,
        "exp": now + 60,
        "iss": "i",
    }
    assert verify(signed(good), KEYS, digest=DIGEST).valid
    for key, value, problem in [
        ("kind", "admin", "unknown grant kind"),
        ("rules", [], "claim `rules`"),
        ("rules", "r", "claim `rules`"),
        ("exp", "tomorrow", "integers"),
        ("exp", now - 1, "expired"),
        ("iat", now + 3600, "issued in the future"),
        ("jti", None, "claim `jti`"),
        ("digest", "sha256:00", "digest differs"),
    ]:
        claims = {**good, key: value}
        v = verify(signed(claims), KEYS, digest=DIGEST)
        assert v.problem is not None and problem in v.problem, (key, v.problem)
    approval = {**good, "kind": "approval"}
    assert "who approved" in (verify(signed(approval), KEYS, digest=DIGEST).problem or "")
    assert verify(signed({**approval, "by": "asha"}), KEYS, digest=DIGEST).valid


def test_no_keys_means_no_grant_is_valid() -> None:
    assert "no grant key" in (verify(_issue(), None, digest=DIGEST).problem or "")
    assert "no grant key" in (verify(_issue(), GrantKeys(), digest=DIGEST).problem or "")


def test_digest_is_canonical_and_excludes_what_the_engine_sets() -> None:
    a = {"action": "pay", "context": {"amount": 100, "currency": "INR"}}
    b = {"context": {"currency": "INR", "amount": 100.0}, "action": "pay"}
    assert request_digest(a) == request_digest(b)
    extra = {**a, "grants": ["x"], "signals": {"pii": []}, "context": {**a["context"], "otp_verified": True}}
    assert request_digest(extra) == request_digest(a)
    assert request_digest({**a, "context": {"amount": 101, "currency": "INR"}}) != request_digest(a)
    assert request_digest({"action": "pay", "context": {}}) != request_digest({"action": "pay"})
    with pytest.raises(DigestError):
        request_digest({"n": 2**60})  # beyond 2^53 it would round onto a neighbour
    with pytest.raises(DigestError):
        request_digest({"n": float("nan")})


def test_rfc8785_number_and_string_forms() -> None:
    from cxpolicy.grants import canonical_request

    # RFC 8785 §3.2.2.3 / appendix B samples.
    assert canonical_request({"n": [1e21, 1e-7, 0.000001, 333333333.33333329, 1e23, -0.0, 5e-324]}) == (
        b'{"n":[1e+21,1e-7,0.000001,333333333.3333333,1e+23,0,5e-324]}'
    )
    assert canonical_request({"\u20ac": 1, "\r": 2, "\U0001f600": 3, "a": 4}) == (
        '{"\\r":2,"a":4,"\u20ac":1,"\U0001f600":3}'.encode()
    )
    assert canonical_request({"s": '\u2028\x01"\\/é'}) == '{"s":"\u2028\\u0001\\"\\\\/é"}'.encode()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=5))
def test_fast_digest_path_equals_rfc8785(value: dict[str, object]) -> None:
    import rfc8785

    from cxpolicy.grants import canonical_request

    try:
        expected = rfc8785.dumps({k: v for k, v in value.items() if k not in ("grants", "signals")})
    except (rfc8785.CanonicalizationError, ValueError, TypeError):
        with pytest.raises(DigestError):
            canonical_request(value)
        return
    if isinstance(value.get("context"), dict) and "otp_verified" in value["context"]:
        return  # stripped differently on purpose
    assert canonical_request(value) == expected
