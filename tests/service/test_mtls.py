"""mTLS callers: the service served with TLS asks for client certificates; a verified
certificate's subject names a caller (with its roles and bound fields) without any API key.
Certificates are made here with `cryptography` (a throwaway CA), on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cxpolicy.service.app import create_app
from cxpolicy.service.callers_config import CallerEntry, CallersFile, load_callers, write_callers
from cxpolicy.service.guard import ConnectionLimits, server_options
from cxpolicy.service.reload import Engine
from tests.service_support import running_server


def _cert(d: Path, name: str, subject: x509.Name, issuer: tuple[Any, x509.Name] | None, *, ca: bool = False,
          ip: str | None = None) -> tuple[Any, x509.Name]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    signer, issuer_name = issuer if issuer else (key, subject)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
         .not_valid_after(now + dt.timedelta(hours=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ip:
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
    cert = b.sign(signer, hashes.SHA256())
    (d / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / f"{name}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    return key, subject


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme")]
    )


def test_a_client_certificate_names_the_caller_and_binds_its_fields(tmp_path: Path) -> None:
    ca = _cert(tmp_path, "ca", _name("test-ca"), None, ca=True)
    _cert(tmp_path, "server", _name("127.0.0.1"), ca, ip="127.0.0.1")
    _cert(tmp_path, "gateway", _name("gateway"), ca)
    _cert(tmp_path, "stranger", _name("stranger"), ca)
    write_callers(tmp_path / "callers.toml", CallersFile([
        CallerEntry("gateway", ["decide"], None, "CN=gateway,O=Acme", {"actor.kind": "ai"}),
    ]))
    callers, _ = load_callers(tmp_path / "callers.toml")
    engine = Engine([], packs=["bfsi_rbi"])
    app = create_app(engine, callers=callers)
    opts = {**server_options(ConnectionLimits(), "h11"), "ssl_certfile": str(tmp_path / "server.pem"),
            "ssl_keyfile": str(tmp_path / "server.key"), "ssl_ca_certs": str(tmp_path / "ca.pem"),
            "ssl_cert_reqs": ssl.CERT_OPTIONAL}
    body = {"action": "refund.execute", "channel": "chat", "actor": {"kind": "human"},
            "customer": {"segment": "retail", "risk_tier": "low", "region": "IN"}, "context": {"amount": 10}}

    def client(who: str | None) -> httpx.Client:
        ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        if who:
            ctx.load_cert_chain(str(tmp_path / f"{who}.pem"), str(tmp_path / f"{who}.key"))
        return httpx.Client(verify=ctx, timeout=10)

    try:
        with running_server(app, **opts) as url:
            https = url.replace("http://", "https://")
            with client("gateway") as c:
                d = c.post(f"{https}/v1/decide", json=body).json()
                assert d["effect"] == "escalate"
                assert [e["field"] for e in d["errors"] if e["kind"] == "untrusted"] == ["actor.kind"]
            for who in (None, "stranger"):  # no certificate, or one the callers file does not name
                with client(who) as c:
                    assert c.post(f"{https}/v1/decide", json=body).status_code == 401, who
    finally:
        engine.close()


@pytest.mark.parametrize("subject", ["CN=gateway,O=Acme"])
def test_the_subject_string_form_is_stable(subject: str) -> None:
    from cxpolicy.service.guard import peer_identity

    class T:
        def get_extra_info(self, name: str) -> Any:
            subject = ((("commonName", "gateway"),), (("organizationName", "Acme"),))
            return {"subject": subject} if name == "peercert" else None

    assert peer_identity(T()) == subject  # type: ignore[arg-type]
