"""Cue words, and the one-pass views of a text every detector shares.

Cue words are the few characters before a value that say what it is.

A checksum alone is weak evidence for short numbers (one random 12-digit number in ten
passes Verhoeff; one in ten 16-digit numbers passes Luhn), and order numbers, invoice ids
and IMEIs are exactly such random-looking numbers. The nearest label before a value settles
most of these cases: "order no. 4539…" is not a card, "Aadhaar: 2341…" is. Detectors ask
for the nearest cue and decide from it; a value with no cue at all is judged on its own
checks and shape.

`TextView` holds what the detectors scan instead of the text itself: the class string (one
byte per character, so offsets match) and the set of words. Regex passes over a Python str
cost tens of microseconds per kilobyte when the pattern starts with a character class; a
literal byte in the class string, or a word-set lookup, costs a fraction of that, and each
view is built once per message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["NEGATIVE", "Candidate", "TextView", "nearest_cue"]

NEGATIVE = "negative"

# Category -> cue words. Matched on lower-cased text, so entries are lower case. Categories
# named after a data class vouch for that class; NEGATIVE names labels of business
# identifiers that are not personal data (and so veto weak matches).
_CUES: dict[str, tuple[str, ...]] = {
    "card_pan": (
        "card",
        "credit",
        "debit",
        "visa",
        "mastercard",
        "amex",
        "rupay",
        "cc no",
        "cc#",
    ),
    # "aadhaar card", "aadhar card no": the word "card" after the ID's name is not a card cue.
    "aadhaar": (
        "aadhaar",
        "aadhar",
        "adhaar",
        "adhar",
        "uidai",
        "uid",
        "आधार",
        "aadhaar card",
        "aadhar card",
        "adhaar card",
        "adhar card",
        "आधार कार्ड",
    ),
    "aadhaar_vid": ("vid", "virtual id"),
    "us_ssn": ("ssn", "social security", "soc sec"),
    "pan_in": ("pan", "pan card", "permanent account", "income tax", "पैन"),
    "ifsc": ("ifsc", "branch code", "ifs code"),
    "upi_vpa": ("upi", "vpa", "gpay", "google pay", "phonepe", "paytm", "bhim", "pay to"),
    "iban": ("iban",),
    "gstin": ("gstin", "gst no", "gst number", "gst"),
    "phone": ("phone", "mobile", "mob", "call", "whatsapp", "contact", "tel", "cell", "फ़ोन"),
    NEGATIVE: (
        "order",
        "invoice",
        "inv",
        "ref",
        "reference",
        "txn",
        "transaction",
        "utr",
        "rrn",
        "arn",
        "awb",
        "tracking",
        "ticket",
        "case",
        "booking",
        "pnr",
        "imei",
        "serial",
        "sku",
        "model",
        "receipt",
        "bill",
        "challan",
        "consignment",
        "shipment",
        "parcel",
        "complaint",
        "request",
        "srn",
        "account",
        "a/c",
        "acct",
        "coupon",
        "promo",
        "voucher",
        "version",
        "policy",
        "claim",
        "loan",
        "emi",
        "ऑर्डर",
    ),
}

# Cue phrases are compared as tuples of words: ASCII letters (with one inner slash, so "a/c"
# is one word and "a c" is not it) and Devanagari runs; "UID:" is ("uid",).
_TOKEN_RE = re.compile("[a-z]+(?:/[a-z]+)?|[\u0900-\u097f]+")


def _phrase(words: str) -> tuple[str, ...]:
    return tuple(_TOKEN_RE.findall(words))


_ONE_WORD: dict[str, str] = {}
_TWO_WORDS: dict[tuple[str, str], str] = {}
for _category, _words in _CUES.items():
    for _w in _words:
        _p = _phrase(_w)
        if len(_p) == 1:
            _ONE_WORD[_p[0]] = _category
        else:
            _TWO_WORDS[(_p[0], _p[1])] = _category


# Words that may sit between a label and its value without making it label something else.
_GLUE = frozenset("no nos number numbers num nr id ids is was are hai ka ki ke".split())  # noqa: SIM905


def nearest_cue(text: str, start: int, window: int) -> str | None:
    """The category of the last cue word ending within `window` characters before `start`.

    Only what precedes a value counts: labels come first in the messages this sees ("card
    4111…", "order #4539…"), and looking ahead would pick up the next field's label.

    A business word (NEGATIVE) counts only when it labels the value itself: nothing but
    label glue ("no", "number", "id", "is", punctuation) between it and the value. "order
    4111…" and "order no. 4111…" are order numbers; in "foreign transaction fee on 4111…"
    and "the account under 343-67-6258" the business word labels something else, and the
    value is judged on its own.
    """
    if start <= 0:
        return None
    lo = start - window if start > window else 0
    words = _TOKEN_RE.findall(text[lo:start].lower())
    labels_value = True  # only glue words between this word and the value so far
    for i in range(len(words) - 1, -1, -1):
        found: str | None = None
        if i > 0:
            found = _TWO_WORDS.get((words[i - 1], words[i]))
        if found is None:
            found = _ONE_WORD.get(words[i])
        if found is not None and (found != NEGATIVE or labels_value):
            return found
        if found is None and words[i] not in _GLUE:
            labels_value = False
    return None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A validated finding before overlaps are settled.

    priority orders competing readings of the same characters: a checksum plus a matching
    cue beats a checksum alone, which beats a shape; the strongest non-overlapping
    candidates win.
    """

    priority: int
    start: int
    end: int
    data_class: str
    detector: str
    check: str


# ASCII digits -> "0", ASCII letters -> "a", other ASCII kept, non-ASCII "?" (via encode).
_CLASS_TABLE = (
    bytes(ord("0") if chr(i).isdigit() else ord("a") if chr(i).isalpha() else i for i in range(128)) + b"?" * 128
)
# Letters lower-cased, digits kept, everything else a word separator.
_WORD_TABLE = bytes(ord(chr(i).lower()) if chr(i).isalnum() else ord(" ") for i in range(128)) + b" " * 128


class TextView:
    """A message prepared once for every detector: lower-cased text, class string, words.

    cls: ASCII digits as "0", ASCII letters as "a", other ASCII as itself, anything else as
    "?"; offsets equal the text's. words: the lower-cased ASCII words, as bytes, for gate
    tests ("does any trigger word occur at all?") that cost one set intersection.
    """

    __slots__ = ("ascii", "cls", "low", "raw", "text", "words")

    def __init__(self, text: str) -> None:
        self.text = text
        self.ascii = text.isascii()
        self.low = text.lower()
        self.raw = text.encode("ascii", "replace")
        self.cls = self.raw.translate(_CLASS_TABLE)
        self.words = frozenset(self.raw.translate(_WORD_TABLE).split())

    def has_word(self, triggers: frozenset[bytes]) -> bool:
        return not triggers.isdisjoint(self.words)
