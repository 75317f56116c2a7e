"""Dates and sex: golden cases from ``fixtures/dates.txt`` plus properties (total, round-trips)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkage.dates import EARLIEST, ISSUES, DateResult, SexResult, parse_date, parse_sex
from tests.golden import load

TODAY = date(2025, 1, 15)
CASES = load("dates.txt")


def render(result: DateResult) -> str:
    return result.value.isoformat() if result.value is not None else str(result.issue)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_golden(case):
    assert render(parse_date(case.left, today=TODAY)) == case.right


def test_golden_file_is_big_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("raw", [None, "", "   ", "\t\n"])
def test_missing_is_not_an_issue(raw):
    assert parse_date(raw) == DateResult(None, None)
    assert parse_sex(raw) == SexResult(None, None)


def test_full_width_digits_are_read():
    assert parse_date("１９９０-０８-０５", today=TODAY).value == date(1990, 8, 5)


def test_today_defaults_to_the_clock():
    assert parse_date(date.today().isoformat()).value == date.today()


@pytest.mark.parametrize(
    ("raw", "earliest", "expected"),
    [
        ("31-12-1899", None, "date_out_of_range"),  # the default bound, EARLIEST
        ("01-01-1900", None, "1900-01-01"),
        ("21 April 1885", date(1850, 1, 1), "1885-04-21"),
        ("1885-04-21", date(1850, 1, 1), "1885-04-21"),
        ("18850421", date(1850, 1, 1), "1885-04-21"),  # YYYYMMDD once 1885 is in range
        ("31-12-1849", date(1850, 1, 1), "date_out_of_range"),
        ("1950-01-01", date(1960, 1, 1), "date_out_of_range"),  # a bound may be raised as well
        ("05-08-85", date(1850, 1, 1), "1985-08-05"),  # two-digit years keep their century rule
    ],
)
def test_earliest_bounds_the_accepted_dates(raw, earliest, expected):
    kwargs = {} if earliest is None else {"earliest": earliest}
    assert render(parse_date(raw, today=TODAY, **kwargs)) == expected


def test_the_default_earliest_date_is_1900():
    assert date(1900, 1, 1) == EARLIEST


@given(st.dates(min_value=date(1800, 1, 1), max_value=TODAY))
def test_every_date_from_earliest_reads_back(value):
    assert parse_date(value.isoformat(), today=TODAY, earliest=date(1800, 1, 1)).value == value


@given(st.text())
def test_parse_date_is_total(raw):
    result = parse_date(raw, today=TODAY)
    assert (result.value is None) or (result.issue is None)
    assert result.issue is None or result.issue in ISSUES
    if result.value is not None:
        assert date(1900, 1, 1) <= result.value <= TODAY


_FORMATS = (
    lambda d: d.isoformat(),
    lambda d: d.strftime("%Y/%m/%d"),
    lambda d: f"{d.isoformat()}T00:00:00",
    lambda d: d.strftime("%d-%m-%Y"),
    lambda d: d.strftime("%d/%m/%Y"),
    lambda d: d.strftime("%d.%m.%Y"),
    lambda d: d.strftime("%Y%m%d"),
    lambda d: f"{d.day} {d.strftime('%B')} {d.year}",
    lambda d: f"{d.day:02d}-{d.strftime('%b').upper()}-{d.year}",
    lambda d: f"{d.strftime('%B')} {d.day}, {d.year}",
)
_INDONESIAN = (
    "Januari Februari Maret April Mei Juni Juli Agustus September Oktober November Desember".split()
)


@given(st.dates(min_value=date(1900, 1, 1), max_value=TODAY), st.sampled_from(_FORMATS))
def test_every_written_form_reads_back(value, fmt):
    assert parse_date(fmt(value), today=TODAY) == DateResult(value, None)


@given(st.dates(min_value=date(1900, 1, 1), max_value=TODAY))
def test_indonesian_month_names_read_back(value):
    full = _INDONESIAN[value.month - 1]
    assert parse_date(f"{value.day} {full} {value.year}", today=TODAY).value == value
    assert parse_date(f"{value.day} {full[:3].upper()} {value.year}", today=TODAY).value == value


@given(st.dates(min_value=date(1926, 1, 16), max_value=TODAY))
def test_two_digit_years_within_a_century_read_back(value):
    assert parse_date(value.strftime("%d-%m-%y"), today=TODAY).value == value


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("L", "M"),
        ("lk", "M"),
        ("Laki-Laki", "M"),
        ("LAKI LAKI", "M"),
        ("laki2", "M"),
        ("Pria", "M"),
        ("M", "M"),
        ("male", "M"),
        ("Cowok", "M"),
        ("l.", "M"),
        ("P", "F"),
        ("PR", "F"),
        ("Perempuan", "F"),
        ("wanita", "F"),
        ("F", "F"),
        ("FEMALE", "F"),
        ("W", "F"),
    ],
)
def test_sex_spellings(raw, expected):
    assert parse_sex(raw) == SexResult(expected, None)


@pytest.mark.parametrize("raw", ["X", "-", "1", "2", "laki perempuan", "unknown"])
def test_sex_unknown(raw):
    assert parse_sex(raw) == SexResult(None, "sex_unknown")


@given(st.text())
def test_parse_sex_is_total(raw):
    result = parse_sex(raw)
    assert result.value in (None, "M", "F")
    assert result.issue in (None, "sex_unknown")
