"""The `cxpolicy` command: a click group whose subcommands load lazily.

Input: the command line. Output: the subcommand it names, loaded on first use.

Each subcommand is a thin function over the public API, in its own module under
`cxpolicy/cli/`; the group imports a command's module only when that command runs, so
`cxpolicy eval` never pays for uvicorn or watchdog. Exit codes live in `ExitCode`.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from enum import IntEnum

import click

__all__ = ["ExitCode", "main"]


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # a test failed, lint found an error, diff found a change it was asked to fail on
    POLICY_ERROR = 2  # the policy set does not compile (diagnostics on stderr)
    USAGE = 64  # bad command-line usage (click's own errors use 2; see docs/cli.md)


# name -> "module:attribute"; the module lives under cxpolicy/cli/.
COMMANDS: dict[str, str] = {
    "eval": "cxpolicy.cli.eval:eval_cmd",
    "explain": "cxpolicy.cli.explain:explain_cmd",
    "lint": "cxpolicy.cli.lint:lint_cmd",
    "test": "cxpolicy.cli.test:test_cmd",
    "fmt": "cxpolicy.cli.fmt:fmt_cmd",
    "diff": "cxpolicy.cli.diff:diff_cmd",
    "coverage": "cxpolicy.cli.coverage:coverage_cmd",
    "packs": "cxpolicy.cli.packs:packs_cmd",
    "redact": "cxpolicy.cli.redact:redact_cmd",
    "serve": "cxpolicy.cli.serve:serve_cmd",
    "audit": "cxpolicy.cli.audit:audit_cmd",
    "escalations": "cxpolicy.cli.audit:escalations_cmd",
    "shadow": "cxpolicy.cli.shadow:shadow_cmd",
    "callers": "cxpolicy.cli.callers:callers_cmd",
    "bundle": "cxpolicy.cli.bundle:bundle_cmd",
    "fleet": "cxpolicy.cli.fleet:fleet_cmd",
    "freeze": "cxpolicy.cli.freeze:freeze_cmd",
    "unfreeze": "cxpolicy.cli.freeze:unfreeze_cmd",
    "grant": "cxpolicy.cli.grant:grant_cmd",
    "schema": "cxpolicy.cli.schema:schema_cmd",
    "init": "cxpolicy.cli.init:init_cmd",
    "lsp": "cxpolicy.cli.lsp:lsp_cmd",
}


def _available() -> dict[str, str]:
    """Commands whose module exists in this build (a command still being written is not listed)."""
    out = {}
    for name, target in COMMANDS.items():
        module = target.split(":", 1)[0]
        if importlib.util.find_spec(module) is not None:
            out[name] = target
    return out


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_available())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _available().get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":", 1)
        module = importlib.import_module(module_name)
        command = getattr(module, attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cxpolicy")
def main() -> None:
    """cxpolicy — check every AI-agent action against your rules and the regulator's.

    \b
    Write rules in .cxp files, then:
      cxpolicy eval -p rulesets/bank -i request.json --explain --format text
      cxpolicy test rulesets/bank --pack bfsi_rbi
      cxpolicy lint rulesets/bank
    Run `cxpolicy COMMAND --help` for each command; docs/cli.md lists them all.
    """


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
