"""Prompt-injection signal: which tell-tale shapes a message has, and how much they add up to.

This is a signal for rules, not a verdict: it scores what is cheap and local to see (the
phrases and tricks injected text uses) so a policy can escalate or refuse inbound text
before an agent acts on it. Each indicator has a weight, the chance on its own that the
message is an injection; indicators combine as independent evidence (noisy-OR):

    score = 1 - (1 - w1) * (1 - w2) * ...

Weights (see docs/signals.md for the reasoning):

    instruction_override   0.75   "ignore previous instructions", "pichle instructions ignore karo"
                           0.40   "from now on you will ...", "new instructions:"
    system_prompt_claim    0.45   "system:" lines, chat-template tokens, "[INST]", "admin override"
    role_claim             0.60   jailbreak personas: "you are now DAN", "enable developer mode"
                           0.40   "act as the admin", "I am the developer", "main admin hoon"
    secret_request         0.55   "reveal your system prompt", "system prompt batao"
    tool_call_smuggling    0.55   {"name": ..., "arguments": ...}, <tool_call>, "call the function"
    hidden_text            0.60   Unicode tag characters, variation-selector runs (smuggled text)
                           0.35   zero-width/bidi controls, Latin mixed with Cyrillic/Greek
    encoded_instructions   0.60   base64/hex blobs that decode to instruction-like text
    exfiltration_link      0.60   a URL template ("?q={secret}") in a link, image or bare URL
                           0.50   an image whose URL carries data (sensitive parameter, blob)
                           0.30   a link (not an image) whose URL carries data

The strong indicators reach the 0.5 threshold alone; the weak ones (a "system:" line, a
zero-width space) need a second indicator, because each has benign uses on its own.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from typing import Any

from cxpolicy.signals.cues import TextView

__all__ = ["INDICATOR_WEIGHTS", "score_injection", "score_view"]

# The largest weight each indicator can contribute (weaker shapes of it contribute less).
INDICATOR_WEIGHTS: dict[str, float] = {
    "instruction_override": 0.75,
    "system_prompt_claim": 0.45,
    "role_claim": 0.6,
    "secret_request": 0.55,
    "tool_call_smuggling": 0.55,
    "hidden_text": 0.6,
    "encoded_instructions": 0.6,
    "exfiltration_link": 0.6,
}

# --- English, matched on lower-cased text -------------------------------------------------

_OVERRIDE_EN = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass|discard|abandon|neglect|set aside|"
    r"do not follow|don't follow|dont follow|stop following|no longer follow)"
    r"(?: (?:all|any|every|each|the|your|my|our|these|those|of|previous|previously|prior|"
    r"above|earlier|preceding|foregoing|original|initial|old|existing|current|system|"
    r"developer|safety|default|given|other|former|programmed|built-in)){0,4}"
    r" (?:instructions?|prompts?|rules|directives?|guidelines|guardrails|policies|"
    r"constraints|restrictions|programming|training|system message)\b"
    r"|\b(?:ignore|disregard|forget) (?:everything|anything|all(?: of)?(?: that| what)?) "
    r"(?:above|before|prior|previously|you were told|you've been told|i said before)"
)
# Weaker override shapes: customers also say "from now on you should email me" and "new
# instructions: deliver to my office", so these need a second indicator to pass 0.5.
_OVERRIDE_SOFT_EN = re.compile(
    r"\b(?:new|updated|revised|real|actual|true) instructions?(?: are)? ?:"
    r"|\bfrom now on,? you (?:will|must|shall|are going to|are to)\b"
)
_OVERRIDE_QUALIFIED = re.compile(
    r"\b(?:previous|prior|above|earlier|preceding|foregoing|original|initial|system|your|all|"
    r"developer|safety|every|any|former|programmed|built-in|default|existing|old)\b"
)
# Jailbreak personas: nobody asks a support agent to become "DAN" for a benign reason.
_PERSONA_EN = re.compile(
    r"\byou are now (?:an? |the |in |my )?(?:dan\b|unrestricted|jailbroken|developer mode|"
    r"evil|uncensored|unfiltered|free from|no longer|not bound|god mode)"
    r"|\byou are no longer (?:an? )?(?:ai|assistant|bound|restricted)"
    r"|\b(?:enable|activate|enter|switch to) (?:developer|debug|admin|god|dan|jailbreak) mode"
    r"|\b(?:dan|developer|god|jailbreak) mode (?:enabled|activated|on)\b"
    r"|\bdo anything now\b"
)
_ROLE_EN = re.compile(
    r"\byou are now (?:an? |the |my )?(?:admin|administrator|root|superuser)\b"
    r"|\b(?:act|behave|pretend|roleplay|role-play)(?: to be| as| like)"
    r" (?:an? |the |my |your )?(?:admin|administrator|system|developer|root|superuser|"
    r"supervisor|dan\b|unrestricted|jailbroken|different ai|ai without)"
    r"|\b(?:i am|i'm|this is) (?:the |your |an? )?(?:admin|administrator|developer|"
    r"system administrator|sysadmin|root user|superuser|system owner|bot owner|openai|anthropic)\b"
    r"|\bas (?:the|your|an?) (?:admin|administrator|developer|system|superuser|root),? "
    r"(?:i|you|we)\b"
)
_SYSTEM_EN = re.compile(
    r"(?:^|\n)[ \t>#*]*(?:system|sys|developer|assistant) ?(?:prompt|message)? ?:"
    r"|\[/?(?:system|inst|sys)\]|<<sys>>|<\|[a-z_]{2,20}\|>|</?system>"
    r"|#{2,} ?(?:system|instructions?|new instructions?)\b"
    r"|\b(?:begin|start|end) (?:of )?system (?:prompt|message)"
    r"|\b(?:system|admin|developer) override\b"
    r"|\bmessage from (?:the )?(?:system|developer|administrator|admin)\b"
)
_SECRET_EN = re.compile(
    r"\b(?:reveal|show|print|display|tell|give|share|leak|output|repeat|dump|send|expose|"
    r"disclose|provide|list|what(?:'s| is| are| were)|recite|copy)"
    r"(?: me| us)?(?: [a-z']{1,12}){0,3}? "
    r"(?:system prompt|initial prompt|hidden prompt|original prompt|your prompt|"
    r"your (?:initial |original |hidden |secret )?instructions|system instructions|"
    r"system message|developer message|hidden instructions|api ?keys?|secret keys?|"
    r"access tokens?|auth tokens?|bearer tokens?|private keys?|credentials|"
    r"admin password|passwords? (?:of|for) (?:all|other|the admin|every)|database password|"
    r"env(?:ironment)? variables|the words above|everything above|text above)"
)
_TOOL_EN = re.compile(
    r"</?(?:tool_call|tool_use|function_call|functioncall|invoke|tool)\b|<function="
    r"|\"(?:function_call|tool_calls|tool_use)\" ?:"
    r"|\{ ?\"(?:name|tool|function|action|tool_name)\" ?: ?\"[a-z0-9_.\-]{1,64}\" ?, ?"
    r"\"(?:arguments|parameters|args|input|params)\" ?:"
    r"|\b(?:call|invoke|execute|run|trigger) (?:the |this |that |a )?(?:function|tool|api|"
    r"plugin|endpoint)\b"
    r"|\bfunctions\.[a-z_]{2,40}\("
)

# --- Hindi and Hinglish --------------------------------------------------------------------
# Hinglish is matched on the lower-cased text; Devanagari after NFD with nuktas removed, so
# "नज़रअंदाज़" typed with or without nukta, precomposed or not, matches one spelling.

_OVERRIDE_HI = re.compile(
    r"\b(?:pichle|pichhle|pichli|pehle|pahle|purane|upar|uper|saare|sare|sabhi|sab)"
    r"(?: (?:wale|wali|ke|ki|saare|sare|sab|diye|gaye|hue)){0,3}"
    r" (?:instructions?|nirdesh|nirdeshon|rules?|niyam|niyamon|prompts?|aadesh|adesh|"
    r"hidayat|hidayatein|guidelines)"
    r"(?: (?:ko|sab))? (?:ignore|bhool|bhul|bhula|nazarandaz|nazar andaz|chhod|chod|"
    r"mat mano|mat maano|na mano)"
    r"|\b(?:instructions?|rules|niyam|nirdesh|prompt) (?:ko )?(?:ignore|bhool|bhul|nazarandaz)"
    r" (?:karo|kar do|kardo|karke|kar ke|jao|ja|do)\b"
    r"|(?:पिछल|पहल|ऊपर|सभी|सार|पुरान)[^\n]{0,24}?(?:निर्देश|नियम|आदेश|इंस्ट्रक्शन|हिदायत)"
    r"[^\n]{0,12}?(?:अनदेखा|नजरअंदाज|भूल|छोड|न मान|मत मान|इग्नोर)"
    r"|(?:निर्देश|नियम|इंस्ट्रक्शन)[^\n]{0,8}?(?:को )?(?:अनदेखा|नजरअंदाज|भूल|इग्नोर) ?(?:कर|जा)"
)
_SECRET_HI = re.compile(
    r"\b(?:system prompt|apna prompt|apne prompt|apne instructions|apni instructions|"
    r"api key|secret key|admin password|sabke password|sab ke password)"
    r" (?:batao|bata do|btao|dikhao|dikha do|bolo|share karo|bhejo|de do|likho|print karo)"
    r"|(?:सिस्टम प्रॉम्प्ट|सिस्टम प्रोम्प्ट|अपने निर्देश|अपना प्रॉम्प्ट|एपीआई की|एडमिन पासवर्ड|"
    r"सीक्रेट की)[^\n]{0,8}?(?:बताओ|बताएं|बताइए|बताइये|दिखाओ|दिखाएं|दो|भेजो)"
)
_ROLE_HI = re.compile(
    r"\b(?:ab se|abse|aaj se) (?:tum|aap|tu)(?: ek)? (?:admin|developer|unrestricted|dan|"
    r"hacker|system)"
    r"|\b(?:main|mai|mein) (?:tumhara |aapka )?(?:admin|developer|administrator|system admin)"
    r" (?:hoon|hu|hun|hoo)\b"
    r"|अब (?:से )?(?:तुम|आप)[^\n]{0,12}?(?:एडमिन|डेवलपर|सिस्टम)"
    r"|(?:मैं|मै) (?:तुम्हारा |आपका )?(?:एडमिन|डेवलपर|व्यवस्थापक) (?:हूँ|हूं|हू)"
)
_TOOL_HI = re.compile(
    r"\b(?:function|tool|api)(?: call)? (?:karo|chalao|run karo|execute karo|call karo)\b"
    r"|(?:फंक्शन|फ़ंक्शन|टूल)[^\n]{0,8}?(?:कॉल करो|चलाओ|रन करो)"
)

# --- hidden text -----------------------------------------------------------------------------

_INVISIBLE = re.compile("[\u200b\u2060-\u2064\u180e\u202a-\u202e\u2066-\u2069]|(?<!^)\ufeff")
_JOINER_IN_LATIN = re.compile("[A-Za-z][\u200c\u200d]+[A-Za-z]")
_TAG_RUN = re.compile("[\U000e0000-\U000e007f]+")
_VARIATION_RUN = re.compile("[\U000e0100-\U000e01ef]{4,}")
_MIXED_SCRIPT = re.compile("[A-Za-z][\u0370-\u03ff\u0400-\u04ff]|[\u0370-\u03ff\u0400-\u04ff][A-Za-z]")

# --- encoded blobs and links ---------------------------------------------------------------

_B64_RE = re.compile(r"(?<![A-Za-z0-9+/=_\-])[A-Za-z0-9+/_\-]{24,}={0,2}")
_HEX_RE = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}[ ]?){16,}")
_DECODED_HINT = re.compile(
    r"ignore|disregard|instruction|system|prompt|reveal|password|api key|secret|you are|"
    r"assistant|execute|function|admin|forget|override|token|exfiltrat"
)
_MAX_BLOB = 4096

_LINK_RE = re.compile(
    r"(?P<img>!?)\[[^\]\n]{0,200}\]\( ?(?P<md>https?://[^\s)]{1,2000})"
    r"|<(?P<tag>img|a|iframe|script|link|source|video|audio)\b[^>]{0,300}?"
    r"(?:src|href) ?= ?[\"']?(?P<html>https?://[^\s\"'>]{1,2000})"
    r"|(?P<bare>https?://[^\s<>\"')\]]{1,2000})"
)
_PLACEHOLDER = re.compile(r"\{|\}|%7b|%7d|\$\{|\[[a-z_]{2,30}\]|<[a-z_]{2,30}>")
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
    if len(decoded) < 8 or _printable_ratio(decoded) < 0.9:
        return False
    return _DECODED_HINT.search(decoded.lower()) is not None


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
    tags = _TAG_RUN.search(text)
    if tags is not None:
        # A subdivision flag (black flag + tag letters + cancel tag) is the one legitimate use.
        flag = tags.start() > 0 and text[tags.start() - 1] == "\U0001f3f4"
        if not (flag and tags.group().endswith("\U000e007f") and len(tags.group()) <= 7):
            return 0.6
    if _VARIATION_RUN.search(text):
        return 0.6
    if _INVISIBLE.search(text) or _JOINER_IN_LATIN.search(text) or _MIXED_SCRIPT.search(text):
        return 0.35
    return 0.0


def _devanagari_view(low: str) -> str:
    return unicodedata.normalize("NFD", low).replace("\u093c", "")


# Gates: a family's regexes run only when one of its trigger words is in the text (one set
# intersection with the message's words, see cues.TextView). Most messages contain none
# of these words, so a benign message pays for the gates and nothing else.
def _words(spec: str) -> frozenset[bytes]:
    return frozenset(spec.encode().split())


_GATE_OVERRIDE = _words(
    "ignore ignoring ignored ignores disregard disregarding forget forgetting override "
    "overriding bypass bypassing discard abandon neglect aside follow following instruction "
    "instructions bhool bhul bhula nazarandaz nazar chhod chod mano maano"
)
_GATE_SYSTEM = _words("system sys inst developer assistant override message")
_GATE_ROLE = _words(
    "admin administrator developer root superuser sysadmin dan jailbroken jailbreak "
    "unrestricted uncensored unfiltered longer bound mode system openai anthropic "
    "supervisor evil anything without hacker god"
)
_GATE_SECRET = _words(
    "prompt instruction instructions api key keys apikey token tokens credential credentials "
    "password passwords env environment above message"
)
_GATE_TOOL = _words("function functions tool tools api plugin endpoint")
_CALL_SHAPE = re.compile(r"\b[a-z]{2,20}[_.][a-z_]{2,40}\((?:[a-z_]{1,30} ?=|\{|\")")
# Hindi in Devanagari is only looked for when the text has Devanagari characters.
_DEVANAGARI = re.compile("[\u0900-\u097f]")
# Class-string view for base64 gating: base64 characters -> "b", anything else " ".
_B64_TABLE = bytes(ord("b") if (chr(i).isalnum() or chr(i) in "+/_-") else ord(" ") for i in range(128)) + b" " * 128
_HEX_TABLE = (
    bytes(ord("h") if chr(i) in "0123456789abcdefABCDEF" else i if chr(i) == " " else ord(".") for i in range(128))
    + b"." * 128
)


def _override(low: str, hi: str | None) -> float:
    m = _OVERRIDE_EN.search(low)
    while m is not None:
        # "ignore the instructions on the box" is not an override: a bare "the" needs a
        # qualifier ("previous", "your", "system", ...) to point at the agent's instructions.
        if not m.group().startswith(("ignore the ", "forget the ", "disregard the ")) or (
            _OVERRIDE_QUALIFIED.search(m.group(), 7)
        ):
            return 0.75
        m = _OVERRIDE_EN.search(low, m.end())
    if _OVERRIDE_HI.search(hi if hi is not None else low):
        return 0.75
    if _OVERRIDE_SOFT_EN.search(low):
        return 0.4
    return 0.0


def _role(low: str, hi: str | None) -> float:
    if _PERSONA_EN.search(low):
        return 0.6
    if _ROLE_EN.search(low) or _ROLE_HI.search(hi if hi is not None else low):
        return 0.4
    return 0.0


def _tool(view: TextView, hi: str | None) -> bool:
    low = view.low
    if (view.has_word(_GATE_TOOL) or b"<" in view.cls or b"{" in view.cls) and (
        _TOOL_EN.search(low) or (hi is not None and _TOOL_HI.search(hi))
    ):
        return True
    if hi is not None and _TOOL_HI.search(hi):
        return True
    pos = low.find("(")
    while pos >= 0:
        if _CALL_SHAPE.search(low, max(0, pos - 62), pos + 34):
            return True
        pos = low.find("(", pos + 1)
    return False


def score_injection(text: str) -> dict[str, Any]:
    """{"score": 0..1, "indicators": [names, in a fixed order]} for one message."""
    return score_view(TextView(text))


def score_view(view: TextView) -> dict[str, Any]:
    """`score_injection` over a prepared view (detect shares one view with the PII scan)."""
    text, low = view.text, view.low
    # Devanagari view; None when there is no Devanagari (then every Devanagari gate is closed).
    hi = None if view.ascii or not _DEVANAGARI.search(text) else _devanagari_view(low)
    has = view.has_word
    override = 0.0
    if hi is not None or has(_GATE_OVERRIDE) or ("from" in low and "now" in low):
        override = _override(low, hi)
    system = 0.0
    if has(_GATE_SYSTEM) or "<|" in low or "##" in low or "<<" in low:
        system = 0.45 if _SYSTEM_EN.search(low) else 0.0
    role = _role(low, hi) if hi is not None or has(_GATE_ROLE) else 0.0
    secret = 0.0
    if (has(_GATE_SECRET) and _SECRET_EN.search(low)) or (
        (hi is not None or has(_GATE_SECRET)) and _SECRET_HI.search(hi or low)
    ):
        secret = 0.55
    weights: dict[str, float] = {
        "instruction_override": override,
        "system_prompt_claim": system,
        "role_claim": role,
        "secret_request": secret,
        "tool_call_smuggling": 0.55 if _tool(view, hi) else 0.0,
        "hidden_text": 0.0 if view.ascii else _hidden(text),
        "encoded_instructions": 0.6 if _decoded_blobs(view) else 0.0,
        "exfiltration_link": _exfil(low) if "http" in low else 0.0,
    }
    keep = 1.0
    fired = []
    for name, weight in weights.items():
        if weight > 0.0:
            fired.append(name)
            keep *= 1.0 - weight
    return {"score": round(1.0 - keep, 4), "indicators": fired}
