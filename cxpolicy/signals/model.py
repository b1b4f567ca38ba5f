"""The learned part of the prompt-injection signal: normalised text in, a probability out.

The phrase catalogue (phrases.py) is precise but only knows the phrasings it lists; outside
data showed recall of 0.30 on injections it had never seen. This is a small logistic
regression over the message's normalised words, word pairs and character trigrams of each
word (so "instrutcions" still shares most of its trigrams with "instructions"), trained
offline by bench/train_injection.py on the corpora listed in bench/injection_data/ and
shipped as one JSON file of weights, read with the standard library on first use.

Evaluation is linear in the text and cheap: each distinct word's total weight (its unigram
plus its trigrams) is computed once and cached, word pairs are one dict lookup each, and a
long text is scored as its most suspicious window of `window` words (an injection buried in
a long benign e-mail is not averaged away).

A deployment can plug in a heavier classifier (a model it already runs): `combine` calls it
only when the cheap score is uncertain, i.e. inside `DetectorConfig.uncertain`, and uses its
probability instead of the linear model's.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from itertools import accumulate, pairwise, repeat
from math import fsum
from pathlib import Path
from typing import Any, cast

__all__ = ["MODEL_PATH", "Classifier", "LinearModel", "combine", "features", "load_model", "tokens"]

MODEL_PATH = Path(__file__).with_name("data") / "injection_model.json"

# A heavier optional classifier: normalised text in, probability of injection out.
Classifier = Callable[[str], float]

_TOKEN_RE = re.compile(r"[^\W_]+|[\u0900-\u0dff]+")
_MAX_CACHE = 50_000
# Scores are sums over words divided by sqrt(words), so a long text is not louder than a short
# one; below this many words the divisor stays put, so a four-word message is not amplified
# (one loaded word such as "stop" must not decide a short benign message on its own).
MIN_SCALE_WORDS = 8
_MAX_WORDS_EACH_END = 1024
_MAX_CHARS_EACH_END = 8 * 1024  # tokenising 64 KB costs more than scoring it


# On ASCII text the same tokens come from one translate and a split, both in C: letters
# lower-cased, digits kept, everything else a space.
_ASCII_WORDS = str.maketrans({chr(i): (chr(i).lower() if chr(i).isalnum() else " ") for i in range(128)})
_ANY_DIGIT = re.compile(r"[0-9]")


def tokens(text: str) -> list[str]:
    """Lower-cased words of `text`, with every number as "#" (numbers say nothing about
    intent, and every distinct one would be a cache entry)."""
    out: list[str] = text.translate(_ASCII_WORDS).split() if text.isascii() else _TOKEN_RE.findall(text.lower())
    if _ANY_DIGIT.search(text) is None:
        return out
    return ["#" if t.isdigit() else t for t in out]


def _grams(word: str) -> list[str]:
    w = f"<{word}>"
    return [w[i : i + 3] for i in range(len(w) - 2)]


def features(words: list[str]) -> list[str]:
    """The feature names of a token list, one per occurrence (the trainer's view)."""
    out: list[str] = []
    for w in words:
        out.append("w:" + w)
        out.extend("c:" + g for g in _grams(w))
    out.extend(f"b:{a} {b}" for a, b in pairwise(words))
    return out


class LinearModel:
    """Logistic regression over `features`, scaled by 1/sqrt(words), max over windows."""

    def __init__(self, weights: dict[str, float], bias: float, window: int, threshold: float = 0.5) -> None:
        self.bias = bias
        self.threshold = threshold
        self.window = max(4, window)
        self._unigram = {k[2:]: v for k, v in weights.items() if k.startswith("w:")}
        self._gram = {k[2:]: v for k, v in weights.items() if k.startswith("c:")}
        self._pair: dict[tuple[str, ...], float] = {
            tuple(k[2:].split(" ", 1)): v for k, v in weights.items() if k.startswith("b:")
        }
        self._cache: dict[str, float] = {}

    def _word(self, w: str) -> float:
        got = self._cache.get(w)
        if got is None:
            gram = self._gram
            got = self._unigram.get(w, 0.0) + sum(gram.get(g, 0.0) for g in _grams(w))
            if len(self._cache) >= _MAX_CACHE:
                self._cache.clear()
            self._cache[w] = got
        return got

    def margin(self, words: list[str]) -> float:
        """The logit of the most suspicious window of the token list."""
        n = len(words)
        if n == 0:
            return -math.inf
        # map() keeps the per-word work in C; only words never seen before reach _word().
        cached: list[float | None] = list(map(self._cache.get, words))
        if None in cached:
            per = [self._word(w) if v is None else v for w, v in zip(words, cached, strict=True)]
        else:
            per = cast("list[float]", cached)
        pairs: list[float] = list(map(self._pair.get, pairwise(words), repeat(0.0)))
        size = self.window
        if n <= size:
            return self.bias + (fsum(per) + fsum(pairs)) / math.sqrt(max(n, MIN_SCALE_WORDS))
        # Window j covers words j..j+size-1 and the pairs inside it.
        wsum = [0.0, *accumulate(per)]
        psum = [0.0, *accumulate(pairs)]
        step = max(1, size // 4)
        starts = [*range(0, n - size + 1, step), n - size]
        best: float = max(wsum[j + size] - wsum[j] + psum[j + size - 1] - psum[j] for j in starts)
        return self.bias + best / math.sqrt(size)

    def probability(self, text: str) -> float:
        if len(text) > 2 * _MAX_CHARS_EACH_END:
            text = text[:_MAX_CHARS_EACH_END] + " " + text[-_MAX_CHARS_EACH_END:]
        words = tokens(text)
        if len(words) > 2 * _MAX_WORDS_EACH_END:
            # A long text is read at its head and tail, where injected text sits (a pasted
            # e-mail's instructions come first or last): bounded cost on 64 KB.
            words = words[:_MAX_WORDS_EACH_END] + words[-_MAX_WORDS_EACH_END:]
        m = self.margin(words)
        if m == -math.inf:
            return 0.0
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, m))))


_loaded: LinearModel | None = None
_load_failed = False


def load_model(path: Path | None = None) -> LinearModel | None:
    """The shipped model (cached), or None when its file is missing or unreadable."""
    global _loaded, _load_failed
    if path is None and (_loaded is not None or _load_failed):
        return _loaded
    try:
        data: dict[str, Any] = json.loads((path or MODEL_PATH).read_text(encoding="utf-8"))
        model = LinearModel(
            {str(k): float(v) for k, v in data["weights"].items()},
            float(data["bias"]),
            int(data["window"]),
            float(data.get("threshold", 0.5)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        if path is None:
            _load_failed = True
        return None
    if path is None:
        _loaded = model
    return model


def combine(
    result: dict[str, Any],
    normalised: str,
    classifier: Classifier | None = None,
    uncertain: tuple[float, float] = (0.2, 0.8),
    extra: list[str] | None = None,
) -> dict[str, Any]:
    """`result` (the phrase indicators' score) with the model's vote added, noisy-OR.

    The model votes only once its probability reaches its threshold (chosen when training,
    the lowest that keeps 99 % of benign training messages under it); the vote then counts
    0.5 at the threshold up to 1.0 at certainty, so the model alone can flag a message but a
    weak model opinion never lifts a benign message towards the 0.5 line.

    `extra` are more views of the same text (leetspeak folded, rot13); the model's highest
    probability over them counts. With a `classifier`, a combined score inside `uncertain`
    is replaced by the classifier's probability (indicator "classifier"); a classifier that
    fails leaves the cheap score.
    """
    model = load_model()
    score = float(result["score"])
    indicators = list(result["indicators"])
    if model is not None:
        p = model.probability(normalised)
        for view in extra or ():
            p = max(p, model.probability(view))
        t = model.threshold
        if p >= t:
            vote = 0.5 + 0.5 * (p - t) / (1.0 - t) if t < 1.0 else 1.0
            score = 1.0 - (1.0 - score) * (1.0 - vote)
            indicators.append("model")
    if classifier is not None and uncertain[0] <= score < uncertain[1]:
        try:
            verdict = float(classifier(normalised))
        except Exception:  # a plug-in's failure must not take the decision down
            verdict = math.nan
        if 0.0 <= verdict <= 1.0:
            score = verdict
            indicators.append("classifier")
    return {"score": round(score, 4), "indicators": indicators}
