"""The kinds (cxpolicy/kinds.py) keep the exact strings the JSON output and LANGUAGE.md use.

Input: the enums and the objects that carry them. Output: assertions that a typed kind still
serialises as the bare string, and that the parser hands out enum members, not strings.
"""

from __future__ import annotations

import json

from cxpolicy.engine.decision import DecisionError
from cxpolicy.engine.loader import load_text
from cxpolicy.kinds import ConditionKind, DimensionKind, ErrorKind, Op, Severity


def test_error_kinds_are_the_documented_strings() -> None:
    assert [k.value for k in ErrorKind] == ["request", "condition", "limit", "internal", "grant", "untrusted"]
    err = DecisionError(ErrorKind.LIMIT, "too big", field="x")
    assert json.dumps(err.to_dict()) == '{"kind": "limit", "message": "too big", "field": "x"}'
    assert str(ErrorKind.GRANT) == "grant" and f"{ErrorKind.UNTRUSTED}" == "untrusted"


def test_the_parser_produces_typed_kinds() -> None:
    p = load_text(
        "package p\ndimension t at r.t: ordered {lo, hi}\ndimension s at r.s: set {a, b}\n"
        "rule x { match t >= hi, s not in [a]\n when true\n unless false\n decide escalate }\n"
    )
    assert p.vocabulary.dimensions["t"].kind is DimensionKind.ORDERED
    assert p.vocabulary.dimensions["s"].kind is DimensionKind.SET
    (rule,) = p.rules
    assert [c.op for c in rule.checked.constraints] == [Op.GE, Op.NOT_IN]
    assert all(type(c.op) is Op for c in rule.checked.constraints)
    assert [c.kind for c in rule.conditions] == [ConditionKind.WHEN, ConditionKind.UNLESS]
    trace = p.decide({"r": {"t": "hi", "s": []}}, explain=True).trace
    assert trace is not None
    out = json.loads(json.dumps([c.to_dict() for c in trace.candidates[0].conditions]))
    assert [c["kind"] for c in out] == ["when", "unless"]


def test_severity_strings() -> None:
    assert [s.value for s in Severity] == ["error", "warning", "info"]
    assert Severity.ERROR == "error"
