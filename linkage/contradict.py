"""The contradiction rule: when two records cannot be the same person, whatever their scores say.

A pure function of two records (:func:`contradicts`), and the reasons it gives (:data:`REASONS`). The cluster
guard (:mod:`linkage.guard`) applies the same rule to arrays of records; a property test holds the two equal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Final

import numpy as np
import pandas as pd

from linkage.names import token_key
from linkage.nik import parse_nik

__all__ = [
    "CANNOT_LINK",
    "NIK_BIRTH_DATE_BY_NIK",
    "NIK_BIRTH_DATE_MOTHER",
    "NIK_BIRTH_DATE_NAME",
    "REASONS",
    "SEX_AND_BIRTH_DATE",
    "SEX_BY_NIK",
    "TWIN_NIKS_NAME",
    "contradicts",
    "name_tokens",
    "names_differ",
    "twin_names",
]

# Reasons `contradicts` returns, strongest first.
SEX_AND_BIRTH_DATE: Final = "sex and birth_date differ"
SEX_BY_NIK: Final = "sex differs and each NIK encodes its own record's sex"
NIK_BIRTH_DATE_BY_NIK: Final = "nik and birth_date differ, and each NIK encodes its own record's birth date"
NIK_BIRTH_DATE_MOTHER: Final = "nik, birth_date and mother_name differ"
NIK_BIRTH_DATE_NAME: Final = "nik, birth_date and full_name differ"
TWIN_NIKS_NAME: Final = "the NIKs share region and birth date (a twin's pattern) and full_name differs"
CANNOT_LINK: Final = "an officer decided cannot-link"
REASONS: Final = (
    SEX_AND_BIRTH_DATE,
    SEX_BY_NIK,
    NIK_BIRTH_DATE_BY_NIK,
    NIK_BIRTH_DATE_MOTHER,
    NIK_BIRTH_DATE_NAME,
    TWIN_NIKS_NAME,
)

_NIK = re.compile(r"[0-9]{16}", re.ASCII)


def contradicts(a: Mapping[str, Any], b: Mapping[str, Any]) -> str | None:
    """Say why two records cannot be the same person, or ``None`` when nothing says so.

    Every rule needs two *independent* pieces of evidence to disagree, because each single field has a
    known error rate for the same person (a sex keyed wrongly, a relative's NIK used by mistake, a birth
    date typed with one digit off). Missing values never count: a rule only fires when both records have
    every field it reads.

    1. ``"sex and birth_date differ"``: the stated sexes differ and the birth dates differ clearly.
       A brother and sister, or any two people of other sexes.
    2. ``"sex differs and each NIK encodes its own record's sex"``: the stated sexes differ and each
       record's valid NIK encodes that record's sex (day + 40 for women). Twins of other sexes: same birth
       date and mother, but four fields say two sexes.
    3. ``"nik and birth_date differ, and each NIK encodes its own record's birth date"``: two valid NIKs that
       differ by more than one typed digit or one swap of neighbours, birth dates that differ clearly, and each
       NIK's date part (DDMMYY) agrees with its own record's birth date. Siblings of one sex, even with the
       same name: a mistyped or borrowed NIK does not also bring a matching birth date along.
    4. ``"nik, birth_date and mother_name differ"``: other NIKs and birth dates as in 3 (without the NIK date
       check), and mother's names that differ clearly. Two unrelated people.
    5. ``"nik, birth_date and full_name differ"``: as 4, with the full names differing clearly instead of the
       mothers' names. Siblings of one sex: same mother, other NIK, other birth date, other given name.
    6. ``"the NIKs share region and birth date (a twin's pattern) and full_name differs"``: two valid NIKs
       with the same first 12 digits (region and encoded birth date) and other serials, and full names that
       differ even letter by letter (each has a token that is neither equal to, a prefix of nor an initial
       of any token of the other), the first tokens (given names) among them. Twins are registered
       together, so their NIKs differ only in the serial, often by one (domain notes §3.1), and their given
       names differ, often by one letter (Wahyudi / Wahyuni): one person would need a mistyped serial and a
       replaced given name at once. A changed family name beside the same given name is left to the model,
       which reads the documents (a shared prior passport number) that this rule does not.

    Birth dates differ *clearly* unless they are equal or one typical slip apart: day and month swapped, one
    digit changed, two neighbouring digits swapped (all on ``YYYYMMDD``), or the same day and month one year
    apart. Two names differ *clearly* when each has a token that matches no token of the other, where tokens
    match if they are equal, one is a prefix or initial of the other (``M`` / ``MUHAMMAD``), or they are one
    edit apart (``AMINAH`` / ``AMINNAH``); names that are equal once spaces are removed never differ
    (``NURHAYATI`` / ``NUR HAYATI``). A dropped or abbreviated token is not a difference; a replaced one is.
    Same-sex twins without NIKs (same birth date and mother) are not covered: no two independent fields
    tell them apart, so the model must keep them apart.

    Args:
        a: a record with any of ``nik`` (16 digits), ``birth_date`` (``date`` or ``YYYY-MM-DD``),
            ``mother_name_canonical`` (str), ``sex`` (``"M"``/``"F"``) and ``full_name_tokens`` (list of str);
            absent keys, ``None`` and NaN are missing. ``birth_date`` and ``sex`` are the stated values: filled
            in from the NIK they would turn a borrowed NIK into a contradiction on its own.
        b: the other record, likewise.

    Returns:
        One of :data:`REASONS`, or ``None``.

    >>> brother = {"sex": "M", "birth_date": "1990-05-12", "nik": "1871011205900001"}
    >>> sister = {"sex": "F", "birth_date": "1993-08-02", "nik": "1871014208930002"}
    >>> contradicts(brother, sister)
    'sex and birth_date differ'
    >>> contradicts(brother, {"sex": "F", "birth_date": "1990-12-05"}) is None  # day and month swapped
    True
    >>> contradicts(brother, {"sex": None, "birth_date": "1993-08-02"}) is None  # missing is not evidence
    True
    """
    sex_a, sex_b = _sex(a.get("sex")), _sex(b.get("sex"))
    nik_a, nik_b = _nik(a.get("nik")), _nik(b.get("nik"))
    dob_a, dob_b = _date(a.get("birth_date")), _date(b.get("birth_date"))
    dates_differ = dob_a is not None and dob_b is not None and _dates_differ(dob_a, dob_b)
    if sex_a and sex_b and sex_a != sex_b:
        if dates_differ:
            return SEX_AND_BIRTH_DATE
        if nik_a and nik_b and _nik_parts(a, nik_a)[0] == sex_a and _nik_parts(b, nik_b)[0] == sex_b:
            return SEX_BY_NIK
    if nik_a and nik_b and dates_differ and _niks_differ(nik_a, nik_b):
        if _short_date(_nik_parts(a, nik_a)[1]) == _short_date(dob_a) and _short_date(
            _nik_parts(b, nik_b)[1]
        ) == _short_date(dob_b):
            return NIK_BIRTH_DATE_BY_NIK
        if names_differ(name_tokens(a.get("mother_name_canonical")), name_tokens(b.get("mother_name_canonical"))):
            return NIK_BIRTH_DATE_MOTHER
        if names_differ(name_tokens(a.get("full_name_tokens")), name_tokens(b.get("full_name_tokens"))):
            return NIK_BIRTH_DATE_NAME
    twins = nik_a and nik_b and nik_a != nik_b and nik_a[:12] == nik_b[:12]
    full_a, full_b = name_tokens(a.get("full_name_tokens")), name_tokens(b.get("full_name_tokens"))
    if twins and twin_names(full_a, full_b):
        return TWIN_NIKS_NAME
    return None


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NaT


def _sex(value: Any) -> str | None:
    return value if value in ("M", "F") else None


def _nik(value: Any) -> str | None:
    return value if isinstance(value, str) and _NIK.fullmatch(value) else None


def _nik_parts(record: Mapping[str, Any], nik: str) -> tuple[str | None, date | None]:
    """The sex and birth date a record's NIK encodes: as stored at ingest (``nik_sex``, ``nik_birth_date``),
    or decoded by :func:`linkage.nik.parse_nik`, the one NIK decoder, for a record given without them."""
    if "nik_sex" in record or "nik_birth_date" in record:
        return _sex(record.get("nik_sex")), _date(record.get("nik_birth_date"))
    info = parse_nik(nik)
    return info.sex, info.birth_date


def _short_date(value: date | None) -> tuple[int, int, int] | None:
    return None if value is None else (value.day, value.month, value.year % 100)


def _date(value: Any) -> date | None:
    if _missing(value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else _date(pd.Timestamp(value))
    if isinstance(value, str):
        try:
            return datetime.strptime(value, "%Y-%m-%d").date()
        except ValueError:
            return None
    return None


def _one_edit(x: str, y: str) -> bool:
    """True when ``x`` and ``y`` are equal or one substitution, insertion, deletion or neighbour swap apart."""
    if x == y:
        return True
    if len(x) == len(y):
        diff = [i for i, (c, d) in enumerate(zip(x, y, strict=True)) if c != d]
        return len(diff) == 1 or (
            len(diff) == 2 and diff[1] == diff[0] + 1 and x[diff[0]] == y[diff[1]] and x[diff[1]] == y[diff[0]]
        )
    if abs(len(x) - len(y)) != 1:
        return False
    short, long = (x, y) if len(x) < len(y) else (y, x)
    i = next((k for k, (c, d) in enumerate(zip(short, long, strict=False)) if c != d), len(short))
    return short[i:] == long[i + 1 :]


def _dates_differ(a: date, b: date) -> bool:
    if a == b or (a.day, a.month, a.year) == (b.month, b.day, b.year):
        return False
    if (a.month, a.day) == (b.month, b.day) and abs(a.year - b.year) == 1:
        return False
    return not _one_edit(f"{a.year:04d}{a.month:02d}{a.day:02d}", f"{b.year:04d}{b.month:02d}{b.day:02d}")


def _niks_differ(a: str, b: str) -> bool:
    # One typed digit or one swap of neighbours is the commonest NIK error for the same person (domain notes 3.1).
    return not _one_edit(a, b)


def name_tokens(value: Any) -> tuple[str, ...]:
    if _missing(value):
        return ()
    words: Iterable[Any] = value.split() if isinstance(value, str) else value
    return tuple(w.casefold() for w in words if isinstance(w, str) and w.strip())


def _token_match(x: str, y: str, strict: bool = False) -> bool:
    return x.startswith(y) or y.startswith(x) or (not strict and min(len(x), len(y)) > 2 and _one_edit(x, y))


def twin_names(a: Sequence[str], b: Sequence[str]) -> bool:
    """Rule 6's names: they differ letter by letter, and so do their first tokens (the given names), once
    each token is its matching key (RIZKY and RIZKI, SOFYAN and SOPIAN are one name; WAHYUDI and WAHYUNI two).
    """
    a, b = _keys(a), _keys(b)
    return bool(a and b) and not _token_match(a[0], b[0], strict=True) and names_differ(a, b, strict=True)


def _keys(tokens: Sequence[str]) -> tuple[str, ...]:
    return tuple(token_key(t.upper()) for t in tokens)


def names_differ(a: Sequence[str], b: Sequence[str], *, strict: bool = False) -> bool:
    """Each name has a token that matches no token of the other (equal, a prefix or initial, or, unless
    ``strict``, one edit apart); names equal once spaces are removed never differ."""
    if not a or not b or "".join(a) == "".join(b):
        return False
    a_extra = any(not any(_token_match(x, y, strict) for y in b) for x in a)
    return a_extra and any(not any(_token_match(y, x, strict) for x in a) for y in b)
