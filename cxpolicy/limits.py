"""Resource limits: every bound on the work one request (or one policy) can cause, in one place.

Input: nothing (constants). Output: the bounds the readers, the engine and the detectors enforce.

A policy engine sits in front of every agent action, so a request that makes it slow is as bad
as one that makes it wrong. Pure-Python work cannot be pre-empted by a timeout (a thread cannot
be interrupted in the middle of a regex or a loop), so the engine does not try: the work is
bounded *by construction* instead, and each bound below names what it caps and who enforces it.

    bytes per request ─┐
    nesting depth      ├─ cxpolicy.engine.requests.parse_request (CLI input, HTTP bodies)
    items per container┘   → every list a CEL comprehension walks has ≤ MAX_CONTAINER_ITEMS
    values per set dimension ── PolicySet.decide (also for Python callers passing dicts)
    text the detectors scan ─── cxpolicy.signals (the tail beyond it is reported `truncated`)
    regexes ─────────────────── RE2 (linear time, no backreferences), never Python `re`
    CEL cost ────────────────── condition_cost: comprehensions multiply by MAX_CONTAINER_ITEMS
                                 (checked for shipped policies by a test; not yet by lint)

Exceeding a per-request limit gives an `escalate` decision whose error has kind `limit` (or,
over HTTP, a 413/400 before any decision is made); it never raises and never hangs. The
defaults are documented, with the threat each one answers, in docs/security.md, and
tests/test_limits.py holds the modules that own a limit equal to the value here.

This module imports nothing heavy: `requests` and `engine` read their limits from it.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = [
    "MAX_CONDITION_COST",
    "MAX_CONTAINER_ITEMS",
    "MAX_DEPTH",
    "MAX_DETECTOR_TEXT_CHARS",
    "MAX_POLICY_FILE_BYTES",
    "MAX_REQUEST_BYTES",
    "MAX_SET_VALUES",
    "SERVICE_BATCH_CPU_SECONDS",
    "SERVICE_BODY_TIMEOUT",
    "SERVICE_HEADER_TIMEOUT",
    "SERVICE_MAX_BATCH",
    "SERVICE_MAX_BODY",
    "SERVICE_MAX_CONNECTIONS",
    "SERVICE_MAX_HEADERS",
    "SERVICE_MAX_HEADER_BYTES",
    "condition_cost",
]

# -------------------------------------------------------------------------- requests (input)

#: Largest JSON document `parse_request` reads (the CLI's default; the service passes its own,
#: smaller body limit). Bounds every other per-request cost: no string, list or text is longer.
MAX_REQUEST_BYTES: Final = 1024 * 1024

#: Deepest nesting of arrays and objects `parse_request` accepts. A request needs about 4.
MAX_DEPTH: Final = 32

#: Most items in one array, or members in one object, below the top level of a request. It
#: is what bounds CEL comprehensions (`context.items.exists(i, ...)`) and the fallback
#: evaluator's conversion of a request field, whatever the byte limit allows.
MAX_CONTAINER_ITEMS: Final = 1000

#: Most values in the list a set dimension reads (e.g. `data_classes`). Checked by the engine
#: itself, so it holds for Python callers too; each unknown value costs a did-you-mean search.
MAX_SET_VALUES: Final = 256

#: Characters of `payload.text` the PII and prompt-injection detectors scan
#: (`DetectorConfig.max_text_chars`); the rest is reported as `signals.truncated`.
MAX_DETECTOR_TEXT_CHARS: Final = 64 * 1024

#: The decision service's default body limit (`cxpolicy.service.app.DEFAULT_MAX_BODY`,
#: `CXPOLICY_MAX_BODY`) and batch size (`DEFAULT_MAX_BATCH`, `CXPOLICY_MAX_BATCH`).
SERVICE_MAX_BODY: Final = 64 * 1024
SERVICE_MAX_BATCH: Final = 1000

#: Connection limits of the decision service (`cxpolicy.service.guard.ConnectionLimits`,
#: issue 15): header bytes and count, seconds to send the headers and the body, open
#: connections; and the CPU seconds one batch may spend (`create_app(cpu_budget=)`).
SERVICE_MAX_HEADER_BYTES: Final = 16 * 1024
SERVICE_MAX_HEADERS: Final = 64
SERVICE_HEADER_TIMEOUT: Final = 5.0
SERVICE_BODY_TIMEOUT: Final = 10.0
SERVICE_MAX_CONNECTIONS: Final = 1024
SERVICE_BATCH_CPU_SECONDS: Final = 2.0

# -------------------------------------------------------------------------- policies (authors)

#: Largest .cxp file the loader reads (`cxpolicy.engine.loader.MAX_FILE_BYTES`).
MAX_POLICY_FILE_BYTES: Final = 8 * 1024 * 1024

#: The most evaluation steps one condition may cost in the worst case allowed by the request
#: limits (see `condition_cost`). One comprehension over a request list with a body of up to a
#: hundred nodes fits; a comprehension nested in another (a million steps) does not.
MAX_CONDITION_COST: Final = 100_000


def condition_cost(text: str) -> int:
    """Worst-case evaluation steps of a CEL condition, given the request limits above.

    Every node costs one step; a comprehension (`all`, `exists`, `exists_one`, `map`,
    `filter`) costs its range plus MAX_CONTAINER_ITEMS times its body, because the list it
    walks comes from a request that `parse_request` bounded. So the cost is a polynomial in
    MAX_CONTAINER_ITEMS whose degree is the comprehension nesting: a nested comprehension is
    quadratic in the request, which a compromised caller can turn into seconds of CPU per
    decision. String functions and `matches` (RE2) are linear in the text and count as one
    step here; the byte limit bounds them. Raises `CelSyntaxError` for text that is not CEL.

    tests/test_limits.py holds every shipped pack and example ruleset under
    MAX_CONDITION_COST; lint is the place to warn about a policy over it (not yet wired: see
    docs/security.md, "Open items").
    """
    from cxpolicy.cel import syntax  # lazy: Lark and cel-python are not needed to read limits

    _, root = syntax.parse(text)
    return _cost(root, syntax)


def _cost(node: Any, syntax: Any) -> int:
    if isinstance(node, syntax.Comprehension):
        body = sum(_cost(a, syntax) for a in node.args)
        return 1 + _cost(node.target, syntax) + MAX_CONTAINER_ITEMS * body
    return 1 + sum(_cost(c, syntax) for c in node.children())
