"""Indonesian passport numbers: one canonical spelling, validated loosely.

We found no authoritative source on the meaning of the prefix letters or on newer series
(``/work/shared/domain/indonesia.md`` §3.3), so the number is treated as opaque and only its shape is checked:
one or two letters, then six to eight digits (``A1234567`` is the usual form). Numbers are typed from the
book or read by OCR from the MRZ, so the letter/digit look-alikes are put right by position: ``0``/``1`` in the
letter part are ``O``/``I``, and ``O``/``I``/``L`` in the digit part are ``0``/``1``.

Issue code (``ISSUES``): ``passport_format``, anything that is not that shape after the repairs.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final, NamedTuple

__all__ = ["ISSUES", "PassportResult", "normalise_passport"]

ISSUES: Final[tuple[str, ...]] = ("passport_format",)


class PassportResult(NamedTuple):
    """The canonical passport number, or ``None`` with the reason in ``issue`` (both ``None`` when missing)."""

    number: str | None
    issue: str | None


_MISSING: Final = PassportResult(None, None)
_FORMAT: Final = PassportResult(None, "passport_format")

# Spaces, dashes and dots typed inside the number, and the MRZ filler "<" after it.
_NOISE = re.compile(r"[\s\-.]+")
_VALID = re.compile(r"[A-Z]{1,2}[0-9]{6,8}", re.ASCII)
_LETTER_PART = str.maketrans({"0": "O", "1": "I"})
_DIGIT_PART = str.maketrans({"O": "0", "I": "1", "L": "1"})
_LOOK_ALIKE_DIGITS: Final = frozenset("OIL")


def _repaired(text: str, letters: int) -> str | None:
    """The number read with ``letters`` leading letters, look-alikes repaired, if that reading is valid."""
    candidate = text[:letters].translate(_LETTER_PART) + text[letters:].translate(_DIGIT_PART)
    return candidate if _VALID.fullmatch(candidate) else None


_NONE_WORDS: Final = re.compile(
    r"\s*(?:[-.0/]*|tidak(?: ada)?|belum(?: ada| punya)?|tdk ada|none|nil|n/?a|kosong)\s*", re.IGNORECASE
)


def normalise_passport(raw: str | None) -> PassportResult:
    """Normalise a passport number: upper case, no separators, O/0 and I/1 put right by position.

    The letter part is one letter unless the second character is a letter that cannot be a digit
    (``AB1234567``); when it is ``O``, ``I``, ``L``, ``0`` or ``1`` the one-letter reading wins if it is valid,
    because one letter and seven digits is the usual Indonesian form.

    Args:
        raw: the number as written, e.g. ``"a 123 4567"``, ``"AO12345<"``, ``"B-l234567"``.

    Returns:
        ``PassportResult(number, issue)``: the number, or ``None`` with ``passport_format``. Never raises.

    >>> normalise_passport("a 123-4567"), normalise_passport("0123456I").number
    (PassportResult(number='A1234567', issue=None), 'O1234561')
    >>> normalise_passport("AO1234567<<").number, normalise_passport("XY1234567").number
    ('A01234567', 'XY1234567')
    >>> normalise_passport("12345").issue
    'passport_format'
    >>> normalise_passport("-"), normalise_passport("tidak ada")
    (PassportResult(number=None, issue=None), PassportResult(number=None, issue=None))
    """
    if raw is None:
        return _MISSING
    if not raw.isascii():
        # Full-width letters and digits (some input methods) become ASCII.
        raw = unicodedata.normalize("NFKC", raw)
    if _NONE_WORDS.fullmatch(raw):
        # "-", "0", "tidak ada", "belum ada": the form's way of saying "no previous passport"
        return _MISSING
    text = _NOISE.sub("", raw.upper()).rstrip("<")
    if not text:
        return _MISSING if not raw.strip() else _FORMAT
    if not text.isascii():
        return _FORMAT
    second = text[1:2]
    if second not in _LOOK_ALIKE_DIGITS and _VALID.fullmatch(text):
        # Already canonical: the common case, no repair needed.
        return PassportResult(text, None)
    if second.isalpha() and second not in _LOOK_ALIKE_DIGITS:
        number = _repaired(text, 2)
    else:
        number = _repaired(text, 1) or _repaired(text, 2)
    return PassportResult(number, None) if number is not None else _FORMAT
