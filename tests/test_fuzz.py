"""Fuzzing: hostile requests and broken policies never crash, hang or loosen a decision.

Four targets, each a property that must hold for *any* input:

* **Requests as Python values** (`PolicySet.decide`, what an embedding application calls):
  random JSON-like values and mutations of a valid request — wrong types, nulls, huge and
  deep values, unicode edge cases (lone surrogates, bidi and zero-width characters,
  homoglyphs of vocabulary values), NaN/±Infinity, int64 edges. A decision always comes back;
  an invalid request escalates with no rule matched; nothing is an `internal` error (that
  would be a caught bug); explaining never changes the decision.
* **Requests as bytes** (`parse_request` → `decide` → JSON, the CLI's and the service's
  path): random bytes and mutated JSON text, including duplicate keys, NaN tokens,
  surrogate escapes, deep brackets and oversized arrays. Either a `BadRequest` (kind
  `request` or `limit`) or a value inside every limit whose decision serialises.
* **.cxp sources** (parse → check → compile → lint, and `fmt`): mutations of every shipped
  and golden policy file and token soup. Either a `PolicySet` or a `PolicyError` whose
  diagnostics carry a code and a position; never another exception.
* **CEL text** in conditions: either `CelSyntaxError`, or an expression whose `evaluate`
  and `render` never raise on any activation.

"Never hang" is shown by the runs finishing (no wall-clock assertion: the machine is shared).
Each property has a fast variant in `make test` and a long one marked `slow` for `make fuzz`
(`CXPOLICY_FUZZ_EXAMPLES`, default 200). The number of cases run is printed at the end of the
module and stored in pytest's cache under `cxpolicy/fuzz_cases`.

Known bugs in other modules may be matched precisely (`KNOWN_BUGS`, empty now) and counted as
hypothesis events instead of failing the run; the bugs found so far are fixed and each keeps a
regression test below.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import traceback
from collections import Counter
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cxpolicy import limits
from cxpolicy.cel import CelEvalError, CelSyntaxError, compile_expression
from cxpolicy.engine.decision import Decision
from cxpolicy.engine.loader import collect_sources, compile_sources, load
from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.engine.render import decision_text
from cxpolicy.engine.requests import BadRequest, iter_requests, parse_request
from cxpolicy.kinds import Effect
from cxpolicy.lang.source import PolicyError, SourceFile
from cxpolicy.tools.fmt import FormatError, format_source
from tests.conftest import ROOT, base_request

FAST = 60  # per fast property: together a few seconds of `make test`
LONG = int(os.environ.get("CXPOLICY_FUZZ_EXAMPLES", "200"))
CASES: Counter[str] = Counter()

FUZZ_POLICY = """
use core
package fuzz

attribute context.items: list = []
attribute context.note: string
attribute context.qty: any
attribute context.count: any
attribute context.flag: any
attribute context.meta: map = {}

rule big_refund {
  match   action = refund.execute
  when    context.amount > 1000
  decide  escalate to "refunds"
}
rule risky_needs_otp {
  match   risk_tier >= high
  unless  context.otp_verified
  decide  require_otp
}
rule injected_text {
  when    payload.text.matches("(?i)ignore (all|previous) instructions") || payload.text.matches("^(a+)+$")
  decide  escalate to "security"
}
rule expensive_item {
  when    context.items.exists(i, i.price > 100)
  decide  require_otp
}
rule supervisor_may {
  when    "supervisor" in actor.roles
  decide  allow
}
rule known_customer {
  match   channel in [chat, web, app]
  when    size(customer.id) > 3 && customer.id.startsWith("C-")
  decide  allow
}
rule unit_price {
  when    context.amount / context.qty > 10
  decide  require_otp
}
rule counted_on_cel_python {
  when    int(context.count) > 2
  decide  escalate
}
rule cards_masked {
  match   data_class in [card_pan, card_cvv]
  decide  redact as last4
}
rule unnamed_classes {
  match   data_class in [aadhaar, email]
  decide  redact
}
rule injection_signal {
  when    has(signals.prompt_injection) && signals.prompt_injection.score > 0.5
  decide  escalate
}
rule note_words {
  unless  context.note.contains("refund") || context.note.endsWith("!")
  decide  allow
}
rule not_a_bool {
  match   channel = voice
  when    context.flag ? context.amount : false
  decide  require_otp
}
rule meta_lookup {
  when    context.meta["k"] == "v" && context.meta.all(k, k.size() < 10)
  decide  allow
}
rule bidi_override {
  when    payload.text.contains("\\u202e")
  decide  escalate
}
"""


@pytest.fixture(scope="module", autouse=True)
def _record_cases(request: pytest.FixtureRequest) -> Iterator[None]:
    """Report how many fuzz cases ran, per target, and keep the numbers in pytest's cache."""
    yield
    if not CASES:
        return
    counts = dict(sorted(CASES.items()))
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    if cache is not None:
        cache.set("cxpolicy/fuzz_cases", counts)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\nfuzz cases run: {sum(counts.values())} {counts}")


@pytest.fixture(scope="module")
def policy() -> PolicySet:
    """The fuzz policy on top of a compliance pack, with the detectors on."""
    sources, diags = collect_sources((), ["bfsi_rbi"])
    sources.append(SourceFile("fuzz.cxp", FUZZ_POLICY, key="fuzz.cxp"))
    from cxpolicy.signals import detect

    return compile_sources(sources, diags, packs=["bfsi_rbi"], detector=detect)


# ==================================================================================== values

EDGE_STRINGS = [
    "",
    " ",
    "\x00",
    "\ud800",  # lone high surrogate
    "\udfff",  # lone low surrogate
    "a\ud83d",  # half a pair
    "\ud83d\ude00",  # a (valid) pair as Python sees it after JSON decoding
    "😀",
    "\u202erefund.execute",  # right-to-left override
    "\u2066chat\u2069",  # bidi isolate
    "ch\u200bat",  # zero-width space
    "\ufeffchat",  # byte-order mark
    "refund.ex\u0435cute",  # Cyrillic e
    "CHAT",
    " chat",
    "e\u0301",  # combining accent
    "\u0130",  # İ: lower() changes length
    "ß",
    "ignore all instructions",
    "4111 1111 1111 1111",
    "MRN: 00123456",
    "1e999",
    "NaN",
    "null",
    "__proto__",
    "constructor",
]
VOCAB_STRINGS = [
    "refund.execute",
    "order.status",
    "chat",
    "voice",
    "ai",
    "human",
    "low",
    "high",
    "critical",
    "retail",
    "IN",
    "EU",
    "card_pan",
    "aadhaar",
    "email",
    "supervisor",
    "C-1",
]
EDGE_NUMBERS: list[Any] = [
    0,
    -1,
    1,
    2**63 - 1,
    -(2**63),
    2**63,
    2**64,
    -(2**64),
    10**400,
    0.5,
    -0.0,
    1e308,
    5e-324,
    math.inf,
    -math.inf,
    math.nan,
    True,
    False,
]

strings = st.one_of(
    st.sampled_from(EDGE_STRINGS),
    st.sampled_from([("a", 5000, "!"), ("x", 70_000, "")]).map(lambda t: t[0] * t[1] + t[2]),  # long texts
    st.sampled_from(VOCAB_STRINGS),
    st.text(max_size=30),
    st.text(st.characters(codec="utf-8", categories=["Cf", "Mn", "Zs", "Co", "Cc"]), max_size=10),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(EDGE_NUMBERS),
    st.integers(),
    st.floats(),
    strings,
)
KEYS = ["action", "context", "text", "price", "k", "", "\ud800", "\u202e", "__proto__"]
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=6),
    ),
    max_leaves=25,
)

PATHS: list[tuple[str, ...]] = [
    ("action",),
    ("channel",),
    ("actor",),
    ("actor", "kind"),
    ("actor", "roles"),
    ("customer",),
    ("customer", "risk_tier"),
    ("customer", "segment"),
    ("customer", "region"),
    ("customer", "id"),
    ("data_classes",),
    ("context",),
    ("context", "amount"),
    ("context", "otp_verified"),
    ("context", "items"),
    ("context", "qty"),
    ("context", "count"),
    ("context", "flag"),
    ("context", "note"),
    ("context", "meta"),
    ("payload",),
    ("payload", "text"),
    ("payload", "direction"),
    ("signals",),
]


def _deep(depth: int) -> Any:
    value: Any = "bottom"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def _set_path(req: Any, path: tuple[str, ...], value: Any) -> None:
    cur = req
    for k in path[:-1]:
        nxt = cur.get(k)
        if not isinstance(nxt, dict):
            nxt = cur[k] = {}
        cur = nxt
    cur[path[-1]] = value


@st.composite
def mutated_requests(draw: st.DrawFn) -> Any:
    """A valid request, then a few mutations at the fields the engine and conditions read."""
    req: dict[str, Any] = base_request(
        data_classes=draw(st.lists(st.sampled_from(["card_pan", "aadhaar", "email", "phone"]), max_size=3)),
        context={
            "amount": draw(st.sampled_from([5, 500, 5000, 999.5])),
            "qty": draw(st.sampled_from([0, 1, 3, 0.0])),
            "items": [{"price": 50}, {"price": 150}][: draw(st.integers(0, 2))],
            "note": "please refund!",
            "count": 3,
            "flag": True,
            "meta": {"k": "v"},
        },
        payload={"text": draw(strings)},
    )
    for _ in range(draw(st.integers(0, 4))):
        path = draw(st.sampled_from(PATHS))
        how = draw(st.sampled_from(["value", "delete", "huge", "deep", "wrap", "vocab"]))
        if how == "delete":
            parent = req
            for k in path[:-1]:
                parent = parent.get(k) if isinstance(parent, dict) else None
            if isinstance(parent, dict):
                parent.pop(path[-1], None)
            continue
        if how == "value":
            value = draw(json_values)
        elif how == "huge":
            n = draw(st.sampled_from([limits.MAX_SET_VALUES, limits.MAX_SET_VALUES + 1, limits.MAX_CONTAINER_ITEMS]))
            value = [draw(st.sampled_from(["card_pan", "nope", {"price": 500}, 1]))] * n
        elif how == "deep":
            value = _deep(draw(st.sampled_from([limits.MAX_DEPTH, 200, 2000])))
        elif how == "wrap":
            value = [draw(st.sampled_from(VOCAB_STRINGS))]
        else:
            value = draw(st.sampled_from(VOCAB_STRINGS + EDGE_STRINGS[:16]))
        _set_path(req, path, value)
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)  # not even an object, sometimes
    return req


_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_surrogate(value: Any) -> bool:
    """Whether any string (or key) holds a lone surrogate; iterative, as values may be deep."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if _SURROGATE.search(v):
                return True
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return False


def _view(d: Decision) -> tuple[Any, ...]:
    return (
        d.effect,
        tuple(r.rule for r in d.reasons),
        d.redact,
        d.escalate_to,
        tuple((e.kind, e.field, e.rule, e.message) for e in d.errors),
        d.default_applied,
    )


def check_decision(policy: PolicySet, request: Any, *, serialisable: bool) -> Decision:
    """The invariants every decision keeps, whatever the request."""
    d = policy.decide(request)
    assert isinstance(d, Decision)
    assert isinstance(d.effect, Effect)
    internal = [e.message for e in d.errors if e.kind == "internal"]
    assert internal == [], internal  # an internal error is a bug the engine caught
    if any(e.kind in ("request", "limit") for e in d.errors):
        # LANGUAGE.md §5: an invalid request escalates and no rule is evaluated.
        assert d.effect is Effect.ESCALATE
        assert d.reasons == () and d.redact == () and not d.default_applied
        event(f"invalid request ({'limit' if any(e.kind == 'limit' for e in d.errors) else 'request'})")
    else:
        event(f"decided {d.effect.value}")
    for e in d.errors:
        assert e.kind in ("request", "condition", "limit"), e
        assert (e.rule is not None) == (e.kind == "condition"), e
    explained = policy.decide(request, explain=True)
    assert _view(explained) == _view(d)  # the trace is built on the side, never changes the answer
    assert explained.trace is not None
    if serialisable:
        orjson.dumps(d.to_dict())
        orjson.dumps(explained.to_dict())
        decision_text(explained)
    return d


def _decide_any_value(policy: PolicySet, request: Any) -> None:
    CASES["requests as values"] += 1
    check_decision(policy, request, serialisable=not _has_surrogate(request))


@settings(max_examples=FAST, deadline=None, suppress_health_check=list(HealthCheck))
@given(request=mutated_requests())
def test_decide_never_fails_on_any_request(policy: PolicySet, request: Any) -> None:
    _decide_any_value(policy, request)


@pytest.mark.slow
@settings(max_examples=LONG, deadline=None, suppress_health_check=list(HealthCheck))
@given(request=mutated_requests())
def test_decide_never_fails_on_any_request_long(policy: PolicySet, request: Any) -> None:
    _decide_any_value(policy, request)


# ===================================================================================== bytes


def _mutate_text(draw: st.DrawFn, text: str) -> str:
    pieces = [
        '"action": "x", ',
        '"action": "refund.execute", "action": "order.status", ',
        "NaN",
        "-Infinity",
        "1e999",
        '"\\ud800"',
        '"\\udc00\\ud800"',
        '"\\ud83d\\ude00"',
        "\\",
        '"',
        "[" * 40,
        "]" * 40,
        "{",
        "}",
        ",",
        ":",
        "\ufeff",
        "\u202e",
        "\x00",
        "[" + ",".join(["0"] * (limits.MAX_CONTAINER_ITEMS + 1)) + "]",
        "9" * 400,
        "true",
        "null",
        "\n",
    ]
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = min(len(text), i + draw(st.integers(0, 12)))
        op = draw(st.sampled_from(["insert", "replace", "delete", "dup-key"]))
        if op == "dup-key" and text.startswith("{"):
            text = "{" + draw(st.sampled_from(pieces[:2])) + text[1:]
        elif op == "delete":
            text = text[:i] + text[j:]
        else:
            piece = draw(st.sampled_from(pieces))
            text = text[:i] + piece + (text[j:] if op == "replace" else text[i:])
    return text


@st.composite
def request_texts(draw: st.DrawFn) -> str | bytes:
    kind = draw(st.sampled_from(["dumped", "mutated", "mutated", "bytes", "deep", "lines"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "deep":
        depth = draw(st.sampled_from([limits.MAX_DEPTH - 1, limits.MAX_DEPTH, limits.MAX_DEPTH + 1, 5000]))
        return '{"a": ' * depth + "1" + "}" * depth
    base = draw(mutated_requests())
    try:
        text = json.dumps(base, ensure_ascii=draw(st.booleans()))  # NaN and inf come out as tokens
    except (ValueError, RecursionError):
        text = "{}"
    if kind == "mutated":
        text = _mutate_text(draw, text)
    if kind == "lines":
        text = text + "\n" + _mutate_text(draw, text) + "\n\n" + json.dumps({"action": "order.status"})
    if draw(st.booleans()):
        return text.encode("utf-8", "surrogatepass")  # the service gets bytes, invalid UTF-8 included
    return text


def _within_limits(value: Any) -> None:
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        assert depth <= limits.MAX_DEPTH
        if isinstance(v, float):
            assert math.isfinite(v)
        elif isinstance(v, int) and not isinstance(v, bool):
            assert -(2**63) <= v < 2**64
        elif isinstance(v, str):
            assert not _has_surrogate(v)
        elif isinstance(v, dict | list):
            if depth > 1:
                assert len(v) <= limits.MAX_CONTAINER_ITEMS
            items = list(v.items()) if isinstance(v, dict) else [(None, x) for x in v]
            for k, x in items:
                assert k is None or not _has_surrogate(k)
                stack.append((x, depth + 1))


def _parse_and_decide(policy: PolicySet, data: str | bytes) -> None:
    CASES["requests as bytes"] += 1
    try:
        value = parse_request(data)
    except BadRequest as exc:
        assert exc.kind in ("request", "limit")
        event(f"BadRequest ({exc.kind})")
        d = policy.reject(str(exc), kind=exc.kind)
        assert d.effect is Effect.ESCALATE
        orjson.dumps(d.to_dict())
    else:
        event("parsed")
        _within_limits(value)
        check_decision(policy, value, serialisable=True)
    if isinstance(data, str):
        for line in iter_requests(data):
            assert line.error is None or line.value is None
            assert line.kind in ("request", "limit")


@settings(max_examples=FAST, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=request_texts())
def test_request_bytes_parse_or_are_rejected(policy: PolicySet, data: str | bytes) -> None:
    _parse_and_decide(policy, data)


@pytest.mark.slow
@settings(max_examples=LONG, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=request_texts())
def test_request_bytes_parse_or_are_rejected_long(policy: PolicySet, data: str | bytes) -> None:
    _parse_and_decide(policy, data)


# ============================================================================== .cxp sources

CORPUS_FILES = sorted(
    [
        *ROOT.glob("rulesets/*/*.cxp"),
        *ROOT.glob("compliance_packs/*/*.cxp"),
        *ROOT.glob("tests/golden/**/*.cxp"),
        ROOT / "cxpolicy" / "vocab" / "core.cxp",
    ]
)
CORPUS = [p.read_text(encoding="utf-8") for p in CORPUS_FILES]
CORPUS.append(FUZZ_POLICY)
CXP_TOKENS = [
    "rule r {",
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "when ",
    "unless ",
    "match ",
    "decide ",
    "because ",
    "cite ",
    "scope ",
    "package p.q",
    "use core",
    "use nosuch",
    "default escalate",
    "dimension d at x.y: {a, b}",
    "dimension d at x: ordered {a, b} default a",
    "extend dimension channel: {fax}",
    "attribute context.z: number = 1",
    "attribute context.z: nosuchtype",
    'test "t" { request {"action": "order.status"} expect allow }',
    "expect ",
    "request ",
    "redact [card_pan] as token",
    'escalate to "q"',
    "allow",
    "=",
    "!=",
    " in ",
    " not in ",
    ">=",
    ",",
    '"',
    "'",
    '"\\t"',
    '"\\q"',
    '"\\ud800"',
    '"""',
    "#",
    "\n",
    "\t",
    "\r\n",
    "\x00",
    "\x01",
    "\x02",
    "\u202e",
    "\ud800",
    "😀",
    "context.amount",
    "&&",
    "||",
    "!",
    "?",
    ":",
    "has(",
    "size(",
    ".exists(x, ",
    ".matches('(a+)+$')",
    ".matches('(a)\\\\1')",
    "int(",
    "1e999",
    "99999999999999999999",
    "0x",
    "b'",
    "(" * 100,
    ")" * 100,
]


@st.composite
def cxp_sources(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 5)) == 0:
        return "".join(draw(st.lists(st.sampled_from(CXP_TOKENS), max_size=40)))  # token soup
    text = draw(st.sampled_from(CORPUS))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = min(len(text), i + draw(st.integers(0, 40)))
        op = draw(st.sampled_from(["delete", "insert", "replace", "splice", "truncate", "duplicate-line"]))
        if op == "delete":
            text = text[:i] + text[j:]
        elif op == "insert":
            text = text[:i] + draw(st.sampled_from(CXP_TOKENS)) + text[i:]
        elif op == "replace":
            text = text[:i] + draw(st.sampled_from(CXP_TOKENS)) + text[j:]
        elif op == "splice":
            other = draw(st.sampled_from(CORPUS))
            k = draw(st.integers(0, len(other)))
            text = text[:i] + other[k : k + draw(st.integers(0, 300))] + text[j:]
        elif op == "truncate":
            text = text[:i]
        else:
            lines = text.split("\n")
            n = draw(st.integers(0, max(0, len(lines) - 1)))
            lines.insert(n, lines[n])
            text = "\n".join(lines)
    return text


# Bugs in modules this test does not own, matched by exception type and the function that
# raised it. Each needs a regression test below.
KNOWN_BUGS: dict[str, tuple[type[BaseException], str]] = {
    # Empty: the three found so far (a bad string escape, a lone surrogate in the revision
    # hash and in an RE2 pattern) are fixed; their regression tests are below.
}


def _known_bug(exc: BaseException) -> str | None:
    frames = {f.name for f in traceback.extract_tb(exc.__traceback__)}
    for name, (kind, function) in KNOWN_BUGS.items():
        if isinstance(exc, kind) and function in frames:
            return name
    return None


def _compile(text: str) -> PolicySet:
    sources, diags = collect_sources((), ())
    sources.append(SourceFile("fuzzed.cxp", text, key="fuzzed.cxp"))
    return compile_sources(sources, diags)


def _compile_or_diagnose(text: str) -> None:
    CASES[".cxp sources"] += 1
    try:
        compiled = _compile(text)
    except PolicyError as exc:
        errors = [d for d in exc.diagnostics if d.is_error]
        assert errors, "a rejected policy must say why"
        for d in errors:
            assert re.fullmatch(r"CXP\d{3}", d.code), d
            assert d.message
            assert d.span.line >= 0 and d.span.col >= 0, d
        exc.render()
        event("rejected with diagnostics")
    except Exception as exc:
        known = _known_bug(exc)
        if known is None:
            raise
        event(f"known bug: {known}")
        return
    else:
        event("compiled")
        d = compiled.decide(base_request())
        assert not [e for e in d.errors if e.kind == "internal"]
        from cxpolicy.tools.lint import lint_policy

        lint_policy(compiled)
    try:
        formatted = format_source(text, "fuzzed.cxp")
    except FormatError as exc:
        assert exc.diagnostics
    except Exception as exc:
        if _known_bug(exc) is None:
            raise
    else:
        assert format_source(formatted, "fuzzed.cxp") == formatted


@settings(max_examples=FAST, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=cxp_sources())
def test_policy_source_compiles_or_is_diagnosed(text: str) -> None:
    _compile_or_diagnose(text)


@pytest.mark.slow
@settings(max_examples=LONG, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=cxp_sources())
def test_policy_source_compiles_or_is_diagnosed_long(text: str) -> None:
    _compile_or_diagnose(text)


@pytest.mark.parametrize("literal", ['"\\q"', '"\\u12"'])
def test_regression_bad_string_escape_is_a_diagnostic(literal: str) -> None:
    with pytest.raises(PolicyError) as info:
        _compile(f"package p\nrule r {{\n  decide allow\n  because {literal}\n}}\n")
    assert [d.code for d in info.value.diagnostics] == ["CXP103"]


def test_regression_raw_tab_in_a_string_is_kept() -> None:
    policy = _compile('package p\nrule r {\n  decide allow\n  because "tab\there"\n}\n')
    assert policy.rules[0].reason.because == "tab\there"


def test_regression_lone_surrogate_in_policy_text_is_not_a_crash() -> None:
    with contextlib.suppress(PolicyError):
        _compile('package p\nrule r {\n  decide allow\n  because "x"  # \ud800\n}\n')


def test_regression_regex_with_a_lone_surrogate_escape_is_a_diagnostic() -> None:
    with pytest.raises(PolicyError):
        _compile('package p\nrule r {\n  when payload.text.matches("a\\ud800")\n  decide escalate\n}\n')


# ======================================================================================= CEL


@pytest.mark.parametrize("opening", ['"', "'", '"""', 'b"'])
@pytest.mark.parametrize("escape", ["\\\\", "\\a", "\\x41"])
def test_unterminated_cel_string_never_reaches_the_backtracking_lexer(
    monkeypatch: pytest.MonkeyPatch, opening: str, escape: str
) -> None:
    """Found by atheris (a 416 s stall): cel-python's STRING_LIT/MLSTRING_LIT regexes,
    `"(?:\\[abfnrtv"'\\]|...|.)*?"`, let a backslash be read either as the start of an
    escape or as `.`, so an unterminated literal of n escapes fails in ~1.5^n to 2^n steps of
    Python's `re` (30 take 0.4 s, 60 over a day). A `when` line such as
    `payload.text == "\\\\...` in a .cxp file therefore hangs lint, eval and reload.

    The fix belongs before Lark runs (cxpolicy/cel/syntax.py): scan string literals linearly
    and report an unterminated one as a CelSyntaxError. This test passes once that holds; it
    never runs the slow path, because the watched parser refuses such text instead of lexing
    it (no clock involved)."""
    import celpy.celparser

    real = celpy.celparser.CELParser.parse

    def watched(self: Any, text: str, *args: Any, **kwargs: Any) -> Any:
        assert text.count("\\") < 20, "an unterminated string reached cel-python's backtracking lexer"
        return real(self, text, *args, **kwargs)

    monkeypatch.setattr(celpy.celparser.CELParser, "parse", watched)
    with pytest.raises(CelSyntaxError):
        compile_expression("payload.text == " + opening + escape * 60)


CEL_PIECES = [
    "'a\\ud800'",
    "context.amount",
    "context.items",
    "payload.text",
    "actor.roles",
    "x",
    "1",
    "1.5",
    "-9223372036854775808",
    "18446744073709551615u",
    '"s"',
    "'\\ud800'",
    "b'\\xff'",
    "null",
    "true",
    "[1, 'a']",
    "{'k': 1}",
    " + ",
    " - ",
    " * ",
    " / ",
    " % ",
    " == ",
    " < ",
    " && ",
    " || ",
    " ? ",
    " : ",
    "!",
    " in ",
    "(",
    ")",
    "[",
    "]",
    ".",
    ",",
    "size(",
    "has(",
    "int(",
    "string(",
    "double(",
    "timestamp(",
    "duration(",
    ".exists(i, ",
    ".all(i, ",
    ".map(i, ",
    ".filter(i, ",
    ".matches(",
    ".contains(",
    "dyn(",
    "type(",
    "i",
]


@st.composite
def cel_texts(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        text = draw(st.sampled_from(shipped_conditions()))
        for _ in range(draw(st.integers(1, 3))):
            i = draw(st.integers(0, len(text)))
            j = min(len(text), i + draw(st.integers(0, 8)))
            text = text[:i] + draw(st.sampled_from(CEL_PIECES)) + text[j:]
        return text
    return "".join(draw(st.lists(st.sampled_from(CEL_PIECES), min_size=1, max_size=12)))


@cache
def shipped_conditions() -> list[str]:
    rules = load([], packs=["bfsi_rbi", "hipaa"]).rules
    return sorted({c.expression.text for r in rules for c in r.conditions})


def _cel_never_raises(text: str, activation: Any) -> None:
    CASES["CEL texts"] += 1
    try:
        expr = compile_expression(text)
    except CelSyntaxError as exc:
        assert exc.line >= 1 and exc.col >= 1
        event("CEL syntax error")
        return
    except Exception as exc:
        known = _known_bug(exc)
        if known is None:
            raise
        event(f"known bug: {known}")
        return
    value = expr.evaluate(activation)
    event("CEL error value" if isinstance(value, CelEvalError) else f"CEL {type(value).__name__}")
    expr.render(activation)
    try:
        expr(activation)  # the calling convention: the same outcome, errors raised
    except CelEvalError:
        assert isinstance(value, CelEvalError)
    else:
        assert not isinstance(value, CelEvalError)


activations = st.fixed_dictionaries(
    {
        "context": st.dictionaries(st.sampled_from(["amount", "items", "x"]), json_values, max_size=3),
        "payload": st.fixed_dictionaries({"text": strings}),
        "actor": st.fixed_dictionaries({"roles": st.lists(strings, max_size=3)}),
    }
)


@settings(max_examples=FAST, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=cel_texts(), activation=activations)
def test_cel_text_compiles_or_is_a_syntax_error(text: str, activation: Any) -> None:
    _cel_never_raises(text, activation)


@pytest.mark.slow
@settings(max_examples=LONG, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=cel_texts(), activation=activations)
def test_cel_text_compiles_or_is_a_syntax_error_long(text: str, activation: Any) -> None:
    _cel_never_raises(text, activation)


# ============================================================ targeted cases the fuzzer found


def test_lone_surrogate_escape_is_rejected_at_the_boundary(policy: PolicySet) -> None:
    """Found by this fuzzer: `"\\ud800"` parsed into a string that orjson cannot write back,
    so the decision echoing it (an unknown `action`) failed to serialise: a 500 from the
    service and a traceback from the CLI. parse_request now refuses it."""
    with pytest.raises(BadRequest, match="surrogate"):
        parse_request('{"action": "\\ud800"}')
    d = policy.decide({"action": "\ud800"})  # a Python caller can still pass one: decided safely
    assert d.effect is Effect.ESCALATE


def test_utf8_encoded_surrogate_in_bytes_is_rejected(policy: PolicySet) -> None:
    """Found by this fuzzer (long run): json.loads decodes bytes with "surrogatepass", so
    ED A0 80 (a surrogate in UTF-8 form, invalid UTF-8) became a lone surrogate in a body the
    service had accepted, and its decision could not be serialised."""
    for body in (b'[{"\xed\xa0\x80": null}]', b'{"action": "\xed\xbf\xbf"}'):
        with pytest.raises(BadRequest, match="surrogate"):
            parse_request(body)
    assert parse_request(b'{"a": "\xed\x9f\xbf"}') == {"a": "\ud7ff"}  # the last code point before them


def test_text_with_raw_surrogates_is_rejected_not_a_crash() -> None:
    """Found by this fuzzer: stdin decoded with surrogateescape made parse_request's size
    check (`str.encode()`) raise UnicodeEncodeError out of the CLI."""
    with pytest.raises(BadRequest):
        parse_request(b'{"a": "\xff"}'.decode("utf-8", "surrogateescape"))
    assert [ln.error is not None for ln in iter_requests('{"a": "\udcff"}\n{"b": 1}\n')] == [True, False]


@pytest.mark.parametrize("number", ["1e999", "-1e999", "18446744073709551616", "-9223372036854775809", "1" * 5000])
def test_numbers_json_cannot_carry_exactly_are_rejected(number: str) -> None:
    """Found by this fuzzer: `1e999` parsed as infinity (which the strict parser exists to
    refuse, and which the audit log cannot store: the service failed after deciding), and an
    integer of more than 4,300 digits made json.loads raise ValueError out of parse_request.
    Integers beyond 64 bits are refused too: CEL has none and the audit log cannot store them."""
    with pytest.raises(BadRequest) as info:
        parse_request('{"context": {"amount": ' + number + "}}")
    assert info.value.kind == "request"
    assert parse_request("[18446744073709551615, -9223372036854775808, 1e308]") == [2**64 - 1, -(2**63), 1e308]


def test_corpus_is_not_empty() -> None:
    """The mutation fuzzer is only as good as its seeds: every shipped and golden file."""
    assert len(CORPUS_FILES) >= 30
    assert all(isinstance(p, Path) and p.suffix == ".cxp" for p in CORPUS_FILES)
