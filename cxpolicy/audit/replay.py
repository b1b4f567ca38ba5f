"""Checks that ride along the chain walk: escalation state and witness sightings.

Input: the records `verify_chain` has just authenticated, one at a time (`observe`), then the
escalations table and the sightings. Output: the first problem, or None.

Why here and not in the tables: the escalations table is a *cache* of state that the chain
already holds (every open, assign, approve, deny and resolve is a chained record), and a
cache is what an attacker with database access edits (`UPDATE escalations SET
state='resolved'`). Replaying the chain and comparing turns that edit into a verify failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from cxpolicy.audit.records import GENESIS_HASH, AuditRecord
from cxpolicy.audit.retention import Checkpoint
from cxpolicy.audit.witness import Sighting

__all__ = ["EscalationReplay", "WitnessCheck"]

_LIVE = frozenset({"open", "assigned"})
"""States in which an escalation still waits for a person: pruning never removes those rows."""


@dataclass(slots=True)
class _State:
    decision_id: str
    queue: str
    state: str
    assigned_to: str | None
    open_seq: int | None
    last_seq: int


@dataclass(slots=True)
class EscalationReplay:
    """Escalation state as the chain tells it, built record by record."""

    states: dict[str, _State] = field(default_factory=dict)

    def observe(self, rec: AuditRecord) -> str | None:
        if rec.kind != "escalation":
            return None
        try:
            event = orjson.loads(rec.detail)
        except orjson.JSONDecodeError:
            return "an escalation record's detail is not JSON"
        if not isinstance(event, dict) or not isinstance(event.get("escalation_id"), str):
            return "an escalation record names no escalation"
        esc_id = event["escalation_id"]
        to = event.get("to")
        if not isinstance(to, str):
            return f"escalation record for {esc_id} has no target state"
        known = self.states.get(esc_id)
        if event.get("transition") == "open":
            if known is not None:
                return f"escalation {esc_id} is opened twice in the chain"
            self.states[esc_id] = _State(
                rec.decision_id, str(event.get("queue")), to, None, rec.seq, rec.seq
            )
            return None
        if known is None:  # its opening was pruned behind a checkpoint
            known = _State(rec.decision_id, str(event.get("queue")), to, None, None, rec.seq)
            self.states[esc_id] = known
        known.state = to
        known.last_seq = rec.seq
        if "assigned_to" in event:
            assigned = event.get("assigned_to")
            known.assigned_to = assigned if isinstance(assigned, str) else None
        return None

    def compare(
        self, rows: Sequence[Sequence[Any]], walked_to: int, head_now: int, anchor: Checkpoint | None
    ) -> str | None:
        """Compare the escalations table (rows of ESCALATION_INDEX_COLUMNS) with the replay.

        Rows changed after the walk (`last_seq > walked_to`) are live traffic and skipped, but a
        row claiming a seq beyond the head as it is now was not written by the sink.
        """
        pruned_to = anchor.through_seq if anchor else 0
        seen: set[str] = set()
        for esc_id, decision_id, queue, state, assigned_to, open_seq, last_seq in rows:
            seen.add(esc_id)
            if int(last_seq) > head_now:
                return f"escalation {esc_id} claims chain record {last_seq}, past the chain head"
            if int(last_seq) > walked_to:
                continue
            chain = self.states.get(esc_id)
            if chain is None:
                if int(open_seq) <= pruned_to:
                    continue  # opened and last changed before the pruning checkpoint
                return (
                    f"escalation {esc_id} is in the escalations table but no chained record "
                    "opened it: it was inserted outside the sink"
                )
            mine = (decision_id, queue, state, assigned_to, int(last_seq))
            theirs = (chain.decision_id, chain.queue, chain.state, chain.assigned_to, chain.last_seq)
            if mine != theirs:
                return (
                    f"escalation {esc_id} is {state!r} (assigned to {assigned_to!r}) in the "
                    f"escalations table but {chain.state!r} (assigned to {chain.assigned_to!r}) "
                    "in the chain: the table was edited"
                )
        for esc_id in sorted(self.states.keys() - seen):
            chain = self.states[esc_id]
            if chain.open_seq is None and chain.state not in _LIVE:
                continue  # closed, and its opening pruned: pruning drops such rows
            return f"escalation {esc_id} is in the chain but missing from the escalations table (deleted)"
        return None


@dataclass(slots=True)
class WitnessCheck:
    """What the witness saw, checked against the records as the walk passes them."""

    sightings: Sequence[Sighting]
    key: bytes | None
    wanted: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def prepare(self) -> str | None:
        """Check the sightings themselves; fill `wanted` (seq -> hash)."""
        if not self.sightings:
            return "the witness holds no sightings (wrong file, or it was emptied)"
        # Order is not checked: several workers publish to one witness, and one may write a
        # slightly older head after another's newer one. Each sighting vouches for itself.
        for n, s in enumerate(self.sightings, 1):
            if self.key is not None and not s.valid(self.key):
                return f"witness sighting {n} (seq {s.seq}) is not signed with the audit key: forged"
            if s.seq in self.wanted and self.wanted[s.seq] != s.hash:
                return f"the witness saw two different hashes at seq {s.seq}"
            if s.seq == 0 and s.hash != GENESIS_HASH:
                return "the witness saw an empty log with a non-genesis hash"
            self.wanted[s.seq] = s.hash
        if self.key is None:
            self.notes.append("witness sightings not authenticated: no audit key")
        return None

    def observe(self, rec: AuditRecord) -> str | None:
        want = self.wanted.get(rec.seq)
        if want is not None and want != rec.hash:
            return (
                f"the database diverges from the witness at seq {rec.seq}: "
                "the record there is not the one that was witnessed"
            )
        return None

    def finish(self, walked_to: int, anchor: Checkpoint | None) -> str | None:
        top = max(self.wanted)
        if walked_to < top:
            return (
                f"the database ends at seq {walked_to} but the witness saw seq {top}: "
                "it was rolled back to an older copy, or records were cut off"
            )
        if anchor is not None:
            if anchor.through_seq in self.wanted and self.wanted[anchor.through_seq] != anchor.through_hash:
                return f"the pruning checkpoint at seq {anchor.through_seq} diverges from the witness"
            hidden = [seq for seq in self.wanted if 0 < seq < anchor.through_seq]
            if hidden:
                self.notes.append(f"{len(hidden)} witnessed position(s) were pruned and not re-checked")
        return None
