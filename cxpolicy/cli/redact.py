"""`cxpolicy redact`: decide each request and print its payload masked as the decision says.

Input: a policy set and requests. Output: each payload masked per its decision.

The command a team uses to see what an agent would be allowed to send: the policy decides,
the detectors find the values, `cxpolicy.signals.redact.apply` masks them. Detection is on by
default, so a card number typed into `payload.text` triggers the same redact rules as a
declared `data_classes: [card_pan]`.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

import click
import orjson

from cxpolicy.cli import ExitCode
from cxpolicy.cli.options import detect_option, input_option, load_or_exit, policy_options
from cxpolicy.engine.requests import iter_requests
from cxpolicy.kinds import Style
from cxpolicy.signals.redact import KEY_ENV, RedactionKeyError, apply, styles_from, unmaskable


def _region(request: Any) -> str | None:
    customer = request.get("customer") if isinstance(request, dict) else None
    region = customer.get("region") if isinstance(customer, dict) else None
    return region if isinstance(region, str) else None


@click.command("redact")
@policy_options
@input_option()
@click.option(
    "--key-env",
    default=KEY_ENV,
    show_default=True,
    metavar="VAR",
    help="Environment variable holding the key for the `token` style (16+ bytes).",
)
@click.option("--keep-bin", is_flag=True, help="With `last4`, keep a card number's first six digits too.")
@detect_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "text"]),
    default="json",
    show_default=True,
    help="json: one object per request (effect, redact list, masked payload); text: the masked text only.",
)
def redact_cmd(
    paths: tuple[str, ...],
    packs: tuple[str, ...],
    input_file: IO[str],
    key_env: str,
    keep_bin: bool,
    detect: bool,
    fmt: str,
) -> None:
    """Decide each request and print its payload with values masked per the decision.

    \b
    Examples:
      cxpolicy redact -p rulesets/bank -i request.json
      cxpolicy redact -p rulesets/bank --pack bfsi_rbi -i requests.jsonl --format text
      CXPOLICY_TOKEN_KEY=... cxpolicy redact -p policy/ -i - < requests.jsonl

    `full` prints [REDACTED:class], `last4` keeps the last four characters, `token` prints
    tok_<class>_<hex> keyed by the key in --key-env; without that key a decision asking for
    `token` stops the command (exit 64) rather than print the value or an unkeyed hash.
    Classes the decision hides that no detector finds in free text (a name, an address)
    are listed under "unmasked" (json) or warned about on stderr (text).
    Exit 0 when every request was handled; 2 when the policy does not compile.
    """
    policy = load_or_exit(paths, packs, detect=detect)
    key_value = os.environ.get(key_env)
    key = key_value.encode("utf-8") if key_value else None
    out = sys.stdout
    for n, item in enumerate(iter_requests(input_file.read())):
        if item.error is not None:
            decision = policy.reject(item.error, kind=item.kind)
            payload: Any = None
        else:
            decision = policy.decide(item.value)
            request = item.value if isinstance(item.value, dict) else {}
            payload = request.get("payload")
            if isinstance(payload, dict):
                if key is None and Style.TOKEN in styles_from(decision).values():
                    # No fallback to another variable: the key comes from where the user said.
                    click.echo(
                        f"request at line {item.line}: the decision asks for the `token` style;"
                        f" set {key_env} to a key of 16 or more random bytes",
                        err=True,
                    )
                    sys.exit(ExitCode.USAGE)
                try:
                    payload = apply(payload, decision, key, region=_region(request), keep_bin=keep_bin)
                except RedactionKeyError as exc:
                    click.echo(f"request at line {item.line}: {exc} ({key_env})", err=True)
                    sys.exit(ExitCode.USAGE)
        missing = unmaskable(decision)
        if fmt == "json":
            row: dict[str, Any] = {
                "line": item.line,
                "decision_id": decision.decision_id,
                "effect": decision.effect.value,
                "redact": [r.to_dict() for r in decision.redact],
                "payload": payload,
            }
            if missing:
                row["unmasked"] = missing
            if decision.errors:
                row["errors"] = [e.to_dict() for e in decision.errors]
            out.write(orjson.dumps(row).decode() + "\n")
        else:
            if n:
                out.write("\n")
            text = payload.get("text") if isinstance(payload, dict) else None
            out.write((text if isinstance(text, str) else "") + "\n")
            if missing:
                click.echo(
                    f"request at line {item.line}: cannot find {', '.join(missing)} in free text; not masked",
                    err=True,
                )
    out.flush()
