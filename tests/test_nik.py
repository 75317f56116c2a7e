"""NIK: golden cases from ``fixtures/nik.txt``, cross-checks, and properties (total, round-trip, lokal parity)."""

from __future__ import annotations

import re
from datetime import date

import lokal
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lokal.wilayah import list_wilayah

from linkage.nik import ISSUES, WARNINGS, NikInfo, cross_check, parse_nik, region_name
from tests.golden import load

TODAY = date(2025, 1, 15)
CASES = load("nik.txt")


def render(info: NikInfo) -> str:
    if info.status != "valid":
        return " ".join([info.status, *sorted(info.issues)])
    assert info.birth_date is not None
    parts = [info.status, info.district_code, info.birth_date.isoformat(), info.sex, info.serial]
    return " ".join([*map(str, parts), *sorted(info.issues)])


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_golden(case):
    assert render(parse_nik(case.left, today=TODAY)) == case.right


def test_golden_file_is_big_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("raw", [None, "", "  ", "\t"])
def test_missing(raw):
    info = parse_nik(raw)
    assert info.status == "missing"
    assert info.issues == ()
    assert info.nik is None and info.digits is None


def test_invalid_16_digits_still_decode_their_parts():
    info = parse_nik("1871014508900000", today=TODAY)
    assert info.status == "invalid" and info.nik is None
    assert info.digits == "1871014508900000"
    assert (info.province_code, info.regency_code, info.district_code) == ("18", "18.71", "18.71.01")
    assert (info.birth_date, info.sex, info.serial) == (date(1990, 8, 5), "F", "0000")


def test_impossible_month_keeps_the_sex_from_the_day():
    info = parse_nik("1871014513900001", today=TODAY)
    assert info.issues == ("nik_birth_date",)
    assert info.birth_date is None and info.sex == "F"


def test_wrong_length_keeps_digits_but_decodes_nothing():
    info = parse_nik("1871-0145-0890-000", today=TODAY)
    assert info.digits == "187101450890000"
    assert info.province_code is info.birth_date is info.sex is info.serial is None


def test_no_digits_at_all():
    assert parse_nik("tidak ada").digits is None


def test_full_width_digits():
    assert parse_nik("１８７１０１４５０８９００００１", today=TODAY).nik == "1871014508900001"


def test_cross_check():
    info = parse_nik("1871014508900001", today=TODAY)
    assert cross_check(info, date(1990, 8, 5), "F") == ()
    assert cross_check(info, date(1990, 8, 6), "F") == ("nik_dob_mismatch",)
    assert cross_check(info, date(1990, 8, 5), "M") == ("nik_sex_mismatch",)
    assert cross_check(info, None, None) == ()
    assert cross_check(parse_nik(None), date(1990, 8, 5), "M") == ()


def test_region_name():
    assert region_name("18") == "Lampung"
    assert region_name("18.71") == "Kota Bandar Lampung"
    assert region_name("1871") == "Kota Bandar Lampung"
    assert region_name("18.71.01") == "Kedaton"
    assert region_name("18.01.01") is None  # freed by pemekaran; lokal keeps no historical codes
    for junk in ("", "x", "1", "18.7", "18.71.01.1", "١٨"):
        assert region_name(junk) is None


@given(st.text())
def test_parse_nik_is_total(raw):
    info = parse_nik(raw, today=TODAY)
    assert set(info.issues) <= set(ISSUES)
    assert info.status in ("valid", "invalid", "missing")
    assert (info.status == "valid") == (info.nik is not None)
    if info.status != "missing":
        assert (info.status == "valid") == all(i in WARNINGS for i in info.issues)
    if info.digits is not None:
        assert info.digits.isdigit() and info.digits.isascii()


@given(st.text(alphabet="0123456789 .-'abcXO", max_size=24))
def test_digits_are_every_ascii_digit_found(raw):
    info = parse_nik(raw, today=TODAY)
    if raw.strip():
        assert info.digits == ("".join(re.findall(r"[0-9]", raw)) or None)


_DISTRICTS = sorted(d.code for p in list_wilayah() for r in list_wilayah(p.code) for d in list_wilayah(r.code))


@given(
    st.sampled_from(_DISTRICTS),
    st.dates(min_value=date(1925, 1, 16), max_value=TODAY),
    st.sampled_from(["M", "F"]),
    st.integers(1, 9999),
)
def test_round_trip_from_parts(district, born, sex, serial):
    day = born.day + (40 if sex == "F" else 0)
    raw = f"{district.replace('.', '')}{day:02d}{born:%m%y}{serial:04d}"
    info = parse_nik(raw, today=TODAY)
    assert info.status == "valid" and info.issues == ()
    assert (info.district_code, info.birth_date, info.sex, info.serial) == (district, born, sex, f"{serial:04d}")


@given(st.text(alphabet="0123456789", min_size=16, max_size=16))
def test_agrees_with_lokal_except_for_regency_70(raw):
    # lokal-id's parser is an independent implementation of the same checklist, minus the 01-69/71-99 rule.
    ours = parse_nik(raw, today=TODAY)
    theirs = lokal.parse_nik(raw, reference_date=TODAY)
    assert (ours.status == "valid") == (theirs.valid and raw[2:4] != "70")
    if ours.birth_date is not None and raw[10:12] != f"{TODAY:%y}":
        # Same century rule except in the current year, where we also refuse a date later than today.
        assert ours.birth_date.isoformat() == theirs.birth_date
