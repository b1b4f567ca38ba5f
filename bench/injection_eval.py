"""Injection recall and false-positive rate on held-out data: phrase rules alone, the shipped
linear model alone, and both (what `detect` reports), at the 0.5 threshold.

    .venv/bin/python -m bench.injection_eval [--misses]

Held-out: bench/injection_data/heldout.jsonl (hand-written after the training templates,
never trained or tuned on) and the holdout splits of tests/data/signals_injection.jsonl
(written by earlier sessions to test the phrase rules; not in the model's training data).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cxpolicy.signals import model as model_mod
from cxpolicy.signals.cues import TextView
from cxpolicy.signals.injection import reader_views, score_injection, score_view
from cxpolicy.signals.normalise import normalise

ROOT = Path(__file__).resolve().parent.parent
SETS = {
    "heldout (hand-written, issue 18)": ROOT / "bench" / "injection_data" / "heldout.jsonl",
    "heldout2 (written before the second training round)": ROOT / "bench" / "injection_data" / "heldout2.jsonl",
    "corpus holdout splits": ROOT / "tests" / "data" / "signals_injection.jsonl",
}


def _load(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if path.name == "signals_injection.jsonl":
        rows = [r for r in rows if r.get("split", "dev") != "dev"]
    return rows


def _rules(text: str) -> float:
    norm = normalise(text).text
    return float(score_view(TextView(text), reader_views(text, norm))["score"])


def _model(text: str) -> float:
    m = model_mod.load_model()
    return 0.0 if m is None else model_mod.combine({"score": 0.0, "indicators": []}, normalise(text).text)["score"]


def evaluate(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, fn in (("rules", _rules), ("model", _model), ("detect", lambda t: score_injection(t)["score"])):
        pos = [fn(r["text"]) >= 0.5 for r in rows if r["label"]]
        neg = [fn(r["text"]) >= 0.5 for r in rows if not r["label"]]
        out[name] = {
            "recall": round(sum(pos) / len(pos), 3) if pos else 1.0,
            "fpr": round(sum(neg) / len(neg), 3) if neg else 0.0,
            "positives": len(pos),
            "benign": len(neg),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--misses", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report: dict[str, Any] = {}
    for title, path in SETS.items():
        rows = _load(path)
        report[title] = evaluate(rows)
        print(f"== {title}")
        for name, r in report[title].items():
            print(
                f"  {name:<7} recall {r['recall']:.3f} ({r['positives']} injections)"
                f"  FPR {r['fpr']:.3f} ({r['benign']} benign)"
            )
        if args.misses:
            for r in rows:
                s = score_injection(r["text"])
                if (s["score"] >= 0.5) != bool(r["label"]):
                    print(f"    {'FN' if r['label'] else 'FP'} {s['score']:.2f} {s['indicators']} {r['text'][:100]!r}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
