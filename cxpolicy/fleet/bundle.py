"""Policy bundles: policy sources in, one signed, deterministic archive out (and back).

Input: policy paths and pack names (`build`), an archive and an Ed25519 private key (`sign`),
archive bytes and trusted public keys (`read` + `verify`). Output: archive bytes, or a
`Bundle` whose manifest and files have been checked, ready to `extract` and compile.

Layout of a bundle (a gzip'd ustar archive, entries sorted by name)::

    manifest.json    format, revision, packs and their versions, sha256 of every file
    policy/**.cxp    the user's policy files, by their load key (path under the policy dir)
    signature.json   Ed25519 over the exact bytes of manifest.json (after `sign`)

Why it is shaped this way:

- **Deterministic.** Entries are sorted, every header has mtime 0, uid/gid 0, no user or
  group names and mode 0644, the manifest is canonical JSON (sorted keys), gzip carries no
  timestamp or file name, and Ed25519 signatures are deterministic: the same sources (and
  key) give the same bytes, so the archive's sha256 names a bundle across the fleet.
- **One signature covers everything.** The manifest lists the sha256 of every file and
  `read` refuses an archive whose files differ from the manifest in any way (missing, extra,
  changed), so signing the manifest signs the whole bundle.
- **The revision is checked, not trusted.** The manifest's `revision` is the policy
  revision the builder compiled; a replica compiles the extracted files with its own packs
  and refuses the bundle when its revision differs (e.g. a replica with other pack versions).
- **Reading never trusts the archive.** Only regular files, only the names above, no `..`
  or absolute paths, bounded sizes; files are read into memory and written by us, never by
  `tarfile.extract`.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "FORMAT",
    "Bundle",
    "BundleError",
    "Manifest",
    "Signature",
    "build",
    "extract",
    "generate_key",
    "key_id",
    "load_private_key",
    "load_public_keys",
    "read",
    "read_dir",
    "sign",
    "verify",
]

FORMAT = "cxpolicy-bundle/1"
MANIFEST = "manifest.json"
SIGNATURE = "signature.json"
POLICY = "policy/"
MAX_ARCHIVE_BYTES = 64 * 1024 * 1024
MAX_MEMBERS = 20_000


class BundleError(Exception):
    """A bundle that must not be served. `code` says why, for status pages and metrics:
    `broken` (not a readable bundle), `mismatch` (files differ from the manifest),
    `unsigned` (a key is configured and there is no signature), `bad_signature`,
    `revision` (compiles to another revision than the manifest names)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a bundle holds: the policy revision, the packs it was built with (`packs`: the
    names given to `build`, in order, which is how a replica loads them again; `pack_versions`:
    every shipped pack the policy uses, name → version), and the sha256 of every file."""

    revision: str
    files: Mapping[str, str]
    packs: tuple[str, ...]
    pack_versions: Mapping[str, str]
    rule_count: int
    built_with: str
    format: str = FORMAT

    def to_bytes(self) -> bytes:
        """Canonical JSON: sorted keys, two-space indent, a final newline."""
        body = {
            "format": self.format,
            "revision": self.revision,
            "rule_count": self.rule_count,
            "packs": list(self.packs),
            "pack_versions": dict(self.pack_versions),
            "files": dict(self.files),
            "built_with": self.built_with,
        }
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        try:
            raw = orjson.loads(data)
            if not isinstance(raw, dict) or raw.get("format") != FORMAT:
                raise ValueError(f"format is not {FORMAT!r}")
            files, packs, versions = raw["files"], raw["packs"], raw["pack_versions"]
            if not isinstance(files, dict) or not isinstance(packs, list) or not isinstance(versions, dict):
                raise ValueError("files and pack_versions must be objects, packs a list")
            return cls(
                revision=str(raw["revision"]),
                files={str(k): str(v) for k, v in files.items()},
                packs=tuple(str(p) for p in packs),
                pack_versions={str(k): str(v) for k, v in versions.items()},
                rule_count=int(raw.get("rule_count", 0)),
                built_with=str(raw.get("built_with", "")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BundleError("broken", f"{MANIFEST} is not a bundle manifest: {exc}") from None


@dataclass(frozen=True, slots=True)
class Signature:
    key_id: str
    value: bytes
    algorithm: str = "ed25519"

    def to_bytes(self) -> bytes:
        body = {
            "algorithm": self.algorithm,
            "key_id": self.key_id,
            "signature": base64.b64encode(self.value).decode(),
        }
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes) -> Signature:
        try:
            raw = orjson.loads(data)
            if raw.get("algorithm") != "ed25519":
                raise ValueError("algorithm must be ed25519")
            return cls(str(raw["key_id"]), base64.b64decode(raw["signature"], validate=True))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BundleError("broken", f"{SIGNATURE} is not a signature: {exc}") from None


@dataclass(frozen=True, slots=True)
class Bundle:
    """A bundle read back from its archive; files and manifest agree (checked by `read`)."""

    manifest: Manifest
    manifest_bytes: bytes
    files: Mapping[str, bytes]
    signature: Signature | None
    digest: str  # "sha256:…" of the archive bytes (a directory bundle: of its canonical archive)

    @property
    def revision(self) -> str:
        return self.manifest.revision

    def describe(self) -> dict[str, Any]:
        """The bundle as `inspect` and `/v1/status` show it."""
        return {
            "digest": self.digest,
            "revision": self.manifest.revision,
            "rule_count": self.manifest.rule_count,
            "packs": list(self.manifest.packs),
            "pack_versions": dict(self.manifest.pack_versions),
            "files": dict(self.manifest.files),
            "built_with": self.manifest.built_with,
            "signed": self.signature is not None,
            "key_id": self.signature.key_id if self.signature else None,
        }


# ---------------------------------------------------------------------- keys
def _ed25519() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:  # pragma: no cover - cryptography is in the fleet extra
        raise BundleError("broken", 'signing needs `cryptography` (pip install "cxpolicy[fleet]")') from exc
    return ed25519


def generate_key() -> tuple[bytes, bytes]:
    """A new Ed25519 key pair as (private PKCS#8 PEM, public SubjectPublicKeyInfo PEM)."""
    from cryptography.hazmat.primitives import serialization as ser

    private = _ed25519().Ed25519PrivateKey.generate()
    priv = private.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
    pub = private.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    return bytes(priv), bytes(pub)


def key_id(public: Ed25519PublicKey) -> str:
    """A short, stable name of a public key: `ed25519:` + 16 hex digits of its sha256."""
    from cryptography.hazmat.primitives import serialization as ser

    raw = public.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = ser.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError("broken", "the signing key is not an Ed25519 private key")
    return key


def load_public_keys(pem: bytes) -> list[Ed25519PublicKey]:
    """Every Ed25519 public key in a PEM file (several keys: a rotation in progress)."""
    from cryptography.hazmat.primitives import serialization as ser

    marker = b"-----BEGIN PUBLIC KEY-----"
    keys: list[Ed25519PublicKey] = []
    for chunk in pem.split(marker)[1:]:
        key = ser.load_pem_public_key(marker + chunk)
        if not isinstance(key, _ed25519().Ed25519PublicKey):
            raise BundleError("broken", "a verification key is not an Ed25519 public key")
        keys.append(key)
    if not keys:
        raise BundleError("broken", "no PEM public key found in the verification key file")
    return keys


# ---------------------------------------------------------------------- writing
def _archive(entries: Mapping[str, bytes]) -> bytes:
    """The deterministic tar.gz of `entries` (name → bytes)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(entries):
            data = entries[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _policy_files(paths: Iterable[str | os.PathLike[str]]) -> dict[str, bytes]:
    """archive name → bytes of every policy file, keyed as the loader keys them."""
    out: dict[str, bytes] = {}
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(f for f in path.rglob("*.cxp") if f.is_file())
            pairs = [(f, f.relative_to(path).as_posix()) for f in found]
        elif path.is_file():
            pairs = [(path, path.name)]
        else:
            raise BundleError("broken", f"no such file or directory: {path}")
        for f, key in pairs:
            name = POLICY + key
            data = f.read_bytes()
            if name in out and out[name] != data:
                raise BundleError("broken", f"two different files would both be {key!r} in the bundle")
            out[name] = data
    return out


def _pack_versions(names: Iterable[str]) -> dict[str, str]:
    from cxpolicy.resources import pack_dir

    out: dict[str, str] = {}
    for name in sorted(set(names)):
        d = pack_dir(name)
        version = "0.0.0"
        if d is not None and (d / "pack.toml").is_file():
            with open(d / "pack.toml", "rb") as fh:
                version = str(tomllib.load(fh).get("version", version))
        out[name] = version
    return out


def _cxpolicy_version() -> str:
    try:
        return "cxpolicy " + metadata.version("cxpolicy")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "cxpolicy"


def build(paths: Sequence[str | os.PathLike[str]], packs: Sequence[str] = ()) -> bytes:
    """An unsigned bundle of the policy files under `paths` and the named packs.

    The files are compiled from the same layout a replica will extract them to, so the
    manifest's revision is the one every replica must arrive at. Raises `PolicyError` when
    the sources do not compile (a bundle that cannot serve is never built).
    """
    from cxpolicy.engine.loader import load

    files = _policy_files(paths)
    if not files:
        raise BundleError("broken", "no .cxp files to bundle")
    with tempfile.TemporaryDirectory(prefix="cxp-bundle-") as tmp:
        root = _write_policy(files, Path(tmp))
        policy = load([root], packs=list(packs))
    used = {s.pack for s in policy.sources if s.pack}
    manifest = Manifest(
        revision=policy.revision,
        files={name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
        packs=tuple(packs),
        pack_versions=_pack_versions([*packs, *used]),
        rule_count=policy.rule_count,
        built_with=_cxpolicy_version(),
    )
    return _archive({MANIFEST: manifest.to_bytes(), **files})


def sign(archive: bytes, private_key: Ed25519PrivateKey) -> bytes:
    """The same bundle with an Ed25519 signature over its manifest (a previous one replaced)."""
    bundle = read(archive)
    sig = Signature(key_id(private_key.public_key()), private_key.sign(bundle.manifest_bytes))
    return _archive({MANIFEST: bundle.manifest_bytes, **bundle.files, SIGNATURE: sig.to_bytes()})


# ---------------------------------------------------------------------- reading
def _check_name(name: str) -> None:
    pure = PurePosixPath(name)
    if name.startswith("/") or ".." in pure.parts or "\\" in name or not name:
        raise BundleError("broken", f"unsafe path in the bundle: {name!r}")
    if name not in (MANIFEST, SIGNATURE) and not (name.startswith(POLICY) and name.endswith(".cxp")):
        raise BundleError("broken", f"unexpected entry in the bundle: {name!r}")


def read(archive: bytes) -> Bundle:
    """Parse and check a bundle archive: safe entries, a manifest, files equal to it.

    Does not check the signature (see `verify`): `inspect` shows an unsigned or foreign-key
    bundle too. Raises `BundleError` for anything else.
    """
    if len(archive) > MAX_ARCHIVE_BYTES:
        raise BundleError("broken", f"bundle is {len(archive)} bytes; the limit is {MAX_ARCHIVE_BYTES}")
    entries: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            total = 0
            for count, member in enumerate(tar, start=1):
                if count > MAX_MEMBERS:
                    raise BundleError("broken", "too many entries in the bundle")
                if member.isdir():
                    continue
                if not member.isfile():
                    raise BundleError("broken", f"{member.name!r} is not a regular file")
                _check_name(member.name)
                if member.name in entries:
                    raise BundleError("broken", f"{member.name!r} appears twice in the bundle")
                total += member.size
                if total > MAX_ARCHIVE_BYTES * 4:
                    raise BundleError("broken", "the bundle unpacks to too many bytes")
                fh = tar.extractfile(member)
                if fh is None:  # pragma: no cover - isfile() guarantees a file object
                    raise BundleError("broken", f"cannot read {member.name!r}")
                entries[member.name] = fh.read()
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile) as exc:
        raise BundleError("broken", f"not a readable bundle archive: {exc}") from None
    return _from_entries(entries, _digest(archive))


def read_dir(path: str | os.PathLike[str]) -> Bundle:
    """An unpacked bundle (a directory with manifest.json, policy/, signature.json), checked
    exactly as an archive is; its digest is that of the archive it is equivalent to."""
    root = Path(path)
    entries: dict[str, bytes] = {}
    for f in sorted(root.rglob("*")):
        if f.is_symlink() or not (f.is_file() or f.is_dir()):
            raise BundleError("broken", f"{f} is not a regular file")
        if f.is_dir():
            continue
        name = f.relative_to(root).as_posix()
        _check_name(name)
        entries[name] = f.read_bytes()
    return _from_entries(entries, _digest(_archive(entries)))


def _from_entries(entries: dict[str, bytes], digest: str) -> Bundle:
    manifest_bytes = entries.pop(MANIFEST, None)
    if manifest_bytes is None:
        raise BundleError("broken", f"the bundle has no {MANIFEST}")
    manifest = Manifest.from_bytes(manifest_bytes)
    sig_bytes = entries.pop(SIGNATURE, None)
    signature = Signature.from_bytes(sig_bytes) if sig_bytes is not None else None
    missing = sorted(set(manifest.files) - set(entries))
    extra = sorted(set(entries) - set(manifest.files))
    if missing or extra:
        raise BundleError("mismatch", f"files differ from the manifest: missing {missing}, not listed {extra}")
    for name, data in entries.items():
        if hashlib.sha256(data).hexdigest() != manifest.files[name]:
            raise BundleError("mismatch", f"{name} does not match its sha256 in the manifest")
    return Bundle(manifest, manifest_bytes, dict(sorted(entries.items())), signature, digest)


def verify(bundle: Bundle, keys: Sequence[Ed25519PublicKey]) -> str:
    """Check the signature against the trusted `keys`; return the signing key's id.

    With keys configured an unsigned bundle is refused (`unsigned`), as is one signed by
    another key or whose manifest changed after signing (`bad_signature`).
    """
    from cryptography.exceptions import InvalidSignature

    if bundle.signature is None:
        raise BundleError("unsigned", "the bundle is not signed and a verification key is configured")
    for key in keys:
        try:
            key.verify(bundle.signature.value, bundle.manifest_bytes)
        except InvalidSignature:
            continue
        return key_id(key)
    raise BundleError(
        "bad_signature", f"the signature (key {bundle.signature.key_id}) does not verify with any trusted key"
    )


def _write_policy(files: Mapping[str, bytes], root: Path) -> Path:
    policy = root / "policy"
    policy.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        target = policy / name[len(POLICY) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return policy


def extract(bundle: Bundle, dest: str | os.PathLike[str]) -> Path:
    """Write the bundle's policy files under `dest` (emptied first); return the policy dir."""
    root = Path(dest)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    return _write_policy(bundle.files, root)
