"""Identifiers made of digits: card PAN, Aadhaar, VID, US SSN, phone numbers.

One regex finds every run of digits (with the separators people type inside numbers), and
each run is cut into its digit groups. A run is then read against the shapes each identifier
is written in ("4111 1111 1111 1111", "2341-2341-2346", "123-45-6789") and the shape's
check (Luhn, Verhoeff, SSA ranges) decides. Doing the cutting once, in Python over a few
short runs, is what keeps a 1 KB message inside the latency budget: the regex is the only
pass over the whole text, and it cannot backtrack (every repetition consumes a digit).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from phonenumbers import Leniency, PhoneNumberMatcher
from stdnum import luhn
from stdnum.in_ import aadhaar, vid
from stdnum.us import ssn

from cxpolicy.signals.config import DetectorConfig
from cxpolicy.signals.cues import NEGATIVE, Candidate, nearest_cue

__all__ = ["PhoneTarget", "find_numeric", "luhn_ok", "plausible_iin", "verhoeff_ok"]

# Where phone numbers are matched: (text, digit-view span -> span in that text, findings list).
PhoneTarget = tuple[str, Callable[[int, int], tuple[int, int]], list[Candidate]]

# Runs are found on the class string (cues.TextView: digits are "0", letters "a"), where the
# first character is a literal and the regex engine skips ahead with a fast scan. A run is a
# digit and at least six more, with up to two separator characters between digits; every
# repetition consumes a digit, so the match cannot backtrack.
_RUN_RE = re.compile(rb"0(?:[ \-.()]{0,2}0){6,}")
_GROUP_RE = re.compile(rb"0+")
_LETTER = ord("a")

# Runs longer than this are tables or pasted data, not a phone number a person typed; the
# phone matcher (the expensive check) is not run on them.
_MAX_PHONE_RUN = 32
# The phone matcher is the costly check (tens of microseconds a call); past this many calls in
# one text, a run with a phone number's length is reported by shape alone (masking more
# than needed is the safe side), so 64 KB of phone numbers costs a bounded amount.
_MAX_PHONE_CALLS = 16
# A US-style extension glued to the number: "712.710.1982x52605", "555-0100 ext. 12".
# Not when more digit groups follow: "9876543210 x 4111 1111 1111 1111" is a phone, a letter
# and a card, and the card must not be swallowed into the phone's "extension".
_EXT_RE = re.compile(r"(?i) ?(?:x|ext\.?|extn\.?|extension) ?[0-9]{1,6}(?![0-9A-Za-z])(?![-. \t/_]?[0-9])")
_CARD_SPLIT_SHAPES = frozenset({(4, 6, 5), (4, 6, 4)})
# Labels that say a checksum-valid number is something else: a business identifier
# (NEGATIVE) or a phone number. Another class's label ("card 2341 2341 2346", twelve digits
# no card has) is no veto: the number is still read by its own shape and check.
_VETOES = frozenset({NEGATIVE, "phone"})


# Pre-filters for the checksums: the same arithmetic as stdnum.luhn / stdnum.verhoeff, a few
# times faster because they skip input cleaning. They reject nine numbers in ten; a number
# that passes is then validated by stdnum, whose verdict is the one reported.
_LUHN_DOUBLED = str.maketrans("0123456789", "0246813579")  # digit -> digit sum of 2 * digit
_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def luhn_ok(d: str) -> bool:
    """Luhn over a string of ASCII digits."""
    return (sum(map(int, d[-1::-2])) + sum(map(int, d[-2::-2].translate(_LUHN_DOUBLED)))) % 10 == 0


def verhoeff_ok(d: str) -> bool:
    """Verhoeff over a string of ASCII digits."""
    check = 0
    for i, ch in enumerate(reversed(d)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[i % 8][ord(ch) - 48]]
    return check == 0


def plausible_iin(d: str) -> bool:
    """Whether the leading digits and length fit a card scheme's issuer range.

    Luhn passes one random number in ten; requiring a real scheme prefix for the length
    rejects most Luhn-valid numbers that are not cards (IMEIs start 35 or 86 and have 15
    digits, which no scheme uses with those prefixes).
    """
    n = len(d)
    p2 = int(d[:2])
    p3 = int(d[:3])
    p4 = int(d[:4])
    p6 = int(d[:6])
    if d[0] == "4":  # Visa
        return n in (13, 16, 19)
    if 2200 <= p4 <= 2204:  # Mir
        return 16 <= n <= 19
    if p4 in (1800, 2131):  # JCB, 15-digit numbers
        return n == 15
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:  # Mastercard
        return n == 16
    if p2 in (34, 37):  # American Express
        return n == 15
    if p2 in (36, 38, 39) or 300 <= p3 <= 305 or p4 == 3095:  # Diners Club
        return 14 <= n <= 19
    if p2 == 35:  # JCB (3528-3589 issued; the rest of 35 is read alike, as card generators do)
        return 16 <= n <= 19
    if p4 == 6011 or 644 <= p3 <= 649 or p2 == 65 or 622126 <= p6 <= 622925:  # Discover
        return 16 <= n <= 19
    if p2 in (60, 62, 81, 82) or p3 in (508, 353, 356):  # RuPay, UnionPay
        return 16 <= n <= 19
    if p2 == 50 or 56 <= p2 <= 69:  # Maestro
        return 12 <= n <= 19
    return False


def _card_shape(lengths: tuple[int, ...], total: int) -> bool:
    if not 13 <= total <= 19:
        return False
    if len(lengths) == 1 or lengths in _CARD_SPLIT_SHAPES:
        return True
    if lengths[0] in (2, 3) and all(x == lengths[0] for x in lengths[:-1]) and lengths[-1] <= lengths[0]:
        return True  # "41 11 11 11 …", "411 111 111 …": the evasion of regular short groups
    return all(x == 4 for x in lengths[:-1]) and 1 <= lengths[-1] <= 4


def _window_candidates(
    text: str,
    groups: list[tuple[int, int]],
    seps: list[str],
    cfg: DetectorConfig,
    out: list[Candidate],
) -> None:
    """Read the windows of consecutive groups that have an identifier's written shape.

    Only shapes people write are tried: one unbroken group, "3-2-4" (SSN), "4-6-5"/"4-6-4"
    (Amex, Diners), and fours with one shorter tail group (cards, Aadhaar, VID), always with
    one separator repeated. Windows of any other shape are never built, so a pasted table
    of numbers costs a few comparisons per group.
    """
    count = len(groups)
    lens = [e - s for s, e in groups]
    window = cfg.context_chars
    skip_to = 0  # groups before this are inside an identifier already found

    def classify(i: int, j: int) -> bool:
        """Classify groups i..j; True when a strong reading (checksum and no doubt) was added."""
        before = len(out)
        shape = tuple(lens[i : j + 1])
        _classify(text, groups[i][0], groups[j][1], shape, sum(shape), cfg, window, out)
        return any(c.priority >= 70 for c in out[before:])

    for i in range(count):
        if i < skip_to:
            continue
        first = lens[i]
        if first >= 9:
            if first <= 19:
                classify(i, i)
            continue
        if first not in (2, 3, 4) or i + 1 >= count or seps[i] not in (" ", "-"):
            continue
        sep = seps[i]
        if first in (2, 3):
            ssn_shape = first == 3 and i + 2 < count and seps[i + 1] == sep and lens[i + 1] == 2 and lens[i + 2] == 4
            if ssn_shape and classify(i, i + 2):
                skip_to = i + 3
                continue
            end = _uniform_end(lens, seps, i, sep)
            if end is not None and classify(i, end):
                skip_to = end + 1
            continue
        ends: list[int] = []
        if i + 2 < count and lens[i + 1] == 6 and seps[i + 1] == sep and lens[i + 2] in (4, 5):
            ends.append(i + 2)
        total, j = 4, i
        while j + 1 < count and seps[j] == sep:
            j += 1
            total += lens[j]
            if total > 19:
                break
            if j - i >= 2 and total >= 12:
                ends.append(j)
            if lens[j] != 4:
                break
        # Longest first: "4111 1111 1111 1111" is one card, and once it is found its first
        # twelve digits are not also read as an Aadhaar.
        for end in sorted(ends, reverse=True):
            if classify(i, end):
                skip_to = end + 1
                break


def _uniform_end(lens: list[int], seps: list[str], i: int, sep: str) -> int | None:
    """The last group of a run of equal short groups from i (the last may be shorter) whose
    digits add up to an identifier's length (12 to 19), or None."""
    size = lens[i]
    total, j = size, i
    best: int | None = None
    while j + 1 < len(lens) and seps[j] == sep and lens[j] == size:
        j += 1
        total += lens[j]
        if total > 19:
            break
        if total >= 12:
            best = j
        if lens[j] != size:
            break
    return best


def _classify(
    text: str,
    start: int,
    end: int,
    shape: tuple[int, ...],
    total: int,
    cfg: DetectorConfig,
    window: int,
    out: list[Candidate],
) -> None:
    digits = "".join(ch for ch in text[start:end] if "0" <= ch <= "9")
    looked_up = False
    cue: str | None = None

    def the_cue() -> str | None:
        # Most runs fail their checksum, so the cue is looked up only for those that pass.
        nonlocal looked_up, cue
        if not looked_up:
            cue, looked_up = nearest_cue(text, start, window), True
        return cue

    def add(priority: int, data_class: str, detector: str, check: str) -> None:
        out.append(Candidate(priority, start, end, data_class, detector, check))

    if total == 9:
        dashed = shape == (3, 2, 4)
        if cfg.enabled("us_ssn") and (dashed or shape == (9,)) and digits[0] != "9" and ssn.is_valid(digits):
            c = the_cue()
            if c == "us_ssn":
                add(72, "us_ssn", "stdnum.us.ssn", "ranges+cue")
            elif dashed and c is None:
                add(62, "us_ssn", "stdnum.us.ssn", "ranges+shape")
        return
    if total == 12:
        regular = shape in ((12,), (4, 4, 4), (2,) * 6, (3,) * 4)
        if cfg.enabled("aadhaar") and regular and verhoeff_ok(digits) and aadhaar.is_valid(digits):
            c = the_cue()
            if c == "aadhaar":
                add(78, "aadhaar", "stdnum.in_.aadhaar", "verhoeff+cue")
            elif c in _VETOES:
                pass
            elif len(shape) > 1:
                add(58, "aadhaar", "stdnum.in_.aadhaar", "verhoeff+grouping")
            else:
                # Bare 12 digits: reported, but a valid phone number reading wins.
                add(38, "aadhaar", "stdnum.in_.aadhaar", "verhoeff")
        if (
            cfg.enabled("card_pan")
            and plausible_iin(digits)
            and luhn_ok(digits)
            and the_cue() == "card_pan"
            and luhn.is_valid(digits)
        ):
            # A 12-digit Maestro is believed only after a card label: bare, twelve Luhn-valid
            # digits are as often an order or Aadhaar number.
            add(79, "card_pan", "stdnum.luhn", "luhn+iin+cue")
        return
    if (
        total == 16
        and cfg.enabled("aadhaar_vid")
        and shape in ((16,), (4, 4, 4, 4))
        and verhoeff_ok(digits)
        and vid.is_valid(digits)
    ):
        c = the_cue()
        if c in ("aadhaar_vid", "aadhaar"):
            add(82, "aadhaar_vid", "stdnum.in_.vid", "verhoeff+cue")
        elif c not in _VETOES:
            add(56, "aadhaar_vid", "stdnum.in_.vid", "verhoeff")
    if (
        cfg.enabled("card_pan")
        and _card_shape(shape, total)
        and plausible_iin(digits)
        and luhn_ok(digits)
        and luhn.is_valid(digits)
    ):
        c = the_cue()
        if c == "card_pan":
            add(80, "card_pan", "stdnum.luhn", "luhn+iin+cue")
        elif c not in _VETOES:
            add(70, "card_pan", "stdnum.luhn", "luhn+iin")


def _phone_candidates(
    text: str, start: int, end: int, region: str | None, cfg: DetectorConfig, out: list[Candidate], ext_end: int = 0
) -> None:
    # The matcher sees a little context: a "+" or "(" before the run belongs to the number, and
    # ":32" after it is how the matcher tells a time from a phone number.
    lo = start
    while lo > 0 and start - lo < 6 and text[lo - 1] in "+( ":
        lo -= 1  # only the punctuation a number starts with; a digit or letter there is another token
    if "+" not in text[lo:start] and "(" not in text[lo:start]:
        lo = start
    hi = min(len(text), end + 6)
    for i in range(end, hi):
        if text[i].isalpha():
            hi = i  # an extension ("ext 45") is not part of the number a person is reached on
            break
    matches = list(PhoneNumberMatcher(text[lo:hi], region, leniency=Leniency.VALID, max_tries=4))
    if not matches and lo < start:
        # The "+" or "(" may belong to something else ("( + 98765…"); try the digits alone.
        lo = start
        matches = list(PhoneNumberMatcher(text[lo:hi], region, leniency=Leniency.VALID, max_tries=4))
    for match in matches:
        m_start = lo + match.start
        m_end = lo + match.end
        if ext_end and m_end == end:
            m_end = ext_end  # the extension is part of what must be masked
        cue = nearest_cue(text, m_start, cfg.context_chars)
        if cue == NEGATIVE:
            continue
        cued = cue == "phone"
        check = "valid_number+cue" if cued else "valid_number"
        out.append(Candidate(48 if cued else 40, m_start, m_end, "phone", "phonenumbers", check))


def find_numeric(
    text: str,
    cls: bytes,
    region: str | None,
    cfg: DetectorConfig,
    out: list[Candidate],
    phones: PhoneTarget | None = None,
) -> bool:
    """Append every digit-based identifier in `text` to `out` (`cls` is its class string).

    `text` is normally the digit view (normalise.digit_view), where "4111.1111…" reads as
    "4111 1111…". Phone numbers are matched on the text before that rewrite (unifying
    separators turns "2024-11-05 10:32" into something phonenumbers reads as a number):
    `phones` gives that text, the map from digit-view offsets to it, and the list its
    findings go to. Without it, phone numbers are matched on `text` and go to `out`.
    Returns True when `cfg.max_digit_groups` stopped the scan before the end of the text.
    """
    want_phone = cfg.enabled("phone")
    size = len(cls)
    calls = 0
    groups_left = cfg.max_digit_groups
    cut = False
    for run in _RUN_RE.finditer(cls):
        if cut or (groups_left is not None and groups_left <= 0):
            return True
        r_start, r_end = run.span()
        ext_end = 0
        if r_end < size and cls[r_end] == _LETTER:
            ext = _EXT_RE.match(text, r_end)
            if ext is None:
                continue  # glued to a word: "4111111111111111abc" is a token
            ext_end = ext.end()
        elif r_end + 1 < size and cls[r_end] == 32 and cls[r_end + 1] == _LETTER:
            ext = _EXT_RE.match(text, r_end)
            ext_end = ext.end() if ext is not None else 0
        if r_start > 0 and cls[r_start - 1] == _LETTER:
            continue  # glued to a word: "INV9876543210" is a token
        groups: list[tuple[int, int]] = []
        seps: list[str] = []
        prev_end = -1
        for g in _GROUP_RE.finditer(cls, r_start, r_end):
            if prev_end >= 0:
                seps.append(text[prev_end : g.start()])
            groups.append(g.span())
            prev_end = g.end()
            if groups_left is not None:
                groups_left -= 1
                if groups_left <= 0:
                    r_end = prev_end  # the budget ends here: read what was gathered, then stop
                    cut = True
                    break
        before = len(out)
        _window_candidates(text, groups, seps, cfg, out)
        if len(out) == before and len(groups) > 1:
            total = sum(e - s for s, e in groups)
            if 13 <= total <= 19:
                # An irregular grouping ("41111111 1111 1111", left when invisible characters
                # were removed from inside groups) is read as one number: Luhn and a scheme's
                # prefix and length must still hold.
                _classify(text, r_start, r_end, (total,), total, cfg, cfg.context_chars, out)
        if want_phone:
            strong = [(c.start, c.end) for c in out[before:] if c.priority >= 50]
            for seg_start, seg_end in _phone_segments(groups, strong):
                if seg_end - seg_start > _MAX_PHONE_RUN:
                    continue
                calls += 1
                tail = ext_end if seg_end == r_end else 0
                p_text, p_out = text, out
                if phones is not None:
                    p_text, to_base, p_out = phones
                    seg_start, seg_end = to_base(seg_start, seg_end)
                    tail = to_base(tail, tail)[1] if tail else 0
                if calls <= _MAX_PHONE_CALLS:
                    _phone_candidates(p_text, seg_start, seg_end, region, cfg, p_out, tail)
                else:
                    _phone_by_shape(p_text, seg_start, seg_end, tail, p_out)
    return cut


def _phone_by_shape(text: str, start: int, end: int, ext_end: int, out: list[Candidate]) -> None:
    """Past the matcher budget: a segment with 10 to 13 digits is reported as a phone number
    on its length alone (only masking more than needed, never less)."""
    n = sum(1 for ch in text[start:end] if "0" <= ch <= "9")
    if 10 <= n <= 13:
        out.append(Candidate(30, start, ext_end or end, "phone", "shape", "length(budget)"))


def _phone_segments(groups: list[tuple[int, int]], strong: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of a run the phone matcher should see on their own.

    The matcher reads a run as one number, so a card followed by a phone number
    ("4111 1111 1111 1111 9876543210") hides the phone. The run is cut around groups that a
    stronger identifier already explains, and between two groups long enough (7+ digits)
    to be numbers of their own.
    """
    segments: list[tuple[int, int]] = []
    seg: tuple[int, int] | None = None
    prev_len = 0
    # Groups come in text order, so one sweep over the strong spans (sorted by start) keeps the
    # furthest end among those starting at or before the group: the group is explained iff that
    # end reaches past it. (Checking every strong span per group was quadratic on hostile text.)
    spans = sorted(strong)
    j = 0
    reach = -1
    for g_start, g_end in groups:
        while j < len(spans) and spans[j][0] <= g_start:
            reach = max(reach, spans[j][1])
            j += 1
        if reach >= g_end:
            if seg is not None:
                segments.append(seg)
            seg, prev_len = None, 0
            continue
        length = g_end - g_start
        if seg is not None and (length >= 7 and prev_len >= 7):
            segments.append(seg)
            seg = None
        seg = (g_start, g_end) if seg is None else (seg[0], g_end)
        prev_len = length
    if seg is not None:
        segments.append(seg)
    return [(s, e) for s, e in segments if e - s >= 7]
