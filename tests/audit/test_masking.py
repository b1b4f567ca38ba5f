"""Masking of stored requests: no raw PAN, CVV, Aadhaar or PHI survives, wherever it sits,
and what rules need to replay (booleans, amounts, vocabulary values) stays."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_audit_support import AADHAAR, AADHAAR_SPACED, CVV, PAN, PAN_SPACED, sensitive_request

from cxpolicy.audit.masking import mask_request, mask_text, sensitive_key


def stored(value: Any) -> str:
    return orjson.dumps(value).decode()


SENSITIVE = ("card_number", "cardNumber", "PAN", "cvv", "card_pin", "aadhaar", "ssn", "mrn")
SENSITIVE_TOO = ("diagnosis", "otp_code", "password", "dob", "patient", "account_number")
HARMLESS = ("pincode", "span", "company", "data_classes", "otp_verified", "card_type")
HARMLESS_TOO = ("pan_present", "otp_attempts", "amount", "action", "region", "channel")


def test_sensitive_keys() -> None:
    for key in SENSITIVE + SENSITIVE_TOO:
        assert sensitive_key(key), key
    for key in HARMLESS + HARMLESS_TOO:
        assert not sensitive_key(key), key


def no_detectors(text: str) -> list[tuple[int, int, str]]:
    """Nets (a) and (b) alone, so the exact masked text does not depend on cxpolicy.signals."""
    return []


def test_everything_sensitive_is_masked_and_the_rest_kept() -> None:
    masked = mask_request(sensitive_request(), scanner=no_detectors)
    text = stored(masked)
    for raw in (PAN, PAN_SPACED, AADHAAR, AADHAAR_SPACED, "MRN-99812", "diabetes"):
        assert raw not in text, raw
    assert masked["context"]["cvv"] == "[MASKED:cvv]"
    assert masked["context"]["card_number"] == "[MASKED:card]"
    assert masked["patient"] == {"mrn": "[MASKED:patient]", "diagnosis": "[MASKED:patient]"}
    assert masked["cards"] == [{"pan": "[MASKED:pan]"}, "[MASKED:digits]"]
    assert f"cvv {CVV}" not in masked["payload"]["text"]
    assert masked["payload"]["text"].startswith("My card is [MASKED:digits], cvv [MASKED:code]")
    # Replayable fields survive.
    assert masked["context"]["otp_verified"] is True
    assert masked["context"]["amount"] == 12000
    assert masked["action"] == "refund.execute"
    assert masked["data_classes"] == ["card_pan"]
    assert masked["customer"]["region"] == "IN"


def test_numbers_and_keys() -> None:
    masked = mask_request({"context": {"ref": 4111111111111111, "n": 42}, PAN: "x"}, scanner=no_detectors)
    assert masked["context"] == {"ref": "[MASKED:digits]", "n": 42}
    assert PAN not in stored(masked)


def test_text_shapes() -> None:
    def shapes(text: str) -> str:
        return mask_text(text, use_signals=False)

    assert shapes("ssn 123-45-6789 ok") == "ssn [MASKED:us_ssn] ok"
    assert shapes("PIN is 4321") == "PIN is [MASKED:code]"
    assert shapes("OTP: 558812.") == "OTP: [MASKED:code]."
    assert shapes("order 12345 shipped") == "order 12345 shipped"
    assert shapes("card 4111-1111-1111-1111") == "card [MASKED:digits]"
    assert shapes("refund.execute") == "refund.execute"


def test_signals_detectors_are_used_when_present() -> None:
    signals = pytest.importorskip("cxpolicy.signals")
    if not hasattr(signals, "scan_text"):
        pytest.skip("cxpolicy.signals has no scan_text")
    text = f"card {PAN_SPACED}, aadhaar {AADHAAR_SPACED}, mail jane.doe@example.com"
    masked = mask_request({"customer": {"region": "IN"}, "payload": {"text": text}})
    out = masked["payload"]["text"]
    for raw in (PAN_SPACED, AADHAAR_SPACED, "jane.doe@example.com"):
        assert raw not in out
    assert "[MASKED:" in out and out.startswith("card [MASKED:")


def test_custom_scanner_spans_are_masked_and_merged() -> None:
    def scanner(text: str) -> list[tuple[int, int, str]]:
        i = text.find("Jane Doe")
        return [(i, i + 8, "name"), (i + 2, i + 4, "name")] if i >= 0 else []

    masked = mask_request({"payload": {"text": "patient Jane Doe, card " + PAN}}, scanner=scanner)
    assert masked["payload"]["text"] == "patient [MASKED:name], card [MASKED:digits]"


def test_failing_scanner_still_masks_shapes() -> None:
    def broken(text: str) -> list[tuple[int, int, str]]:
        raise RuntimeError("detector bug")

    masked = mask_request({"payload": {"text": "card " + PAN_SPACED}}, scanner=broken)
    assert masked["payload"]["text"] == "card [MASKED:digits]"


def luhn_complete(prefix: str) -> str:
    digits = [int(c) for c in prefix]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return prefix + str((10 - total % 10) % 10)


@settings(max_examples=200, deadline=None)
@given(
    body=st.text(st.characters(codec="utf-8", exclude_categories=("Nd",)), max_size=40),
    prefix=st.text("0123456789", min_size=11, max_size=18),
    sep=st.sampled_from(["", " ", "-"]),
    where=st.sampled_from(["text", "context", "list", "key"]),
)
def test_any_card_number_anywhere_is_masked(body: str, prefix: str, sep: str, where: str) -> None:
    pan = luhn_complete(prefix)
    shown = sep.join(pan[i : i + 4] for i in range(0, len(pan), 4))
    value = f"{body} {shown} {body}"
    request: dict[str, Any] = {"action": "message.send"}
    if where == "text":
        request["payload"] = {"text": value}
    elif where == "context":
        request["context"] = {"free": value}
    elif where == "list":
        request["notes"] = [value]
    else:
        request["context"] = {value: 1}
    out = stored(mask_request(request))
    assert pan not in out
    assert shown not in out
