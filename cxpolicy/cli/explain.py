"""`cxpolicy explain`: one decision as a story — rules, values, why, near misses, what would change it.

Input: a policy set and requests. Output: each decision's story, as text or JSON.
"""

from __future__ import annotations

import sys
from typing import IO

import click
import orjson

from cxpolicy.cli.options import (
    detect_option,
    grant_key_options,
    grant_keys_or_exit,
    input_option,
    load_or_exit,
    policy_options,
    use_color,
)
from cxpolicy.engine.requests import iter_requests
from cxpolicy.tools.explain import Explanation, explain, render_text

__all__ = ["explain_cmd"]


@click.command("explain")
@policy_options
@input_option("One JSON request (or JSON-lines: each is explained in turn); `-` reads stdin.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people; json (one object per request) for scripts.")
@click.option(
    "--alternatives", default=4, show_default=True, metavar="N", help="Further counterfactuals to list after the best."
)
@detect_option
@grant_key_options
def explain_cmd(
    paths: tuple[str, ...],
    packs: tuple[str, ...],
    input_file: IO[str],
    fmt: str,
    alternatives: int,
    detect: bool,
    grant_key_files: tuple[str, ...],
    grant_public_keys: tuple[str, ...],
) -> None:
    """Explain why a request gets the decision it gets, and what would change it.

    \b
    Prints, for one request:
      - each matched rule, its `because` and `cite`, and the values that made
        each constraint and condition true or false (`12000 <= 500 → false`);
      - why the final effect won (most restrictive wins, or the default);
      - near misses: rules that failed on exactly one constraint or condition;
      - a counterfactual: the smallest change to the request that gives a less
        strict effect, e.g. "with context.otp_verified = true this would be
        `allow`" — checked by deciding the changed request before printing it.

    \b
    Examples:
      cxpolicy explain -p rulesets/bank -i request.json
      cxpolicy explain --pack bfsi_rbi -i request.json --format json
      cxpolicy eval -p rulesets/bank -i req.json --format json | jq .effect   # the decision alone

    Exit 0 for any decision; 2 when the policy does not compile.
    """
    keys = grant_keys_or_exit(grant_key_files, grant_public_keys)
    policy = load_or_exit(paths, packs, detect=detect, grant_keys=keys)
    color = use_color(sys.stdout)
    first = True
    for item in iter_requests(input_file.read()):
        if item.error is not None:
            e = Explanation(None, policy.reject(item.error, kind=item.kind, explain=True))
        else:
            e = explain(policy, item.value, alternatives=alternatives)
        if fmt == "json":
            doc = e.to_dict()
            doc["line"] = item.line
            click.echo(orjson.dumps(doc).decode())
        else:
            if not first:
                click.echo("\n" + "─" * 78 + "\n")
            click.echo(render_text(e, color=color))
        first = False
