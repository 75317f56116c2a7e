"""Phone numbers to E.164 (``+6281234567890``), with a fast path for Indonesian numbers.

Google's ``phonenumbers`` decides what a valid number is, but a full ``phonenumbers.parse`` costs about 60 µs,
too slow for a million unique numbers. Most numbers in applications are Indonesian and written as
``08…``, ``+62…`` or ``62…`` with spaces, dashes or dots. For those, the fast path strips the separators and
checks the national number against phonenumbers' *own* metadata for region ID (the mobile and fixed-line
patterns), compiled once. It only ever says "valid"; anything it cannot confirm goes to the full parse, so the
two paths cannot disagree about an invalid number (``tests/test_phone.py`` checks that they agree on valid ones).

One deliberate difference from phonenumbers: ``62`` + a valid Indonesian mobile number, without the plus, is
read as +62 and that mobile number. phonenumbers keeps 11-digit strings such as ``62812345678`` whole and
calls them a fixed line in area 0628 (``+6262812345678``). In our data that string is a 9-digit mobile
number (0812-345-678) typed with the country code, and the whole-string reading would stop it from matching
the same number written ``0812345678``.

Issue codes (``ISSUES``):

* ``phone_placeholder``: a stand-in for "no phone": ``-``, ``0``, ``000000``, ``tidak ada``, ``n/a``;
* ``phone_unparseable``: no phone number in it at all (``"hp"``, ``"12"``, fewer than 4 digits);
* ``phone_invalid``: reads as a number, but not a valid one (too short, unassigned prefix).
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

import phonenumbers

__all__ = ["ISSUES", "PhoneResult", "normalise_phone"]

ISSUES: Final[tuple[str, ...]] = ("phone_invalid", "phone_placeholder", "phone_unparseable")


class PhoneResult(NamedTuple):
    """A number in E.164 form, or ``None`` with the reason in ``issue`` (both ``None`` when missing)."""

    e164: str | None
    issue: str | None


_MISSING: Final = PhoneResult(None, None)
_PLACEHOLDER: Final = PhoneResult(None, "phone_placeholder")
_UNPARSEABLE: Final = PhoneResult(None, "phone_unparseable")
_INVALID: Final = PhoneResult(None, "phone_invalid")

_ID: Final = phonenumbers.PhoneMetadata.metadata_for_region("ID")
if _ID is None:  # phonenumbers ships ID metadata; fail at import, not per row, if that ever changes
    raise ImportError("phonenumbers has no metadata for region ID")


def _compile(desc: phonenumbers.PhoneNumberDesc | None) -> tuple[re.Pattern[str], frozenset[int]]:
    """A metadata number pattern (matched whole, as phonenumbers does) with its possible lengths."""
    if desc is None or desc.national_number_pattern is None:
        raise ImportError("phonenumbers' ID metadata lacks a number pattern")
    return re.compile(desc.national_number_pattern), frozenset(desc.possible_length or ())


_GENERAL: Final = _compile(_ID.general_desc)
_MOBILE: Final = _compile(_ID.mobile)
_FIXED_LINE: Final = _compile(_ID.fixed_line)

# Separators people put inside a number: spaces, dashes, dots, brackets, slashes.
_SEPARATORS = re.compile(r"[\s\-.()/\[\]]+")
# "Tidak ada" (none), "tidak punya" (don't have), "belum ada" (not yet), "kosong" (empty) and the usual n/a forms,
# after dropping everything but letters and digits.
_PLACEHOLDER_WORDS: Final = frozenset(
    {"TIDAKADA", "TDKADA", "TIDAKPUNYA", "TDKPUNYA", "BELUMADA", "KOSONG", "NA", "NIL", "NULL", "NONE", "X", "XX",
     "XXX", "TIDAK", "TDK", "TIDAKTAHU", "NOHP", "NOTELP"}
)
_NOT_ALNUM = re.compile(r"[\W_]+")
_MIN_DIGITS: Final = 4


def _matches(national: str, desc: tuple[re.Pattern[str], frozenset[int]]) -> bool:
    """phonenumbers' test for a number type: a possible length, and the whole number matches the pattern."""
    return len(national) in desc[1] and desc[0].fullmatch(national) is not None


def _valid_id(national: str) -> bool:
    """True when phonenumbers would call this Indonesian national number a valid mobile or fixed-line number."""
    return _GENERAL[0].fullmatch(national) is not None and (
        _matches(national, _MOBILE) or _matches(national, _FIXED_LINE)
    )


def _fast(compact: str, default_region: str) -> str | None:
    """E.164 for an Indonesian number that the metadata confirms as valid; None means "ask phonenumbers"."""
    if compact.startswith("+62"):
        national = compact[3:]
    elif default_region != "ID":
        return None
    elif compact.startswith("0"):
        national = compact[1:]
    elif compact.startswith("62"):
        national = compact[2:]
        if not _matches(national, _MOBILE) and _GENERAL[0].fullmatch(compact) is not None:
            # phonenumbers strips a bare 62 only when the whole string is not itself a plausible
            # national number; keep its reading there (see the module docstring for mobiles).
            return None
    else:
        return None
    if not national.isdigit() or national[0] == "0" or not _valid_id(national):
        return None
    return "+62" + national


def _slow(text: str, default_region: str) -> PhoneResult:
    """The full phonenumbers parse, for everything the fast path could not confirm."""
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return _UNPARSEABLE
    if not phonenumbers.is_valid_number(number):
        return _INVALID
    return PhoneResult(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None)


def normalise_phone(raw: str | None, *, default_region: str = "ID") -> PhoneResult:
    """Normalise a phone number to E.164, checking validity with Google's libphonenumber metadata.

    Args:
        raw: the number as written: ``"0812-3456-7890"``, ``"+62 812 3456 7890"``, ``"(0721) 781234"``.
        default_region: the ISO country for numbers written without a country code.

    Returns:
        ``PhoneResult(e164, issue)``: the E.164 string, or ``None`` with ``phone_placeholder``,
        ``phone_unparseable`` or ``phone_invalid``. Never raises.

    >>> normalise_phone("0812-3456-7890"), normalise_phone("+62 812 3456 7890").e164
    (PhoneResult(e164='+6281234567890', issue=None), '+6281234567890')
    >>> normalise_phone("(0721) 781234").e164, normalise_phone("+1 650 253 0000").e164
    ('+62721781234', '+16502530000')
    >>> normalise_phone("tidak ada").issue, normalise_phone("12").issue, normalise_phone("08123").issue
    ('phone_placeholder', 'phone_unparseable', 'phone_invalid')
    """
    if raw is None:
        return _MISSING
    text = raw.strip()
    if not text:
        return _MISSING
    if text.isascii():
        compact = _SEPARATORS.sub("", text)
        if compact.isdigit() or (compact[:1] == "+" and compact[1:].isdigit()):
            e164 = _fast(compact, default_region)
            if e164 is not None:
                return PhoneResult(e164, None)
    key = _NOT_ALNUM.sub("", text).upper()
    if not key or key in _PLACEHOLDER_WORDS or (key.isdigit() and key == key[0] * len(key)):
        # Nothing but punctuation, a "none" word, or one digit repeated ("0", "000000", "9999999999").
        return _PLACEHOLDER
    if sum(ch.isdigit() for ch in key) < _MIN_DIGITS:
        return _UNPARSEABLE
    return _slow(text, default_region)
