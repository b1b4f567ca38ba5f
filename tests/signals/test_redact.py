"""Masking per a decision's redact list: styles, keys, payloads, and what must never leak."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cxpolicy.cli import main
from cxpolicy.engine.decision import Decision, Redaction
from cxpolicy.kinds import Effect, Style
from cxpolicy.signals import detect
from cxpolicy.signals.redact import (
    KEY_ENV,
    RedactionKeyError,
    apply,
    mask_text,
    styles_from,
    token_for,
    unmaskable,
)

KEY = b"k" * 32
CARD = "4111 1111 1111 1111"
TEXT = f"Your card {CARD} is linked to aadhaar 2341 2341 2346, mail priya@example.com."


def decision(*pairs: tuple[str, Style]) -> Decision:
    return Decision(
        decision_id="d-1",
        effect=Effect.REDACT,
        redact=tuple(Redaction(c, s) for c, s in pairs),
        escalate_to=(),
        reasons=(),
        errors=(),
        policy_revision="r1",
    )


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def test_full() -> None:
    out = apply(TEXT, decision(("card_pan", Style.FULL)))
    assert out == ("Your card [REDACTED:card_pan] is linked to aadhaar 2341 2341 2346, mail priya@example.com.")


def test_only_the_listed_classes_are_masked() -> None:
    out = apply(TEXT, decision(("aadhaar", Style.FULL), ("email", Style.FULL)))
    assert CARD in out
    assert "2341 2341 2346" not in out and "priya@example.com" not in out


def test_last4_keeps_separators_and_the_last_four() -> None:
    assert apply(f"card {CARD}", decision(("card_pan", Style.LAST4))) == "card XXXX XXXX XXXX 1111"
    assert apply("aadhaar 2341 2341 2346", decision(("aadhaar", Style.LAST4))) == ("aadhaar XXXX XXXX 2346")


def test_last4_with_bin_for_card_pan_only() -> None:
    d = decision(("card_pan", Style.LAST4), ("aadhaar", Style.LAST4))
    out = apply(f"card {CARD} aadhaar 2341 2341 2346", d, keep_bin=True)
    assert out == "card 4111 11XX XXXX 1111 aadhaar XXXX XXXX 2346"


def test_last4_never_shows_a_secret_or_a_short_value() -> None:
    d = decision(("card_cvv", Style.LAST4), ("otp_code", Style.LAST4), ("dob", Style.LAST4))
    out = apply("CVV 123, OTP 48291377, DOB 12/03/1990", d)
    assert out == "CVV [REDACTED:card_cvv], OTP [REDACTED:otp_code], DOB [REDACTED:dob]"


def test_token_is_deterministic_keyed_and_normalised() -> None:
    d = decision(("card_pan", Style.TOKEN))
    a = apply(f"card {CARD}", d, key=KEY)
    b = apply("card 4111-1111-1111-1111", d, key=KEY)
    c = apply(f"card {CARD}", d, key=b"j" * 32)
    assert a == b
    assert a != c
    token = a.removeprefix("card ")
    assert token.startswith("tok_card_pan_") and len(token) == len("tok_card_pan_") + 24
    assert token == token_for("card_pan", "4111111111111111", KEY)


def test_token_is_bound_to_the_class() -> None:
    assert token_for("aadhaar", "234123412346", KEY) != token_for("phone", "234123412346", KEY)


def test_token_refuses_without_a_key() -> None:
    with pytest.raises(RedactionKeyError, match=KEY_ENV):
        apply(f"card {CARD}", decision(("card_pan", Style.TOKEN)))
    # Refused up front, even for text with nothing to tokenise: misconfiguration shows early.
    with pytest.raises(RedactionKeyError):
        apply("nothing here", decision(("card_pan", Style.TOKEN)))


def test_token_refuses_a_short_key() -> None:
    with pytest.raises(RedactionKeyError, match="at least 16"):
        apply(f"card {CARD}", decision(("card_pan", Style.TOKEN)), key=b"secret")


def test_token_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "e" * 32)
    d = decision(("card_pan", Style.TOKEN))
    assert apply(f"card {CARD}", d) == apply(f"card {CARD}", d, key=b"e" * 32)


def test_no_token_style_needs_no_key() -> None:
    apply(TEXT, decision(("card_pan", Style.FULL), ("email", Style.LAST4)))


def test_payload_and_request_are_copied_not_changed() -> None:
    payload = {"text": f"card {CARD}", "direction": "outbound"}
    out = apply(payload, decision(("card_pan", Style.FULL)))
    assert out == {"text": "card [REDACTED:card_pan]", "direction": "outbound"}
    assert payload["text"] == f"card {CARD}"
    request = {"customer": {"region": "US"}, "payload": {"text": "call 201-555-0123"}}
    masked = apply(request, decision(("phone", Style.FULL)))
    assert masked["payload"]["text"] == "call [REDACTED:phone]"  # region taken from the request
    assert request["payload"]["text"] == "call 201-555-0123"


def test_rejects_other_types() -> None:
    with pytest.raises(TypeError):
        apply(42, decision(("card_pan", Style.FULL)))  # type: ignore[arg-type]


def test_strictest_style_per_class() -> None:
    d = decision(("card_pan", Style.LAST4), ("card_pan", Style.FULL), ("email", Style.TOKEN))
    assert styles_from(d) == {"card_pan": Style.FULL, "email": Style.TOKEN}


def test_unmaskable_names_what_no_detector_finds() -> None:
    d = decision(("card_pan", Style.FULL), ("name", Style.FULL), ("address", Style.FULL))
    assert unmaskable(d) == ["address", "name"]


def test_mask_text_takes_detect_spans_and_ignores_unlisted_classes() -> None:
    spans = detect({"payload": {"text": TEXT}, "customer": {"region": "IN"}})["pii_spans"]
    out = mask_text(TEXT, spans, {"email": "full"})
    assert out == TEXT.replace("priya@example.com", "[REDACTED:email]")


def test_mask_text_overlapping_spans_leave_nothing_behind() -> None:
    text = "abc 4111111111111111 xyz"
    spans = [
        {"class": "card_pan", "start": 4, "end": 20},
        {"class": "phone", "start": 10, "end": 22},
    ]
    out = mask_text(text, spans, {"card_pan": "full", "phone": "full"})
    assert out == "abc [REDACTED:card_pan][REDACTED:phone]yz"


VALUES = ["4111 1111 1111 1111", "2341 2341 2346", "ABCPE1234F", "priya@example.com", "9876543210"]
ALL_FULL = decision(*((c, Style.FULL) for c in ("card_pan", "aadhaar", "pan_in", "email", "phone")))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.sampled_from(VALUES), st.text(alphabet=" .,:abcxyz", max_size=12)),
        max_size=8,
    )
)
@example(parts=["9876543210", "x", "4111 1111 1111 1111"])  # a card once taken for a phone extension
def test_masked_text_contains_no_detected_value(parts: list[str]) -> None:
    text = " ".join(parts)
    out = apply(text, ALL_FULL, region="IN")
    for v in VALUES:
        if v in text:
            assert v not in out


# --- the `cxpolicy redact` command ----------------------------------------------------------

POLICY = """package shop
use core
default escalate
rule send_ok { match action = message.send
  decide allow }
rule mask_ids { match data_class in [card_pan, aadhaar]
  decide redact as last4 }
rule mask_email { match data_class = email
  decide redact as token }
"""


def _request(text: str) -> str:
    return json.dumps(
        {
            "action": "message.send",
            "channel": "chat",
            "actor": {"kind": "ai"},
            "customer": {"segment": "retail", "risk_tier": "low", "region": "IN"},
            "payload": {"text": text, "direction": "outbound"},
        }
    )


def _policy_dir(tmp_path: Path) -> Path:
    d = tmp_path / "policy"
    d.mkdir()
    (d / "shop.cxp").write_text(POLICY)
    return d


def test_cli_masks_what_the_detectors_found(tmp_path: Path) -> None:
    pol = _policy_dir(tmp_path)
    lines = "\n".join([_request(f"card {CARD}, aadhaar 2341 2341 2346"), _request("thanks!"), "{oops"])
    res = CliRunner().invoke(main, ["redact", "-p", str(pol), "-i", "-"], input=lines)
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert rows[0]["effect"] == "redact"
    assert rows[0]["payload"]["text"] == "card XXXX XXXX XXXX 1111, aadhaar XXXX XXXX 2346"
    assert rows[0]["payload"]["direction"] == "outbound"
    assert rows[1]["effect"] == "allow" and rows[1]["payload"]["text"] == "thanks!"
    assert rows[2]["payload"] is None and rows[2]["effect"] == "escalate" and rows[2]["errors"]
    assert CARD not in res.stdout


def test_cli_text_format_and_keep_bin(tmp_path: Path) -> None:
    pol = _policy_dir(tmp_path)
    res = CliRunner().invoke(
        main, ["redact", "-p", str(pol), "-i", "-", "--format", "text", "--keep-bin"], input=_request(f"card {CARD}")
    )
    assert res.exit_code == 0
    assert res.stdout == "card 4111 11XX XXXX 1111\n"


def test_cli_token_needs_the_named_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pol = _policy_dir(tmp_path)
    monkeypatch.setenv(KEY_ENV, "x" * 32)  # present, but not the variable the user named
    res = CliRunner().invoke(
        main, ["redact", "-p", str(pol), "-i", "-", "--key-env", "SHOP_KEY"], input=_request("mail a@example.com")
    )
    assert res.exit_code == 64
    assert "SHOP_KEY" in res.stderr and "a@example.com" not in res.stdout
    monkeypatch.setenv("SHOP_KEY", "k" * 32)
    res = CliRunner().invoke(
        main, ["redact", "-p", str(pol), "-i", "-", "--key-env", "SHOP_KEY"], input=_request("mail a@example.com")
    )
    assert res.exit_code == 0
    text = json.loads(res.stdout)["payload"]["text"]
    assert text == "mail " + token_for("email", "a@example.com", b"k" * 32)


def test_cli_no_detect_leaves_undeclared_values(tmp_path: Path) -> None:
    pol = _policy_dir(tmp_path)
    res = CliRunner().invoke(main, ["redact", "-p", str(pol), "-i", "-", "--no-detect"], input=_request(f"card {CARD}"))
    assert res.exit_code == 0
    row = json.loads(res.stdout)
    assert row["effect"] == "allow" and row["payload"]["text"] == f"card {CARD}"
