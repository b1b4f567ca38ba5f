"""`cxpolicy eval`: decide requests from a file or stdin (LANGUAGE.md §8).

Input: a policy set and requests. Output: one decision per request, as JSON or text.
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
)
from cxpolicy.engine.render import decision_text
from cxpolicy.engine.requests import iter_requests


@click.command("eval")
@policy_options
@input_option()
@click.option("--explain", is_flag=True, help="Add the trace: every candidate rule, constraint and condition.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "text"]),
    default="json",
    show_default=True,
    help="json: one decision per line (JSON-lines); text: for people.",
)
@detect_option
@grant_key_options
def eval_cmd(
    paths: tuple[str, ...],
    packs: tuple[str, ...],
    input_file: IO[str],
    explain: bool,
    fmt: str,
    detect: bool,
    grant_key_files: tuple[str, ...],
    grant_public_keys: tuple[str, ...],
) -> None:
    """Decide each request and print the decision.

    \b
    Examples:
      cxpolicy eval -p rulesets/bank -i request.json
      cxpolicy eval -p rulesets/bank --pack bfsi_rbi -i requests.jsonl --explain --format text
      echo '{"action": "order.status", ...}' | cxpolicy eval -p rulesets/shop -i -

    Exit 0 for any decision (an invalid request is an `escalate` decision with `errors`);
    exit 2 with diagnostics on stderr when the policy does not compile. `grants` are
    verified with CXPOLICY_GRANT_KEY / --grant-key-file / --grant-public-key; eval has no
    audit store, so one-use is not enforced here (the service enforces it).
    """
    keys = grant_keys_or_exit(grant_key_files, grant_public_keys)
    policy = load_or_exit(paths, packs, detect=detect, grant_keys=keys)
    text = input_file.read()
    out = sys.stdout
    for n, item in enumerate(iter_requests(text)):
        if item.error is not None:
            decision = policy.reject(item.error, kind=item.kind, explain=explain)
        else:
            decision = policy.decide(item.value, explain=explain)
        if fmt == "json":
            out.write(orjson.dumps(decision.to_dict()).decode() + "\n")
        else:
            if n:
                out.write("\n")
            out.write(decision_text(decision, title=f"request at line {item.line}") + "\n")
    out.flush()
