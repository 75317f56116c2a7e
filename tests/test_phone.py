"""Phone numbers: examples, and properties (total, idempotent, fast path agrees with phonenumbers)."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from linkage.phone import ISSUES, PhoneResult, _fast, _slow, normalise_phone


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("0812-3456-7890", "+6281234567890"),
        ("0812 3456 7890", "+6281234567890"),
        ("081234567890", "+6281234567890"),
        ("+62 812 3456 7890", "+6281234567890"),
        ("+62-812-3456-7890", "+6281234567890"),
        ("6281234567890", "+6281234567890"),
        ("(+62) 812.3456.7890", "+6281234567890"),
        ("0811-722-123", "+62811722123"),
        ("62811722123", "+62811722123"),  # phonenumbers alone would say +6262811722123
        ("0895 1234 5678", "+6289512345678"),
        ("(0721) 781234", "+62721781234"),
        ("0721-781234", "+62721781234"),
        ("+62 721 781234", "+62721781234"),
        ("021 5551234", "+62215551234"),
        ("HP: 0812 3456 7890", "+6281234567890"),
        ("+620812-3456-7890", "+6281234567890"),
        ("+1 650 253 0000", "+16502530000"),
        ("+60 12-345 6789", "+60123456789"),
        ("０８１２３４５６７８９０", "+6281234567890"),
    ],
)
def test_valid(raw, e164):
    assert normalise_phone(raw) == PhoneResult(e164, None)


@pytest.mark.parametrize(
    ("raw", "issue"),
    [
        ("-", "phone_placeholder"),
        ("--", "phone_placeholder"),
        ("0", "phone_placeholder"),
        ("000000", "phone_placeholder"),
        ("0000-0000-0000", "phone_placeholder"),
        ("9999999999", "phone_placeholder"),
        ("tidak ada", "phone_placeholder"),
        ("Tdk Ada", "phone_placeholder"),
        ("n/a", "phone_placeholder"),
        ("NULL", "phone_placeholder"),
        ("12", "phone_unparseable"),
        ("hp", "phone_unparseable"),
        ("abc 123", "phone_unparseable"),
        ("08123", "phone_invalid"),
        ("0812345678901234", "phone_invalid"),
        ("0800 1234", "phone_invalid"),
        ("+62 1", "phone_unparseable"),
        ("+999 1234 5678", "phone_unparseable"),
    ],
)
def test_issues(raw, issue):
    assert normalise_phone(raw) == PhoneResult(None, issue)


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_missing(raw):
    assert normalise_phone(raw) == PhoneResult(None, None)


def test_default_region_applies_to_national_numbers():
    assert normalise_phone("012 345 6789", default_region="MY").e164 == "+60123456789"
    assert normalise_phone("+62 812 3456 7890", default_region="MY").e164 == "+6281234567890"
    assert normalise_phone("0812 3456 7890", default_region="XX").issue == "phone_unparseable"


@given(st.text())
def test_total(raw):
    result = normalise_phone(raw)
    assert (result.e164 is None) or (result.issue is None)
    assert result.issue is None or result.issue in ISSUES


_SEPARATORS = st.sampled_from(["", "", "", " ", "-", ".", " - ", "(", ")", "/"])
_PREFIXES = st.sampled_from(["0", "0", "+62", "62", "+62 ", "(0", "+62-", "620", "+620", "00", "6262"])


@st.composite
def indonesian_numbers(draw: st.DrawFn) -> str:
    """A prefix, then 5-14 digits with random separators; mostly mobile-like (8…) or Lampung-like (72…)."""
    head = draw(st.sampled_from(["8", "81", "85", "89", "72", "21", "2", "3", "6", "1", "9", ""]))
    digits = head + draw(st.text(alphabet="0123456789", min_size=4, max_size=12))
    out = [draw(_PREFIXES)]
    for ch in digits:
        out.append(ch)
        out.append(draw(_SEPARATORS))
    return "".join(out)


def _is_documented_deviation(compact: str) -> bool:
    """A bare 62 + valid mobile that phonenumbers reads as a whole national number (see linkage.phone)."""
    whole = _slow(compact, "ID")
    return compact.startswith("62") and whole.e164 == "+62" + compact


@settings(max_examples=2000)
@given(indonesian_numbers())
@example("62812345678")
@example("0812-3456-7890")
@example("+62 (812) 3456/7890")
def test_fast_path_agrees_with_phonenumbers(raw):
    compact = "".join(ch for ch in raw if ch.isdigit() or ch == "+")
    fast = _fast(compact, "ID")
    slow = _slow(raw, "ID")
    if fast is not None:
        if _is_documented_deviation(compact):
            assert fast == "+62" + compact[2:]
        else:
            assert fast == slow.e164
    assert normalise_phone(raw).e164 in (fast, slow.e164)


@settings(max_examples=500)
@given(
    st.sampled_from(["08", "+628", "628"]),
    st.sampled_from("1235789"),
    st.text(alphabet="0123456789", min_size=8, max_size=10),
)
def test_fast_path_confirms_ordinary_mobiles(prefix, operator, rest):
    # Every valid mobile number in the usual 08… forms must take the fast path, or it is not a fast path.
    raw = f"{prefix}{operator}{rest}"
    if _slow(raw, "ID").issue is None:
        assert _fast(raw, "ID") is not None


@given(st.one_of(indonesian_numbers(), st.text()))
def test_idempotent(raw):
    e164 = normalise_phone(raw).e164
    if e164 is not None:
        assert normalise_phone(e164) == PhoneResult(e164, None)
