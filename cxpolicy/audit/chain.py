"""Walking the hash chain: what `cxpolicy audit verify` checks, independent of storage.

Input: the stored records, in order. Output: a verification report (first broken link, if any).

Each record holds the hash of the one before it and a hash of its own content, so:

- an **edit** breaks the edited record's own hash;
- a **deletion** leaves a gap in `seq` (and a `prev_hash` pointing at nothing);
- an **insertion** or a **reordering** breaks the `prev_hash` link (or the hash, because `seq`
  is hashed) at the first record that moved;
- cutting records off the **new end**, or appending there, disagrees with the stored chain
  head; with `CXPOLICY_AUDIT_KEY` the head carries a MAC, so a forger cannot fix it up, and
  a verifier holding the key refuses an unsigned or missing head (a keyed log never has one);
- restoring an **older copy** (rollback) is consistent inside the file: only a witness
  outside it can tell (`cxpolicy.audit.witness`);
- pruning from the **old end** is legitimate only behind a checkpoint whose MAC verifies.

The walk streams records in `seq` order and stops at the first broken one, which it reports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cxpolicy.audit.records import GENESIS_HASH, AuditRecord
from cxpolicy.audit.retention import Checkpoint, head_mac_valid

__all__ = ["ChainHead", "VerifyResult", "verify_chain"]


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last committed record as the sink last wrote it (`mac` only when keyed)."""

    seq: int
    hash: str
    mac: str | None = None


@dataclass(slots=True)
class VerifyResult:
    """Outcome of a walk. `ok` is False at the first problem; `broken` is the record where the
    walk stopped (None when the problem is not one record: a checkpoint, a cut-off end)."""

    ok: bool = True
    checked: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    problem: str | None = None
    broken: AuditRecord | None = None
    notes: list[str] = field(default_factory=list)

    def fail(self, problem: str, broken: AuditRecord | None = None) -> VerifyResult:
        self.ok = False
        self.problem = problem
        self.broken = broken
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "problem": self.problem,
            "broken": self.broken.to_dict() if self.broken is not None else None,
            "notes": list(self.notes),
        }


def _check_checkpoints(
    checkpoints: Sequence[Checkpoint], key: bytes | None, result: VerifyResult, strict: bool
) -> bool:
    prev: Checkpoint | None = None
    for cp in checkpoints:
        if key is not None and not cp.valid(key):
            result.fail(
                f"checkpoint {cp.id} (through seq {cp.through_seq}) has an invalid signature: "
                "it was altered or signed with another key"
            )
            return False
        expected_prev = prev.mac if prev is not None else None
        if cp.prev_mac != expected_prev:
            result.fail(f"checkpoint {cp.id} does not follow the checkpoint before it")
            return False
        if prev is not None and cp.through_seq <= prev.through_seq:
            result.fail(f"checkpoint {cp.id} goes backwards (seq {cp.through_seq})")
            return False
        prev = cp
    if checkpoints and key is None:
        note = "checkpoint signatures not checked: set CXPOLICY_AUDIT_KEY to authenticate them"
        if strict:
            result.fail(note)
            return False
        result.notes.append(note)
    return True


def verify_chain(
    records: Iterable[AuditRecord],
    *,
    checkpoints: Sequence[Checkpoint] = (),
    head: ChainHead | None = None,
    key: bytes | None = None,
    strict: bool = False,
    observe: Callable[[AuditRecord], str | None] | None = None,
) -> VerifyResult:
    """Walk `records` (in seq order) from the newest checkpoint, or from genesis.

    `strict` turns what cannot be authenticated (no key for a checkpoint, a head nobody can
    check) into failures instead of notes. `observe` sees every record that verified, in
    order, and may return a problem that stops the walk there (the witness and escalation
    replays use it, so one pass serves every check).
    """
    result = VerifyResult()
    if not _check_checkpoints(checkpoints, key, result, strict):
        return result
    anchor = checkpoints[-1] if checkpoints else None
    expected_seq = anchor.through_seq + 1 if anchor else 1
    prev_hash = anchor.through_hash if anchor else GENESIS_HASH
    last: AuditRecord | None = None

    for rec in records:
        if result.first_seq is None:
            result.first_seq = rec.seq
        if rec.seq != expected_seq:
            if rec.seq > expected_seq:
                gap = f"seq {expected_seq}" if rec.seq == expected_seq + 1 else f"seqs {expected_seq}..{rec.seq - 1}"
                return result.fail(f"{gap} missing before this record (deleted)", rec)
            return result.fail(
                f"seq {rec.seq} is out of place: expected seq {expected_seq} "
                "(inserted, reordered, or left behind by a checkpoint)",
                rec,
            )
        if rec.computed_hash() != rec.hash:
            return result.fail(
                "content does not match its hash: the record was edited (or moved to another seq)",
                rec,
            )
        if rec.prev_hash != prev_hash:
            where = f"seq {rec.seq - 1}" if rec.seq > 1 else "the start of the chain"
            return result.fail(
                f"prev_hash does not match the hash of {where}: a record was inserted, "
                "removed, reordered or rewritten before this one",
                rec,
            )
        if observe is not None:
            problem = observe(rec)
            if problem is not None:
                return result.fail(problem, rec)
        prev_hash = rec.hash
        expected_seq += 1
        result.checked += 1
        result.last_seq = rec.seq
        last = rec

    _check_head(result, head, last, anchor, key, strict)
    return result


def _check_head(
    result: VerifyResult,
    head: ChainHead | None,
    last: AuditRecord | None,
    anchor: Checkpoint | None,
    key: bytes | None,
    strict: bool,
) -> None:
    end_seq = last.seq if last else (anchor.through_seq if anchor else 0)
    end_hash = last.hash if last else (anchor.through_hash if anchor else GENESIS_HASH)
    if head is None:
        if end_seq or key is not None:
            result.fail("the chain head is missing (the head table was emptied)")
        return
    if (head.seq, head.hash) != (end_seq, end_hash):
        if head.seq > end_seq:
            result.fail(
                f"the chain head is seq {head.seq} but the log ends at seq {end_seq}: records were cut off the end"
            )
        else:
            result.fail(
                f"the log goes on past the chain head (seq {head.seq}) to seq {end_seq}: "
                "records were appended outside the sink, or the head was rewound"
            )
        return
    if head.mac is None:
        if key is not None:  # a keyed sink signs the head from creation on: never unsigned
            result.fail(
                "the chain head is not signed: with an audit key every head is, so the head "
                "was rewritten (or the log was made without this key)"
            )
        return
    if key is None:
        note = "chain head signature not checked: set CXPOLICY_AUDIT_KEY to authenticate it"
        if strict:
            result.fail(note)
        else:
            result.notes.append(note)
        return
    if not head_mac_valid(key, head.seq, head.hash, head.mac):
        result.fail("the chain head's signature is invalid: the end of the log was rewritten")
