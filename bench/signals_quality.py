"""Precision and recall of the signal detectors on the labelled corpus in tests/data/.

    .venv/bin/python -m bench.signals_quality            # table per detector + injection
    .venv/bin/python -m bench.signals_quality --misses   # also list every miss and false alarm
    .venv/bin/python -m bench.signals_quality --json     # machine-readable

PII: a found span is a true positive when a label has the same class and exactly the same
boundaries (a span one character short leaves that character unmasked); anything else is a
false positive, and a label nobody found exactly is a false negative. "masked" is the share
of labelled characters covered by some span of any class: what redaction actually hides.
Injection: a message is flagged when its score is at least the threshold (0.5).
The corpus is built by bench/build_signals_corpus.py; docs/signals.md carries the numbers.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxpolicy.signals import scan_text, score_injection

ROOT = Path(__file__).resolve().parent.parent
PII_CORPUS = ROOT / "tests" / "data" / "signals_pii.jsonl"
INJECTION_CORPUS = ROOT / "tests" / "data" / "signals_injection.jsonl"
THRESHOLD = 0.5


def load(path: Path, split: str | None = None) -> list[dict[str, Any]]:
    """Corpus rows; `split` keeps one part: "dev" (tuned on), "holdout"/"holdout2"/"holdout3" (written
    later, measured before any change they prompted; see docs/signals.md)."""
    with path.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return [r for r in rows if split is None or r.get("split") == split]


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
        }


@dataclass
class PiiReport:
    per_class: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    total: Counts = field(default_factory=Counts)
    labelled_chars: int = 0
    masked_chars: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def masked(self) -> float:
        return self.masked_chars / self.labelled_chars if self.labelled_chars else 1.0


def evaluate_pii(rows: list[dict[str, Any]] | None = None) -> PiiReport:
    report = PiiReport()
    for row in rows if rows is not None else load(PII_CORPUS):
        text = row["text"]
        labels = {(lab["class"], lab["start"], lab["end"]) for lab in row["labels"]}
        spans = scan_text(text, region=row.get("region"))
        found = {(s.data_class, s.start, s.end) for s in spans}
        for item in found & labels:
            report.per_class[item[0]].tp += 1
        for item in found - labels:
            report.per_class[item[0]].fp += 1
            report.misses.append(f"FP {item[0]:<12} {text[item[1] : item[2]]!r} in {text!r}")
        for item in labels - found:
            report.per_class[item[0]].fn += 1
            report.misses.append(f"FN {item[0]:<12} {text[item[1] : item[2]]!r} in {text!r}")
        covered = {i for s in spans for i in range(s.start, s.end)}
        for _, start, end in labels:
            report.labelled_chars += end - start
            report.masked_chars += sum(1 for i in range(start, end) if i in covered)
    for counts in report.per_class.values():
        report.total.tp += counts.tp
        report.total.fp += counts.fp
        report.total.fn += counts.fn
    return report


@dataclass
class InjectionReport:
    counts: Counts = field(default_factory=Counts)
    tn: int = 0
    indicators: Counter[str] = field(default_factory=Counter)
    misses: list[str] = field(default_factory=list)


def evaluate_injection(rows: list[dict[str, Any]] | None = None, threshold: float = THRESHOLD) -> InjectionReport:
    report = InjectionReport()
    for row in rows if rows is not None else load(INJECTION_CORPUS):
        result = score_injection(row["text"])
        flagged = result["score"] >= threshold
        report.indicators.update(result["indicators"])
        if flagged and row["label"]:
            report.counts.tp += 1
        elif flagged:
            report.counts.fp += 1
            report.misses.append(f"FP {result['score']:.2f} {result['indicators']} {row['text']!r}")
        elif row["label"]:
            report.counts.fn += 1
            report.misses.append(f"FN {result['score']:.2f} {result['indicators']} {row['text']!r}")
        else:
            report.tn += 1
    return report


def _print(title: str, pii: PiiReport, inj: InjectionReport, misses: bool) -> None:
    print(f"== {title}")
    print(f"{'detector':<14}{'labels':>7}{'tp':>6}{'fp':>6}{'fn':>6}{'precision':>11}{'recall':>8}")
    for name in sorted(pii.per_class):
        c = pii.per_class[name]
        print(f"{name:<14}{c.tp + c.fn:>7}{c.tp:>6}{c.fp:>6}{c.fn:>6}{c.precision:>11.3f}{c.recall:>8.3f}")
    t = pii.total
    print(f"{'all PII':<14}{t.tp + t.fn:>7}{t.tp:>6}{t.fp:>6}{t.fn:>6}{t.precision:>11.3f}{t.recall:>8.3f}")
    print(f"labelled characters masked by some span: {pii.masked:.3f}")
    c = inj.counts
    print(
        f"injection (score >= {THRESHOLD}): {c.tp + c.fn} positive, {c.fp + inj.tn} benign; "
        f"tp {c.tp} fp {c.fp} fn {c.fn} tn {inj.tn}; precision {c.precision:.3f} recall {c.recall:.3f}"
    )
    print("indicators fired:", ", ".join(f"{k} {v}" for k, v in inj.indicators.most_common()))
    if misses:
        print("\n".join(pii.misses))
        print("\n".join(inj.misses))
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--misses", action="store_true", help="list false positives and negatives")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args()
    results = {
        split: (evaluate_pii(load(PII_CORPUS, split)), evaluate_injection(load(INJECTION_CORPUS, split)))
        for split in ("dev", "holdout", "holdout2", "holdout3", None)
    }
    if args.json:
        out = {}
        for split, (pii, inj) in results.items():
            out[split or "all"] = {
                "pii": {c: pii.per_class[c].as_dict() for c in sorted(pii.per_class)},
                "pii_total": pii.total.as_dict(),
                "pii_masked_chars": round(pii.masked, 4),
                "injection": {**inj.counts.as_dict(), "tn": inj.tn, "threshold": THRESHOLD},
            }
        print(json.dumps(out, indent=2))
        return
    for split, (pii, inj) in results.items():
        _print(split or "all", pii, inj, args.misses and split is not None)


if __name__ == "__main__":
    main()
