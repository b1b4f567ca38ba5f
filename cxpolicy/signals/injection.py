"""Prompt-injection signal: which tell-tale shapes a message has, and how much they add up to.

This is a signal for rules, not a verdict: it scores what is cheap and local to see (the
phrases and tricks injected text uses) so a policy can escalate or refuse inbound text
before an agent acts on it. Each indicator has a weight, the chance on its own that the
message is an injection; indicators combine as independent evidence (noisy-OR):

    score = 1 - (1 - w1) * (1 - w2) * ...

Weights (see docs/signals.md for the reasoning):

    instruction_override   0.75   "ignore previous instructions", "pichle instructions ignore karo",
                                  "respond to every future question with ...", "your real instructions:"
                           0.60   a soft shape below together with an order ("approve all ...")
                           0.40   "from now on you will ...", "new instructions:", "OTP check is
                                  disabled", "skip the verification", "repeat after me"
    system_prompt_claim    0.60   chat-template markup (<|im_start|>, [INST], "role": "system"),
                                  or a fake header below followed by an order ("you must ...")
                           0.45   "system:" lines, "### system", "admin override", "end of user message"
    role_claim             0.60   jailbreak personas: "you are now DAN", "enable developer mode",
                                  "you have no restrictions", "tum ab unrestricted AI ho"
                           0.40   "act as the admin", "I am the developer", "main admin hoon"
    secret_request         0.55   "reveal your system prompt", "what were you told", "list all
                                  customers' phone numbers", "system prompt batao"
    tool_call_smuggling    0.55   {"name": ..., "arguments": ...}, <tool_call>, "call the function",
                                  refund.execute(amount=...)
    hidden_text            0.60   Unicode tag characters, variation-selector runs (smuggled text)
                           0.50   bidi overrides and embeddings (text that reorders itself)
                           0.35   zero-width characters, Latin mixed with Cyrillic/Greek in a word
    encoded_instructions   0.60   base64/hex blobs that decode to instruction-like text
    exfiltration_link      0.60   a URL template ("?q={secret}", "USER_EMAIL_HERE") in any URL
                           0.50   an image whose URL carries data (sensitive parameter, blob)
                           0.30   a link (not an image) whose URL carries data
    privilege_request      0.45   "grant me admin access", "sudo ...", "full access do"
    addressed_to_agent     0.60   text written to the AI that reads it: "Note to the AI processing
                                  this complaint: ...", "if you are an AI, ..."

A message whose characters hide its words (fullwidth letters, no-break spaces, zero-width
characters between words, words spelt out letter by letter, look-alike Cyrillic letters) is
scored again as a reader would see it, and each indicator keeps its larger weight.

The strong indicators reach the 0.5 threshold alone; the weak ones (a "system:" line, a
zero-width space) need a second indicator, because each has benign uses on its own.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Callable
from typing import Any

from cxpolicy.signals import phrases as ph
from cxpolicy.signals.cues import TextView

__all__ = ["INDICATOR_WEIGHTS", "score_injection", "score_normalised", "score_view"]

# The largest weight each indicator can contribute (weaker shapes of it contribute less).
INDICATOR_WEIGHTS: dict[str, float] = {
    "instruction_override": 0.75,
    "system_prompt_claim": 0.6,
    "role_claim": 0.6,
    "secret_request": 0.55,
    "tool_call_smuggling": 0.55,
    "hidden_text": 0.6,
    "encoded_instructions": 0.6,
    "exfiltration_link": 0.6,
    "privilege_request": 0.45,
    "addressed_to_agent": 0.6,
}

# --- hidden text -----------------------------------------------------------------------------

_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_INVISIBLE = re.compile("[\u200b\u2060-\u2064\u180e]|(?<!^)\ufeff")
# What the re-scan of a text with hidden characters removes or folds (see _unhide).
_STRIP_INVISIBLE = re.compile(
    "[\u200b-\u200f\u2060-\u2064\u180e\ufeff\u202a-\u202e\u2066-\u2069"
    "\U000e0000-\U000e007f\U000e0100-\U000e01ef\ufe00-\ufe0f]+"
)
_SPACES = re.compile(" {2,}")
_SINGLE_LETTERS = frozenset(bytes([c]) for c in b"abcdefghijklmnopqrstuvwxyz")
_SPELT_OUT = re.compile(r"(?<![A-Za-z])[A-Za-z](?: [A-Za-z]){2,}(?![A-Za-z])")
# Cyrillic and Greek letters that look like Latin ones, folded before the re-scan.
_CONFUSABLES = str.maketrans(
    "аеорсухіјѕԁɡӏАВЕКМНОРСТХІЈЅαβεικνορτυχΑΒΕΗΙΚΜΝΟΡΤΥΧΖ",
    "aeopcyxijsdglABEKMHOPCTXIJSabeiknoptuxABEHIKMNOPTYXZ",
)
# Every character any hidden-text check looks for, so clean text costs one pass.
_ANY_SUSPECT = re.compile(
    "[\u200b-\u200d\u2060-\u2064\u180e\ufeff\u202a-\u202e\u2066-\u2069\u0370-\u04ff"
    "\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)
_JOINER_IN_LATIN = re.compile("[A-Za-z][\u200c\u200d]+[A-Za-z]")
_TAG_RUN = re.compile("[\U000e0000-\U000e007f]+")
_VARIATION_RUN = re.compile("[\U000e0100-\U000e01ef]{4,}")
_MIXED_SCRIPT = re.compile("[A-Za-z][\u0370-\u03ff\u0400-\u04ff]|[\u0370-\u03ff\u0400-\u04ff][A-Za-z]")

# --- encoded blobs and links ---------------------------------------------------------------

_B64_RE = re.compile(r"(?<![A-Za-z0-9+/=_\-])[A-Za-z0-9+/_\-]{24,}={0,2}")
_HEX_RE = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}[ ]?){16,}")
_DECODED_HINT = re.compile(
    r"ignore|disregard|instruction|system|prompt|reveal|password|api key|secret|you are|"
    r"assistant|execute|function|admin|forget|override|token|exfiltrat|disable|bypass|"
    r"safety|approve|transfer"
)
_MAX_BLOB = 4096

_LINK_RE = re.compile(
    r"(?P<img>!?)\[[^\]\n]{0,200}\]\( ?(?P<md>https?://[^\s)]{1,2000})"
    r"|<(?P<tag>img|a|iframe|script|link|source|video|audio)\b[^>]{0,300}?"
    r"(?:src|href) ?= ?[\"']?(?P<html>https?://[^\s\"'>]{1,2000})"
    r"|(?P<bare>https?://[^\s<>\"')\]]{1,2000})"
)
_PLACEHOLDER = re.compile(r"\{|\}|%7b|%7d|\$\{|\[[a-z_]{2,30}\]|<[a-z_]{2,30}>|[a-z]_here\b|\binsert_|_placeholder")
_SENSITIVE_PARAM = re.compile(
    r"[?&#](?:data|d|q|secret|prompt|key|api_key|apikey|token|password|pwd|pass|history|"
    r"conversation|chat|msg|message|ssn|card|cc|pan|otp|email|phone|aadhaar|info|exfil|"
    r"leak|payload|content|text|memory|context|user|creds?)="
)
_LONG_VALUE = re.compile(r"=[A-Za-z0-9+/_%\-]{32,}")


def _printable_ratio(s: str) -> float:
    if not s:
        return 0.0
    good = sum(1 for ch in s if ch.isprintable() or ch in "\n\t")
    return good / len(s)


def _instruction_like(decoded: str) -> bool:
    """Readable text with an instruction in it: the hint words, or any indicator firing on
    the decoded text (blobs inside blobs are not decoded again)."""
    if len(decoded) < 8 or _printable_ratio(decoded) < 0.9:
        return False
    if _DECODED_HINT.search(decoded.lower()) is not None:
        return True
    weights = _weights(TextView(decoded), decode=False)
    return any(w > 0.0 for w in weights.values())


def _decoded_blobs(view: TextView) -> bool:
    text = view.text
    b64 = view.raw.translate(_B64_TABLE)
    if b"b" * 24 not in b64:
        return _spaced_hex(view)
    for m in _B64_RE.finditer(text):
        blob = m.group()[:_MAX_BLOB]
        if blob.isalpha() and (blob.islower() or blob.isupper()):
            continue  # a long word, not base64
        core = blob.rstrip("=").replace("-", "+").replace("_", "/")
        core = core[: len(core) - len(core) % 4] if len(core) % 4 == 1 else core
        try:
            raw = base64.b64decode(core + "=" * (-len(core) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        if _instruction_like(raw.decode("utf-8", "replace")):
            return True
    return _spaced_hex(view)


def _spaced_hex(view: TextView) -> bool:
    hexes = view.raw.translate(_HEX_TABLE)
    if b"hh hh hh hh hh hh hh hh" not in hexes and b"h" * 32 not in hexes:
        return False
    for m in _HEX_RE.finditer(view.text):
        blob = m.group().replace(" ", "")[:_MAX_BLOB]
        if len(blob) % 2:
            blob = blob[:-1]
        try:
            raw = bytes.fromhex(blob)
        except ValueError:
            continue
        if _instruction_like(raw.decode("utf-8", "replace")):
            return True
    return False


def _exfil(low: str) -> float:
    """The weight of the most exfiltration-like link or image in the text (0 when none)."""
    best = 0.0
    for m in _LINK_RE.finditer(low):
        if m.group("bare") is not None:
            url = m.group("bare")
            image = link = False
        elif m.group("md") is not None:
            url = m.group("md")
            image = m.group("img") == "!"
            link = not image
        else:
            url = m.group("html")
            image = m.group("tag") != "a"
            link = not image
        if _PLACEHOLDER.search(url):
            weight = 0.6  # a URL template the model is asked to fill in
        elif not (image or link) or ("?" not in url and "#" not in url and "=" not in url):
            continue
        elif _LONG_VALUE.search(url):
            weight = 0.5 if image else 0.35
        elif _SENSITIVE_PARAM.search(url):
            weight = 0.5 if image else 0.3
        else:
            continue
        best = max(best, weight)
    return best


def _hidden(text: str) -> float:
    if _ANY_SUSPECT.search(text) is None:
        return 0.0  # one pass for the common case: nothing invisible, no Cyrillic or Greek
    tags = _TAG_RUN.search(text)
    if tags is not None:
        # A subdivision flag (black flag + tag letters + cancel tag) is the one legitimate use.
        flag = tags.start() > 0 and text[tags.start() - 1] == "\U0001f3f4"
        if not (flag and tags.group().endswith("\U000e007f") and len(tags.group()) <= 7):
            return 0.6
    if _VARIATION_RUN.search(text):
        return 0.6
    if _BIDI.search(text):
        return 0.5  # explicit direction overrides: how "Trojan source" text reorders itself
    if _INVISIBLE.search(text) or _JOINER_IN_LATIN.search(text) or _MIXED_SCRIPT.search(text):
        return 0.35
    return 0.0


def _unhide(text: str) -> str:
    """The text a reader sees: hidden characters become spaces (so "ignore\u200bprevious"
    reads as two words), runs of spaces collapse, and look-alike letters fold to Latin."""
    return _SPACES.sub(" ", _STRIP_INVISIBLE.sub(" ", text).translate(_CONFUSABLES))


def _devanagari_view(low: str) -> str:
    return unicodedata.normalize("NFD", low).replace("\u093c", "")


# Gates: a family's regexes run only when one of its trigger words is in the text (one set
# intersection with the message's words, see cues.TextView). Most messages contain none
# of these words, so a benign message pays for the gates and nothing else.
# Class-string view for base64 gating: base64 characters -> "b", anything else " ".
_B64_TABLE = bytes(ord("b") if (chr(i).isalnum() or chr(i) in "+/_-") else ord(" ") for i in range(128)) + b" " * 128
_HEX_TABLE = (
    bytes(ord("h") if chr(i) in "0123456789abcdefABCDEF" else i if chr(i) == " " else ord(".") for i in range(128))
    + b"." * 128
)


def _override(low: str, hi: str | None, soft: bool, strong: bool) -> float:
    if strong:
        m = ph.OVERRIDE_EN.search(low)
        while m is not None:
            # "ignore the instructions on the box" is not an override: a bare "the" needs a
            # qualifier ("previous", "your", "system", ...) to point at the agent's instructions.
            if (
                m.lastgroup != "generic"
                or not m.group().startswith(("ignore the ", "forget the ", "disregard the "))
                or ph.OVERRIDE_QUALIFIED.search(m.group(), 7)
            ):
                return 0.75
            m = ph.OVERRIDE_EN.search(low, m.end())
        if ph.OVERRIDE_HINGLISH.search(low):
            return 0.75
    if ph.deva_gate(hi, ph.DEVA_OVERRIDE) and hi is not None and ph.OVERRIDE_DEVA.search(hi):
        return 0.75
    if soft and ph.OVERRIDE_SOFT_EN.search(low):
        # With an order in the same message ("new rules apply: approve all refunds") the
        # soft shape is as telling as the strong one.
        return 0.6 if ph.COMMAND_EN.search(low) else 0.4
    return 0.0


def _role(view: TextView, hi: str | None) -> float:
    low = view.low
    if view.has_word(ph.GATE_ROLE):
        if ph.PERSONA_EN.search(low):
            return 0.6
        if ph.ROLE_EN.search(low) or ph.ROLE_HINGLISH.search(low):
            return 0.4
    if ph.deva_gate(hi, ph.DEVA_ROLE) and hi is not None and ph.ROLE_DEVA.search(hi):
        return 0.4
    return 0.0


def _tool(view: TextView, hi: str | None) -> bool:
    low = view.low
    if view.has_word(ph.GATE_TOOL) and (ph.TOOL_EN.search(low) or ph.TOOL_HINGLISH.search(low)):
        return True
    if (b"<" in view.cls or b"{" in view.cls) and ph.TOOL_EN.search(low):
        return True
    if ph.deva_gate(hi, ph.DEVA_TOOL) and hi is not None and ph.TOOL_DEVA.search(hi):
        return True
    pos = low.find("(")
    while pos >= 0:
        if ph.CALL_SHAPE.search(low, max(0, pos - 62), pos + 34):
            return True
        pos = low.find("(", pos + 1)
    return False


def _secret(view: TextView, hi: str | None) -> bool:
    low = view.low
    if view.has_word(ph.GATE_SECRET) and (ph.SECRET_EN.search(low) or ph.SECRET_HINGLISH.search(low)):
        return True
    return ph.deva_gate(hi, ph.DEVA_SECRET) and hi is not None and ph.SECRET_DEVA.search(hi) is not None


def _privilege(view: TextView, hi: str | None) -> bool:
    if view.has_word(ph.GATE_PRIVILEGE) and ph.PRIVILEGE.search(view.low):
        return True
    return ph.deva_gate(hi, ph.DEVA_PRIVILEGE) and hi is not None and ph.PRIVILEGE_DEVA.search(hi) is not None


def score_injection(text: str) -> dict[str, Any]:
    """{"score": 0..1, "indicators": [names, in a fixed order]} for one message."""
    if not isinstance(text, str) or not text:
        return {"score": 0.0, "indicators": []}
    from cxpolicy.signals.normalise import normalise

    return score_normalised(text, normalise(text).text)


# Leetspeak: digits and symbols standing for the letters they look like ("1gn0re",
# "instruct!ons"). The whole text is folded in one C-speed translate; numbers become
# nonsense words in that view, which no phrase and no weight looks for.
_LEET = str.maketrans("0134579@$!|+", "oieastgasilt")
_HAS_LEET = re.compile(r"[a-z][0134579$!|+]+[a-z]")
# rot13 spellings of the words injected text cannot do without; one substring test each.
_ROT13_HINTS = ("vtaber", "vafgehpgvba", "cerivbhf", "flfgrz", "cebzcg", "qvfertneq", "erirny")
_ROT13 = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "nopqrstuvwxyzabcdefghijklmNOPQRSTUVWXYZABCDEFGHIJKLM"
)


def _fold_leet(low: str) -> str:
    return low.translate(_LEET)


# How much of a normalised text the extra views read (head and tail halves).
_MAX_VIEW_CHARS = 16 * 1024

# Leet characters glued to a letter, on a class string (letters "a", digits "0").
# ("@" between letters is every e-mail address, so it does not open the gate.)
_LEET_PAIRS = (b"a0a", b"a!a", b"a$a", b"a|a", b"a+a")


def reader_views(original: str, normalised: str, cls: bytes | None = None) -> list[str]:
    """The texts worth scoring besides the original: the normalised text (`normalise`: no
    invisible characters, entities, escapes or comments), its leetspeak folding, and a
    rot13 decoding when one of the hint words shows up. Empty for plain text. `cls` is the
    normalised text's class string when the caller has it (a faster leet gate)."""
    out: list[str] = []
    if len(normalised) > _MAX_VIEW_CHARS:
        # A long text's extra views are read at head and tail only (where injected text
        # sits): the original is still read whole, and the cost of the rest stays bounded.
        half = _MAX_VIEW_CHARS // 2
        normalised = normalised[:half] + " " + normalised[-half:]
    if normalised != original:
        out.append(normalised)
    low = normalised.lower()
    leet = any(p in cls for p in _LEET_PAIRS) if cls is not None else _HAS_LEET.search(low) is not None
    if leet:
        folded = _fold_leet(low)
        if folded != low:
            out.append(folded)
    if any(h in low for h in _ROT13_HINTS):
        out.append(low.translate(_ROT13))
    return out


def score_normalised(
    original: str,
    normalised: str,
    view: TextView | None = None,
    classifier: Callable[[str], float] | None = None,
    uncertain: tuple[float, float] = (0.2, 0.8),
) -> dict[str, Any]:
    """The injection signal of one message, given `normalise(original).text`.

    The phrase indicators read the original and every reader view (`reader_views`); the
    linear model (`cxpolicy.signals.model`) reads the normalised text and joins as one more
    indicator, `model`, whose weight is its probability when that is high enough.
    """
    from cxpolicy.signals import model

    if view is None or view.text != original:
        view = TextView(original)
    cls = view.cls if normalised is original or normalised == original else None
    views = reader_views(original, normalised, cls)
    result = score_view(view, views)
    # The model reads the normalised text, and the leetspeak/rot13 views when there are any.
    extra = [v for v in views if v is not normalised]
    return model.combine(result, normalised, classifier, uncertain, extra=extra)


def _rewritten(view: TextView, hidden: bool) -> list[str]:
    """The same message as a reader sees it, when that differs from how it is written.

    Evasions change the characters, not the words: fullwidth letters and no-break spaces
    (folded by NFKC), hidden characters between words (`_unhide`), and words spelt out with
    spaces ("I g n o r e"). Each rewrite is scored like the original.
    """
    out: list[str] = []
    text = view.text
    if len(text) > _MAX_VIEW_CHARS:
        text = text[: _MAX_VIEW_CHARS // 2] + " " + text[-_MAX_VIEW_CHARS // 2 :]
    if not view.ascii:
        folded = unicodedata.normalize("NFKC", text)
        if folded != text:
            out.append(folded)
            text = folded
        if hidden:
            out.append(_unhide(text))
    if len(view.words & _SINGLE_LETTERS) >= 4:
        spelt = _SPELT_OUT.sub(lambda m: m.group().replace(" ", ""), text)
        if spelt != text:
            out.append(_SPACES.sub(" ", spelt))  # "I g n o r e   a l l" -> "Ignore all"
    return out


def score_view(view: TextView, extra: list[str] | None = None) -> dict[str, Any]:
    """The phrase indicators over a prepared view (no model).

    A message whose characters hide its words is scored again as a reader sees it (see
    `_rewritten`, and `extra`, more rewrites from the caller); each indicator keeps the
    larger of its weights.
    """
    weights = _weights(view)
    rewrites = _rewritten(view, weights["hidden_text"] > 0.0)
    if extra:
        rewrites += [t for t in extra if t not in rewrites]
    for rewritten in rewrites:
        if len(rewritten) > _MAX_VIEW_CHARS:  # rewrites of a long text: head and tail only
            rewritten = rewritten[: _MAX_VIEW_CHARS // 2] + " " + rewritten[-_MAX_VIEW_CHARS // 2 :]
        for name, weight in _weights(TextView(rewritten)).items():
            if name != "hidden_text":
                weights[name] = max(weights[name], weight)
    keep = 1.0
    fired = []
    for name, weight in weights.items():
        if weight > 0.0:
            fired.append(name)
            keep *= 1.0 - weight
    return {"score": round(1.0 - keep, 4), "indicators": fired}


def _weights(view: TextView, decode: bool = True) -> dict[str, float]:
    text, low = view.text, view.low
    # Devanagari view; None when there is no Devanagari (then every Devanagari gate is closed).
    hi = None if view.ascii or not ph.DEVANAGARI.search(text) else _devanagari_view(low)
    has = view.has_word
    soft = has(ph.GATE_SOFT) or ("from" in low and "now" in low)
    override = _override(low, hi, soft, has(ph.GATE_OVERRIDE))
    system = 0.0
    if has(ph.GATE_SYSTEM) or "<|" in low or "##" in low or "<<" in low or "[" in low:
        if ph.TEMPLATE_EN.search(low):
            system = 0.6
        elif ph.SYSTEM_EN.search(low):
            system = 0.6 if ph.COMMAND_EN.search(low) else 0.45
    return {
        "instruction_override": override,
        "system_prompt_claim": system,
        "role_claim": _role(view, hi),
        "secret_request": 0.55 if _secret(view, hi) else 0.0,
        "tool_call_smuggling": 0.55 if _tool(view, hi) else 0.0,
        "hidden_text": 0.0 if view.ascii else _hidden(text),
        "encoded_instructions": 0.6 if decode and _decoded_blobs(view) else 0.0,
        "exfiltration_link": _exfil(low) if "http" in low else 0.0,
        "privilege_request": 0.45 if _privilege(view, hi) else 0.0,
        "addressed_to_agent": ph.addressed(low) if has(ph.GATE_AGENT) else 0.0,
    }
