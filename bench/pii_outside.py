"""PII recall and precision on messages built around Faker identifiers, plain and obfuscated.

    .venv/bin/pip install faker      # bench-only
    .venv/bin/python -m bench.pii_outside [--misses]

Nothing here was used to write or tune the detectors: the identifiers come from Faker (card
numbers of every provider it knows, US SSNs and phone numbers with its own extension
formats, Indian Aadhaar numbers), are checked with python-stdnum / phonenumbers so only
valid ones are labelled, and are placed in support-message templates, then obfuscated the
ways issue 18 lists (separators, NBSP/thin/zero-width/soft hyphen, newlines, other-script
digits, two-digit groups). A found span counts when its class matches and it covers the
label exactly; anything else found is a false positive.
"""

from __future__ import annotations

import argparse
import random
from typing import Any

import phonenumbers
from faker import Faker
from stdnum import luhn
from stdnum.in_ import aadhaar as _aadhaar
from stdnum.us import ssn as _ssn

from cxpolicy.signals import scan_text

TEMPLATES = {
    "card_pan": [
        "My card {v} was charged twice.",
        "please refund to {v} asap",
        "card no {v}",
        "I paid with {v} yesterday",
    ],
    "us_ssn": ["my SSN is {v}", "social security number {v} for the form", "SSN: {v}"],
    "phone": ["call me at {v}", "my number is {v}, after 6pm", "reach me on {v}"],
    "aadhaar": ["mera aadhaar {v} hai", "Aadhaar number {v} for KYC", "aadhaar: {v}"],
}
DEVA = str.maketrans("0123456789", "०१२३४५६७८९")
FULL = str.maketrans("0123456789", "０１２３４５６７８９")


def _obfuscate(value: str, rng: random.Random) -> str:
    digits = "".join(ch for ch in value if ch.isdigit())
    kind = rng.choice(["plain", "dots", "nbsp", "thin", "zw", "soft", "newline", "deva", "fullwidth", "pairs", "slash"])
    groups = [digits[i : i + 4] for i in range(0, len(digits), 4)]
    if kind == "plain":
        return value
    if kind == "pairs":
        return " ".join(digits[i : i + 2] for i in range(0, len(digits), 2))
    sep = {
        "dots": ".",
        "nbsp": "\u00a0",
        "thin": "\u2009",
        "zw": "\u200b",
        "soft": "\u00ad",
        "newline": "\n",
        "slash": "/",
    }.get(kind, " ")
    out = sep.join(groups)
    if kind == "deva":
        out = out.translate(DEVA)
    if kind == "fullwidth":
        out = out.translate(FULL)
    return out


def build(n: int = 400, seed: int = 7) -> list[dict[str, Any]]:
    fake_us = Faker("en_US")
    fake_in = Faker("en_IN")
    Faker.seed(seed)
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    providers = ["amex", "diners", "discover", "jcb15", "jcb16", "maestro", "mastercard", "visa13", "visa16", "visa19"]
    while len(rows) < n:
        cls = rng.choice(list(TEMPLATES))
        region = "IN" if cls == "aadhaar" else "US"
        if cls == "card_pan":
            value = fake_us.credit_card_number(card_type=rng.choice(providers))
            if not luhn.is_valid(value):
                continue
            value = _obfuscate(value, rng) if rng.random() < 0.5 else value
        elif cls == "us_ssn":
            value = fake_us.ssn()
            if not _ssn.is_valid(value):
                continue
            if rng.random() < 0.4:
                value = value.replace("-", rng.choice([".", " ", "\u00a0", "/"]))
        elif cls == "phone":
            value = fake_us.phone_number()
            try:
                ok = phonenumbers.is_valid_number(phonenumbers.parse(value.split("x")[0], "US"))
            except phonenumbers.NumberParseException:
                ok = False
            if not ok:
                continue
        else:
            value = fake_in.aadhaar_id().replace(" ", "")
            if not _aadhaar.is_valid(value):
                continue
            value = _obfuscate(value, rng) if rng.random() < 0.5 else " ".join(value[i : i + 4] for i in (0, 4, 8))
        template = rng.choice(TEMPLATES[cls])
        start = template.index("{v}")
        text = template.replace("{v}", value)
        rows.append(
            {"text": text, "region": region, "labels": [{"class": cls, "start": start, "end": start + len(value)}]}
        )
    return rows


def evaluate(rows: list[dict[str, Any]]) -> tuple[int, int, int, list[str]]:
    tp = fp = fn = 0
    misses: list[str] = []
    for r in rows:
        found = {(s.data_class, s.start, s.end) for s in scan_text(r["text"], region=r["region"])}
        labels = {(lab["class"], lab["start"], lab["end"]) for lab in r["labels"]}
        tp += len(found & labels)
        fp += len(found - labels)
        fn += len(labels - found)
        for f in found - labels:
            misses.append(f"FP {f[0]} {r['text'][f[1] : f[2]]!r} in {r['text']!r}")
        for lab in labels - found:
            misses.append(f"FN {lab[0]} {r['text'][lab[1] : lab[2]]!r} in {r['text']!r}")
    return tp, fp, fn, misses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--misses", action="store_true")
    parser.add_argument("-n", type=int, default=400)
    args = parser.parse_args()
    tp, fp, fn, misses = evaluate(build(args.n))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    print(f"PII (Faker, {args.n} messages): tp {tp} fp {fp} fn {fn}; precision {precision:.3f} recall {recall:.3f}")
    if args.misses:
        for m in misses:
            print("  " + m)


if __name__ == "__main__":
    main()
