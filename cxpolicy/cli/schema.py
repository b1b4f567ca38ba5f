"""`cxpolicy schema`: policy paths in, the JSON Schema of requests for their vocabulary out."""

from __future__ import annotations

import click
import orjson

from cxpolicy.cli.options import load_or_exit, policy_options
from cxpolicy.tools.request_schema import request_schema

__all__ = ["schema_cmd"]


@click.command("schema")
@policy_options
def schema_cmd(paths: tuple[str, ...], packs: tuple[str, ...]) -> None:
    """Print the JSON Schema (draft 2020-12) of a request for the vocabulary loaded.

    Each dimension is an `enum` of its declared values (a set dimension an array of them),
    each attribute has its type and default, and every dimension without a default is
    `required`. The decision service publishes the same schema in /openapi.json for the
    policy it serves.

    \b
    Examples:
      cxpolicy schema -p rulesets/bank > request.schema.json
      cxpolicy schema --pack bfsi_rbi | jq '.properties.action.enum | length'

    Exit 0; 2 when the policy does not compile.
    """
    policy = load_or_exit(paths, packs)
    click.echo(orjson.dumps(request_schema(policy), option=orjson.OPT_INDENT_2).decode())
