"""Bundles: deterministic bytes, every refusal (tampered, unsigned, foreign key, broken,
not compiling, wrong revision), and a serving engine that keeps the last good bundle."""

from __future__ import annotations

import gzip
import io
import shutil
import tarfile
from pathlib import Path

import pytest
from fleet_support import BundleServer, decision_table, keypair, public_keys, signed_bundle, write_policy

from cxpolicy.engine.loader import load
from cxpolicy.fleet import bundle as B
from cxpolicy.fleet.source import BundleEngine

pytest.importorskip("cryptography")


def _entries(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def _repack(entries: dict[str, bytes]) -> bytes:
    return B._archive(entries)


def test_same_sources_give_the_same_bytes_and_revision(tmp_path: Path) -> None:
    a = write_policy(tmp_path / "a")
    b = tmp_path / "elsewhere" / "b"
    shutil.copytree(a, b)
    (b / "rules.cxp").touch()  # another mtime, another directory: still the same bundle
    one, two = B.build([a]), B.build([b])
    assert one == two
    assert B.read(one).revision == load([a]).revision  # what `cxpolicy eval -p a` serves
    private, _ = keypair(tmp_path)
    assert signed_bundle(a, private) == signed_bundle(b, private)  # Ed25519 is deterministic
    (b / "rules.cxp").write_text((b / "rules.cxp").read_text().replace("<= 100", "<= 101"))
    three = B.build([b])
    assert three != one and B.read(three).revision != B.read(one).revision


def test_the_archive_is_deterministic_down_to_headers(tmp_path: Path) -> None:
    data = B.build([write_policy(tmp_path / "p")])
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {(0, 0, 0, "", "", 0o644)}
    assert gzip.decompress(data)  # and it is a plain gzip'd tar any tool can open


def test_verification_refuses_what_it_must(tmp_path: Path) -> None:
    src = write_policy(tmp_path / "p")
    private, public = keypair(tmp_path, "a")
    _, other_public = keypair(tmp_path, "b")
    keys = public_keys(public)
    good = signed_bundle(src, private)
    assert B.verify(B.read(good), keys).startswith("ed25519:")  # type: ignore[arg-type]

    with pytest.raises(B.BundleError) as e:
        B.verify(B.read(B.build([src])), keys)  # type: ignore[arg-type]
    assert e.value.code == "unsigned"
    with pytest.raises(B.BundleError) as e:
        B.verify(B.read(good), public_keys(other_public))  # type: ignore[arg-type]
    assert e.value.code == "bad_signature"

    entries = _entries(good)
    tampered_file = dict(entries, **{"policy/rules.cxp": entries["policy/rules.cxp"].replace(b"100", b"999")})
    with pytest.raises(B.BundleError) as e:
        B.read(_repack(tampered_file))
    assert e.value.code == "mismatch"

    # The attacker fixes the hash in the manifest too: now the signature no longer holds.
    manifest = B.Manifest.from_bytes(entries["manifest.json"])
    import hashlib

    files = dict(manifest.files, **{"policy/rules.cxp": hashlib.sha256(tampered_file["policy/rules.cxp"]).hexdigest()})
    forged = B.Manifest(manifest.revision, files, manifest.packs, manifest.pack_versions, 0, "x")
    forged_archive = _repack(dict(tampered_file, **{"manifest.json": forged.to_bytes()}))
    with pytest.raises(B.BundleError) as e:
        B.verify(B.read(forged_archive), keys)  # type: ignore[arg-type]
    assert e.value.code == "bad_signature"

    extra = dict(entries, **{"policy/extra.cxp": b"package x\n"})
    with pytest.raises(B.BundleError, match="not listed") as e:
        B.read(_repack(extra))

    for broken in (b"", b"not a tar", good[: len(good) // 2]):
        with pytest.raises(B.BundleError) as e:
            B.read(broken)
        assert e.value.code == "broken"


def test_unsafe_archives_are_refused(tmp_path: Path) -> None:
    for name in ("../evil.cxp", "/etc/evil.cxp", "policy/../../evil.cxp", "other/file.txt"):
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w:gz") as tar:
            info = tarfile.TarInfo(name)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"abc"))
        with pytest.raises(B.BundleError) as e:
            B.read(raw.getvalue())
        assert e.value.code == "broken", name
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        link = tarfile.TarInfo("policy/link.cxp")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(B.BundleError, match="not a regular file"):
        B.read(raw.getvalue())


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def test_engine_keeps_the_last_good_bundle(tmp_path: Path) -> None:
    private, public = keypair(tmp_path)
    v1 = signed_bundle(write_policy(tmp_path / "v1", limit=100), private)
    v2 = signed_bundle(write_policy(tmp_path / "v2", limit=1000), private)
    path = tmp_path / "served.tar.gz"
    _write(path, v1)
    with BundleEngine(str(path), keys=public_keys(public), poll=0) as engine:  # type: ignore[arg-type]
        rev1 = engine.revision
        assert engine.bundle is not None and engine.bundle.digest == B.read(v1).digest
        table1 = decision_table(engine.decide)

        def refused(data: bytes, code: str) -> None:
            _write(path, data)
            result = engine.check_now()
            assert result is not None and not result.ok, code
            assert engine.last_refusal is not None and engine.last_refusal["code"] == code
            assert engine.revision == rev1 and decision_table(engine.decide) == table1

        refused(B.build([tmp_path / "v2"]), "unsigned")
        refused(b"garbage", "broken")
        entries = _entries(v2)
        refused(_repack(dict(entries, **{"policy/rules.cxp": b"package oops\nrule {"})), "mismatch")
        # Signed, intact, but does not compile (someone signed a broken policy by hand).
        bad_text = b"use core\npackage t\nrule r { match action = refund.nope\n decide allow }\n"
        manifest = B.Manifest.from_bytes(entries["manifest.json"])
        import hashlib

        m = B.Manifest(manifest.revision, {"policy/rules.cxp": hashlib.sha256(bad_text).hexdigest()}, (), {}, 1, "t")
        unsigned = _repack({"manifest.json": m.to_bytes(), "policy/rules.cxp": bad_text})
        refused(B.sign(unsigned, B.load_private_key(private.read_bytes())), "compile")
        # Signed and compiles, but the manifest names another revision than it compiles to.
        good_text = entries["policy/rules.cxp"]
        digest = hashlib.sha256(good_text).hexdigest()
        m = B.Manifest("sha256:" + "0" * 64, {"policy/rules.cxp": digest}, (), {}, 2, "t")
        lying = _repack({"manifest.json": m.to_bytes(), "policy/rules.cxp": good_text})
        refused(B.sign(lying, B.load_private_key(private.read_bytes())), "revision")
        assert engine.reloads_failed == 5

        _write(path, v2)
        result = engine.check_now()
        assert result is not None and result.ok and result.changed
        assert engine.revision == B.read(v2).revision != rev1
        assert decision_table(engine.decide) != table1
        assert engine.check_now() is None  # same bytes: nothing to do


def test_an_unsigned_bundle_does_not_start_when_a_key_is_configured(tmp_path: Path) -> None:
    _, public = keypair(tmp_path)
    path = tmp_path / "b.tar.gz"
    path.write_bytes(B.build([write_policy(tmp_path / "p")]))
    with pytest.raises(B.BundleError) as e:
        BundleEngine(str(path), keys=public_keys(public), poll=0)  # type: ignore[arg-type]
    assert e.value.code == "unsigned"
    with BundleEngine(str(path), poll=0) as engine:  # no key configured: unsigned serves
        assert engine.bundle is not None and engine.bundle.signature is None


def test_fifty_fresh_loads_give_one_revision_and_one_decision_table(tmp_path: Path) -> None:
    private, public = keypair(tmp_path)
    path = tmp_path / "b.tar.gz"
    path.write_bytes(signed_bundle(write_policy(tmp_path / "p"), private))
    seen = set()
    for _ in range(50):
        with BundleEngine(str(path), keys=public_keys(public), poll=0) as engine:  # type: ignore[arg-type]
            seen.add((engine.revision, tuple(decision_table(engine.decide))))
    assert len(seen) == 1
    (revision, table), = seen
    assert revision == B.read(path.read_bytes()).revision
    assert {row[0] for row in table} == {"allow", "escalate"}  # the table is not trivially uniform


def test_directory_and_url_sources(tmp_path: Path) -> None:
    private, public = keypair(tmp_path)
    data = signed_bundle(write_policy(tmp_path / "p"), private)
    unpacked = tmp_path / "unpacked"
    for name, content in _entries(data).items():
        (unpacked / name).parent.mkdir(parents=True, exist_ok=True)
        (unpacked / name).write_bytes(content)
    with BundleEngine(str(unpacked), keys=public_keys(public), poll=0) as engine:  # type: ignore[arg-type]
        assert engine.revision == B.read(data).revision
        assert engine.bundle is not None and engine.bundle.digest == B.read(data).digest
    server = BundleServer()
    try:
        server.files["/b.tar.gz"] = data
        url = f"{server.url}/b.tar.gz?X-Amz-Signature=secret"  # a presigned URL
        with BundleEngine(url, keys=public_keys(public), poll=0) as engine:  # type: ignore[arg-type]
            assert engine.revision == B.read(data).revision
            assert engine.status()["source"] == f"{server.url}/b.tar.gz"  # the token is not shown
            assert engine.check_now() is None and server.not_modified == 1  # the ETag saved a download
            server.files["/b.tar.gz"] = b"broken"
            result = engine.check_now()
            assert result is not None and not result.ok and engine.revision == B.read(data).revision
            del server.files["/b.tar.gz"]
            assert engine.check_now() is None and engine.last_poll_error and "404" in engine.last_poll_error
    finally:
        server.close()
