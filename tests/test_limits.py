"""Resource limits (cxpolicy/limits.py): each one is enforced, at its boundary, as documented.

Exceeding a limit must give `escalate` with an error of kind `limit` (or, before any decision
exists, a `BadRequest` of kind `limit`), never an exception and never a hang. "Never a hang"
cannot be asserted with a clock on a loaded machine, so these tests show it the honest way:
they run the worst input a limit allows (or the pathological input a limit exists for) and
finish; pytest's own timeout in CI is the backstop.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cxpolicy import limits
from cxpolicy.cel import CelSyntaxError, compile_expression
from cxpolicy.engine.loader import load, load_text
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.engine.requests import BadRequest, iter_requests, parse_request
from cxpolicy.lang.source import PolicyError
from tests.conftest import ROOT, base_request

CORE_RULES = """
use core
package lim
rule refunds_need_a_person {
  match   action = refund.execute
  decide  escalate
  because "b"
}
"""


@pytest.fixture(scope="module")
def core_policy() -> PolicySet:
    return load_text(CORE_RULES, "lim.cxp")


def _nested(depth: int) -> str:
    """A JSON document exactly `depth` levels deep (the outer object is level 1)."""
    return '{"a": ' * (depth - 1) + "{}" + "}" * (depth - 1)


# ---------------------------------------------------------------------- one place, documented


def test_owners_of_a_limit_use_the_value_in_limits() -> None:
    """The modules that enforce a limit agree with cxpolicy.limits, the documented place."""
    from cxpolicy.engine import loader, requests
    from cxpolicy.service import app as service
    from cxpolicy.signals import DetectorConfig

    assert requests.MAX_REQUEST_BYTES == limits.MAX_REQUEST_BYTES
    assert requests.MAX_DEPTH == limits.MAX_DEPTH
    assert requests.MAX_CONTAINER_ITEMS == limits.MAX_CONTAINER_ITEMS
    assert service.DEFAULT_MAX_BODY == limits.SERVICE_MAX_BODY
    assert service.DEFAULT_MAX_BATCH == limits.SERVICE_MAX_BATCH
    assert loader.MAX_FILE_BYTES == limits.MAX_POLICY_FILE_BYTES
    assert DetectorConfig().max_text_chars == limits.MAX_DETECTOR_TEXT_CHARS
    from cxpolicy.service.guard import ConnectionLimits

    c = ConnectionLimits()
    assert (c.max_header_bytes, c.header_timeout, c.body_timeout, c.max_connections) == (
        limits.SERVICE_MAX_HEADER_BYTES, limits.SERVICE_HEADER_TIMEOUT,
        limits.SERVICE_BODY_TIMEOUT, limits.SERVICE_MAX_CONNECTIONS,
    )
    assert (service.MAX_HEADERS, service.DEFAULT_CPU_BUDGET) == (
        limits.SERVICE_MAX_HEADERS, limits.SERVICE_BATCH_CPU_SECONDS,
    )


def test_every_limit_is_documented_with_its_default() -> None:
    """docs/security.md lists each limit by name with its default, so the doc cannot drift."""
    doc = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    names = [n for n in limits.__all__ if n.isupper()]
    assert names
    for name in names:
        value = getattr(limits, name)
        row = next((ln for ln in doc.splitlines() if f"`{name}`" in ln and ln.startswith("|")), None)
        assert row is not None, f"{name} has no row in docs/security.md"
        assert re.search(rf"\b{value:,}\b|\b{value}\b", row), f"{name} row does not show {value}: {row}"


def test_every_test_docs_security_cites_exists() -> None:
    """docs/security.md names the test that shows each defence; each must exist, so a renamed
    or deleted test cannot leave a defence unproven on paper."""
    doc = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    cited = 0
    for line in doc.splitlines():
        current: Path | None = None
        for token in re.findall(r"`([^`]+)`", line):
            m = re.fullmatch(r"(tests/[\w/]+\.py)?(?:::)?(test_\w+)?", token)
            if m is None or not (m.group(1) or m.group(2)):
                continue
            if m.group(1):
                current = ROOT / m.group(1)
                assert current.is_file(), token
            if m.group(2) and current is not None:
                assert re.search(rf"^def {m.group(2)}\(", current.read_text(encoding="utf-8"), re.M), token
                cited += 1
    assert cited >= 25


# ------------------------------------------------------------------------------- request size


def test_request_over_the_byte_limit_is_a_limit_error() -> None:
    body = json.dumps({"pad": "x" * 200})
    assert parse_request(body, max_bytes=len(body)) == {"pad": "x" * 200}  # exactly at the limit
    with pytest.raises(BadRequest) as info:
        parse_request(body, max_bytes=len(body) - 1)
    assert info.value.kind == "limit"
    assert f"the limit is {len(body) - 1}" in str(info.value)


def test_bytes_not_characters_are_counted() -> None:
    """A limit in characters would let multi-byte text through at up to four times the size."""
    body = json.dumps({"t": "€" * 100}, ensure_ascii=False)
    assert len(body) < 120 < len(body.encode())
    with pytest.raises(BadRequest, match="bytes"):
        parse_request(body, max_bytes=120)


def test_default_byte_limit_is_enforced() -> None:
    big = '{"pad": "' + "x" * limits.MAX_REQUEST_BYTES + '"}'
    with pytest.raises(BadRequest) as info:
        parse_request(big)
    assert info.value.kind == "limit"


# ------------------------------------------------------------------------------------ nesting


def test_depth_at_the_limit_is_accepted_and_one_more_is_not() -> None:
    assert parse_request(_nested(limits.MAX_DEPTH)) is not None
    with pytest.raises(BadRequest, match="nests deeper") as info:
        parse_request(_nested(limits.MAX_DEPTH + 1))
    assert info.value.kind == "limit"


def test_nesting_beyond_the_recursion_limit_is_a_limit_error() -> None:
    """100,000 brackets overflow json's own recursion; that too is a clean limit error."""
    with pytest.raises(BadRequest) as info:
        parse_request("[" * 100_000 + "]" * 100_000)
    assert info.value.kind == "limit"


# ------------------------------------------------------------------------ items per container


@pytest.mark.parametrize("make", [lambda n: list(range(n)), lambda n: {f"k{i}": i for i in range(n)}])
def test_items_per_container_are_bounded(make: Callable[[int], Any]) -> None:
    ok = json.dumps({"context": {"items": make(limits.MAX_CONTAINER_ITEMS)}})
    assert parse_request(ok)["context"]["items"] == make(limits.MAX_CONTAINER_ITEMS)
    over = json.dumps({"context": {"items": make(limits.MAX_CONTAINER_ITEMS + 1)}})
    with pytest.raises(BadRequest, match=f"the limit is {limits.MAX_CONTAINER_ITEMS}") as info:
        parse_request(over)
    assert info.value.kind == "limit"


def test_top_level_container_is_exempt_from_the_items_limit() -> None:
    """A batch is a top-level array; the service checks its length against its own limit."""
    batch = json.dumps([{}] * (limits.MAX_CONTAINER_ITEMS + 5))
    assert len(parse_request(batch)) == limits.MAX_CONTAINER_ITEMS + 5


# -------------------------------------------------------------------------- strictness (kind)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "a": 2}',
        '{"a": NaN}',
        '{"a": -Infinity}',
        '{"a": "\\ud800"}',
        '{"\\udfff": 1}',
        '{"a": ["ok", "\\uDBFF x"]}',
        '{"a": "\ud800"}',  # a raw lone surrogate, as surrogateescape'd stdin produces
        "[1, 2",
    ],
)
def test_malformed_json_is_a_request_error_not_a_crash(text: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_request(text)
    assert info.value.kind == "request"


def test_surrogate_pairs_are_accepted() -> None:
    assert parse_request('{"t": "\\ud83d\\ude00 \\u00e9"}') == {"t": "😀 é"}
    assert parse_request(b'{"t": "\\\\ud800 is text"}') == {"t": "\\ud800 is text"}  # an escaped backslash


def test_iter_requests_carries_the_kind() -> None:
    too_deep = _nested(limits.MAX_DEPTH + 1)
    lines = list(iter_requests('{"action": "x"}\n' + too_deep + "\n{bad\n"))
    assert [(ln.line, ln.kind, ln.error is None) for ln in lines] == [
        (1, "request", True),
        (2, "limit", False),
        (3, "request", False),
    ]


def test_a_rejected_input_decides_escalate_with_its_kind(core_policy: PolicySet) -> None:
    """What a caller does with a BadRequest: `reject` with its kind; the decision is safe."""
    try:
        parse_request('{"data_classes": [' + ",".join(["1"] * (limits.MAX_CONTAINER_ITEMS + 1)) + "]}")
    except BadRequest as exc:
        d = core_policy.reject(str(exc), kind=exc.kind)
    else:  # pragma: no cover - the limit above must trip
        pytest.fail("the items limit did not trip")
    assert d.effect.value == "escalate"
    assert [e.kind for e in d.errors] == ["limit"]
    assert d.reasons == ()


# ---------------------------------------------------------------------- set dimensions (engine)


def test_set_dimension_over_the_limit_escalates_with_a_limit_error(core_policy: PolicySet) -> None:
    """Enforced by the engine itself, so it holds for Python callers that never parse JSON."""
    req = base_request(action="order.status", data_classes=["nope"] * (limits.MAX_SET_VALUES + 1))
    d = core_policy.decide(req)
    assert d.effect.value == "escalate"
    assert [(e.kind, e.field) for e in d.errors] == [("limit", "data_classes")]
    assert str(limits.MAX_SET_VALUES) in d.errors[0].message


def test_set_dimension_at_the_limit_is_evaluated(core_policy: PolicySet) -> None:
    req = base_request(action="order.status", data_classes=["card_pan"] * limits.MAX_SET_VALUES)
    d = core_policy.decide(req)
    assert d.errors == ()
    assert d.effect.value == "escalate" and d.default_applied  # core's built-in default, no rule matched


def test_worst_set_dimension_within_the_limit_finishes(core_policy: PolicySet) -> None:
    """The work a set-dimension list can cause is bounded: every value unknown, each one a
    did-you-mean search, and still one decision with one error per value."""
    req = base_request(data_classes=[f"unknown_{i}" for i in range(limits.MAX_SET_VALUES)])
    d = core_policy.decide(req)
    assert d.effect.value == "escalate"
    assert len(d.errors) == limits.MAX_SET_VALUES
    assert {e.kind for e in d.errors} == {"request"}


# ------------------------------------------------------------------------- detector text limit


def test_detectors_scan_a_bounded_prefix_and_say_so(tmp_path: Path) -> None:
    """A megabyte of pasted text is scanned up to MAX_DETECTOR_TEXT_CHARS; a rule can escalate
    on `signals.truncated`, because the tail was not looked at."""
    policy_file = tmp_path / "p.cxp"
    policy_file.write_text(
        "use core\npackage lim\nrule unscanned_text {\n  when signals.truncated\n  decide escalate\n}\n"
        "rule routine {\n  decide allow\n}\n",
        encoding="utf-8",
    )
    policy = load(policy_file, detect=True)
    tail_card = " 4111 1111 1111 1111"
    text = "hello " * (limits.MAX_DETECTOR_TEXT_CHARS // 6 + 10) + tail_card
    d = policy.decide(base_request(action="order.status", payload={"text": text}))
    assert d.signals is not None and d.signals["truncated"] is True
    assert "card_pan" not in d.signals["pii"]  # it sits beyond the scanned prefix
    assert d.effect.value == "escalate"
    short = policy.decide(base_request(action="order.status", payload={"text": "hello" + tail_card}))
    assert short.signals is not None and short.signals["truncated"] is False
    assert short.effect.value == "allow"


# ------------------------------------------------------------------------------ regexes (RE2)

REGEX_POLICY = """
use core
package lim
rule odd_text {
  match   action = order.status
  when    payload.text.matches("^(a+)+$")
  decide  escalate
}
rule odd_text_slow_path {
  match   action = order.status
  when    int(context.n) > 0 && payload.text.matches("^(a|aa)*$")
  decide  require_otp
}
rule supplied_pattern {
  match   action = order.cancel
  when    payload.text.matches(context.pattern)
  decide  escalate
}
rule routine {
  decide allow
}
"""


@pytest.fixture(scope="module")
def regex_policy() -> PolicySet:
    return load_text(REGEX_POLICY, "regex.cxp")


def test_catastrophic_regex_runs_in_linear_time_on_both_paths(regex_policy: PolicySet) -> None:
    """`^(a+)+$` and `^(a|aa)*$` against "aaaa…!" take exponential time in a backtracking
    engine (Python's `re` would not finish this test); RE2 is linear. The second rule runs on
    cel-python (int() is not compiled), whose `matches` is replaced by the same RE2 call."""
    slow = regex_policy.rule("lim.odd_text_slow_path")
    assert slow is not None and slow.whens[0].compiled is False
    hostile = "a" * 50_000 + "!"
    d = regex_policy.decide(base_request(action="order.status", payload={"text": hostile}, context={"n": 1}))
    assert d.errors == ()
    assert d.effect.value == "allow"  # neither regex matches, so only `routine` does
    d = regex_policy.decide(base_request(action="order.status", payload={"text": "a" * 50_000}, context={"n": 1}))
    assert [r.rule for r in d.reasons] == ["lim.odd_text", "lim.odd_text_slow_path", "lim.routine"]


def test_backtracking_only_regex_features_do_not_compile() -> None:
    """RE2 has no backreferences or lookaround, so a pattern that needs backtracking is a
    compile error in the policy, not a slow request."""
    for pattern in (r"(a)\\1", "(?=a)a", "(?<!b)a"):
        text = f'use core\npackage lim\nrule r {{\n  when payload.text.matches("{pattern}")\n  decide escalate\n}}\n'
        with pytest.raises(PolicyError) as info:
            load_text(text, "bad.cxp")
        assert any("regular expression" in d.message for d in info.value.diagnostics), pattern


def test_request_supplied_pattern_that_re2_rejects_fails_safe(regex_policy: PolicySet) -> None:
    d = regex_policy.decide(base_request(action="order.cancel", payload={"text": "aaa"}, context={"pattern": r"(a)\1"}))
    assert d.effect.value == "escalate"  # the fail-safe: an erring condition of an escalate rule
    assert [(e.kind, e.rule) for e in d.errors] == [("condition", "lim.supplied_pattern")]
    assert "invalid regular expression" in d.errors[0].message


def test_lint_warns_on_nested_quantifiers(regex_policy: PolicySet) -> None:
    lint = pytest.importorskip("cxpolicy.tools.lint")
    if "CXP614" not in lint.CODES:
        pytest.skip("lint has no nested-quantifier rule (CXP614) in this tree")
    found = [d for d in lint.lint_policy(regex_policy) if d.code == "CXP614"]
    # `^(a+)+$` (line 6) is flagged. `^(a|aa)*$` (overlapping alternatives, just as
    # exponential when backtracking) is not: the lint is a nested-quantifier scan, and RE2
    # keeps both linear here either way.
    assert 6 in {d.span.line for d in found}


# ------------------------------------------------------------------------------------ CEL cost


def test_condition_cost_counts_comprehensions_by_the_items_limit() -> None:
    n = limits.MAX_CONTAINER_ITEMS
    assert limits.condition_cost("context.amount > 5") == 4  # `>`, `.amount`, `context`, `5`
    single = limits.condition_cost("context.items.exists(i, i > 5)")
    assert n <= single <= 4 * n
    nested = limits.condition_cost("context.items.exists(i, context.items.exists(j, i == j))")
    assert nested >= n * n > limits.MAX_CONDITION_COST >= single
    with pytest.raises(CelSyntaxError):
        limits.condition_cost("context.amount >")


def _shipped_conditions() -> list[tuple[str, str]]:
    from cxpolicy.resources import shipped_pack_names

    out: list[tuple[str, str]] = []
    for name in shipped_pack_names():
        out += [(f"pack {name}", c.expression.text) for r in load([], packs=[name]).rules for c in r.conditions]
    for ruleset in sorted((ROOT / "rulesets").iterdir()):
        if ruleset.is_dir():
            out += [(ruleset.name, c.expression.text) for r in load(ruleset).rules for c in r.conditions]
    return out


def test_shipped_conditions_stay_within_the_cost_limit() -> None:
    conditions = _shipped_conditions()
    assert len(conditions) > 20
    over = [(where, text) for where, text in conditions if limits.condition_cost(text) > limits.MAX_CONDITION_COST]
    assert over == []


def test_comprehension_over_a_list_at_the_items_limit_finishes(core_policy: PolicySet) -> None:
    """The largest list a parsed request can carry, walked by a comprehension with an error in
    every step (the slowest path through the compiled macro): it finishes and fails safe."""
    policy = load_text(
        "use core\npackage lim\nrule any_big_item {\n"
        "  when context.items.exists(i, i.price > 1000)\n  decide require_otp\n}\n",
        "cost.cxp",
    )
    items = json.dumps({"context": {"items": [{"sku": i} for i in range(limits.MAX_CONTAINER_ITEMS)]}})
    req = {**base_request(), **parse_request(items)}
    d = policy.decide(req)
    assert d.effect.value == "require_otp"  # every step erred (no `price`): fail-safe match
    assert [e.kind for e in d.errors] == ["condition"]


def test_always_erring_condition_is_bounded_fails_safe_and_linted() -> None:
    """A condition that errs on every request (a misspelt root) cannot loosen anything: an
    escalate rule matches by the fail-safe, an allow rule never does. Lint says so first."""
    text = (
        "use core\npackage lim\n"
        "rule misspelt_escalate {\n  when contxt.amount > 5\n  decide escalate\n}\n"
        "rule misspelt_allow {\n  when contxt.amount < 5\n  decide allow\n}\n"
    )
    policy = load_text(text, "err.cxp")
    for amount in (1, 10):
        d = policy.decide(base_request(action="order.status", context={"amount": amount}))
        assert d.effect.value == "escalate"
        assert [r.rule for r in d.reasons] == ["lim.misspelt_escalate"]
        assert sorted(e.rule or "" for e in d.errors) == ["lim.misspelt_allow", "lim.misspelt_escalate"]
    lint = pytest.importorskip("cxpolicy.tools.lint")
    if "CXP615" not in lint.CODES:
        pytest.skip("lint has no unknown-root rule (CXP615) in this tree")
    assert sum(d.code == "CXP615" for d in lint.lint_policy(policy)) == 2


def test_deeply_nested_cel_is_a_syntax_error_or_compiles_never_a_crash() -> None:
    """A policy author's runaway parenthesis: the CEL parser recurses, so depth must fail
    cleanly (cel-python raises the recursion limit itself; either outcome is acceptable)."""
    for depth in (50, 2000):
        text = "(" * depth + "context.a" + ")" * depth + " > 1"
        try:
            expr = compile_expression(text)
        except CelSyntaxError:
            continue
        assert expr.evaluate({"context": {"a": 2}}) is True
