"""Identifiers with letters or an @, and values recognised by the label before them.

Tax and bank codes (Indian PAN, GSTIN, IFSC, IBAN) all contain a letter followed by a
digit, which prose rarely does; the scan finds those pairs with a substring search and tries
one anchored regex at the start of each such token. Email addresses and UPI VPAs are read
outwards from each `@`. Values with no checksum of their own (dates of birth, CVVs, OTPs,
MRNs) are only reported next to the word that names them: a bare date or a three-digit
number is not personal data by itself.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import re
from functools import lru_cache

from stdnum import iban as _iban
from stdnum import numdb
from stdnum.in_ import gstin as _gstin
from stdnum.in_ import pan as _pan
from stdnum.iso7064 import mod_97_10

from cxpolicy.signals.config import DetectorConfig, compiled_mrn_patterns
from cxpolicy.signals.cues import NEGATIVE, Candidate, TextView, nearest_cue

__all__ = ["find_at_sign", "find_cued", "find_tax_bank_ids"]


def _words(spec: str) -> frozenset[str]:
    return frozenset(spec.split())


_TAX_BANK_RE = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    r"(?P<gstin>[0-9]{2}[A-Za-z]{5}[0-9]{4}[A-Za-z][0-9A-Za-z]{3})(?![A-Za-z0-9])"
    r"|(?P<pan>[A-Za-z]{3}[PCHFATBLJGKpchfatbljgk][A-Za-z][0-9]{4}[A-Za-z])(?![A-Za-z0-9])"
    r"|(?P<ifsc>[A-Za-z]{4}0[A-Za-z0-9]{6})(?![A-Za-z0-9])"
    r"|(?P<iban>[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11,30})"
    r")"
)

# Bank codes (first four letters of an IFSC) of the banks customers name most; an IFSC-shaped
# token with one of these needs no "IFSC" label to be believed.
_IFSC_BANKS = _words(
    "SBIN HDFC ICIC UTIB PUNB BARB CNRB KKBK YESB IDIB UBIN BKID IOBA MAHB INDB FDRL CBIN "
    "UCBA PSIB IDFB KARB SIBL KVBL CIUB TMBL DCBL RATN AUBL ESFB JAKA DBSS HSBC SCBL CITI "
    "DEUT BDBL JSFB UJVN SURY NESF FINO AIRP PYTM IPOS KCCB SVCB COSB ABHY SRCB TJSB"
)

# UPI handles of the large payment apps and banks. A VPA's handle has no dot, which is what
# separates "ravi@okaxis" from an email address.
_UPI_HANDLES = _words(
    "okaxis okhdfcbank okicici oksbi ybl ibl axl paytm pthdfc ptsbi ptyes ptaxis upi apl "
    "yapl ikwik freecharge axisbank axisb hdfcbank icici sbi kotak kbl fbl federal indus "
    "idfcbank idfcfirst aubank barodampay unionbankofindia unionbank pnb boi cnrb "
    "jupiteraxis slice abfspay waaxis wahdfcbank waicici wasbi airtel mairtel jio dbs "
    "yesbank yesbankltd rbl ratn hsbc sc citi citigold equitas icicipay naviaxis superyes "
    "okbizaxis timecosmos kmbl allbank andb centralbank cboi dlb indianbank iob kvb "
    "lvb obc psb rajgovhdfcbank uco united vijb mahb tjsb dcb cmsidfc postbank "
    "fam kiwi pingpay"
)

_AT_RE = re.compile(
    r"(?<![A-Za-z0-9._%+\-])([A-Za-z0-9._%+\-]{1,64})@"
    r"([A-Za-z0-9][A-Za-z0-9\-]{0,62}(?:\.[A-Za-z0-9\-]{1,63}){0,8})"
)
_IBAN_DB = numdb.get("iban")
_BBAN_PART = re.compile(r"([0-9]+)!")
_VPA_LOCAL_RE = re.compile(r"[A-Za-z0-9._\-]{2,}")
# Class-string bytes (cues.TextView) that may appear in a token or in an email's local part.
_ALNUM_CLASS = frozenset(b"a0")
_LOCAL_CLASS = frozenset(b"a0._%+-")

_MONTHS = {
    m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))
}
_DOB_CUE_RE = re.compile(
    r"(?i)(?<![a-z])(?:d\.o\.b\.?|dob|date of birth|birth ?date|born(?: on)?|birthday|"
    r"janam ?(?:tithi|din|tarikh)?|janm ?tithi)(?![a-z])|जन्म(?: तिथि| दिन| तारीख)?"
)
_DATE_RE = re.compile(
    r"(?i)(?<![0-9])(?:"
    r"(?P<d1>[0-9]{1,2})[/\-. ](?P<m1>[0-9]{1,2})[/\-. ](?P<y1>[0-9]{4}|[0-9]{2})"
    r"|(?P<y2>[0-9]{4})[/\-.](?P<m2>[0-9]{1,2})[/\-.](?P<d2>[0-9]{1,2})"
    r"|(?P<d3>[0-9]{1,2})(?:st|nd|rd|th)?[ \-](?P<n3>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|"
    r"nov|dec)[a-z]{0,6}\.?[ \-,]{1,2}(?P<y3>[0-9]{4})"
    r"|(?P<n4>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\.? (?P<d4>[0-9]{1,2})"
    r"(?:st|nd|rd|th)?,? (?P<y4>[0-9]{4})"
    r")(?![0-9])"
)
# How far after a cue word the date may start ("DOB is 12/03/1990", "born on the 4th of…").
_DOB_REACH = 24

_CVV_RE = re.compile(
    r"(?i)(?<![a-z])(?:cvv2?|cvc2?|cvn|csc|card verification (?:code|value|number))(?![a-z])"
    r"[^0-9\n]{0,12}?([0-9]{3,4})(?![0-9]|[ \-][0-9])"
)
_OTP_RE = re.compile(
    r"(?i)(?:(?<![a-z])(?:otp|one[ \-]time (?:password|passcode|pin|code)|verification code|"
    r"passcode)(?![a-z])|ओटीपी)[^0-9\n]{0,16}?([0-9]{4,8})(?![0-9]|[ \-][0-9])"
)
# On the class string; the octet values are checked by `ipaddress`.
_IPV4_RE = re.compile(rb"(?<![0a.])0{1,3}\.0{1,3}\.0{1,3}\.0{1,3}(?![0a]|\.0)")

# Gates: a cued detector's regex runs only when one of its words is in the text.
_DOB_WORDS = frozenset(b"dob birth born birthday birthdate janam janm".split())
_CVV_WORDS = frozenset(b"cvv cvv2 cvc cvc2 cvn csc".split())
_OTP_WORDS = frozenset(b"otp otps passcode".split())
# "one time password", "verification code", "card verification value": the second word is
# common, so these need both words.
_TIME = frozenset({b"time"})
_CODE_LIKE = frozenset(b"password passcode pin code".split())
_VERIFICATION = frozenset({b"verification"})
_CODE = frozenset({b"code"})
_CARD_CODE = frozenset(b"code value number".split())


_PAN_TOPIC = re.compile(r"(?i)\b(?:pan|kyc|e-?kyc|itr|income[ -]tax|tax|form ?16|26as)\b|पैन")


def _ascii_upper(s: str) -> bool:
    return not any("a" <= ch <= "z" for ch in s)


@lru_cache(maxsize=128)
def _iban_length(country: str) -> int:
    """An IBAN's length in `country` (0 when the country issues none), from stdnum's table."""
    info = _IBAN_DB.info(country)
    bban = info[0][1].get("bban", "") if info else ""
    return 4 + sum(int(n) for n in _BBAN_PART.findall(bban)) if bban else 0


def _iban_candidate(text: str, start: int, raw: str, cfg: DetectorConfig) -> Candidate | None:
    """The IBAN at the start of `raw`, cut to its country's length, if it is valid.

    The regex takes up to 34 characters (spaces allowed every so often); the country code
    says how many of them belong to the IBAN, and the rest is the following text.
    """
    compact = raw.replace(" ", "").upper()
    n = _iban_length(compact[:2])
    if not n or len(compact) < n:
        return None
    positions = [i for i, ch in enumerate(raw) if ch != " "]
    end = start + positions[n - 1] + 1
    if end < len(text) and text[end].isalnum():
        return None
    number = compact[:n]
    if not (mod_97_10.is_valid(number[4:] + number[:4]) and _iban.is_valid(number)):
        return None
    # No veto from a label: "account DE89..." is how IBANs are introduced, and a string that
    # passes mod 97 and its country's format by chance is rarer than a mislabel.
    cue = nearest_cue(text, start, cfg.context_chars)
    check = "mod97+structure+cue" if cue == "iban" else "mod97+structure"
    return Candidate(86, start, end, "iban", "stdnum.iban", check)


def _token_start(cls: bytes, i: int, limit: int) -> int:
    start = i
    while start > 0 and i - start < limit and cls[start - 1] in _ALNUM_CLASS:
        start -= 1
    return start


def find_tax_bank_ids(text: str, cls: bytes, cfg: DetectorConfig, out: list[Candidate]) -> None:
    """Indian PAN, GSTIN, IFSC and IBAN.

    Each of them has a letter followed by a digit ("ABCDE1234F", "SBIN0…", "GB82…",
    "…AAPFU0939…"), and that pair is rare in prose, so the scan is a substring search for
    it on the class string, with the full regex tried only at the start of those tokens.
    """
    window = cfg.context_chars
    pos = cls.find(b"a0")
    while pos >= 0:
        start = _token_start(cls, pos, 16)
        m = _TAX_BANK_RE.match(text, start)
        nxt = pos + 2
        if m is not None:
            nxt = max(nxt, m.end())
            _tax_bank_match(text, m, window, cfg, out)
        pos = cls.find(b"a0", nxt)


def _tax_bank_match(text: str, m: re.Match[str], window: int, cfg: DetectorConfig, out: list[Candidate]) -> None:
    kind = m.lastgroup
    start, end = m.span()
    raw = m.group()
    if kind == "iban":
        if cfg.enabled("iban"):
            found = _iban_candidate(text, start, raw, cfg)
            if found is not None:
                out.append(found)
        return
    upper = _ascii_upper(raw)
    cue = nearest_cue(text, start, window)
    # A label vetoes the shapes without a checksum (PAN, IFSC); a GSTIN's check character
    # is evidence enough ("bill to 27AAPFU0939F1ZV" is a GSTIN even after "bill").
    if cue == NEGATIVE and kind != "gstin":
        return
    if kind == "gstin" and cfg.enabled("gstin"):
        if (upper or cue == "gstin") and _gstin.is_valid(raw.upper()):
            check = "checksum+cue" if cue == "gstin" else "checksum"
            out.append(Candidate(90, start, end, "gstin", "stdnum.in_.gstin", check))
    elif kind == "pan" and cfg.enabled("pan_in"):
        # Upper case, or a "PAN" label: lower-case look-alikes are user names and passwords
        # ("hello1234x"). People do type their PAN in lower case, so a lower-case one is
        # believed when the message is about PAN/KYC/tax at all, not only right after "PAN".
        lower = raw.islower() and _PAN_TOPIC.search(text) is not None
        if (upper or lower or cue == "pan_in") and _pan.is_valid(raw.upper()):
            check = "structure+entity+cue" if cue == "pan_in" else "structure+entity+case"
            out.append(Candidate(60, start, end, "pan_in", "stdnum.in_.pan", check))
    elif kind == "ifsc" and cfg.enabled("ifsc"):
        known = upper and raw[:4] in _IFSC_BANKS
        if known or cue == "ifsc":
            check = "structure+cue" if cue == "ifsc" else "structure+bank_code"
            out.append(Candidate(60, start, end, "ifsc", "ifsc", check))


def _email_ok(local: str, domain: str) -> bool:
    if local[0] == "." or local[-1] == "." or ".." in local:
        return False
    labels = domain.split(".")
    tld = labels[-1]
    return all(labels) and len(tld) >= 2 and tld.isalpha()


def find_at_sign(text: str, cls: bytes, cfg: DetectorConfig, out: list[Candidate]) -> None:
    """Email addresses and UPI VPAs, read from each `@` outwards."""
    pos = cls.find(b"@")
    while pos >= 0:
        start = pos
        while start > 0 and pos - start < 64 and cls[start - 1] in _LOCAL_CLASS:
            start -= 1
        m = _AT_RE.match(text, start)
        nxt = pos + 1
        if m is not None and m.end(1) == pos:
            nxt = m.end()
            _at_match(text, m, cfg, out)
        pos = cls.find(b"@", nxt)


def _at_match(text: str, m: re.Match[str], cfg: DetectorConfig, out: list[Candidate]) -> None:
    local, domain = m.group(1), m.group(2)
    start = m.start()
    domain = domain.rstrip(".-")
    end = m.start(2) + len(domain)
    if "." in domain:
        if cfg.enabled("email") and _email_ok(local, domain):
            out.append(Candidate(64, start, end, "email", "email", "syntax"))
        return
    if not cfg.enabled("upi_vpa") or not _VPA_LOCAL_RE.fullmatch(local):
        return
    handle = domain.lower()
    if handle in _UPI_HANDLES:
        out.append(Candidate(66, start, end, "upi_vpa", "upi_vpa", "known_handle"))
    elif handle.isalpha() and 2 <= len(handle) <= 24 and nearest_cue(text, start, cfg.context_chars) == "upi_vpa":
        out.append(Candidate(66, start, end, "upi_vpa", "upi_vpa", "handle_shape+cue"))


def _valid_date(day: int, month: int, year: int) -> bool:
    if year < 100:
        year += 1900 if year > _dt.date.today().year % 100 else 2000
    if not 1900 <= year <= _dt.date.today().year:
        return False
    try:
        _dt.date(year, month, day)
    except ValueError:
        return False
    return True


def _date_at(text: str, pos: int, us_order: bool) -> tuple[int, int] | None:
    m = _DATE_RE.search(text, pos, min(len(text), pos + _DOB_REACH + 20))
    if m is None or m.start() - pos > _DOB_REACH:
        return None
    g = m.groupdict()
    if g["d1"] is not None:
        a, b, y = int(g["d1"]), int(g["m1"]), int(g["y1"])
        ok = _valid_date(b, a, y) if us_order else _valid_date(a, b, y)
        ok = ok or (_valid_date(a, b, y) if us_order else _valid_date(b, a, y))
    elif g["y2"] is not None:
        ok = _valid_date(int(g["d2"]), int(g["m2"]), int(g["y2"]))
    elif g["d3"] is not None:
        ok = _valid_date(int(g["d3"]), _MONTHS[g["n3"].lower()], int(g["y3"]))
    else:
        ok = _valid_date(int(g["d4"]), _MONTHS[g["n4"].lower()], int(g["y4"]))
    return m.span() if ok else None


def find_cued(view: TextView, region: str | None, cfg: DetectorConfig, out: list[Candidate]) -> None:
    """Dates of birth, CVVs, OTPs, MRNs and IPv4 addresses: values named by their label.

    Each regex runs only when one of its cue words is in the text at all (a word-set test
    instead of a regex pass over every message).
    """
    text, low, cls = view.text, view.low, view.cls
    other = not view.ascii
    if cfg.enabled("mrn") and (not cfg.mrn_cues or any(c in low for c in cfg.mrn_cues)):
        for pattern in compiled_mrn_patterns(cfg.mrn_patterns):
            group = 1 if pattern.groups else 0
            for m in pattern.finditer(text):
                if m.start(group) < m.end(group):
                    out.append(Candidate(68, m.start(group), m.end(group), "mrn", "mrn", "pattern"))
    if cfg.enabled("dob") and (view.has_word(_DOB_WORDS) or "d.o.b" in low or (other and "जन्म" in text)):
        us_order = region == "US"
        for cue in _DOB_CUE_RE.finditer(text):
            span = _date_at(text, cue.end(), us_order)
            if span is not None:
                out.append(Candidate(52, span[0], span[1], "dob", "dob", "calendar+cue"))
    has = view.has_word
    verification = has(_VERIFICATION)
    if cfg.enabled("card_cvv") and (has(_CVV_WORDS) or (verification and has(_CARD_CODE))):
        for m in _CVV_RE.finditer(text):
            out.append(Candidate(74, m.start(1), m.end(1), "card_cvv", "card_cvv", "cue"))
    if cfg.enabled("otp_code") and (
        has(_OTP_WORDS)
        or (has(_TIME) and has(_CODE_LIKE))
        or (verification and has(_CODE))
        or (other and "ओटीपी" in text)
    ):
        for m in _OTP_RE.finditer(text):
            out.append(Candidate(73, m.start(1), m.end(1), "otp_code", "otp_code", "cue"))
    if cfg.enabled("ip_address") and b"0.0" in cls:
        for ip in _IPV4_RE.finditer(cls):
            ip_start, ip_end = ip.span()
            try:
                ipaddress.IPv4Address(text[ip_start:ip_end])
            except ValueError:
                continue
            if nearest_cue(text, ip_start, cfg.context_chars) == NEGATIVE:
                continue  # "version 1.2.3.4"
            out.append(Candidate(64, ip_start, ip_end, "ip_address", "ipaddress", "octets"))
