"""Plain demographic field rules: dates (of birth, of application) and sex, as written on Indonesian forms.

Dates arrive in every shape an office system or a clerk produces: ISO from databases, ``DD-MM-YYYY`` from
Indonesian forms (always day first: a slash date is never read month first), ``YYYYMMDD`` from exports,
and month names in Indonesian or English, full or abbreviated, including the old spellings *Pebruari* and
*Nopember* that are still typed today.

Issue codes (``ISSUES``):

* ``date_unparseable``: no recognised shape (``"kemarin"``, ``"5/8"``);
* ``date_impossible``: a recognised shape, but no such date (``31-02-1990``, month 13);
* ``date_out_of_range``: a real date before ``earliest`` or after ``today``: neither is a birth or application
  date;
* ``sex_unknown``: a sex value that is none of the recognised spellings.

Missing input (``None``, empty, whitespace) is not an issue: the value and the issue are both ``None``.

The range of accepted dates is ``earliest`` to ``today``. ``earliest`` defaults to :data:`EARLIEST`
(1900-01-01), and ingest passes the setting ``dataset.earliest_date``: lower it for archives that hold
people born before 1900. It bounds only what is accepted; a two-digit year is still put in the century
that keeps the date not after ``today`` (never before 1900), and the NIK's six-digit birth date keeps
its own century rule (:mod:`linkage.nik`).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Final, Literal, NamedTuple

__all__ = ["EARLIEST", "ISSUES", "DateResult", "SexResult", "parse_date", "parse_sex"]

ISSUES: Final[tuple[str, ...]] = ("date_impossible", "date_out_of_range", "date_unparseable", "sex_unknown")

EARLIEST: Final = date(1900, 1, 1)
"""The default earliest accepted date (the default of the setting ``dataset.earliest_date``)."""


class DateResult(NamedTuple):
    """A parsed date, or ``None`` with the reason in ``issue`` (both ``None`` when the input was missing)."""

    value: date | None
    issue: str | None


class SexResult(NamedTuple):
    """``"M"`` or ``"F"``, or ``None`` with the reason in ``issue`` (both ``None`` when the input was missing)."""

    value: Literal["M", "F"] | None
    issue: str | None


_MISSING: Final = DateResult(None, None)
_UNPARSEABLE: Final = DateResult(None, "date_unparseable")
_IMPOSSIBLE: Final = DateResult(None, "date_impossible")
_OUT_OF_RANGE: Final = DateResult(None, "date_out_of_range")

# An optional time of day after the date, as spreadsheet and database exports write it
# ("1990-08-05T00:00:00", "05/08/1990 00:00:00", "1990-08-05 00:00:00.000+07:00"). It is ignored.
_TIME = r"(?:[T ]\s*\d{1,2}[:.]\d{2}(?:[:.]\d{2}(?:[.,]\d+)?)?\s*(?:Z|[+-]\d{2}:?\d{2})?)?"

_ISO = re.compile(rf"(\d{{4}})[-/.](\d{{1,2}})[-/.](\d{{1,2}}){_TIME}", re.ASCII)
_DMY = re.compile(rf"(\d{{1,2}})[-/.](\d{{1,2}})[-/.](\d{{4}}|\d{{2}}){_TIME}", re.ASCII)
_COMPACT = re.compile(r"\d{8}", re.ASCII)
# "5 Agustus 1990", "05-AGT-1990", "5/Agu/90", "5 Aug. 1990", "5 Mei, 1990".
_DAY_MONTH_YEAR = re.compile(r"(\d{1,2})[\s\-/.]*([A-Za-z]+)\.?[\s\-/.,]*(\d{4}|\d{2})", re.ASCII)
# English order, "August 5, 1990" / "Aug 5 1990": unambiguous because the month is a word.
_MONTH_DAY_YEAR = re.compile(r"([A-Za-z]+)\.?[\s\-/.]*(\d{1,2})(?:st|nd|rd|th)?[\s\-/.,]*(\d{4})", re.ASCII)

_MONTHS: Final[dict[str, int]] = {
    # Indonesian, full and abbreviated. PEB/PEBRUARI and NOP/NOPEMBER are the pre-1972 and still common
    # spellings; AGT, AGS, AGU and AGUS are all in use for Agustus.
    **dict.fromkeys(("JAN", "JANUARI"), 1),
    **dict.fromkeys(("FEB", "PEB", "FEBRUARI", "PEBRUARI"), 2),
    **dict.fromkeys(("MAR", "MARET"), 3),
    **dict.fromkeys(("APR", "APRIL"), 4),
    **dict.fromkeys(("MEI",), 5),
    **dict.fromkeys(("JUN", "JUNI"), 6),
    **dict.fromkeys(("JUL", "JULI"), 7),
    **dict.fromkeys(("AGU", "AGT", "AGS", "AGUS", "AGUSTUS"), 8),
    **dict.fromkeys(("SEP", "SEPT", "SEPTEMBER"), 9),
    **dict.fromkeys(("OKT", "OKTOBER"), 10),
    **dict.fromkeys(("NOV", "NOP", "NOVEMBER", "NOPEMBER"), 11),
    **dict.fromkeys(("DES", "DESEMBER"), 12),
    # English, where it differs (passport and foreign documents).
    **dict.fromkeys(("JANUARY",), 1),
    **dict.fromkeys(("FEBRUARY",), 2),
    **dict.fromkeys(("MARCH",), 3),
    **dict.fromkeys(("MAY",), 5),
    **dict.fromkeys(("JUNE",), 6),
    **dict.fromkeys(("JULY",), 7),
    **dict.fromkeys(("AUG", "AUGUST"), 8),
    **dict.fromkeys(("OCT", "OCTOBER"), 10),
    **dict.fromkeys(("DEC", "DECEMBER"), 12),
}


def _year(text: str, month: int, day: int, today: date) -> int:
    """A four-digit year as written; a two-digit one put in the century that keeps the date not after ``today``.

    Comparing (year, month, day) as a tuple, rather than the year alone, reads "15-12-24" on 1 June 2024
    as 1924: a birth date cannot lie in the future, not even later this year.
    """
    year = int(text)
    if len(text) == 2:
        year += 2000 if (2000 + year, month, day) <= (today.year, today.month, today.day) else 1900
    return year


def _checked(year: int, month: int, day: int, today: date, earliest: date) -> DateResult:
    """The date if it exists and lies in earliest..today, else the issue that says why not."""
    try:
        value = date(year, month, day)
    except ValueError:
        return _IMPOSSIBLE
    if value < earliest or value > today:
        return _OUT_OF_RANGE
    return DateResult(value, None)


def _compact(text: str, today: date, earliest: date) -> DateResult:
    """Eight digits: YYYYMMDD when that is a real date in range, else DDMMYYYY (Indonesian order)."""
    as_ymd = _checked(int(text[:4]), int(text[4:6]), int(text[6:]), today, earliest)
    if as_ymd.value is not None:
        return as_ymd
    as_dmy = _checked(int(text[4:]), int(text[2:4]), int(text[:2]), today, earliest)
    if as_dmy.issue == "date_impossible" and as_ymd.issue == "date_out_of_range":
        # "18500101" is a real date, just too early: say that rather than "impossible".
        return as_ymd
    return as_dmy


def parse_date(raw: str | None, *, today: date | None = None, earliest: date = EARLIEST) -> DateResult:
    """Parse a date written in any common Indonesian or ISO form, day before month.

    Args:
        raw: the date as written, e.g. ``"05-08-1990"``, ``"5 Agustus 1990"``, ``"1990-08-05T00:00:00"``.
        today: the reference date for two-digit years and the upper bound; defaults to ``date.today()``.
        earliest: the lower bound (setting ``dataset.earliest_date``); an earlier date is ``date_out_of_range``.

    Returns:
        ``DateResult(value, issue)``: the date, or ``None`` with ``date_unparseable``, ``date_impossible`` or
        ``date_out_of_range``. Never raises.

    >>> parse_date("5 Agustus 1990")
    DateResult(value=datetime.date(1990, 8, 5), issue=None)
    >>> parse_date("05/08/1990").value, parse_date("19900805").value, parse_date("3 Nop 85").value
    (datetime.date(1990, 8, 5), datetime.date(1990, 8, 5), datetime.date(1985, 11, 3))
    >>> parse_date("31-02-1990").issue, parse_date("1 Jan 1850").issue, parse_date("kemarin").issue
    ('date_impossible', 'date_out_of_range', 'date_unparseable')
    >>> parse_date("1 Jan 1850", earliest=date(1800, 1, 1)).value
    datetime.date(1850, 1, 1)
    >>> parse_date("05-08-25", today=date(2024, 1, 1)).value
    datetime.date(1925, 8, 5)
    >>> parse_date("  ")
    DateResult(value=None, issue=None)
    """
    if raw is None:
        return _MISSING
    text = raw.strip()
    if not text:
        return _MISSING
    if not text.isascii():
        # Full-width digits and letters (from some input methods) become ASCII; anything else stays
        # non-ASCII and simply matches no shape.
        text = unicodedata.normalize("NFKC", text).strip()
    ref = today if today is not None else date.today()

    if m := _ISO.fullmatch(text):
        return _checked(int(m[1]), int(m[2]), int(m[3]), ref, earliest)
    if m := _DMY.fullmatch(text):
        month, day = int(m[2]), int(m[1])
        return _checked(_year(m[3], month, day, ref), month, day, ref, earliest)
    if _COMPACT.fullmatch(text):
        return _compact(text, ref, earliest)
    if m := _DAY_MONTH_YEAR.fullmatch(text):
        named = _MONTHS.get(m[2].upper())
        if named is None:
            return _UNPARSEABLE
        day = int(m[1])
        return _checked(_year(m[3], named, day, ref), named, day, ref, earliest)
    if m := _MONTH_DAY_YEAR.fullmatch(text):
        named = _MONTHS.get(m[1].upper())
        if named is None:
            return _UNPARSEABLE
        return _checked(int(m[3]), named, int(m[2]), ref, earliest)
    return _UNPARSEABLE


_SEXES: Final[dict[str, Literal["M", "F"]]] = {
    # KTP and SIAK forms write L (laki-laki) / P (perempuan); English M/F comes from passports and
    # foreign systems; W (wanita) and the colloquial COWOK/CEWEK come from hand-typed extracts.
    **dict.fromkeys(("L", "LK", "LAKI", "LAKILAKI", "PRIA", "M", "MALE", "COWOK"), "M"),
    **dict.fromkeys(("P", "PR", "PEREMPUAN", "WANITA", "F", "FEMALE", "W", "CEWEK"), "F"),
}
_NOT_LETTER = re.compile(r"[^A-Z]+")
_SEX_MISSING: Final = SexResult(None, None)
_SEX_UNKNOWN: Final = SexResult(None, "sex_unknown")
_SEX_RESULTS: Final[dict[str, SexResult]] = {key: SexResult(value, None) for key, value in _SEXES.items()}


def parse_sex(raw: str | None) -> SexResult:
    """Read a sex value written as L/P, M/F, Laki-laki/Perempuan, Pria/Wanita and similar.

    Case, spaces and punctuation are ignored, so ``"Laki-Laki"``, ``"LAKI LAKI"`` and ``"l."`` all count.

    Args:
        raw: the sex as written.

    Returns:
        ``SexResult(value, issue)``: ``"M"`` or ``"F"``, or ``None`` with ``sex_unknown``. Never raises.

    >>> parse_sex("Laki-Laki"), parse_sex("p")
    (SexResult(value='M', issue=None), SexResult(value='F', issue=None))
    >>> parse_sex("X").issue, parse_sex(None).issue
    ('sex_unknown', None)
    """
    if raw is None or not raw.strip():
        return _SEX_MISSING
    return _SEX_RESULTS.get(_NOT_LETTER.sub("", raw.upper()), _SEX_UNKNOWN)
