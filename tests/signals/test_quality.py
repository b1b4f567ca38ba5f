"""Regression floors for detector quality on the labelled corpus (tests/data/signals_*.jsonl).

The floors sit just under what the detectors measure today (docs/signals.md has the table),
so a change that loses a detection or adds false alarms fails here. They are floors on this
corpus, not claims about all text: the held-out splits show how much lower injection recall
is on phrasings the patterns were not written for.
"""

from __future__ import annotations

import pytest

from bench.signals_quality import INJECTION_CORPUS, PII_CORPUS, evaluate_injection, evaluate_pii, load

PII_FLOOR = 0.95  # per detector with at least 5 labels, precision and recall
PII_TOTAL_FLOOR = 0.98
INJECTION_PRECISION_FLOOR = 0.97
INJECTION_RECALL_FLOOR = 0.85


@pytest.fixture(scope="module")
def pii():  # type: ignore[no-untyped-def]
    return evaluate_pii(load(PII_CORPUS))


def test_corpus_has_every_detector_and_hard_negatives() -> None:
    rows = load(PII_CORPUS)
    classes = {lab["class"] for row in rows for lab in row["labels"]}
    assert {"card_pan", "aadhaar", "aadhaar_vid", "pan_in", "gstin", "ifsc", "upi_vpa", "iban"} <= classes
    assert {"us_ssn", "phone", "email", "dob", "mrn"} <= classes
    negatives = [row for row in rows if not row["labels"]]
    assert len(negatives) >= 80
    injection = load(INJECTION_CORPUS)
    assert sum(r["label"] for r in injection) >= 100 and sum(not r["label"] for r in injection) >= 100


def test_pii_per_detector_floors(pii) -> None:  # type: ignore[no-untyped-def]
    for name, counts in pii.per_class.items():
        if counts.tp + counts.fn >= 5:
            assert counts.precision >= PII_FLOOR, (name, counts)
            assert counts.recall >= PII_FLOOR, (name, counts)


def test_pii_total_floor_and_masking(pii) -> None:  # type: ignore[no-untyped-def]
    assert pii.total.precision >= PII_TOTAL_FLOOR
    assert pii.total.recall >= PII_TOTAL_FLOOR
    assert pii.masked >= PII_TOTAL_FLOOR


def test_injection_floors() -> None:
    report = evaluate_injection(load(INJECTION_CORPUS))
    assert report.counts.precision >= INJECTION_PRECISION_FLOOR
    assert report.counts.recall >= INJECTION_RECALL_FLOOR


def test_no_benign_message_is_flagged() -> None:
    benign = [r for r in load(INJECTION_CORPUS) if not r["label"]]
    report = evaluate_injection(benign)
    assert report.counts.fp == 0, report.misses
