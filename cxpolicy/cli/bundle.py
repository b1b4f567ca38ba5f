"""`cxpolicy bundle keygen|build|sign|verify|inspect`: make and check signed policy bundles.

Input: policy paths and packs, key files, bundle files. Output: bundle files (deterministic:
the same sources give the same bytes), a verdict (exit 0 good, 1 refused), a description.
The format and the checks live in `cxpolicy.fleet.bundle`; this module only wires files.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import orjson

from cxpolicy.cli import ExitCode
from cxpolicy.cli.options import policy_options, use_color

__all__ = ["bundle_cmd"]


def _write(path: str, data: bytes, mode: int = 0o644) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)  # readers (a bundle server, a polling replica) never see half a file


def _refused(exc: Exception) -> None:
    code = getattr(exc, "code", "broken")
    click.echo(f"bundle refused ({code}): {exc}", err=True)
    sys.exit(ExitCode.FAILED)


@click.group("bundle")
def bundle_cmd() -> None:
    """Build, sign, verify and inspect policy bundles (docs/operations.md).

    \b
    Examples:
      cxpolicy bundle keygen --private signing.pem --public verify.pem
      cxpolicy bundle build -p rulesets/bank --pack bfsi_rbi -o bank.tar.gz
      cxpolicy bundle sign bank.tar.gz --key signing.pem
      cxpolicy bundle verify bank.tar.gz --key verify.pem
      cxpolicy serve --bundle https://bundles.example/bank.tar.gz --bundle-key verify.pem
    """


@bundle_cmd.command("keygen")
@click.option("--private", "private_path", required=True, type=click.Path(), help="Where to write the signing key.")
@click.option("--public", "public_path", required=True, type=click.Path(), help="Where to write the verification key.")
def keygen_cmd(private_path: str, public_path: str) -> None:
    """Make an Ed25519 key pair (PEM): the private key signs, the public key verifies."""
    from cxpolicy.fleet.bundle import generate_key, key_id, load_public_keys

    private, public = generate_key()
    _write(private_path, private, 0o600)
    _write(public_path, public)
    click.echo(f"{key_id(load_public_keys(public)[0])}: {private_path} (keep secret), {public_path}")


@bundle_cmd.command("build")
@policy_options
@click.option("-o", "--output", required=True, type=click.Path(), help="The bundle file to write.")
@click.option("--key", "key_path", type=click.Path(exists=True), help="Also sign with this private key.")
def build_cmd(paths: tuple[str, ...], packs: tuple[str, ...], output: str, key_path: str | None) -> None:
    """Bundle the policy files (compiled first: a policy that does not compile is not bundled)."""
    from cxpolicy.fleet.bundle import BundleError, build, load_private_key, read, sign
    from cxpolicy.lang.source import PolicyError

    if not paths:
        raise click.UsageError("give the policy files to bundle: -p PATH")
    try:
        data = build(paths, packs)
        if key_path:
            data = sign(data, load_private_key(Path(key_path).read_bytes()))
    except PolicyError as exc:
        click.echo(exc.render(color=use_color()), err=True)
        sys.exit(ExitCode.POLICY_ERROR)
    except BundleError as exc:
        _refused(exc)
    _write(output, data)
    b = read(data)
    state = f"signed by {b.signature.key_id}" if b.signature else "unsigned"
    click.echo(f"{output}: {b.revision} ({b.manifest.rule_count} rules, {len(b.files)} files, {state}) {b.digest}")


@bundle_cmd.command("sign")
@click.argument("bundle_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--key", "key_path", required=True, type=click.Path(exists=True), help="The Ed25519 private key.")
@click.option("-o", "--output", type=click.Path(), help="Write here instead of replacing the bundle.")
def sign_cmd(bundle_path: str, key_path: str, output: str | None) -> None:
    """Sign a bundle's manifest (which lists the sha256 of every file) with Ed25519."""
    from cxpolicy.fleet.bundle import BundleError, load_private_key, read, sign

    try:
        data = sign(Path(bundle_path).read_bytes(), load_private_key(Path(key_path).read_bytes()))
    except (BundleError, ValueError) as exc:
        _refused(exc)
    _write(output or bundle_path, data)
    b = read(data)
    assert b.signature is not None
    click.echo(f"{output or bundle_path}: signed by {b.signature.key_id} {b.digest}")


@bundle_cmd.command("verify")
@click.argument("bundle_path", type=click.Path(exists=True))
@click.option("--key", "key_path", type=click.Path(exists=True), help="Trusted public key(s), PEM.")
@click.option("--compile/--no-compile", "compile_", default=True, show_default=True,
              help="Also compile it and compare the revision with the manifest's.")  # fmt: skip
def verify_cmd(bundle_path: str, key_path: str | None, compile_: bool) -> None:
    """Check a bundle as a replica would before serving it: exit 0 if it would serve, 1 if not.

    Without --key the signature is not checked (say so out loud: `unsigned`/`not verified`).
    """
    import tempfile

    from cxpolicy.engine.loader import load
    from cxpolicy.fleet.bundle import BundleError, extract, load_public_keys, read, read_dir, verify

    path = Path(bundle_path)
    try:
        b = read_dir(path) if path.is_dir() else read(path.read_bytes())
        signer = verify(b, load_public_keys(Path(key_path).read_bytes())) if key_path else None
        if compile_:
            with tempfile.TemporaryDirectory(prefix="cxp-verify-") as tmp:
                policy = load([extract(b, tmp)], packs=list(b.manifest.packs))
            if policy.revision != b.revision:
                raise BundleError("revision", f"compiles to {policy.revision}, the manifest says {b.revision}")
    except BundleError as exc:
        _refused(exc)
    except Exception as exc:  # a policy that does not compile, an unreadable key
        click.echo(f"bundle refused: {type(exc).__name__}: {exc}", err=True)
        sys.exit(ExitCode.FAILED)
    how = f"signature ok ({signer})" if signer else "signature not verified (no --key)"
    click.echo(f"{bundle_path}: ok — {b.revision}, {how}{', compiles' if compile_ else ''}")


@bundle_cmd.command("inspect")
@click.argument("bundle_path", type=click.Path(exists=True))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for a terminal; json for scripts.")
def inspect_cmd(bundle_path: str, fmt: str) -> None:
    """Show a bundle's revision, packs and versions, files and hashes, and signer."""
    from cxpolicy.fleet.bundle import BundleError, read, read_dir

    path = Path(bundle_path)
    try:
        b = read_dir(path) if path.is_dir() else read(path.read_bytes())
    except BundleError as exc:
        _refused(exc)
    info = b.describe()
    if fmt == "json":
        click.echo(orjson.dumps(info, option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(f"bundle    {info['digest']}")
    click.echo(f"revision  {info['revision']} ({info['rule_count']} rules)")
    click.echo(f"built     {info['built_with']}")
    packs = ", ".join(f"{n} {v}" for n, v in info["pack_versions"].items()) or "none"
    click.echo(f"packs     {packs} (loaded with: {', '.join(info['packs']) or 'none'})")
    click.echo(f"signed    {info['key_id'] if info['signed'] else 'no'}")
    for name, digest in info["files"].items():
        click.echo(f"  {digest[:16]}  {name}")
