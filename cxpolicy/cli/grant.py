"""`cxpolicy grant issue|verify|inspect`: make and check grants from the shell (LANGUAGE.md §9).

Input: a policy set and a request (issue, verify) or a token (inspect, verify). Output: one
token on stdout (issue), a JSON verdict (verify), the unverified header and claims (inspect).
`issue` decides the request first and names exactly the matched rules of the kind's effect,
so a token never lifts more than what stopped that request.
"""

from __future__ import annotations

import sys
from typing import IO

import click
import orjson

from cxpolicy.cli.options import grant_key_options, grant_keys_or_exit, load_or_exit, policy_options
from cxpolicy.engine.requests import iter_requests


@click.group("grant")
def grant_cmd() -> None:
    """Issue, verify and inspect grants (signed, one-use proof of an OTP step-up or an approval)."""


def _one_request(input_file: IO[str]) -> dict[str, object]:
    items = list(iter_requests(input_file.read()))
    if len(items) != 1:
        raise click.UsageError(f"give exactly one request (got {len(items)})")
    item = items[0]
    if item.error is not None or not isinstance(item.value, dict):
        raise click.UsageError(f"the request is not a JSON object: {item.error or type(item.value).__name__}")
    return item.value


@grant_cmd.command("issue")
@policy_options
@click.option("-i", "--input", "input_file", required=True, type=click.File("r", encoding="utf-8"), metavar="FILE|-",
              help="The request (JSON) the grant is for; - reads stdin.")
@click.option("--kind", required=True, type=click.Choice(["otp", "approval"]),
              help="otp lifts require_otp rules; approval lifts escalate rules.")
@click.option("--ttl", default=300, show_default=True, type=click.IntRange(1, 7 * 24 * 3600), help="Seconds valid.")
@click.option("--by", default=None, help="Who approved (required for --kind approval).")
@click.option("--key-file", default=None, metavar="[KID=]FILE", help="HS256 secret or Ed25519 private key (PEM).")
@click.option("--iss", default="cxpolicy-cli", show_default=True, help="The issuer name put in the grant.")
def issue_cmd(
    paths: tuple[str, ...],
    packs: tuple[str, ...],
    input_file: IO[str],
    kind: str,
    ttl: int,
    by: str | None,
    key_file: str | None,
    iss: str,
) -> None:
    """Decide the request, then print one token lifting its matched rules of KIND's effect.

    \b
    Example:
      CXPOLICY_GRANT_KEY=… cxpolicy grant issue -p rulesets/bank -i req.json --kind otp

    The key is CXPOLICY_GRANT_KEY (HS256) or --key-file. Exit 1 when nothing is there to lift.
    """
    from cxpolicy import grants

    if kind == "approval" and not by:
        raise click.UsageError("--kind approval needs --by NAME (who approved)")
    try:
        signer = grants.GrantSigner.from_options(key_file=key_file, iss=iss)
    except grants.GrantKeyError as exc:
        raise click.UsageError(str(exc)) from exc
    policy = load_or_exit(paths, packs)
    request = _one_request(input_file)
    decision = policy.decide(request)
    try:
        token = grants.issue_for(request, decision, signer, kind=kind, ttl=ttl, by=by)
    except (grants.NothingToLift, grants.DigestError) as exc:
        click.echo(f"cxpolicy grant issue: {exc} (effect {decision.effect.value})", err=True)
        sys.exit(1)
    click.echo(token)


@grant_cmd.command("verify")
@policy_options
@click.option("-i", "--input", "input_file", required=True, type=click.File("r", encoding="utf-8"), metavar="FILE|-",
              help="The request (JSON) the grant is for; - reads stdin.")
@click.option("--token", "token", required=True, help="The grant (compact JWS); `-` reads it from stdin.")
@grant_key_options
def verify_cmd(
    paths: tuple[str, ...],
    packs: tuple[str, ...],
    input_file: IO[str],
    token: str,
    grant_key_files: tuple[str, ...],
    grant_public_keys: tuple[str, ...],
) -> None:
    """Check a token against a request and a policy set: print what it would lift, or why not.

    Exit 0 when the grant is valid for the request, 1 when it is not.
    """
    from cxpolicy.grants.apply import check_grants

    if token == "-":
        token = sys.stdin.read().strip()
    keys = grant_keys_or_exit(grant_key_files, grant_public_keys)
    policy = load_or_exit(paths, packs, grant_keys=keys)
    request = _one_request(input_file)
    checks, errors = check_grants(policy, {**request, "grants": [token]})
    decision = policy.decide({**request, "grants": [token]})
    lifted = [r.rule for r in decision.reasons if r.lifted_by is not None]
    c = checks[0] if checks else None
    out = {
        "valid": bool(c and c.valid),
        "problem": None if c and c.valid else (c.problem if c else "; ".join(e.message for e in errors)),
        "claims": c.grant.to_dict() if c and c.grant else None,
        "lifts": lifted,
        "effect_with_grant": decision.effect.value,
    }
    click.echo(orjson.dumps(out).decode())
    sys.exit(0 if out["valid"] else 1)


@grant_cmd.command("inspect")
@click.argument("token")
def inspect_cmd(token: str) -> None:
    """Print a token's header and claims WITHOUT verifying it (for people; never trust it)."""
    from cxpolicy import grants

    if token == "-":
        token = sys.stdin.read().strip()
    try:
        doc = grants.inspect(token)
    except ValueError as exc:
        click.echo(f"cxpolicy grant inspect: {exc}", err=True)
        sys.exit(1)
    doc["verified"] = False
    click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
