"""CEL value semantics over plain JSON values: equality, ordering, arithmetic, `in`, functions.

The compiled closures and the cel-python fallback both call these, so a condition means the
same thing whichever path runs it. They follow the current CEL language definition:

* numbers compare across int, uint and double by value (`499.5 <= 500`), as LANGUAGE.md §4
  requires; arithmetic does not mix them (`1 + 1.0` is an error);
* `==` / `!=` never fail: values of different types are simply unequal (`"low" == 30` is
  false, `true == 1` is false, `x == null` is false unless `x` is null);
* ordering other types, int64/uint64 overflow and integer division by zero are errors.

Python's own operators get most of this wrong in one corner or another (`True == 1`,
`1 // -2 == -1`, `[1] == [True]`), so every operator checks the exact types of its operands
first. Exact `type(x) is int` tests keep `bool` out of arithmetic and are cheaper than
`isinstance`.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Final

import re2  # type: ignore[import-untyped]

from cxpolicy.cel.errors import CelEvalError

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "NONE",
    "UINT_MAX",
    "OptionalValue",
    "Uint",
    "add",
    "as_doubles",
    "div",
    "ends_with",
    "equals",
    "greater",
    "greater_equal",
    "index",
    "less",
    "less_equal",
    "matches",
    "member",
    "mod",
    "mul",
    "neg",
    "no_overload",
    "optional_index",
    "optional_select",
    "regex",
    "register_kind",
    "size",
    "starts_with",
    "str_contains",
    "sub",
    "type_name",
]

INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**63 - 1
UINT_MAX: Final = 2**64 - 1


class Uint(int):
    """A CEL `uint`: JSON has none, so it only appears when the fallback path hands one over."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"{int(self)}u"


# Kinds are CEL's value types; the table also accepts subclasses through `kind()`.
BOOL, INT, UINT, DOUBLE, STRING, BYTES, LIST, MAP, NULL = range(9)
_KIND: dict[type, int] = {
    bool: BOOL,
    int: INT,
    Uint: UINT,
    float: DOUBLE,
    str: STRING,
    bytes: BYTES,
    list: LIST,
    dict: MAP,
    type(None): NULL,
}
_NAMES = ["bool", "int", "uint", "double", "string", "bytes", "list", "map", "null_type"]
#: Value types the extensions add (`net.IP`, `net.CIDR`): equal only to themselves, unordered.
OPAQUE_TYPES: set[type] = set()


class OptionalValue:
    """A CEL `optional_type` value (cel-go's optionals): `optional.of(x)` or `optional.none()`.

    Produced only by the optional syntax (`a.?b`, `a[?k]`) and the `optional.*` functions;
    selecting or indexing an optional yields an optional, as cel-go chains them."""

    __slots__ = ("has", "value")

    def __init__(self, has: bool, value: Any = None) -> None:
        self.has = has
        self.value = value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OptionalValue):
            return NotImplemented
        return self.has == other.has and (not self.has or equals(self.value, other.value))

    def __hash__(self) -> int:
        return hash(self.has)

    def __repr__(self) -> str:
        return f"optional.of({self.value!r})" if self.has else "optional.none()"


NONE: Final = OptionalValue(False)


def register_kind(cls: type, name: str) -> None:
    """Make an extension's value type a CEL kind of its own (for equality and messages)."""
    if cls not in _KIND:
        _KIND[cls] = len(_NAMES)
        _NAMES.append(name)
        OPAQUE_TYPES.add(cls)

_NUMERIC: Final = frozenset({INT, UINT, DOUBLE})

_SAME_KIND_ORDERED: Final = frozenset({BOOL, STRING, BYTES})


def kind(value: Any) -> int:
    """The CEL kind of a value; values JSON cannot produce are a clean evaluation error."""
    k = _KIND.get(type(value))
    if k is not None:
        return k
    for base in (bool, Uint, int, float, str, bytes, list, dict):
        if isinstance(value, base):
            return _KIND[base]
    raise CelEvalError(f"unsupported value of Python type {type(value).__name__}")


def type_name(value: Any) -> str:
    """The CEL name of a value's type, for messages an author can act on."""
    try:
        return _NAMES[kind(value)]
    except CelEvalError:
        return type(value).__name__


def no_overload(op: str, *operands: Any) -> CelEvalError:
    """CEL's `no_matching_overload`: an operator applied to types it is not defined for."""
    types = ", ".join(type_name(v) for v in operands)
    return CelEvalError(f"no matching overload for '{op}' applied to ({types})")


def _int(result: int) -> int:
    if INT_MIN <= result <= INT_MAX:
        return result
    raise CelEvalError("int64 overflow")


def _uint(result: int) -> Uint:
    if 0 <= result <= UINT_MAX:
        return Uint(result)
    raise CelEvalError("uint64 overflow")


# ---------------------------------------------------------------------------------- equality


def equals(x: Any, y: Any) -> bool:
    """Heterogeneous equality: numbers by value, everything else only within its own type."""
    tx = type(x)
    if tx is type(y):
        if tx is list:
            return len(x) == len(y) and all(map(equals, x, y))
        if tx is dict:
            return _map_equals(x, y)
        return bool(x == y)  # NaN != NaN, as IEEE and CEL say
    kx = kind(x)
    ky = kind(y)
    if kx == ky:
        if kx == LIST:
            return len(x) == len(y) and all(map(equals, x, y))
        if kx == MAP:
            return _map_equals(x, y)
        return bool(x == y)
    if kx in _NUMERIC and ky in _NUMERIC:
        x, y = as_doubles(x, kx, y, ky)
        return bool(x == y)
    return False


def as_doubles(x: Any, kx: int, y: Any, ky: int) -> tuple[Any, Any]:
    """An int or uint met by a double is compared as a double, as cel-go's `compareIntDouble`
    does: `9223372036854775807 == 9223372036854775808.0` holds (both are 2^63 as doubles).
    Exact integers stay exact; an integer beyond the double range is compared exactly (it is
    beyond every finite double either way)."""
    try:
        if kx == DOUBLE and ky != DOUBLE:
            return x, float(y)
        if ky == DOUBLE and kx != DOUBLE:
            return float(x), y
    except OverflowError:
        pass
    return x, y


def _map_equals(x: dict[Any, Any], y: dict[Any, Any]) -> bool:
    if len(x) != len(y):
        return False
    return all(key in y and equals(value, y[key]) for key, value in x.items())


# ---------------------------------------------------------------------------------- ordering


def _ordered(op: str, x: Any, y: Any) -> tuple[Any, Any]:
    """The operands as Python compares them for CEL, or `no_matching_overload`."""
    kx = kind(x)
    ky = kind(y)
    if kx in _NUMERIC and ky in _NUMERIC:
        return as_doubles(x, kx, y, ky)
    if kx == ky and kx in _SAME_KIND_ORDERED:
        return x, y
    raise no_overload(op, x, y)


def less(x: Any, y: Any) -> bool:
    tx = type(x)
    if tx is not type(y) or not (tx is int or tx is float):
        x, y = _ordered("<", x, y)
    return bool(x < y)


def less_equal(x: Any, y: Any) -> bool:
    tx = type(x)
    if tx is not type(y) or not (tx is int or tx is float):
        x, y = _ordered("<=", x, y)
    return bool(x <= y)


def greater(x: Any, y: Any) -> bool:
    tx = type(x)
    if tx is not type(y) or not (tx is int or tx is float):
        x, y = _ordered(">", x, y)
    return bool(x > y)


def greater_equal(x: Any, y: Any) -> bool:
    tx = type(x)
    if tx is not type(y) or not (tx is int or tx is float):
        x, y = _ordered(">=", x, y)
    return bool(x >= y)


# -------------------------------------------------------------------------------- arithmetic


def add(x: Any, y: Any) -> Any:
    tx = type(x)
    if tx is type(y):
        if tx is int:
            return _int(x + y)
        if tx is float or tx is str or tx is list or tx is bytes:
            return x + y
        if tx is Uint:
            return _uint(x + y)
    raise no_overload("+", x, y)


def sub(x: Any, y: Any) -> Any:
    tx = type(x)
    if tx is type(y):
        if tx is int:
            return _int(x - y)
        if tx is float:
            return x - y
        if tx is Uint:
            return _uint(x - y)
    raise no_overload("-", x, y)


def mul(x: Any, y: Any) -> Any:
    tx = type(x)
    if tx is type(y):
        if tx is int:
            return _int(x * y)
        if tx is float:
            return x * y
        if tx is Uint:
            return _uint(x * y)
    raise no_overload("*", x, y)


def div(x: Any, y: Any) -> Any:
    tx = type(x)
    if tx is type(y):
        if tx is int:
            if y == 0:
                raise CelEvalError("division by zero")
            quotient = abs(x) // abs(y)  # CEL truncates toward zero; Python floors
            return _int(-quotient if (x < 0) != (y < 0) else quotient)
        if tx is float:
            if y == 0.0:
                # IEEE 754, which Python refuses to do: ±inf, or NaN for 0/0 and NaN/0.
                if x == 0.0 or x != x:
                    return math.nan
                return math.copysign(math.inf, x) * math.copysign(1.0, y)
            return x / y
        if tx is Uint:
            if y == 0:
                raise CelEvalError("division by zero")
            return Uint(x // y)
    raise no_overload("/", x, y)


def mod(x: Any, y: Any) -> Any:
    tx = type(x)
    if tx is type(y):
        if tx is int:
            if y == 0:
                raise CelEvalError("modulus by zero")
            remainder = abs(x) % abs(y)  # the sign follows the dividend, as in C and Go
            return -remainder if x < 0 else remainder
        if tx is Uint:
            if y == 0:
                raise CelEvalError("modulus by zero")
            return Uint(x % y)
    raise no_overload("%", x, y)


def neg(x: Any) -> Any:
    tx = type(x)
    if tx is int:
        return _int(-x)
    if tx is float:
        return -x
    raise no_overload("-", x)


# ------------------------------------------------------------------------ containers, strings


def member(item: Any, container: Any) -> bool:
    """`item in container`: list membership by CEL equality, or map key presence."""
    tc = type(container)
    if tc is list:
        if type(item) is str:
            return item in container  # str only ever equals str, so Python's test is exact
        return any(equals(item, element) for element in container)
    if tc is dict:
        return _map_key(container, item) is not _ABSENT
    k = kind(container)
    if k == LIST:
        return any(equals(item, element) for element in container)
    if k == MAP:
        return _map_key(container, item) is not _ABSENT
    raise no_overload("in", item, container)


_ABSENT: Final = object()


def _map_key(mapping: dict[Any, Any], key: Any) -> Any:
    """The stored key equal to `key`, or `_ABSENT`; never merges `true` with `1` as Python does."""
    if type(key) is str:
        return key if key in mapping else _ABSENT
    for candidate in mapping:
        if equals(candidate, key):
            return candidate
    return _ABSENT


def index(container: Any, key: Any) -> Any:
    """`container[key]`: a list position or a map key; absent ones are errors, as in CEL."""
    tc = type(container)
    if tc is not list and tc is not dict:
        k = kind(container)
        tc = list if k == LIST else dict if k == MAP else tc
    if tc is dict:
        found = _map_key(container, key)
        if found is _ABSENT:
            raise CelEvalError(f"no such key: {_short(key)}")
        return container[found]
    if tc is list:
        tk = type(key)
        if tk is float and key.is_integer():  # CEL indexes by any number with an int value
            key = int(key)
            tk = int
        if tk is int or tk is Uint:
            if 0 <= key < len(container):
                return container[key]
            raise CelEvalError(f"index {key} out of range for a list of size {len(container)}")
    if tc is OptionalValue:  # `optional.of(xs)[0]` is `xs[?0]`
        return optional_index(container, key)
    raise no_overload("[]", container, key)


def optional_index(container: Any, key: Any) -> OptionalValue:
    """`container[?key]`: an optional of the entry, none when it is absent."""
    if type(container) is OptionalValue:
        if not container.has:
            return NONE
        container = container.value
    tc = type(container)
    if tc is dict:
        found = _map_key(container, key)
        return NONE if found is _ABSENT else OptionalValue(True, container[found])
    if tc is list:
        tk = type(key)
        if tk is float and key.is_integer():
            key, tk = int(key), int
        if tk is int or tk is Uint:
            return OptionalValue(True, container[key]) if 0 <= key < len(container) else NONE
    raise no_overload("[?]", container, key)


def optional_select(container: Any, field: str) -> OptionalValue:
    """`container.?field`: an optional of the map entry, none when it is absent."""
    if type(container) is OptionalValue:
        if not container.has:
            return NONE
        container = container.value
    if type(container) is dict:
        return OptionalValue(True, container[field]) if field in container else NONE
    raise CelEvalError(f"{type_name(container)} has no field '{field}'")


def size(value: Any) -> int:
    t = type(value)
    if t is str or t is list or t is dict or t is bytes:
        return len(value)
    if kind(value) in (STRING, LIST, MAP, BYTES):
        return len(value)
    raise no_overload("size", value)


def str_contains(text: Any, part: Any) -> bool:
    if type(text) is str and type(part) is str:
        return part in text
    raise no_overload("contains", text, part)


def starts_with(text: Any, prefix: Any) -> bool:
    if type(text) is str and type(prefix) is str:
        return text.startswith(prefix)
    raise no_overload("startsWith", text, prefix)


def ends_with(text: Any, suffix: Any) -> bool:
    if type(text) is str and type(suffix) is str:
        return text.endswith(suffix)
    raise no_overload("endsWith", text, suffix)


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a bad pattern is reported to the author, not to stderr


@functools.lru_cache(maxsize=256)
def regex(pattern: str) -> Any:
    """RE2, as CEL specifies and cel-python uses; compiled once per distinct pattern."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except UnicodeEncodeError:  # a lone surrogate (`\ud800`) has no UTF-8 form for RE2
        raise CelEvalError(f"invalid regular expression {pattern!r}: not encodable as UTF-8") from None
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise CelEvalError(f"invalid regular expression {pattern!r}: {detail}") from None


def matches(text: Any, pattern: Any) -> bool:
    if type(text) is str and type(pattern) is str:
        return regex(pattern).search(text) is not None
    raise no_overload("matches", text, pattern)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


register_kind(OptionalValue, "optional_type")
