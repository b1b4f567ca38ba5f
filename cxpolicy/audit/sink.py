"""`ChainedSink`: the one implementation of `AuditSink`, over any `Store`.

Input: decisions and escalation events. Output: chained records in the `Store` given.

Work is split by thread on purpose. In the caller's thread: masking the request, hashing it,
encoding the record (the expensive, parallel-safe part), and raising on anything that cannot
be recorded. In the writer's thread, inside the group-commit transaction: sealing the draft
onto the chain head, opening escalations, committing. The caller returns when its record is
durable (`record` blocks; `arecord` awaits).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson

from cxpolicy.audit.base import (
    AuditIntegrityError,
    AuditSink,
    Query,
    Store,
    StoreTx,
    dedupe,
    merge_query,
    utc_now,
)
from cxpolicy.audit.chain import VerifyResult, verify_chain
from cxpolicy.audit.escalations import (
    Escalation,
    SlaPolicy,
    UnknownEscalation,
    open_escalations,
    transition,
)
from cxpolicy.audit.grants import GrantAlreadyUsed, grant_draft, grants_refused, grants_used
from cxpolicy.audit.masking import mask_request, mask_text
from cxpolicy.audit.records import (
    AuditRecord,
    RecordDraft,
    canonical_json,
    format_time,
    request_digest,
)
from cxpolicy.audit.replay import EscalationReplay, WitnessCheck
from cxpolicy.audit.retention import (
    Checkpoint,
    MissingKey,
    RetentionPolicy,
    derive_key,
    sign_checkpoint,
)
from cxpolicy.audit.witness import Sighting, Witness, WitnessPublisher
from cxpolicy.audit.writer import GroupCommitWriter, WriterStats
from cxpolicy.engine.decision import Decision, echoable
from cxpolicy.grants.digest import DigestError
from cxpolicy.grants.digest import request_digest as grant_request_digest

__all__ = ["ChainedSink", "decision_draft", "escalation_draft"]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else (None if value is None else str(value))


def _stand_in(value: Any, key: bytes | None) -> str:
    """What is stored instead of a value the vocabulary does not know: its length and a
    (keyed) digest, enough to group and to match a suspect value, never the value itself."""
    text = value if isinstance(value, str) else repr(value)
    body = text.encode()
    digest = (hmac.new(key, body, hashlib.sha256) if key else hashlib.sha256(body)).hexdigest()[:16]
    return f"<unknown value: {len(text)} chars, {'hmac' if key else 'sha256'} {digest}>"


def _scrub_invalid(masked: dict[str, Any], decision: Decision, key: bytes | None) -> None:
    """Replace, in place, every request field the decision found invalid (an action, channel
    or region outside the vocabulary) by its stand-in: a card number sent as an `action` must
    not land in the `action` column or the stored request."""
    for err in decision.errors:
        if err.kind != "request" or not err.field:
            continue
        *parents, leaf = err.field.split(".")
        node: Any = masked
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            continue
        value = node[leaf]
        if isinstance(value, list):
            node[leaf] = [v if echoable(v) else _stand_in(v, key) for v in value]
        elif value is not None and not echoable(value):
            node[leaf] = _stand_in(value, key)





def _signal_summary(signals: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the detectors found, for a reviewer: the PII classes, the injection score and its
    indicators, truncation. Never a span's text (spans are offsets only, and are left out)."""
    if not signals:
        return {}
    out: dict[str, Any] = {}
    pii = signals.get("pii")
    if isinstance(pii, list) and pii:
        out["pii"] = [str(c) for c in pii]
    inj = signals.get("prompt_injection")
    if isinstance(inj, Mapping) and inj.get("score"):
        out["prompt_injection"] = {
            "score": inj.get("score"),
            "indicators": [str(i) for i in inj.get("indicators") or ()],
        }
    if signals.get("truncated") is True:
        out["truncated"] = True
    return out


def decision_draft(
    request: Mapping[str, Any],
    decision: Decision,
    at: datetime,
    *,
    request_key: bytes | None = None,
) -> RecordDraft:
    """Everything stored about one decision. Indexed fields (actor, channel, region, action)
    are read from the *masked* request, so no column can carry what masking removed, and
    values the vocabulary rejected are stored only as a length and a keyed digest."""
    masked = mask_request(request)
    if not isinstance(masked, dict):
        raise TypeError("a request is a JSON object")
    _scrub_invalid(masked, decision, request_key)
    if "grants" in masked:  # a grant is a bearer proof: the log keeps its id, never the token
        ids = [c.jti or f"#{c.position}" for c in decision.grant_checks]
        masked = {**masked, "grants": ids or ["(not a list of grants)"]}
    actor = masked.get("actor") if isinstance(masked.get("actor"), dict) else {}
    customer = masked.get("customer") if isinstance(masked.get("customer"), dict) else {}
    assert isinstance(actor, dict) and isinstance(customer, dict)
    detail: dict[str, Any] = {
        "default_applied": decision.default_applied,
        "redact": [r.to_dict() for r in decision.redact],
        "errors": [{**e.to_dict(), "message": mask_text(e.message)} for e in decision.errors],
        "summary": mask_text(decision.summary),
    }
    found = _signal_summary(decision.signals)
    if found:
        detail["signals"] = found
    if decision.effect.severity >= 2:  # stopped: what a grant for this request must name
        try:
            detail["grant_digest"] = grant_request_digest(request)
        except DigestError:
            detail["grant_digest"] = None
    if decision.grants_used:
        detail["grants_used"] = list(decision.grants_used)
        detail["lifted"] = {r.rule: r.lifted_by for r in decision.reasons if r.lifted_by is not None}
    return RecordDraft(
        kind="decision",
        decision_id=decision.decision_id,
        time=format_time(at),
        policy_revision=decision.policy_revision,
        effect=decision.effect.value,
        rules=dedupe([r.rule for r in decision.reasons]),
        cites=dedupe([c for r in decision.reasons for c in r.cite]),
        escalate_to=tuple(decision.escalate_to),
        actor_kind=_text(actor.get("kind")),
        actor_id=_text(actor.get("id")),
        channel=_text(masked.get("channel")),
        region=_text(customer.get("region", masked.get("region"))),
        action=_text(masked.get("action")),
        request_sha256=request_digest(request, request_key),
        request=canonical_json(masked).decode(),
        detail=canonical_json(detail).decode(),
    )


def escalation_draft(esc: Escalation, action: str, *, by: str | None, previous: str | None, at: str) -> RecordDraft:
    """The chain record of one escalation transition (`open`, `assign`, `resolve`)."""
    rules = tuple(str(r["rule"]) for r in esc.reasons if r.get("rule")) if action == "open" else ()
    return RecordDraft(
        kind="escalation",
        decision_id=esc.decision_id,
        time=at,
        policy_revision=None,
        effect=None,
        rules=rules,
        cites=(),
        escalate_to=(esc.queue,),
        actor_kind="human" if by else "system",
        actor_id=by,
        channel=None,
        region=None,
        action=f"escalation.{action}",
        request_sha256=None,
        request="null",
        detail=canonical_json(esc.event(action, by, previous)).decode(),
    )


class ChainedSink(AuditSink):
    """An `AuditSink` over a `Store`, with group commit and a hash chain.

    `key` (normally `CXPOLICY_AUDIT_KEY`) signs the chain head on every commit and keys the
    request digest; without it the chain still detects edits, deletions and reorderings.
    """

    def __init__(
        self,
        store: Store,
        *,
        sla: SlaPolicy | None = None,
        key: bytes | None = None,
        max_batch: int = 512,
        clock: Callable[[], datetime] = utc_now,
        witness: Witness | None = None,
        witness_interval: float = 1.0,
    ) -> None:
        self.store = store
        self.sla = sla or SlaPolicy()
        self._key = key
        self._request_key = derive_key(key, "request") if key is not None else None
        self._clock = clock
        self.witness = (
            WitnessPublisher(witness, key, interval=witness_interval) if witness is not None else None
        )
        self._writer: GroupCommitWriter[StoreTx] = GroupCommitWriter(self._transaction, max_batch=max_batch)

    @contextmanager
    def _transaction(self) -> Iterator[StoreTx]:
        """The store's transaction, then (committed) the head shown to the witness: after the
        commit, so the witness is never ahead of the database."""
        with self.store.transaction() as tx:
            yield tx
        if self.witness is not None and tx.appended:
            self.witness.committed(tx.head.seq, tx.head.hash)

    def subkey(self, purpose: str) -> bytes | None:
        """A key derived from the audit key for another use (console sessions, ...), so
        every worker of one service derives the same one; None for an unkeyed log."""
        return derive_key(self._key, purpose) if self._key is not None else None

    @property
    def stats(self) -> WriterStats:
        return self._writer.stats

    # -- writing -----------------------------------------------------------------------

    def _record_op(self, request: Mapping[str, Any], decision: Decision) -> Callable[[StoreTx], None]:
        now = self._clock()
        draft = decision_draft(request, decision, now, request_key=self._request_key)
        opened = open_escalations(decision, now, self.sla)
        used = grants_used(decision)
        refused = grants_refused(decision)
        decision.escalations = tuple(e.id for e in opened)  # what the service tells the caller

        def op(tx: StoreTx) -> None:
            if used:  # one-use: checked and consumed under the write lock (audit/grants.py)
                spent = tx.spent_grants([g.jti for g in used])
                if spent:
                    raise GrantAlreadyUsed(spent)
            rec = tx.append(draft)
            for g in used:
                tx.insert_grant_use((g.jti, g.kind, decision.decision_id, g.decision, draft.time, rec.seq))
                tx.append(grant_draft(g, "use", at=draft.time, decision_id=decision.decision_id))
            for g, problem in refused:
                tx.append(grant_draft(g, "refuse", at=draft.time, decision_id=decision.decision_id, problem=problem))
            for esc in opened:
                rec = tx.append(escalation_draft(esc, "open", by=None, previous=None, at=draft.time))
                tx.insert_escalation(esc, rec.seq)

        return op

    def record(self, request: Mapping[str, Any], decision: Any) -> None:
        self._writer.submit(self._record_op(request, _decision(decision)))

    async def arecord(self, request: Mapping[str, Any], decision: Any) -> None:
        await self._writer.asubmit(self._record_op(request, _decision(decision)))

    def _transition(
        self,
        escalation_id: str,
        action: str,
        *,
        by: str,
        to: str | None = None,
        note: str | None = None,
        now: datetime | None = None,
    ) -> Escalation:
        at = now or self._clock()
        masked_note = mask_text(note) if note else None

        def op(tx: StoreTx) -> Escalation:
            esc = tx.get_escalation(escalation_id)
            if esc is None:
                raise UnknownEscalation(escalation_id)
            new = transition(esc, action, by=by, at=at, to=to, note=masked_note)
            draft = escalation_draft(new, action, by=by, previous=esc.state, at=format_time(at))
            rec = tx.append(draft)
            tx.update_escalation(new, rec.seq)
            return new

        return self._writer.submit(op)

    def assign(self, escalation_id: str, *, to: str, by: str, now: datetime | None = None) -> Escalation:
        return self._transition(escalation_id, "assign", by=by, to=to, now=now)

    def decide_outcome(
        self,
        escalation_id: str,
        outcome: str,
        *,
        by: str,
        why: str,
        grant: Any = None,
        now: datetime | None = None,
    ) -> Escalation:
        """`approve` (with the `Grant` it issued) or `deny`: close the escalation, and chain the
        outcome, who, why and the grant id; an approval also chains the grant's `issue` record.
        Raises `UnknownEscalation` / `IllegalTransition`; then nothing is written (and the
        caller must not hand out the grant)."""
        at = now or self._clock()
        masked = mask_text(why)

        def op(tx: StoreTx) -> Escalation:
            esc = tx.get_escalation(escalation_id)
            if esc is None:
                raise UnknownEscalation(escalation_id)
            new = transition(esc, outcome, by=by, at=at, note=masked)
            draft = escalation_draft(new, outcome, by=by, previous=esc.state, at=format_time(at))
            if grant is not None:
                detail = {**orjson.loads(draft.detail), "grant": grant.jti, "grant_exp": grant.exp}
                draft = dataclasses.replace(draft, detail=canonical_json(detail).decode())
            rec = tx.append(draft)
            tx.update_escalation(new, rec.seq)
            if grant is not None:
                tx.append(grant_draft(grant, "issue", at=format_time(at), by=by))
            return new

        return self._writer.submit(op)

    def record_grant_issue(self, grant: Any, *, by: str, now: datetime | None = None) -> None:
        """Chain the `issue` record of a grant made outside an escalation (an OTP service's)."""
        at = format_time(now or self._clock())
        self._writer.submit(lambda tx: tx.append(grant_draft(grant, "issue", at=at, by=by)))

    def grant_use(self, jti: str) -> dict[str, Any] | None:
        """Which decision used grant `jti` (and which asked for it), if any: for auditors."""
        for rec in self.store.query(Query(kind="grant")):
            detail = rec.detail_object()
            if isinstance(detail, dict) and detail.get("grant") == jti and detail.get("event") == "use":
                return {"used_by": detail.get("used_by"), "asked_by": detail.get("asked_by"), "seq": rec.seq}
        return None

    def resolve(
        self, escalation_id: str, *, by: str, note: str | None = None, now: datetime | None = None
    ) -> Escalation:
        return self._transition(escalation_id, "resolve", by=by, note=note, now=now)

    def prune(
        self,
        before: datetime,
        *,
        key: bytes | None = None,
        keep: RetentionPolicy | None = None,
        now: datetime | None = None,
    ) -> Checkpoint | None:
        """Refuses without a key (nothing could authenticate the checkpoint), inside the
        retention period (`keep`, default 6 months: the EU AI Act floor), and on a chain that
        does not verify (a checkpoint would launder the tampering). Returns None when nothing
        is old enough."""
        key = key if key is not None else self._key
        if key is None:
            raise MissingKey("pruning needs CXPOLICY_AUDIT_KEY to sign its checkpoint")
        at = now or self._clock()
        (keep or RetentionPolicy.parse("ai-act")).check(before, at)
        check = self.verify(key=key)
        if not check.ok:
            raise AuditIntegrityError(f"refusing to prune a log that does not verify: {check.problem}")
        cutoff = format_time(before)
        created = format_time(at)

        def op(tx: StoreTx) -> Checkpoint | None:
            cps = tx.checkpoints()
            anchor = cps[-1] if cps else None
            after = anchor.through_seq if anchor else 0
            limit = tx.prune_limit(cutoff, after)
            if limit <= after:
                return None
            last = tx.record_at(limit)
            if last is None:
                raise AuditIntegrityError(f"record seq {limit} vanished while pruning")
            cp = Checkpoint(
                id=(anchor.id + 1) if anchor else 1,
                created_at=created,
                cutoff=cutoff,
                through_seq=limit,
                through_hash=last.hash,
                through_time=last.time,
                pruned=limit - after,
                prev_mac=anchor.mac if anchor else None,
            )
            cp = sign_checkpoint(cp, key)
            tx.insert_checkpoint(cp)
            tx.delete_through(limit)
            return cp

        return self._writer.submit(op)

    # -- reading -----------------------------------------------------------------------

    def get(self, decision_id: str) -> AuditRecord | None:
        return self.store.get(decision_id)

    def history(self, decision_id: str) -> list[AuditRecord]:
        return self.store.query(Query(decision_id=decision_id))

    def query(self, q: Query | None = None, **filters: Any) -> list[AuditRecord]:
        return self.store.query(merge_query(q, filters))

    def iter_records(self, q: Query | None = None, **filters: Any) -> Iterator[AuditRecord]:
        return self.store.iter_records(merge_query(q, filters))

    def escalations(
        self, *, state: str | None = None, queue: str | None = None, decision_id: str | None = None
    ) -> list[Escalation]:
        return self.store.escalations(state, queue, decision_id)

    def get_escalation(self, escalation_id: str) -> Escalation | None:
        return self.store.get_escalation(escalation_id)

    def overdue(self, now: datetime | None = None) -> list[Escalation]:
        return self.store.overdue(format_time(now or self._clock()))

    def overdue_count(self, now: datetime | None = None) -> int:
        return self.store.overdue_count(format_time(now or self._clock()))

    def verify(
        self,
        *,
        key: bytes | None = None,
        strict: bool = False,
        witness: Sequence[Sighting] | None = None,
    ) -> VerifyResult:
        """Walk the chain; replay escalation state against the escalations table; with
        `witness` (the sightings of `cxpolicy.audit.witness`), fail when the database is behind
        or diverges from what was witnessed. A log that was ever keyed needs its key."""
        key = key if key is not None else self._key
        if key is None and self.store.ever_keyed():
            result = VerifyResult()
            note = (
                "this log was written with an audit key: verify it with that key "
                "(CXPOLICY_AUDIT_KEY, or the key file beside the database)"
            )
            return result.fail(note)
        replay = EscalationReplay()
        check = WitnessCheck(witness, key) if witness is not None else None
        if check is not None and (problem := check.prepare()) is not None:
            return VerifyResult().fail(problem)

        def observe(rec: AuditRecord) -> str | None:
            if check is not None and (problem := check.observe(rec)) is not None:
                return problem
            return replay.observe(rec)

        with self.store.snapshot() as (checkpoints, head, records):
            result = verify_chain(
                records, checkpoints=checkpoints, head=head, key=key, strict=strict, observe=observe
            )
        if not result.ok:
            return result
        anchor = checkpoints[-1] if checkpoints else None
        walked = result.last_seq if result.last_seq is not None else (anchor.through_seq if anchor else 0)
        if check is not None:
            problem = check.finish(walked, anchor)
            result.notes.extend(check.notes)
            if problem is not None:
                return result.fail(problem)
        rows = self.store.escalation_index()
        if rows is not None:
            problem = replay.compare(rows, walked, self.store.head_seq(), anchor)
            if problem is not None:
                return result.fail(problem)
        return result

    def close(self) -> None:
        self._writer.close()
        if self.witness is not None:
            self.witness.close()
        self.store.close()


def _decision(value: Any) -> Decision:
    if not isinstance(value, Decision):
        raise TypeError(f"record() takes a cxpolicy.engine.decision.Decision, not {type(value).__name__}")
    return value
