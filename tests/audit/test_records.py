"""Canonical encoding and record hashing: fixed, documented, and independent of storage."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from test_audit_support import T0, make_decision, make_request

from cxpolicy.audit.records import (
    GENESIS_HASH,
    AuditRecord,
    canonical_json,
    format_time,
    parse_time,
    request_digest,
    seal,
)
from cxpolicy.audit.sink import decision_draft
from cxpolicy.kinds import Effect


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": [True, None, 1.5], "é": "ü"}) == (
        '{"a":[true,null,1.5],"b":1,"é":"ü"}'.encode()
    )
    assert canonical_json({"b": {"d": 1, "c": 2}}) == b'{"b":{"c":2,"d":1}}'
    for bad in ({"n": float("nan")}, {"n": 2**80}, {1: "x"}):
        with pytest.raises(ValueError):
            canonical_json(bad)


def test_request_digest_plain_and_keyed() -> None:
    request = make_request()
    plain = request_digest(request)
    body = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert plain == "sha256:" + hashlib.sha256(body.encode()).hexdigest()
    assert request_digest(dict(reversed(list(request.items())))) == plain  # key order is free
    keyed = request_digest(request, b"k" * 32)
    assert keyed.startswith("hmac-sha256:") and keyed[12:] != plain[7:]


def test_time_format_and_parse() -> None:
    t = datetime(2026, 5, 9, 9, 5, 1, 123, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert format_time(t) == "2026-05-09T03:35:01.000123Z"
    assert parse_time("2026-05-09T03:35:01.000123Z") == t
    assert parse_time("2026-05-09") == datetime(2026, 5, 9, tzinfo=UTC)
    with pytest.raises(ValueError):
        format_time(datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        parse_time("last tuesday")


def test_hash_is_sha256_of_the_documented_object() -> None:
    draft = decision_draft(make_request(), make_decision(decision_id="d-1"), T0)
    rec = seal(draft, 1, GENESIS_HASH)
    obj = rec.hashed_object()
    assert obj["v"] == 1 and "hash" not in obj
    assert set(obj) == {"v", *AuditRecord.__dataclass_fields__} - {"hash"}
    body = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert rec.hash == hashlib.sha256(body.encode()).hexdigest()
    assert isinstance(obj["request"], str)  # the masked request enters as its stored text


def test_known_answer() -> None:
    """A fixed record, its canonical text and its hash, pinned so the encoding cannot drift;
    a second implementation (a PostgreSQL sink, an outside verifier) must reproduce them
    (docs/audit.md shows the same example)."""
    request = {"action": "refund.execute", "channel": "chat", "actor": {"kind": "ai", "id": "a-1"}}
    decision = make_decision(
        Effect.ALLOW, rules=("r.one",), decision_id="0196b3c2-0000-7000-8000-000000000001"
    )
    rec = seal(decision_draft(request, decision, T0), 1, GENESIS_HASH)
    text = canonical_json(rec.hashed_object()).decode()
    assert text == (
        '{"action":"refund.execute","actor_id":"a-1","actor_kind":"ai","channel":"chat",'
        '"cites":["CITE-0"],"decision_id":"0196b3c2-0000-7000-8000-000000000001",'
        '"detail":"{\\"default_applied\\":false,\\"errors\\":[],\\"redact\\":[],'
        '\\"summary\\":\\"allow because r.one matched — r.one applies.\\"}",'
        '"effect":"allow","escalate_to":[],"kind":"decision",'
        '"policy_revision":"sha256:' + "ab" * 32 + '",'
        '"prev_hash":"' + "0" * 64 + '","region":null,'
        '"request":"{\\"action\\":\\"refund.execute\\",\\"actor\\":{\\"id\\":\\"a-1\\",'
        '\\"kind\\":\\"ai\\"},\\"channel\\":\\"chat\\"}",'
        '"request_sha256":"sha256:0108e04120ff7948ba3f4a8ba8f6f5c25e1674cdc0620103d52147c4ef67010c",'
        '"rules":["r.one"],"seq":1,"time":"2024-01-01T09:00:00.000000Z","v":1}'
    )
    assert hashlib.sha256(text.encode()).hexdigest() == rec.hash
    assert rec.hash == "d17f65c362c1edbcd654947b41ef0769f09d39a18da70a08cdd3319e9ec8b939"


def test_row_round_trip() -> None:
    draft = decision_draft(make_request(), make_decision(Effect.ESCALATE, escalate_to=("q",)), T0)
    rec = seal(draft, 7, "f" * 64)
    again = AuditRecord.from_row(rec.row())
    assert again == rec
    assert again.to_dict()["actor"] == {"kind": "ai", "id": "agent-0"}
    with pytest.raises(ValueError):
        AuditRecord.from_row(rec.row()[:-1])


def test_any_field_change_changes_the_hash() -> None:
    from dataclasses import replace

    rec = seal(decision_draft(make_request(), make_decision(), T0), 1, GENESIS_HASH)
    for field, value in [
        ("seq", 2),
        ("effect", "escalate"),
        ("rules", ("other",)),
        ("region", "EU"),
        ("request", "{}"),
        ("prev_hash", "1" * 64),
        ("time", "2024-01-01T09:00:00.000001Z"),
    ]:
        assert replace(rec, **{field: value}).computed_hash() != rec.hash, field
