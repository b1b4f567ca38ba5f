"""The cel-go standard extensions that fit a JSON request: strings, math and network.

Input: plain runtime values (str, int, `Uint`, float, bool, None, list, dict, and the `IP` /
`CIDR` values this module defines). Output: a value, or `CelEvalError` raised — the same
errors-as-values contract as `runtime`, so the compiled closures and the cel-python fallback
call these functions unchanged.

`FUNCTIONS` is the one table the parser (arity checks at compile time), the compiler, the
fallback and lint read: each entry says whether the function is a method (`s.charAt(1)`) or
a global (`math.greatest(1, 2)`, `ip("10.0.0.1")`), which argument counts it accepts, and
what its receiver must be (for lint). Semantics follow cel-go's `ext` package and the
cel-spec conformance files `string_ext`, `math_ext` and `network_ext`:

* strings index by code point (Python's `str` already does), `trim` removes what Go's
  `unicode.IsSpace` calls space, and `lowerAscii`/`upperAscii` touch only A–Z / a–z;
* arguments are exact types: `'a'.charAt(true)` and `math.ceil(1)` are errors;
* a string function may not build a string longer than `MAX_STRING_CHARS` (a 64 KiB text
  `replace`d with itself must not cost gigabytes): that is an evaluation error.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from cxpolicy.cel import runtime
from cxpolicy.cel.errors import CelEvalError
from cxpolicy.cel.runtime import INT_MAX, INT_MIN, UINT_MAX, Uint, no_overload
from cxpolicy.limits import MAX_REQUEST_BYTES

__all__ = ["CIDR", "FUNCTIONS", "IP", "MAX_STRING_CHARS", "METHOD_ALIASES", "NAMESPACES", "Function", "lookup"]

#: The longest string a string function may build: no request holds a longer one.
MAX_STRING_CHARS: Final = MAX_REQUEST_BYTES


@dataclass(frozen=True, slots=True)
class Function:
    """One extension function: how it is called and what it accepts."""

    name: str  # as written: "charAt", "math.greatest", "ip"
    impl: Callable[..., Any]  # receiver first for methods
    arities: frozenset[int]  # argument counts, the receiver not counted
    method: bool  # called as `x.name(...)`
    receiver: str | None = None  # "string", "list", "ip", "cidr": what lint expects of x
    variadic: bool = False  # any count >= min(arities)


def _str(value: Any, name: str, *rest: Any) -> str:
    if type(value) is str:
        return value
    raise no_overload(name, value, *rest)


def _int_arg(value: Any, name: str) -> int:
    if type(value) is int:
        return value
    raise no_overload(name, value)


def _bounded(text: str) -> str:
    if len(text) > MAX_STRING_CHARS:
        raise CelEvalError(f"string result longer than {MAX_STRING_CHARS} characters")
    return text


# ------------------------------------------------------------------------------------- strings


def char_at(text: Any, index: Any) -> str:
    s = _str(text, "charAt", index)
    i = _int_arg(index, "charAt")
    if 0 <= i < len(s):
        return s[i]
    if i == len(s):
        return ""
    raise CelEvalError(f"charAt: index {i} out of range for a string of length {len(s)}")


def index_of(text: Any, part: Any, start: Any = 0) -> int:
    s = _str(text, "indexOf", part)
    sub = _str(part, "indexOf", text)
    offset = _int_arg(start, "indexOf")
    if sub == "":
        return offset
    if not 0 <= offset < len(s):
        raise CelEvalError(f"indexOf: index {offset} out of range for a string of length {len(s)}")
    return s.find(sub, offset)


def last_index_of(text: Any, part: Any, *end: Any) -> int:
    s = _str(text, "lastIndexOf", part)
    sub = _str(part, "lastIndexOf", text)
    if not end:
        return len(s) if sub == "" else s.rfind(sub)
    offset = _int_arg(end[0], "lastIndexOf")
    if sub == "":
        return offset
    if not 0 <= offset < len(s):
        raise CelEvalError(f"lastIndexOf: index {offset} out of range for a string of length {len(s)}")
    return s.rfind(sub, 0, offset + len(sub))


_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def lower_ascii(text: Any) -> str:
    return _str(text, "lowerAscii").translate(_LOWER)


def upper_ascii(text: Any) -> str:
    return _str(text, "upperAscii").translate(_UPPER)


def replace(text: Any, old: Any, new: Any, *count: Any) -> str:
    s = _str(text, "replace", old, new)
    o = _str(old, "replace", text, new)
    n = _str(new, "replace", text, old)
    limit = _int_arg(count[0], "replace") if count else -1
    if limit == 0:
        return s
    occurrences = s.count(o) + 1 if o == "" else s.count(o)
    if limit > 0:
        occurrences = min(occurrences, limit)
    if len(s) + occurrences * (len(n) - len(o)) > MAX_STRING_CHARS:
        raise CelEvalError(f"string result longer than {MAX_STRING_CHARS} characters")
    return s.replace(o, n, limit if limit > 0 else -1)


def split(text: Any, separator: Any, *count: Any) -> list[str]:
    s = _str(text, "split", separator)
    sep = _str(separator, "split", text)
    limit = _int_arg(count[0], "split") if count else -1
    if limit == 0:
        return []
    if sep == "":
        chars = list(s)
        if 0 < limit < len(chars):
            return [*chars[: limit - 1], "".join(chars[limit - 1 :])]
        return chars
    return s.split(sep, limit - 1) if limit > 0 else s.split(sep)


def substring(text: Any, start: Any, *end: Any) -> str:
    s = _str(text, "substring", start)
    i = _int_arg(start, "substring")
    j = _int_arg(end[0], "substring") if end else len(s)
    if not 0 <= i <= j <= len(s):
        raise CelEvalError(f"substring: range [{i}, {j}) out of range for a string of length {len(s)}")
    return s[i:j]


# Go's unicode.IsSpace: Python's str.isspace() also counts \x1c-\x1f, which Go does not.
_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
_SPACE += "\u2028\u2029\u202f\u205f\u3000"


def trim(text: Any) -> str:
    return _str(text, "trim").strip(_SPACE)


def join(items: Any, *separator: Any) -> str:
    if type(items) is not list:
        raise no_overload("join", items, *separator)
    sep = _str(separator[0], "join", items) if separator else ""
    for item in items:
        if type(item) is not str:
            raise no_overload("join", items, *separator)
    if sum(map(len, items)) + len(sep) * max(0, len(items) - 1) > MAX_STRING_CHARS:  # before building it
        raise CelEvalError(f"string result longer than {MAX_STRING_CHARS} characters")
    return sep.join(items)


def reverse(text: Any) -> str:
    return _str(text, "reverse")[::-1]


_QUOTES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
_QUOTES |= {"\\": "\\\\", '"': '\\"'}


def quote(text: Any) -> str:
    s = _str(text, "strings.quote")
    out = ['"']
    for c in s:
        if 0xD800 <= ord(c) <= 0xDFFF:  # a lone surrogate is not UTF-8: cel-go sanitises it
            out.append("\ufffd")
        else:
            out.append(_QUOTES.get(c, c))
    out.append('"')
    return _bounded("".join(out))


# ---------------------------------------------------------------------------- string.format


def _double_text(value: float) -> str:
    """A double as cel-go's `%s` writes it: shortest form, `NaN`, `Infinity`."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


def _plain(value: Any) -> str:
    """`%s`: the value as `string()` would give it, lists and maps in CEL-like brackets."""
    kind = type(value)
    if kind is str:
        return str(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is Uint:
        return str(int(value))
    if kind is float:
        return _double_text(value)
    if kind is bytes:
        return bytes(value).decode("utf-8", "replace")
    if kind is list:
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    if kind is dict:
        entries = sorted((_plain(k), _plain(v)) for k, v in value.items())
        return "{" + ", ".join(f"{k}: {v}" for k, v in entries) + "}"
    if isinstance(value, IP | CIDR):
        return str(value)
    raise CelEvalError(f"format: %s cannot format {runtime.type_name(value)}")


def _special(value: float) -> str | None:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return None


def _format_one(verb: str, precision: int | None, value: Any) -> str:
    kind = type(value)
    integer = kind is int or kind is Uint
    if verb == "s":
        return _plain(value)
    if verb == "d":
        if integer:
            return str(int(value))
        if kind is float and _special(value):
            return _special(value) or ""
    elif verb in "fe":
        if integer or kind is float:
            number = float(value)
            special = _special(number)
            if special:
                return special
            return f"{number:.{6 if precision is None else precision}{verb}}"
    elif verb in "xX":
        if integer:
            text = format(int(value), "x")
        elif kind is str:
            text = value.encode().hex()
        elif kind is bytes:
            text = value.hex()
        else:
            text = None
        if text is not None:
            return text.upper() if verb == "X" else text
    elif verb == "o":
        if integer:
            return format(int(value), "o")
    elif verb == "b":
        if integer or kind is bool:
            return format(int(value), "b")
    else:
        raise CelEvalError(f"format: unknown verb %{verb}")
    raise CelEvalError(f"format: %{verb} cannot format {runtime.type_name(value)}")


def format_(text: Any, args: Any) -> str:
    s = _str(text, "format", args)
    if type(args) is not list:
        raise no_overload("format", text, args)
    out: list[str] = []
    i = n = size = 0
    while i < len(s):
        c = s[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        i += 1
        if i < len(s) and s[i] == "%":
            out.append("%")
            i += 1
            continue
        precision = None
        if i < len(s) and s[i] == ".":
            j = i + 1
            while j < len(s) and s[j].isdigit():
                j += 1
            if j - i - 1 > 2:  # `%.1000000000f` would build a gigabyte of digits
                raise CelEvalError("format: precision above 99")
            precision = int(s[i + 1 : j] or "0")
            i = j
        if i >= len(s):
            raise CelEvalError("format: a % at the end of the format string")
        if n >= len(args):
            raise CelEvalError(f"format: {len(args)} arguments for more format verbs")
        piece = _format_one(s[i], precision, args[n])
        out.append(piece)
        n += 1
        i += 1
        size += len(piece)
        if size + len(s) > MAX_STRING_CHARS:
            raise CelEvalError(f"string result longer than {MAX_STRING_CHARS} characters")
    return "".join(out)


# ---------------------------------------------------------------------------------------- math


def _number(value: Any, name: str) -> Any:
    kind = type(value)
    if kind is int or kind is float or kind is Uint:
        return value
    raise no_overload(name, value)


def _extreme(name: str, pick_left: Callable[[Any, Any], bool]) -> Callable[..., Any]:
    def extreme(*args: Any) -> Any:
        values = args[0] if len(args) == 1 and type(args[0]) is list else list(args)
        if not values:
            raise CelEvalError(f"{name}: no values")
        best = _number(values[0], name)
        for value in values[1:]:
            if pick_left(_number(value, name), best):
                best = value
        return best

    return extreme


def _double_arg(value: Any, name: str) -> float:
    if type(value) is float:
        return value
    raise no_overload(name, value)


def _round_half_away(value: float) -> float:
    if math.isnan(value) or math.isinf(value):
        return value
    return math.copysign(math.floor(abs(value) + 0.5), value)


def _abs(value: Any) -> Any:
    kind = type(_number(value, "math.abs"))
    if kind is int:
        if value == INT_MIN:
            raise CelEvalError("math.abs: int64 overflow")
        return abs(value)
    return Uint(value) if kind is Uint else abs(value)


def _sign(value: Any) -> Any:
    kind = type(_number(value, "math.sign"))
    if kind is float:
        if math.isnan(value):
            return value
        return 1.0 if value > 0 else -1.0 if value < 0 else 0.0
    result = (value > 0) - (value < 0)
    return Uint(result) if kind is Uint else result


def _bits(name: str, x: Any, y: Any) -> tuple[int, int, bool]:
    tx = type(x)
    if tx is type(y) and (tx is int or tx is Uint):
        return int(x), int(y), tx is Uint
    raise no_overload(name, x, y)


_MASK: Final = UINT_MAX


def _signed(value: int) -> int:
    value &= _MASK
    return value - (1 << 64) if value > INT_MAX else value


def _bit_op(name: str, op: Callable[[int, int], int]) -> Callable[[Any, Any], Any]:
    def bit_op(x: Any, y: Any) -> Any:
        a, b, unsigned = _bits(name, x, y)
        result = op(a, b)
        return Uint(result & _MASK) if unsigned else _signed(result)

    return bit_op


def _bit_not(x: Any) -> Any:
    kind = type(x)
    if kind is int:
        return ~x
    if kind is Uint:
        return Uint(UINT_MAX ^ x)
    raise no_overload("math.bitNot", x)


def _shift(name: str, left: bool) -> Callable[[Any, Any], Any]:
    def shift(x: Any, n: Any) -> Any:
        kind = type(x)
        if not (kind is int or kind is Uint) or type(n) is not int:
            raise no_overload(name, x, n)
        if n < 0:
            raise CelEvalError(f"{name}: negative shift {n}")
        if n >= 64:
            result = 0
        elif left:
            result = (int(x) << n) & _MASK
        else:
            result = (int(x) & _MASK) >> n
        return Uint(result) if kind is Uint else _signed(result)

    return shift


def _sqrt(value: Any) -> float:
    number = float(_number(value, "math.sqrt"))
    return math.sqrt(number) if number >= 0 else math.nan


def _double_test(name: str, test: Callable[[float], bool]) -> Callable[[Any], bool]:
    return lambda value: test(_double_arg(value, name))


# ------------------------------------------------------------------------------------- network

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class IP:
    """A `net.IP`: an IPv4-mapped IPv6 address is the IPv4 address (cel-go compares so)."""

    address: Address

    def __str__(self) -> str:
        return str(self.address)


@dataclass(frozen=True, slots=True)
class CIDR:
    """A `net.CIDR`: the address as written (host bits kept) and the prefix length."""

    interface: ipaddress.IPv4Interface | ipaddress.IPv6Interface

    def __str__(self) -> str:
        return str(self.interface)


runtime.register_kind(IP, "net.IP")
runtime.register_kind(CIDR, "net.CIDR")


def _parse_ip(text: str) -> Address | None:
    if "%" in text or (":" in text and "." in text):  # zones and IPv4-in-IPv6 text: refused, as in cel-go
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _ip(value: Any) -> Any:
    if isinstance(value, CIDR):  # cidr.ip(): the address part
        return IP(_normal(value.interface.ip))
    text = _str(value, "ip")
    address = _parse_ip(text)
    if address is None:
        raise CelEvalError(f"ip: invalid IP address {text!r}")
    return IP(address)


def _normal(address: Address) -> Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _parse_cidr(text: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface | None:
    if "/" not in text or "%" in text or (":" in text and "." in text):
        return None
    try:
        return ipaddress.ip_interface(text)
    except ValueError:
        return None


def _cidr(value: Any) -> CIDR:
    text = _str(value, "cidr")
    interface = _parse_cidr(text)
    if interface is None:
        raise CelEvalError(f"cidr: invalid CIDR {text!r}")
    return CIDR(interface)


def _is_ip(value: Any) -> bool:
    return _parse_ip(_str(value, "isIP")) is not None


def _is_cidr(value: Any) -> bool:
    return _parse_cidr(_str(value, "isCIDR")) is not None


def _is_canonical(value: Any) -> bool:
    text = _str(value, "ip.isCanonical")
    address = _parse_ip(text)
    if address is None:
        raise CelEvalError(f"ip.isCanonical: invalid IP address {text!r}")
    return str(ipaddress.ip_address(text)) == text


def _ip_value(value: Any, name: str) -> IP:
    if isinstance(value, IP):
        return value
    raise no_overload(name, value)


def _cidr_value(value: Any, name: str) -> CIDR:
    if isinstance(value, CIDR):
        return value
    raise no_overload(name, value)


def _ip_test(name: str, test: Callable[[Address], bool]) -> Callable[[Any], bool]:
    return lambda value: test(_ip_value(value, name).address)


def _global_unicast(address: Address) -> bool:
    """Go's IsGlobalUnicast: not unspecified, loopback, link-local, multicast or broadcast."""
    if isinstance(address, ipaddress.IPv4Address) and address == ipaddress.IPv4Address("255.255.255.255"):
        return False
    return not (address.is_unspecified or address.is_loopback or address.is_link_local or address.is_multicast)


def _link_local_multicast(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv4Address):
        return address in ipaddress.IPv4Network("224.0.0.0/24")
    return address.is_multicast and (address.packed[1] & 0x0F) == 0x02


def _contains_ip(cidr: Any, other: Any) -> bool:
    network = _cidr_value(cidr, "containsIP").interface.network
    address = _ip(other).address if type(other) is str else _ip_value(other, "containsIP").address
    return address.version == network.version and address in network


def _contains_cidr(cidr: Any, other: Any) -> bool:
    network = _cidr_value(cidr, "containsCIDR").interface.network
    inner = _cidr(other) if type(other) is str else _cidr_value(other, "containsCIDR")
    sub = inner.interface.network
    return sub.version == network.version and sub.subnet_of(network)  # type: ignore[arg-type]


def _masked(cidr: Any) -> CIDR:
    network = _cidr_value(cidr, "masked").interface.network
    return CIDR(ipaddress.ip_interface(str(network)))


def _prefix_length(cidr: Any) -> int:
    return _cidr_value(cidr, "prefixLength").interface.network.prefixlen


def _family(value: Any) -> int:
    return 4 if _ip_value(value, "family").address.version == 4 else 6


# ----------------------------------------------------------------------------------- optionals

OptionalValue = runtime.OptionalValue


def _zero(value: Any) -> bool:
    kind = type(value)
    if value is None or value is False:
        return True
    if kind is int or kind is float or kind is Uint:
        return bool(value == 0)
    if kind is str or kind is bytes or kind is list or kind is dict:
        return len(value) == 0
    return False


def _opt(value: Any, name: str) -> runtime.OptionalValue:
    if type(value) is OptionalValue:
        return value
    raise no_overload(name, value)


def _opt_value(value: Any) -> Any:
    optional = _opt(value, "value")
    if not optional.has:
        raise CelEvalError("optional.none() dereference")
    return optional.value


def _or(value: Any, other: Any) -> Any:
    optional = _opt(value, "or")
    return optional if optional.has else _opt(other, "or")


def _or_value(value: Any, default: Any) -> Any:
    optional = _opt(value, "orValue")
    return optional.value if optional.has else default


# --------------------------------------------------------------------------------------- table


def _method(name: str, impl: Callable[..., Any], *arities: int, receiver: str = "string") -> Function:
    return Function(name, impl, frozenset(arities), True, receiver)


def _global(name: str, impl: Callable[..., Any], *arities: int, variadic: bool = False) -> Function:
    return Function(name, impl, frozenset(arities), False, None, variadic)


_TABLE = (
    _method("charAt", char_at, 1),
    _method("indexOf", index_of, 1, 2),
    _method("lastIndexOf", last_index_of, 1, 2),
    _method("lowerAscii", lower_ascii, 0),
    _method("upperAscii", upper_ascii, 0),
    _method("replace", replace, 2, 3),
    _method("split", split, 1, 2),
    _method("substring", substring, 1, 2),
    _method("trim", trim, 0),
    _method("join", join, 0, 1, receiver="list"),
    _method("reverse", reverse, 0),
    _method("format", format_, 1),
    _global("strings.quote", quote, 1),
    _global("math.greatest", _extreme("math.greatest", lambda x, y: runtime.greater(x, y)), 1, variadic=True),
    _global("math.least", _extreme("math.least", lambda x, y: runtime.less(x, y)), 1, variadic=True),
    _global("math.abs", _abs, 1),
    _global("math.sign", _sign, 1),
    _global("math.ceil", lambda v: float(math.ceil(x)) if math.isfinite(x := _double_arg(v, "math.ceil")) else x, 1),
    _global("math.floor", lambda v: float(math.floor(x)) if math.isfinite(x := _double_arg(v, "math.floor")) else x, 1),
    _global("math.round", lambda v: _round_half_away(_double_arg(v, "math.round")), 1),
    _global("math.trunc", lambda v: float(math.trunc(x)) if math.isfinite(x := _double_arg(v, "math.trunc")) else x, 1),
    _global("math.isNaN", _double_test("math.isNaN", math.isnan), 1),
    _global("math.isInf", _double_test("math.isInf", math.isinf), 1),
    _global("math.isFinite", _double_test("math.isFinite", math.isfinite), 1),
    _global("math.sqrt", _sqrt, 1),
    _global("math.bitAnd", _bit_op("math.bitAnd", lambda a, b: a & b), 2),
    _global("math.bitOr", _bit_op("math.bitOr", lambda a, b: a | b), 2),
    _global("math.bitXor", _bit_op("math.bitXor", lambda a, b: a ^ b), 2),
    _global("math.bitNot", _bit_not, 1),
    _global("math.bitShiftLeft", _shift("math.bitShiftLeft", True), 2),
    _global("math.bitShiftRight", _shift("math.bitShiftRight", False), 2),
    _global("ip", _ip, 1),
    _global("cidr", _cidr, 1),
    _global("isIP", _is_ip, 1),
    _global("isCIDR", _is_cidr, 1),
    _global("ip.isCanonical", _is_canonical, 1),
    _method("family", _family, 0, receiver="ip"),
    _method("isUnspecified", _ip_test("isUnspecified", lambda a: a.is_unspecified), 0, receiver="ip"),
    _method("isLoopback", _ip_test("isLoopback", lambda a: a.is_loopback), 0, receiver="ip"),
    _method("isGlobalUnicast", _ip_test("isGlobalUnicast", _global_unicast), 0, receiver="ip"),
    _method("isLinkLocalMulticast", _ip_test("isLinkLocalMulticast", _link_local_multicast), 0, receiver="ip"),
    _method("isLinkLocalUnicast", _ip_test("isLinkLocalUnicast", lambda a: a.is_link_local), 0, receiver="ip"),
    _method("containsIP", _contains_ip, 1, receiver="cidr"),
    _method("containsCIDR", _contains_cidr, 1, receiver="cidr"),
    _method("masked", _masked, 0, receiver="cidr"),
    _method("prefixLength", _prefix_length, 0, receiver="cidr"),
    _global("optional.of", lambda v: OptionalValue(True, v), 1),
    _global("optional.ofNonZeroValue", lambda v: runtime.NONE if _zero(v) else OptionalValue(True, v), 1),
    _global("optional.none", lambda: runtime.NONE, 0),
    _method("hasValue", lambda v: _opt(v, "hasValue").has, 0, receiver="optional"),
    _method("value", _opt_value, 0, receiver="optional"),
    _method("or", _or, 1, receiver="optional"),
    _method("orValue", _or_value, 1, receiver="optional"),
)

#: Every extension function by the name an author writes ("charAt", "math.greatest").
FUNCTIONS: Final[dict[str, Function]] = {f.name: f for f in _TABLE}
#: `cidr.ip()` is the method form of the global `ip`: one name, dispatched on the receiver.
METHOD_ALIASES: Final[dict[str, Function]] = {"ip": _method("ip", _ip, 0, receiver="cidr")}


def lookup(name: str, method: bool) -> Function | None:
    """The extension `name` called as a method (`x.name()`) or a global, or None."""
    if method and name in METHOD_ALIASES:
        return METHOD_ALIASES[name]
    function = FUNCTIONS.get(name)
    return function if function is not None and function.method == method else None


#: Names before a dot that make `ns.f(...)` a namespaced global rather than a method call.
NAMESPACES: Final = frozenset(name.split(".", 1)[0] for name in FUNCTIONS if "." in name)
