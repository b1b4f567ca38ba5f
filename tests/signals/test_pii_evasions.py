"""Obfuscated identifiers: every evasion family of issue 18 is found, and spans point into the
original text (so masking hides exactly the obfuscated characters)."""

from __future__ import annotations

import pytest
from stdnum import luhn

from cxpolicy.signals import scan_text

CARD = "4111111111111111"
AADHAAR = "234123412346"
SSN = "343676258"


def _groups(d: str, size: int) -> list[str]:
    return [d[i : i + size] for i in range(0, len(d), size)]


def _found(text: str, region: str = "IN") -> list[tuple[str, str]]:
    return [(s.data_class, text[s.start : s.end]) for s in scan_text(text, region=region)]


def _digits_of(value: str) -> str:
    from cxpolicy.signals.normalise import fold_digits, normalise

    return "".join(ch for ch in fold_digits(normalise(value).text) if ch.isdigit())


DEVANAGARI = str.maketrans("0123456789", "०१२३४५६७८९")
ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")

CARD_VARIANTS = {
    "dots": ".".join(_groups(CARD, 4)),
    "slashes": "/".join(_groups(CARD, 4)),
    "underscores": "_".join(_groups(CARD, 4)),
    "double spaces": "  ".join(_groups(CARD, 4)),
    "spaced dashes": " - ".join(_groups(CARD, 4)),
    "nbsp": "\u00a0".join(_groups(CARD, 4)),
    "thin space": "\u2009".join(_groups(CARD, 4)),
    "narrow nbsp": "\u202f".join(_groups(CARD, 4)),
    "soft hyphen": "\u00ad".join(_groups(CARD, 4)),
    "soft hyphen in every gap": "\u00ad".join(CARD),
    "newline": "\n".join(_groups(CARD, 4)),
    "tab": "\t".join(_groups(CARD, 4)),
    "zero-width space": "\u200b".join(_groups(CARD, 4)),
    "zero-width between digits": "\u200b".join(CARD),
    "word joiner": "\u2060".join(_groups(CARD, 4)),
    "full-width digits": " ".join(_groups(CARD, 4)).translate(FULLWIDTH),
    "devanagari digits": " ".join(_groups(CARD, 4)).translate(DEVANAGARI),
    "arabic digits": " ".join(_groups(CARD, 4)).translate(ARABIC),
    "two-digit groups": " ".join(_groups(CARD, 2)),
    "three-digit groups": " ".join(_groups(CARD, 3)),
    "html entity spaces": "&nbsp;".join(_groups(CARD, 4)),
    "bidi isolates": "\u2066" + " ".join(_groups(CARD, 4)) + "\u2069",
}


@pytest.mark.parametrize("variant", sorted(CARD_VARIANTS))
def test_card_evasions_are_found_with_original_offsets(variant: str) -> None:
    value = CARD_VARIANTS[variant]
    text = f"please charge {value} today"
    found = _found(text)
    assert [c for c, _ in found] == ["card_pan"], (variant, found)
    _cls, span_text = found[0]
    # The span covers the obfuscated value in the original text, first digit to last.
    assert _digits_of(span_text) == CARD
    assert text.index(span_text) == len("please charge ") + (1 if variant == "bidi isolates" else 0)


AADHAAR_VARIANTS = {
    "dots": ".".join(_groups(AADHAAR, 4)),
    "nbsp": "\u00a0".join(_groups(AADHAAR, 4)),
    "zero-width": "\u200b".join(_groups(AADHAAR, 4)),
    "devanagari digits": " ".join(_groups(AADHAAR, 4)).translate(DEVANAGARI),
    "full-width": "-".join(_groups(AADHAAR, 4)).translate(FULLWIDTH),
    "newline": "\n".join(_groups(AADHAAR, 4)),
    "two-digit groups": " ".join(_groups(AADHAAR, 2)),
}


@pytest.mark.parametrize("variant", sorted(AADHAAR_VARIANTS))
def test_aadhaar_evasions(variant: str) -> None:
    found = _found(f"mera aadhaar {AADHAAR_VARIANTS[variant]} hai")
    assert [c for c, _ in found] == ["aadhaar"], (variant, found)
    assert _digits_of(found[0][1]) == AADHAAR


SSN_VARIANTS = {
    "dashes": "343-67-6258",
    "dots": "343.67.6258",
    "slashes": "343/67/6258",
    "nbsp": "343\u00a067\u00a06258",
    "soft hyphens": "343\u00ad-67\u00ad-6258",
    "full-width": "３４３-６７-６２５８",
    "spaced dashes": "343 - 67 - 6258",
}


@pytest.mark.parametrize("variant", sorted(SSN_VARIANTS))
def test_ssn_evasions(variant: str) -> None:
    found = _found(f"my SSN is {SSN_VARIANTS[variant]}", region="US")
    assert [c for c, _ in found] == ["us_ssn"], (variant, found)
    assert _digits_of(found[0][1]) == SSN


def test_lower_case_indian_pan_is_found() -> None:
    assert _found("my pan is abcpe1234f", "IN") == [("pan_in", "abcpe1234f")]
    assert _found("KYC pending. details: name rahul, abcpe1234f, dob later", "IN") == [("pan_in", "abcpe1234f")]
    # A lower-case look-alike in a message about nothing tax-like is a user name.
    assert _found("my login is hello1234x", "IN") == []


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("foreign transaction fee on 4111 1111 1111 1111 again", "4111 1111 1111 1111"),
        ("the account under 343-67-6258 is frozen", "343-67-6258"),
        ("the order was paid with 4111 1111 1111 1111", "4111 1111 1111 1111"),
    ],
)
def test_business_words_nearby_do_not_veto(text: str, value: str) -> None:
    assert [v for _, v in _found(text, "US")] == [value]


@pytest.mark.parametrize(
    "text",
    [
        "order 4111111111111111 shipped",
        "order no. 4111 1111 1111 1111 shipped",
        "transaction id is 4111111111111111",
    ],
)
def test_business_word_labelling_the_number_still_vetoes(text: str) -> None:
    assert _found(text, "US") == []


@pytest.mark.parametrize(
    "phone",
    ["712.710.1982x52605", "(712) 710-1982 x526", "712-710-1982 ext. 12", "+1-712-710-1982x3"],
)
def test_us_phone_extensions_are_found_and_masked_whole(phone: str) -> None:
    assert _found(f"call me at {phone} tonight", "US") == [("phone", phone)]


def _with_check(prefix: str, length: int) -> str:
    body = prefix + "7" * (length - len(prefix) - 1)
    return body + luhn.calc_check_digit(body)


@pytest.mark.parametrize(
    ("scheme", "number"),
    [("mir", _with_check("2200", 16)), ("jcb15", _with_check("2131", 15)), ("jcb15-1800", _with_check("1800", 15))],
)
def test_mir_and_jcb15_cards(scheme: str, number: str) -> None:
    assert _found(f"pay with {number} now", "US") == [("card_pan", number)], scheme


def test_normalisation_does_not_invent_findings() -> None:
    for text in [
        "at 2024-11-05 10:32:11 the payment failed",
        "the app version is 10.4.2.1",
        "Rs 1,00,000 credited on 05.11.2024",
        "ig\u00adnore\u200b the\u00a0noise &amp; %20 <!-- x -->",
    ]:
        assert _found(text) == [], text
