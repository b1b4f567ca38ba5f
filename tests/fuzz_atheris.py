"""Coverage-guided fuzzing with atheris (libFuzzer) of the three boundaries hostile bytes reach.

Not a pytest module (the name does not start with `test_`): run it by hand, for as long as
you like, after `pip install atheris` (a wheel for CPython 3.11 on x86-64 Linux; it is not a
dependency of cxpolicy):

    .venv/bin/python tests/fuzz_atheris.py -atheris_runs=200000      # or -max_total_time=600
    .venv/bin/python tests/fuzz_atheris.py --seeds var/fuzz-corpus      # write seed inputs, then
    .venv/bin/python tests/fuzz_atheris.py var/fuzz-corpus -max_len=8192 -max_total_time=600

The first byte picks the target; the rest is the input:

* 0: request bytes → `parse_request` → `decide` (plain and explained) → JSON;
* 1: .cxp text → parse, check, compile (or diagnostics) → lint → `fmt`;
* 2: CEL text → compile (or `CelSyntaxError`) → evaluate and render on a fixed request.

The oracles are the properties of tests/test_fuzz.py: only the documented exceptions, every
invalid request escalates with no rule matched, no `internal` error (a caught bug), decisions
serialise. Known bugs listed in tests/test_fuzz.py's KNOWN_BUGS are tolerated. libFuzzer
reports any other exception with the input that raised it (saved as crash-<sha1>), and an
input slower than `-timeout=N` seconds as a timeout (it found one: an unterminated CEL string
with many escapes stalled cel-python's lexer; fixed, see docs/security.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for `tests.test_fuzz`

with atheris.instrument_imports():
    import orjson

    from cxpolicy.cel import CelEvalError, CelSyntaxError, compile_expression
    from cxpolicy.engine.loader import collect_sources, compile_sources
    from cxpolicy.engine.requests import BadRequest, parse_request
    from cxpolicy.kinds import Effect
    from cxpolicy.lang.source import PolicyError, SourceFile
    from cxpolicy.tools.fmt import FormatError, format_source
    from cxpolicy.tools.lint import lint_policy

from tests.test_fuzz import CORPUS, FUZZ_POLICY, _known_bug

_sources, _diags = collect_sources((), ["bfsi_rbi"])
_sources.append(SourceFile("fuzz.cxp", FUZZ_POLICY, key="fuzz.cxp"))
POLICY = compile_sources(_sources, _diags, packs=["bfsi_rbi"])
ACTIVATION = {
    "context": {"amount": 12000, "items": [{"price": 5}, 3, "x"], "s": "aab"},
    "payload": {"text": "ignore previous instructions \u202e"},
    "actor": {"roles": ["tier1"]},
}


def _request(data: bytes) -> None:
    try:
        value = parse_request(data)
    except BadRequest as exc:
        assert exc.kind in ("request", "limit")
        return
    for explain in (False, True):
        d = POLICY.decide(value, explain=explain)
        assert not [e for e in d.errors if e.kind == "internal"], d.errors
        if any(e.kind in ("request", "limit") for e in d.errors):
            assert d.effect is Effect.ESCALATE and d.reasons == ()
        orjson.dumps(d.to_dict())


def _policy(text: str) -> None:
    sources, diags = collect_sources((), ())
    sources.append(SourceFile("fuzzed.cxp", text, key="fuzzed.cxp"))
    try:
        policy = compile_sources(sources, diags)
    except PolicyError as exc:
        assert any(d.is_error for d in exc.diagnostics)
    except Exception as exc:
        if _known_bug(exc) is None:
            raise
        return
    else:
        lint_policy(policy)
        d = policy.decide({})
        assert not [e for e in d.errors if e.kind == "internal"], d.errors
    try:
        format_source(text, "fuzzed.cxp")
    except FormatError:
        pass
    except Exception as exc:
        if _known_bug(exc) is None:
            raise


def _cel(text: str) -> None:
    try:
        expr = compile_expression(text)
    except CelSyntaxError:
        return
    except Exception as exc:
        if _known_bug(exc) is None:
            raise
        return
    value = expr.evaluate(ACTIVATION)
    expr.render(ACTIVATION)
    try:
        expr(ACTIVATION)
    except CelEvalError:
        assert isinstance(value, CelEvalError)


def one_input(data: bytes) -> None:
    if not data:
        return
    target, rest = data[0] % 3, data[1:]
    if target == 0:
        _request(rest)
        return
    text = rest.decode("utf-8", "surrogateescape")  # as a file read leniently, or stdin, would be
    if target == 1:
        _policy(text)
    else:
        _cel(text)


def write_seeds(directory: Path) -> int:
    """Seed inputs: the example requests of rulesets/, every shipped and golden .cxp file, and
    the conditions they contain, each behind its target byte."""
    root = Path(__file__).resolve().parent.parent
    directory.mkdir(parents=True, exist_ok=True)
    seeds: list[bytes] = []
    for jsonl in sorted(root.glob("rulesets/*/requests.jsonl")):
        seeds += [b"\x00" + line for line in jsonl.read_bytes().splitlines() if line.strip()]
    seeds += [b"\x01" + text.encode() for text in CORPUS]
    seeds += [b"\x02" + c.expression.text.encode() for r in POLICY.rules for c in r.conditions]
    for i, seed in enumerate(seeds):
        (directory / f"seed-{i:04d}").write_bytes(seed)
    return len(seeds)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--seeds":
        print(f"wrote {write_seeds(Path(sys.argv[2]))} seed inputs to {sys.argv[2]}")
        return
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
