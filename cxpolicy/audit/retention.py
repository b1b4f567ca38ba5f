"""Retention: how long records are kept, and the signed checkpoint that pruning leaves behind.

Input: a retention policy and the stored records. Output: what may be pruned, and the signed checkpoint.

Regulators set floors, not ceilings, on how long the log is kept:

| preset   | keep      | source                                                        |
|----------|-----------|---------------------------------------------------------------|
| `ai-act` | 6 months  | EU AI Act Art 19 / 26(6): logs of high-risk systems ≥ 6 months |
| `pci`    | 12 months | PCI DSS 10.5.1: 12 months, 3 months immediately available      |
| `dpdp`   | 12 months | DPDP Rules 2025, Rule 6: logs kept at least one year           |
| `hipaa`  | 6 years   | HIPAA 164.530(j)(2) documentation, 164.528 accounting: 6 years |

Storage limitation (GDPR 5(1)(e), DPDP s.8(7)) pushes the other way, hence pruning. Pruning
deletes only from the old end of the chain, and first writes a checkpoint that holds the hash
of the last record it deletes, signed with HMAC-SHA256 under `CXPOLICY_AUDIT_KEY`: `verify`
then starts the chain at the checkpoint instead of at the genesis hash, and nobody without the
key can cut records off and forge a checkpoint to cover it. Without a key, pruning refuses.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import os
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from cxpolicy.audit.records import canonical_json

__all__ = [
    "KEY_ENV",
    "PRESETS",
    "Checkpoint",
    "MissingKey",
    "RetentionPolicy",
    "RetentionViolation",
    "derive_key",
    "key_from_env",
    "sign_checkpoint",
    "subtract_months",
]

KEY_ENV = "CXPOLICY_AUDIT_KEY"
MIN_KEY_BYTES = 16

PRESETS: dict[str, int] = {"ai-act": 6, "pci": 12, "dpdp": 12, "hipaa": 72}
"""Preset name -> months to keep."""


class MissingKey(RuntimeError):
    """An operation that signs (pruning) or must authenticate was asked for without a key."""


class RetentionViolation(ValueError):
    """The requested cut-off would delete records still inside the retention period."""


def key_from_env(environ: dict[str, str] | None = None) -> bytes | None:
    """The audit key from `CXPOLICY_AUDIT_KEY` (its UTF-8 bytes), or None when unset.

    A key shorter than 16 bytes is refused rather than silently weakening every MAC.
    """
    env = os.environ if environ is None else environ
    raw = env.get(KEY_ENV)
    if not raw:
        return None
    key = raw.encode()
    if len(key) < MIN_KEY_BYTES:
        raise MissingKey(f"{KEY_ENV} must be at least {MIN_KEY_BYTES} bytes")
    return key


def derive_key(key: bytes, purpose: str) -> bytes:
    """One subkey per purpose (checkpoint, head, request), so a MAC made for one use can
    never be replayed as another."""
    return hmac.new(key, b"cxpolicy-audit/" + purpose.encode(), hashlib.sha256).digest()


def mac(key: bytes, purpose: str, value: Any) -> str:
    return hmac.new(derive_key(key, purpose), canonical_json(value), hashlib.sha256).hexdigest()


def subtract_months(t: datetime, months: int) -> datetime:
    """Calendar months back, clamping the day (31 March minus one month is 28/29 February)."""
    total = t.year * 12 + (t.month - 1) - months
    year, month = divmod(total, 12)
    month += 1
    day = min(t.day, calendar.monthrange(year, month)[1])
    return t.replace(year=year, month=month, day=day)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Keep at least `months`; `earliest_cutoff(now)` is the latest `--before` allowed."""

    months: int
    name: str = ""

    @classmethod
    def parse(cls, text: str) -> RetentionPolicy:
        """A preset (`pci`), several (`pci,hipaa`: the longest wins), `18m` or `7y`, or `none`."""
        best: RetentionPolicy | None = None
        for part in (p.strip().lower() for p in text.split(",") if p.strip()):
            if part == "none":
                candidate = cls(0, "none")
            elif part in PRESETS:
                candidate = cls(PRESETS[part], part)
            elif part[:-1].isdigit() and part[-1] in "my":
                n = int(part[:-1])
                candidate = cls(n * (12 if part[-1] == "y" else 1), part)
            else:
                names = ", ".join(sorted(PRESETS))
                raise ValueError(f"unknown retention {part!r}: use {names}, 18m, 7y or none")
            if best is None or candidate.months > best.months:
                best = candidate
        if best is None:
            raise ValueError("empty retention")
        return best

    def earliest_cutoff(self, now: datetime) -> datetime:
        return subtract_months(now, self.months)

    def check(self, before: datetime, now: datetime) -> None:
        limit = self.earliest_cutoff(now)
        if before > limit:
            raise RetentionViolation(
                f"--before {before.date()} would delete records younger than the {self.name} "
                f"retention of {self.months} months (nothing after {limit.date()} may go)"
            )


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What pruning leaves in place of the records it deleted.

    `through_seq`/`through_hash` are the last deleted record's seq and hash: the first kept
    record's `prev_hash` must equal `through_hash`. Checkpoints chain by `prev_mac`, so deleting
    the newest checkpoint is detected as well.
    """

    id: int
    created_at: str
    cutoff: str
    through_seq: int
    through_hash: str
    through_time: str
    pruned: int
    prev_mac: str | None
    mac: str = ""

    def signed_object(self) -> dict[str, Any]:
        return {
            "v": 1,
            "id": self.id,
            "created_at": self.created_at,
            "cutoff": self.cutoff,
            "through_seq": self.through_seq,
            "through_hash": self.through_hash,
            "through_time": self.through_time,
            "pruned": self.pruned,
            "prev_mac": self.prev_mac,
        }

    def valid(self, key: bytes) -> bool:
        return hmac.compare_digest(self.mac, mac(key, "checkpoint", self.signed_object()))

    def to_dict(self) -> dict[str, Any]:
        return {**self.signed_object(), "mac": self.mac}

    def row(self) -> tuple[Any, ...]:
        return (
            self.id,
            self.created_at,
            self.cutoff,
            self.through_seq,
            self.through_hash,
            self.through_time,
            self.pruned,
            self.prev_mac,
            self.mac,
        )


CHECKPOINT_COLUMNS = "id, created_at, cutoff, through_seq, through_hash, through_time, pruned, prev_mac, mac"


def sign_checkpoint(cp: Checkpoint, key: bytes) -> Checkpoint:
    return replace(cp, mac=mac(key, "checkpoint", cp.signed_object()))


def head_mac(key: bytes, seq: int, hash_: str) -> str:
    """MAC over the chain head: with it, cutting records off the *new* end, or appending a
    well-formed forgery, is detected too (the chain alone cannot see either)."""
    return mac(key, "head", {"seq": seq, "hash": hash_})


def head_mac_valid(key: bytes, seq: int, hash_: str, value: str) -> bool:
    return hmac.compare_digest(value, head_mac(key, seq, hash_))
