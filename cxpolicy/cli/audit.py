"""`cxpolicy audit` and `cxpolicy escalations`: the audit log from a terminal.

Input: an audit database and a query. Output: records, verification or escalations as text or JSON.

Thin wrappers over `cxpolicy.audit`; DB is the SQLite file path or the same URL the service
takes with `--audit`. Exit codes: 0 done, 1 the check or the move failed (a broken chain, an
illegal transition, a refused prune), 64 bad usage (no such database, a malformed date).
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NoReturn, TypeVar

import click
import orjson

from cxpolicy.audit import (
    AuditRecord,
    AuditSink,
    Escalation,
    EscalationError,
    Query,
    RetentionPolicy,
    open_sink,
)
from cxpolicy.audit.records import parse_time
from cxpolicy.cli import ExitCode

__all__ = ["audit_cmd", "escalations_cmd"]

F = TypeVar("F", bound=Callable[..., Any])

_DB = click.argument("db", metavar="DB")
_FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="text for people (a header, one line per item); json for scripts.",
)


def _fail(message: str, code: ExitCode = ExitCode.FAILED) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(int(code))


@contextmanager
def _open(db: str) -> Iterator[AuditSink]:
    """The sink for an existing log (a typo in DB must not create an empty one)."""
    try:
        sink = open_sink(db, create=False)
    except (FileNotFoundError, ValueError, NotImplementedError) as exc:
        _fail(str(exc), ExitCode.USAGE)
    except Exception as exc:  # a server that is down, a file that is not a database
        _fail(f"cannot open the audit log {db}: {exc}")
    try:
        yield sink
    finally:
        sink.close()


def _time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        _fail(f"{option}: {exc}", ExitCode.USAGE)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _filters(f: F) -> F:
    for option in reversed(
        [
            click.option("--since", metavar="ISO", help="Records at or after this time (UTC)."),
            click.option("--until", metavar="ISO", help="Records before this time."),
            click.option(
                "--effect",
                type=click.Choice(["allow", "redact", "require_otp", "escalate"]),
                help="Only decisions with this effect.",
            ),
            click.option("--rule", metavar="RULE", help="Only records where this rule matched."),
            click.option("--action", metavar="A", help="Only this action (refund.execute)."),
        ]
    ):
        f = option(f)
    return f


def _query(
    since: str | None,
    until: str | None,
    effect: str | None,
    rule: str | None,
    action: str | None,
    **extra: Any,
) -> Query:
    return Query(
        since=_time(since, "--since"),
        until=_time(until, "--until"),
        effect=effect,
        rule=rule,
        action=action,
        **extra,
    )


def _record_line(r: AuditRecord) -> str:
    actor = f"{r.actor_kind or '-'}:{r.actor_id or '-'}"
    what = r.effect or "-"
    rules = ",".join(r.rules) or "-"
    if r.kind == "escalation":
        detail = r.detail_object()
        what = f"{detail['from']}->{detail['to']}" if detail.get("from") else str(detail.get("to"))
        rules = f"escalation {detail.get('escalation_id')} queue {detail.get('queue')}"
    return (
        f"{r.seq:>7}  {r.time}  {what:<12} {r.action or '-':<22} {actor:<20} "
        f"{r.decision_id}  {rules}"
    )


def _record_header(time_width: int) -> str:
    """The column names of `_record_line`."""
    return (
        f"{'SEQ':>7}  {'TIME':<{time_width}}  {'EFFECT':<12} {'ACTION':<22} {'ACTOR':<20} "
        f"{'DECISION':<36}  RULES"
    )


@click.group("audit", context_settings={"help_option_names": ["-h", "--help"]})
def audit_cmd() -> None:
    """Check, search, export and prune the tamper-evident decision log.

    \b
    Every decision the service answers is in the log before the answer leaves, hash-chained
    to the one before it. DB is the file the service writes (`--audit sqlite:///var/audit.db`
    or just var/audit.db):
      cxpolicy audit verify var/audit.db
      cxpolicy audit query var/audit.db --since 2026-05-01 --effect escalate
      cxpolicy audit export var/audit.db --since 2026-05-01 > requests.jsonl
      CXPOLICY_AUDIT_KEY=... cxpolicy audit prune var/audit.db --keep pci
    """


@audit_cmd.command("verify")
@_DB
@click.option(
    "--strict",
    is_flag=True,
    help="Also fail when a checkpoint or the chain head cannot be authenticated (no key).",
)
@click.option(
    "--witness",
    "witness_path",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="A witness file of signed chain heads: fail when the database is behind it (rolled "
    "back) or diverges from it. Default: <db>.witness beside a SQLite log, when it exists.",
)
@_FORMAT
def verify_cmd(db: str, strict: bool, witness_path: str | None, fmt: str) -> None:
    """Walk the hash chain; exit 1 and print the first broken record.

    \b
    Detects an edited record, a deleted one, an inserted or reordered one, records cut off
    the end, a forged or missing pruning checkpoint, an escalations table that disagrees
    with the chain, and (with a witness) a rollback to an older copy. The key comes from
    CXPOLICY_AUDIT_KEY or the key file beside the database; a keyed log never verifies
    without it, nor with an unsigned head.
      cxpolicy audit verify var/audit.db
      cxpolicy audit verify var/audit.db --witness /mnt/other-disk/audit.witness
      cxpolicy audit verify var/audit.db --strict --format json
    """
    from cxpolicy.audit import witness_file_for
    from cxpolicy.audit.witness import read_sightings

    notes: list[str] = []
    if witness_path is None:
        default = witness_file_for(db)
        if default is not None and default.exists():
            witness_path = str(default)
            notes.append(f"checked against the witness {default}")
    sightings = None
    if witness_path is not None:
        try:
            sightings = list(read_sightings(witness_path))
        except (OSError, ValueError) as exc:
            _fail(f"cannot read the witness {witness_path}: {exc}")
    with _open(db) as sink:
        result = sink.verify(strict=strict, witness=sightings)
    result.notes.extend(notes)
    if fmt == "json":
        click.echo(_json(result.to_dict()))
    elif result.ok:
        span = f"seq {result.first_seq}..{result.last_seq}" if result.checked else "no records"
        click.echo(f"ok: {result.checked} records verified ({span})")
    else:
        click.echo(f"BROKEN: {result.problem}")
        if result.broken is not None:
            click.echo("first broken record:")
            click.echo(_json(result.broken.to_dict()))
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if not result.ok:
        sys.exit(int(ExitCode.FAILED))


@audit_cmd.command("query")
@_DB
@_filters
@click.option(
    "--kind",
    type=click.Choice(["decision", "escalation"]),
    help="Only decisions, or only escalation transitions (default: both).",
)
@click.option("--decision", "decision_id", metavar="ID", help="One decision and its history.")
@click.option("--limit", type=click.IntRange(min=1), help="At most N records, newest first.")
@_FORMAT
def query_cmd(
    db: str,
    since: str | None,
    until: str | None,
    effect: str | None,
    rule: str | None,
    action: str | None,
    kind: str | None,
    decision_id: str | None,
    limit: int | None,
    fmt: str,
) -> None:
    """Find records; text is one line per record under a header, json one object per line.

    \b
      cxpolicy audit query var/audit.db --since 2026-05-01T00:00Z --effect escalate
      cxpolicy audit query var/audit.db --rule bfsi.rbi.payments.ai_never_executes_refunds
      cxpolicy audit query var/audit.db --action refund.execute --format json | jq .request
      cxpolicy audit query var/audit.db --decision 0196b3c2-... (the decision and its escalation)
    """
    q = _query(
        since,
        until,
        effect,
        rule,
        action,
        kind=kind,
        decision_id=decision_id,
        limit=limit,
        newest_first=limit is not None,
    )
    with _open(db) as sink:
        header = fmt == "text"
        for record in sink.iter_records(q):
            if header:  # column names over the first line, as wide as its columns
                click.echo(_record_header(len(record.time)))
                header = False
            click.echo(_json(record.to_dict()) if fmt == "json" else _record_line(record))


@audit_cmd.command("export")
@_DB
@_filters
@click.option(
    "--with-decision",
    is_flag=True,
    help="Wrap each request with the recorded decision_id, effect, rules and revision.",
)
def export_cmd(
    db: str,
    since: str | None,
    until: str | None,
    effect: str | None,
    rule: str | None,
    action: str | None,
    with_decision: bool,
) -> None:
    """Write the recorded (masked) requests as JSON lines, oldest first, to replay them.

    \b
    The output is what `cxpolicy eval -i` and `cxpolicy diff --requests` read, so a new
    policy revision can be tried on last month's traffic:
      cxpolicy audit export var/audit.db --since 2026-05-01 > may.jsonl
      cxpolicy eval -p rulesets/bank -i may.jsonl
    Requests are stored masked, so rules that look at masked values (payload text, card
    numbers) may decide differently on replay; --with-decision keeps the recorded effect.
    """
    q = _query(since, until, effect, rule, action, kind="decision")
    with _open(db) as sink:
        for record in sink.iter_records(q):
            request = record.request_object()
            if with_decision:
                request = {
                    "decision_id": record.decision_id,
                    "effect": record.effect,
                    "rules": list(record.rules),
                    "policy_revision": record.policy_revision,
                    "time": record.time,
                    "request": request,
                }
            click.echo(_json(request))


@audit_cmd.command("prune")
@_DB
@click.option("--before", metavar="ISO", help="Delete records older than this time.")
@click.option(
    "--keep",
    metavar="RETENTION",
    help="Retention to respect: ai-act (6 months, the default floor), pci or dpdp (12 months), "
    "hipaa (6 years), 18m, 7y, or several (pci,hipaa: the longest wins).",
)
def prune_cmd(db: str, before: str | None, keep: str | None) -> None:
    """Delete the oldest records behind a signed checkpoint; `verify` still passes after.

    \b
    Needs CXPOLICY_AUDIT_KEY (the checkpoint is signed with it) and refuses to delete
    anything younger than the retention (--keep, at least 6 months by default), records of
    escalations still open, or anything on a chain that does not verify.
      CXPOLICY_AUDIT_KEY=... cxpolicy audit prune var/audit.db --keep pci
      CXPOLICY_AUDIT_KEY=... cxpolicy audit prune var/audit.db --before 2025-01-01 --keep hipaa
    """
    from cxpolicy.audit import AuditIntegrityError, MissingKey, RetentionViolation
    from cxpolicy.audit.records import now_utc

    if before is None and keep is None:
        _fail("say --before ISO, --keep RETENTION, or both", ExitCode.USAGE)
    try:
        policy = RetentionPolicy.parse(keep or "ai-act")
    except ValueError as exc:
        _fail(str(exc), ExitCode.USAGE)
    now = now_utc()
    cutoff = _time(before, "--before") or policy.earliest_cutoff(now)
    with _open(db) as sink:
        try:
            cp = sink.prune(cutoff, keep=policy, now=now)
        except (MissingKey, RetentionViolation, AuditIntegrityError) as exc:
            _fail(str(exc))
    if cp is None:
        click.echo(f"nothing to prune before {cutoff.isoformat()}")
    else:
        click.echo(
            f"pruned {cp.pruned} records through seq {cp.through_seq} "
            f"(last at {cp.through_time}); checkpoint {cp.id} signed"
        )


# -- escalations -------------------------------------------------------------------------


def _escalation_line(e: Escalation) -> str:
    who = e.assigned_to or "-"
    rules = ",".join(str(r.get("rule")) for r in e.reasons if r.get("rule")) or "-"
    return f"{e.id}  {e.state:<8} {e.queue:<20} due {e.due_at}  to {who:<12} {rules}"


def _print_escalations(items: list[Escalation], fmt: str) -> None:
    for e in items:
        click.echo(_json(e.to_dict()) if fmt == "json" else _escalation_line(e))


@click.group("escalations", context_settings={"help_option_names": ["-h", "--help"]})
def escalations_cmd() -> None:
    """Follow up escalations: every `escalate` decision opens one per queue.

    \b
    An escalation moves open -> assigned -> resolved; each move is itself an audit record.
    Its due time comes from the queue's SLA.
      cxpolicy escalations list var/audit.db --state open --queue refunds-desk
      cxpolicy escalations assign var/audit.db 0196b3c2-... --to alice
      cxpolicy escalations resolve var/audit.db 0196b3c2-... --by alice --note "refund approved"
      cxpolicy escalations overdue var/audit.db
    """


@escalations_cmd.command("list")
@_DB
@click.option("--state", type=click.Choice(["open", "assigned", "resolved"]), help="Only escalations in this state.")
@click.option("--queue", metavar="Q", help="Only this queue (refunds-desk, unassigned-queue).")
@_FORMAT
def list_cmd(db: str, state: str | None, queue: str | None, fmt: str) -> None:
    """List escalations, oldest first.

    \b
      cxpolicy escalations list var/audit.db --state open
      cxpolicy escalations list var/audit.db --queue fraud-desk --format json
    """
    with _open(db) as sink:
        _print_escalations(sink.escalations(state=state, queue=queue), fmt)


def _move(db: str, move: Callable[[AuditSink], Escalation]) -> None:
    with _open(db) as sink:
        try:
            esc = move(sink)
        except EscalationError as exc:
            _fail(str(exc))
    click.echo(_escalation_line(esc))


@escalations_cmd.command("assign")
@_DB
@click.argument("escalation_id", metavar="ID")
@click.option("--to", "to", required=True, metavar="WHO", help="Who takes it over.")
@click.option("--by", "by", metavar="WHO", help="Who assigns it (default: your login name).")
def assign_cmd(db: str, escalation_id: str, to: str, by: str | None) -> None:
    """Assign an open escalation (or reassign an assigned one).

    \b
      cxpolicy escalations assign var/audit.db 0196b3c2-... --to alice
      cxpolicy escalations assign var/audit.db 0196b3c2-... --to bob --by lead.carol
    """
    actor = by or getpass.getuser()
    _move(db, lambda sink: sink.assign(escalation_id, to=to, by=actor))


@escalations_cmd.command("resolve")
@_DB
@click.argument("escalation_id", metavar="ID")
@click.option("--by", "by", required=True, metavar="WHO", help="Who resolved it.")
@click.option("--note", metavar="TEXT", help="What was done (masked like a request).")
def resolve_cmd(db: str, escalation_id: str, by: str, note: str | None) -> None:
    """Resolve an assigned escalation.

    \b
      cxpolicy escalations resolve var/audit.db 0196b3c2-... --by alice --note "refund approved"
    """
    _move(db, lambda sink: sink.resolve(escalation_id, by=by, note=note))


@escalations_cmd.command("approve")
@_DB
@click.argument("escalation_id", metavar="ID")
@click.option("--by", "by", metavar="WHO", help="Who approves (default: your login name).")
@click.option("--why", "why", required=True, metavar="TEXT", help="Why (masked like a request).")
@click.option("--key-file", default=None, metavar="[KID=]FILE", help="HS256 grant secret (else CXPOLICY_GRANT_KEY).")
@click.option("-p", "--policy", "paths", multiple=True, metavar="PATH", help="Name only the rules of this queue.")
@click.option("--pack", "packs", multiple=True, metavar="NAME",
              help="A shipped pack the policy was loaded with (repeatable), to name the rules to lift.")
def approve_cmd(
    db: str, escalation_id: str, by: str | None, why: str, key_file: str | None, paths: tuple[str, ...],
    packs: tuple[str, ...],
) -> None:
    """Approve an escalation: close it and print the grant that lets the stopped action run once.

    \b
      CXPOLICY_GRANT_KEY=… cxpolicy escalations approve var/audit.db 0196b3c2-... --why "customer verified"
    """
    from cxpolicy.grants import GrantKeyError, GrantSigner
    from cxpolicy.grants.approvals import ApprovalError, approve_escalation

    try:
        signer = GrantSigner.from_options(key_file=key_file, iss="cxpolicy-review")
    except GrantKeyError as exc:
        _fail(str(exc))
    policy = None
    if paths or packs:
        from cxpolicy.cli.options import load_or_exit

        policy = load_or_exit(paths, packs)
    actor = by or getpass.getuser()
    with _open(db) as sink:
        try:
            done = approve_escalation(sink, escalation_id, signer=signer, by=actor, why=why, policy=policy)
        except (EscalationError, ApprovalError) as exc:
            _fail(str(exc))
    click.echo(_escalation_line(done.escalation), err=True)
    click.echo(done.token)


@escalations_cmd.command("deny")
@_DB
@click.argument("escalation_id", metavar="ID")
@click.option("--by", "by", metavar="WHO", help="Who denies (default: your login name).")
@click.option("--why", "why", required=True, metavar="TEXT", help="The reason the agent relays (masked).")
def deny_cmd(db: str, escalation_id: str, by: str | None, why: str) -> None:
    """Deny an escalation: close it with a reason; no grant is issued.

    \b
      cxpolicy escalations deny var/audit.db 0196b3c2-... --why "refund outside policy"
    """
    actor = by or getpass.getuser()
    _move(db, lambda sink: sink.decide_outcome(escalation_id, "deny", by=actor, why=why))


@escalations_cmd.command("overdue")
@_DB
@click.option("--now", "now", metavar="ISO", help="Judge as of this time (default: now).")
@_FORMAT
def overdue_cmd(db: str, now: str | None, fmt: str) -> None:
    """List escalations past their due time and not resolved; the count goes to stderr.

    \b
      cxpolicy escalations overdue var/audit.db
      cxpolicy escalations overdue var/audit.db --now 2026-06-01T09:00Z --format json
    """
    at = _time(now, "--now")
    with _open(db) as sink:
        items = sink.overdue(at)
    _print_escalations(items, fmt)
    click.echo(f"{len(items)} overdue", err=True)
