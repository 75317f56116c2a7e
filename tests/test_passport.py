"""Passport numbers: examples and properties (total, idempotent, output always of the valid shape)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkage.passport import ISSUES, PassportResult, normalise_passport


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("A1234567", "A1234567"),
        ("a1234567", "A1234567"),
        ("A 123 4567", "A1234567"),
        ("A-123-4567", "A1234567"),
        ("A.1234567", "A1234567"),
        ("  b1234567 ", "B1234567"),
        ("X1234567<", "X1234567"),
        ("X1234567<<", "X1234567"),
        ("AB1234567", "AB1234567"),
        ("C12345678", "C12345678"),
        ("E123456", "E123456"),
        ("Ａ１２３４５６７", "A1234567"),
        # look-alikes in the digit part
        ("A12345O7", "A1234507"),
        ("B-l234567", "B1234567"),
        ("AI234567", "A1234567"),
        ("AO123456", "A0123456"),
        # look-alikes in the letter part
        ("01234567", "O1234567"),
        ("11234567", "I1234567"),
        ("1A234567", "IA234567"),
        # two letters only when one letter would leave too many digits
        ("AO12345678", "AO12345678"),
        ("A012345678", "AO12345678"),
        ("A123456789", "AI23456789"),
    ],
)
def test_valid(raw, number):
    assert normalise_passport(raw) == PassportResult(number, None)


@pytest.mark.parametrize(
    "raw",
    ["<<<", "A12345", "A1234567890", "ABC123456", "1234567A", "A1234567<8", "A12 34X67", "23456789", "tidak tahu"],
)
def test_format(raw):
    assert normalise_passport(raw) == PassportResult(None, "passport_format")


@pytest.mark.parametrize("raw", [None, "", "   ", "-", "0", "--", "tidak ada", "Belum ada", "N/A", "nil"])
def test_missing(raw):
    """Blank, or the form's ways of saying "no previous passport": missing, not a bad field."""
    assert normalise_passport(raw) == PassportResult(None, None)


_SHAPE = re.compile(r"[A-Z]{1,2}[0-9]{6,8}")


@given(st.one_of(st.text(), st.text(alphabet="ABOIL0123456789 -.<aoil", max_size=14)))
def test_total_idempotent_and_well_shaped(raw):
    result = normalise_passport(raw)
    assert (result.number is None) or (result.issue is None)
    assert result.issue is None or result.issue in ISSUES
    if result.number is not None:
        assert _SHAPE.fullmatch(result.number)
        assert normalise_passport(result.number) == result
