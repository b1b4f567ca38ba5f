"""Convert google/cel-spec's `tests/simple/testdata/*.textproto` into `data/cel_spec.json`.

Input: a cel-spec git directory (the `fetch` mirror or a clone) and the list of test files.
Output: one compact JSON file of cases, `{"source": ..., "files": {name: [case, ...]}}`, where a
case is `{"section", "name", "expr", "bindings", "expect", ...}` and values use plain JSON
where JSON can say it (null, bool, int, double, string, list, map with string keys) and a
tagged object where it cannot (`{"$uint": 1}`, `{"$bytes": "<base64>"}`,
`{"$double": "inf"}`, `{"$type": "int"}`, `{"$map": [[k, v], ...]}`, `{"$object": url}`).

Run it again to refresh the vendored data (the test never needs network):

    python tests/cel/convert_cel_spec.py /path/to/cel-spec.git > tests/cel/data/cel_spec.json

A small text-format reader lives here rather than protobuf's `text_format`, because the
latter needs cel-spec's compiled message classes, which are not on PyPI.
"""

from __future__ import annotations

import base64
import json
import math
import re
import subprocess
import sys
from typing import Any

FILES = (
    "basic",
    "comparisons",
    "conversions",
    "fields",
    "fp_math",
    "integer_math",
    "lists",
    "logic",
    "macros",
    "parse",
    "string",
    "string_ext",
    "math_ext",
    "optionals",
    "macros2",
    "network_ext",
)

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<bracket>\[[A-Za-z0-9_./]+\])
  | (?P<word>[-+]?[A-Za-z0-9_.+-]+)
  | (?P<punct>[{}\[\]:,;<>])
    """,
    re.VERBOSE,
)

_SIMPLE_ESCAPES = {
    "n": b"\n",
    "t": b"\t",
    "r": b"\r",
    "a": b"\a",
    "b": b"\b",
    "f": b"\f",
    "v": b"\v",
    "\\": b"\\",
    "'": b"'",
    '"': b'"',
    "?": b"?",
}


def _unquote(token: str) -> bytes:
    """A text-format string literal as bytes (octal and hex escapes are bytes, \\u is UTF-8)."""
    body = token[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        e = body[i + 1]
        if e in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[e]
            i += 2
        elif e in "01234567":
            m = re.match(r"[0-7]{1,3}", body[i + 1 :])
            assert m
            out.append(int(m.group(), 8))
            i += 1 + len(m.group())
        elif e in "xX":
            m = re.match(r"[0-9A-Fa-f]{1,2}", body[i + 2 :])
            assert m
            out.append(int(m.group(), 16))
            i += 2 + len(m.group())
        elif e == "u":
            out += chr(int(body[i + 2 : i + 6], 16)).encode("utf-8", "surrogatepass")
            i += 6
        elif e == "U":
            out += chr(int(body[i + 2 : i + 10], 16)).encode("utf-8", "surrogatepass")
            i += 10
        else:
            raise ValueError(f"unknown escape \\{e} in {token}")
    return bytes(out)


class _Reader:
    """Text format to nested lists of (field, value) pairs; a message is such a list."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                raise ValueError(f"cannot read text format at {text[pos : pos + 30]!r}")
            pos = m.end()
            kind = m.lastgroup
            assert kind is not None
            if kind != "ws":
                self.tokens.append((kind, m.group()))
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def message(self, end: str | None) -> list[tuple[str, Any]]:
        fields: list[tuple[str, Any]] = []
        while True:
            token = self.peek()
            if token is None or token[1] == end:
                if end is not None:
                    self.take()
                return fields
            _kind, name = self.take()
            if self.peek() == ("punct", ":"):
                self.take()
            nxt = self.peek()
            assert nxt is not None
            if nxt[1] in ("{", "<"):
                self.take()
                fields.append((name, self.message("}" if nxt[1] == "{" else ">")))
            elif nxt[1] == "[":
                self.take()
                while self.peek() != ("punct", "]"):
                    fields.append((name, self.scalar_or_message()))
                    if self.peek() == ("punct", ","):
                        self.take()
                self.take()
            else:
                fields.append((name, self.scalar()))
            if self.peek() in (("punct", ","), ("punct", ";")):
                self.take()

    def scalar_or_message(self) -> Any:
        nxt = self.peek()
        assert nxt is not None
        if nxt[1] in ("{", "<"):
            self.take()
            return self.message("}" if nxt[1] == "{" else ">")
        return self.scalar()

    def scalar(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            data = _unquote(text)
            while self.peek() is not None and self.peek()[0] == "str":  # type: ignore[index]
                data += _unquote(self.take()[1])
            return data
        return ("word", text)


def _get(msg: list[tuple[str, Any]], name: str) -> Any:
    for key, value in msg:
        if key == name:
            return value
    return None


def _all(msg: list[tuple[str, Any]], name: str) -> list[Any]:
    return [value for key, value in msg if key == name]


def _number(word: Any, kind: type) -> Any:
    assert isinstance(word, tuple), word
    text = word[1]
    if kind is float:
        low = text.lower()
        if low in ("inf", "infinity", "+inf"):
            return math.inf
        if low in ("-inf", "-infinity"):
            return -math.inf
        if low == "nan":
            return math.nan
        return float(text.rstrip("fF"))
    return int(text, 0)


def value(msg: list[tuple[str, Any]]) -> Any:
    """A `cel.expr.Value` message in the tagged JSON encoding of this module's docstring."""
    (field, raw), *_ = msg or [("null_value", None)]
    if field == "null_value":
        return None
    if field == "bool_value":
        return raw[1] == "true"
    if field == "int64_value":
        return _number(raw, int)
    if field == "uint64_value":
        return {"$uint": _number(raw, int)}
    if field == "double_value":
        d = _number(raw, float)
        if math.isnan(d) or math.isinf(d):
            return {"$double": "nan" if math.isnan(d) else ("inf" if d > 0 else "-inf")}
        return d
    if field == "string_value":
        return raw.decode("utf-8", "surrogatepass")
    if field == "bytes_value":
        return {"$bytes": base64.b64encode(raw).decode()}
    if field == "list_value":
        return [value(v) for v in _all(raw, "values")]
    if field == "map_value":
        entries = [(value(_get(e, "key")), value(_get(e, "value"))) for e in _all(raw, "entries")]
        if all(type(k) is str for k, _ in entries):
            return dict(entries)
        return {"$map": [list(e) for e in entries]}
    if field == "type_value":
        return {"$type": raw.decode()}
    if field == "object_value":
        return {"$object": msg[0][1][0][0] if raw else "?"}
    if field == "enum_value":
        return {"$enum": _number(_get(raw, "value"), int) if _get(raw, "value") else 0}
    raise ValueError(f"unknown value field {field}")


def case(section: str, test: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "section": section,
        "name": _get(test, "name").decode(),
        "expr": _get(test, "expr").decode("utf-8", "surrogatepass"),
    }
    bindings = {}
    for binding in _all(test, "bindings"):
        key = _get(binding, "key").decode()
        expr_value = _get(binding, "value")
        inner = _get(expr_value, "value")
        bindings[key] = value(inner) if inner is not None else {"$error": True}
    if bindings:
        out["bindings"] = bindings
    for flag in ("disable_macros", "disable_check", "check_only"):
        if _get(test, flag) is not None:
            out[flag] = _get(test, flag)[1] == "true"
    container = _get(test, "container")
    if container:
        out["container"] = container.decode()
    if _get(test, "value") is not None:
        out["expect"] = {"value": value(_get(test, "value"))}
    elif _get(test, "typed_result") is not None:
        out["expect"] = {"value": value(_get(_get(test, "typed_result"), "result"))}
    elif _get(test, "eval_error") is not None or _get(test, "any_eval_errors") is not None:
        out["expect"] = {"error": True}
    elif _get(test, "unknown") is not None or _get(test, "any_unknowns") is not None:
        out["expect"] = {"unknown": True}
    else:
        out["expect"] = {"value": True}  # simple.proto: no result means `true`
    return out


def convert(text: str) -> list[dict[str, Any]]:
    root = _Reader(text).message(None)
    cases = []
    for section in _all(root, "section"):
        name = _get(section, "name").decode()
        cases.extend(case(name, test) for test in _all(section, "test"))
    return cases


def main(argv: list[str]) -> int:
    git_dir = argv[1]
    commit = subprocess.run(
        ["git", f"--git-dir={git_dir}", "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    files = {}
    for name in FILES:
        text = subprocess.run(
            ["git", f"--git-dir={git_dir}", "show", f"HEAD:tests/simple/testdata/{name}.textproto"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        files[name] = convert(text)
    source = {"repository": "https://github.com/google/cel-spec", "commit": commit, "license": "Apache-2.0"}
    json.dump({"source": source, "files": files}, sys.stdout, ensure_ascii=False, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
