"""`make run`: the decision service on the example rulesets, ready to try with one curl.

Input: nothing (the example rulesets). Output: a running service and a curl command to try.

    python -m cxpolicy.service.devrun [--host 127.0.0.1] [--port 8181] [--audit URL]

Serves every subdirectory of `rulesets/` that holds `.cxp` files as one policy set, with
every shipped compliance pack (bfsi_rbi, hipaa, gdpr: whichever this build has), watching
`rulesets/` for changes, with signal detection on and the audit log at `var/audit.db`. Before
serving it prints a curl command with a real example request, so a newcomer sees a decision
(and its reasons) in the first minute.

Why a module of its own rather than a Makefile line: which rulesets and packs exist is
decided at run time (the examples grow), and the example request is picked from the
rulesets' own `requests.jsonl` by deciding them, so the printed curl shows something more
interesting than `allow`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shlex
import sys
from pathlib import Path
from typing import Any

from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.kinds import Effect
from cxpolicy.lang.source import PolicyError
from cxpolicy.resources import shipped_pack_names

__all__ = ["example_request", "find_rulesets", "main"]

PREFERRED_PACKS = ("bfsi_rbi", "hipaa", "gdpr")
DEFAULT_AUDIT = "sqlite:///var/audit.db"

# Used when no ruleset ships example requests: valid against the core vocabulary.
FALLBACK_REQUEST: dict[str, Any] = {
    "action": "refund.execute",
    "channel": "chat",
    "actor": {"kind": "ai", "id": "agent-7"},
    "customer": {"id": "C-2001", "segment": "retail", "risk_tier": "high", "region": "IN"},
    "context": {"amount": 12000, "currency": "INR"},
    "data_classes": ["card_pan"],
}


def rulesets_root() -> Path:
    """`rulesets/` of the checkout this module runs from, else of the working directory."""
    checkout = Path(__file__).resolve().parent.parent / "rulesets"
    return checkout if checkout.is_dir() else Path("rulesets")


def find_rulesets(root: Path) -> list[Path]:
    """Subdirectories of `root` that hold at least one `.cxp` file, in name order."""
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir() if d.is_dir() and any(d.rglob("*.cxp")))


def packs_to_load() -> list[str]:
    shipped = shipped_pack_names()
    return [p for p in PREFERRED_PACKS if p in shipped] + [
        p for p in shipped if p not in PREFERRED_PACKS
    ]


def example_request(policy: PolicySet, rulesets: list[Path]) -> dict[str, Any]:
    """The first example request (from the rulesets' `requests.jsonl`) with the strictest
    valid decision: an escalation with reasons shows more than an `allow`."""
    best: tuple[int, dict[str, Any]] | None = None
    for d in rulesets:
        examples = d / "requests.jsonl"
        if not examples.is_file():
            continue
        for line in examples.read_text(encoding="utf-8").splitlines():
            try:
                req = json.loads(line)
            except ValueError:
                continue
            if not isinstance(req, dict):
                continue
            decision = policy.decide(req)
            if decision.errors or not decision.reasons:
                continue
            severity = decision.effect.severity
            if best is None or severity > best[0]:
                best = (severity, req)
            if severity == Effect.ESCALATE.severity:
                return req
    return best[1] if best else dict(FALLBACK_REQUEST)


def curl_lines(base: str, request: dict[str, Any], token: str | None = None) -> list[str]:
    """The curls the banner prints: a decision, and its trace (which needs a reviewer's
    credential: the trace says exactly what blocked a request, so agents do not get it)."""
    body = shlex.quote(json.dumps(request, separators=(",", ":")))
    auth = f" -H 'Authorization: Bearer {token}'" if token else ""
    return [
        f"curl -s {base}/v1/decide -H 'Content-Type: application/json' -d {body}",
        f"curl -s '{base}/v1/decide?explain=true' -H 'Content-Type: application/json'{auth} -d {body}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cxpolicy.service.devrun", description="Serve the example rulesets (make run)."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8181)
    parser.add_argument("--audit", default=DEFAULT_AUDIT, help="audit log URL ('' for none)")
    parser.add_argument("--no-watch", action="store_true", help="do not reload on file changes")
    parser.add_argument("--rulesets", type=Path, default=None, help="default: rulesets/")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    import uvicorn

    from cxpolicy.audit import AuditSink, open_service_sink
    from cxpolicy.grants import GrantKeys
    from cxpolicy.service.app import create_app
    from cxpolicy.service.reload import Engine

    # Grants (docs/grants.md) need a key: the operator's, or one made for this run, so the
    # console's Approve works out of the box (and a caller's otp_verified is not believed).
    grant_secret = os.environ.get("CXPOLICY_GRANT_KEY") or secrets.token_urlsafe(32)
    grant_keys = GrantKeys.from_secret(grant_secret)
    root = args.rulesets or rulesets_root()
    rulesets = find_rulesets(root)
    packs = packs_to_load()
    if not rulesets and not packs:
        print(f"cxpolicy devrun: no rulesets under {root} and no shipped packs", file=sys.stderr)
        return 2
    try:
        engine = Engine(rulesets, packs=packs, watch=not args.no_watch, detect=True, grant_keys=grant_keys)
    except PolicyError as exc:
        print(exc.render(color=sys.stderr.isatty()), file=sys.stderr)
        names = ", ".join(d.name for d in rulesets)
        print(
            f"cxpolicy devrun: the example rulesets ({names}) with packs {', '.join(packs)} "
            "do not compile together; fix the errors above (or serve one ruleset with "
            "`cxpolicy serve -p rulesets/NAME --pack PACK`)",
            file=sys.stderr,
        )
        return 2
    audit: AuditSink | None = open_service_sink(args.audit) if args.audit else None
    token = os.environ.get("CXPOLICY_ADMIN_TOKEN") or None
    made_token = token is None
    if token is None:  # a dev server on loopback: make one, so the console can be signed in to
        token = secrets.token_urlsafe(18)
    app = create_app(engine, admin_token=token, audit=audit, close_on_shutdown=True)

    shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    base = f"http://{shown_host}:{args.port}"
    policy = engine.policy
    banner = [
        "",
        f"cxpolicy dev server: {', '.join(d.name for d in rulesets) or 'no rulesets'}"
        f" + packs {', '.join(packs) or 'none'}: {policy.rule_count} rules, {policy.revision[:19]}…",
        f"  {'watching ' + str(root) + ' for changes' if engine.watching else 'not watching'};"
        f" audit log: {args.audit or 'off'}; admin endpoints: enabled",
        "  grants: signed with "
        + ("CXPOLICY_GRANT_KEY" if os.environ.get("CXPOLICY_GRANT_KEY") else "a key made for this run"),
        f"  console: {base}/console — sign in as `admin` with "
        + (f"the token {token} (made for this run; set CXPOLICY_ADMIN_TOKEN to choose one)" if made_token
           else "your CXPOLICY_ADMIN_TOKEN"),
        "",
        "Try it (paste into another terminal):",
        *("  " + line for line in curl_lines(base, example_request(policy, rulesets), token)),
        "",
        f"API docs: {base}/docs   policy: {base}/v1/policy   metrics: {base}/metrics",
        "",
    ]
    print("\n".join(banner), flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
