"""`ChainedSink`: the one implementation of `AuditSink`, over any `Store`.

Work is split by thread on purpose. In the caller's thread: masking the request, hashing it,
encoding the record (the expensive, parallel-safe part), and raising on anything that cannot
be recorded. In the writer's thread, inside the group-commit transaction: sealing the draft
onto the chain head, opening escalations, committing. The caller returns when its record is
durable (`record` blocks; `arecord` awaits).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
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
from cxpolicy.audit.retention import (
    Checkpoint,
    MissingKey,
    RetentionPolicy,
    derive_key,
    sign_checkpoint,
)
from cxpolicy.audit.writer import GroupCommitWriter, WriterStats
from cxpolicy.engine.decision import Decision
from cxpolicy.grants.digest import DigestError
from cxpolicy.grants.digest import request_digest as grant_request_digest

__all__ = ["ChainedSink", "decision_draft", "escalation_draft"]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else (None if value is None else str(value))


def decision_draft(
    request: Mapping[str, Any],
    decision: Decision,
    at: datetime,
    *,
    request_key: bytes | None = None,
) -> RecordDraft:
    """Everything stored about one decision. Indexed fields (actor, channel, region, action)
    are read from the *masked* request, so no column can carry what masking removed."""
    masked = mask_request(request)
    if not isinstance(masked, dict):
        raise TypeError("a request is a JSON object")
    if "grants" in masked:  # a grant is a bearer proof: the log keeps its id, never the token
        ids = [c.jti or f"#{c.position}" for c in decision.grant_checks]
        masked = {**masked, "grants": ids or ["(not a list of grants)"]}
    actor = masked.get("actor") if isinstance(masked.get("actor"), dict) else {}
    customer = masked.get("customer") if isinstance(masked.get("customer"), dict) else {}
    assert isinstance(actor, dict) and isinstance(customer, dict)
    detail = {
        "default_applied": decision.default_applied,
        "redact": [r.to_dict() for r in decision.redact],
        "errors": [{**e.to_dict(), "message": mask_text(e.message)} for e in decision.errors],
    }
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
    ) -> None:
        self.store = store
        self.sla = sla or SlaPolicy()
        self._key = key
        self._request_key = derive_key(key, "request") if key is not None else None
        self._clock = clock
        self._writer: GroupCommitWriter[StoreTx] = GroupCommitWriter(store.transaction, max_batch=max_batch)

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

    def verify(self, *, key: bytes | None = None, strict: bool = False) -> VerifyResult:
        with self.store.snapshot() as (checkpoints, head, records):
            return verify_chain(
                records,
                checkpoints=checkpoints,
                head=head,
                key=key if key is not None else self._key,
                strict=strict,
            )

    def close(self) -> None:
        self._writer.close()
        self.store.close()


def _decision(value: Any) -> Decision:
    if not isinstance(value, Decision):
        raise TypeError(f"record() takes a cxpolicy.engine.decision.Decision, not {type(value).__name__}")
    return value
