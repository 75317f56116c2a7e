"""Tests for :mod:`linkage.names`: golden variant/distinct pairs, one literal test per rule, properties.

Rules are those of ``shared/domain/indonesia.md`` §1.4 (A1–A8, B, C0–C8, D1–D7) and the pitfalls of §1.5.
"""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from linkage.names import STEPS, NameParts, name_key, normalise_name, token_key
from tests.golden import Case, load

VARIANTS = load("names_variants.txt")
DISTINCT = load("names_distinct.txt")
BY_DESIGN = "key merges by design"


def same_key(a: NameParts, b: NameParts) -> bool:
    """The golden files' definition: equal space-free keys, or equal per-token key multisets."""
    return name_key(a) == name_key(b) or sorted(a.keys) == sorted(b.keys)


def show(n: NameParts) -> str:
    return f"{n.canonical!r} keys={n.keys} name_key={name_key(n)!r}"


# --- golden files ----------------------------------------------------------------------------


def test_golden_files_are_large_and_titled() -> None:
    assert len(VARIANTS) >= 220
    assert len(DISTINCT) >= 110
    assert all(c.title for c in VARIANTS + DISTINCT)
    assert {c.op for c in VARIANTS} == {"=="}
    assert {c.op for c in DISTINCT} == {"!="}
    assert any(c.title.startswith(BY_DESIGN) for c in DISTINCT)


@pytest.mark.parametrize("case", VARIANTS, ids=lambda c: c.id)
def test_variants_share_a_key(case: Case) -> None:
    a, b = normalise_name(case.left), normalise_name(case.right)
    assert same_key(a, b), f"[{case.title}] {show(a)} vs {show(b)}"
    # equal keys alone would pass a wrong display form: the canonical form of each side is stated too
    assert (a.canonical, b.canonical) == case.expected, f"[{case.title}] {show(a)} vs {show(b)}"


def test_every_variant_states_its_canonical_forms() -> None:
    assert [c.id for c in VARIANTS if c.expected is None] == []


def test_golden_expected_forms_parse() -> None:
    from tests.golden import _forms

    assert _forms("SUKARNO", "x") == ("SUKARNO", "SUKARNO")
    assert _forms("NURHAYATI | NUR HAYATI", "x") == ("NURHAYATI", "NUR HAYATI")
    for bad in ("", "A | A", "A | ", "A | B | C"):
        with pytest.raises(ValueError, match="expected 'FORM'"):
            _forms(bad, "x")


@pytest.mark.parametrize("case", DISTINCT, ids=lambda c: c.id)
def test_distinct_names_stay_apart(case: Case) -> None:
    a, b = normalise_name(case.left), normalise_name(case.right)
    assert a.canonical != b.canonical, f"[{case.title}] {show(a)} vs {show(b)}"
    if not case.title.startswith(BY_DESIGN):
        assert not same_key(a, b), f"[{case.title}] {show(a)} vs {show(b)}"


# --- what is split off: patronym, titles, degrees, gender marker ----------------------------------

SPLIT = [
    # raw, canonical, titles, degrees, patronym, gender_marker
    ("Siti Aminah binti Sukardi", "SITI AMINAH", (), (), "SUKARDI", None),
    ("Hj. Siti Fatimah binti Abdullah", "SITI FATIMAH", ("HJ",), (), "ABDULLAH", None),
    ("Ahmad bin Umar bin Khattab", "AHMAD", (), (), "UMAR BIN KHATTAB", None),
    ("Rahmat bin H. Sulaiman", "RAHMAT", (), (), "SULAIMAN", None),
    ("Nurhayati bt. Hasan", "NURHAYATI", (), (), "HASAN", None),
    ("Siti Aminah Binti Soekardi, S.Pd.", "SITI AMINAH", (), ("SPD",), "SUKARDI", None),
    ("Hadji Achmad Djunaedi SE MM bin Ramli", "AHMAD JUNAEDI", ("H",), ("SE", "MM"), "RAMLI", None),
    ("H. Moch. Rizki Ramadhan, S.Pd. bin Soekardi", "MUHAMMAD RIZKI RAMADAN", ("H",), ("SPD",), "SUKARDI", None),
    ("H. Ahmad Dahlan, S.Pd., M.M.", "AHMAD DAHLAN", ("H",), ("SPD", "MM"), None, None),
    ("Prof. Dr. Ir. H. Budi Santoso, M.Sc.", "BUDI SANTOSO", ("PROF", "DR", "IR", "H"), ("MSC",), None, None),
    ("Drs. Budi Santoso, S.E., M.M.", "BUDI SANTOSO", ("DRS",), ("SE", "MM"), None, None),
    ("dr. Andi Wijaya, Sp.OG", "ANDI WIJAYA", ("DR",), ("SPOG",), None, None),
    ("K.H. Hasyim Asy'ari", "HASYIM ASYARI", ("KH",), (), None, None),
    ("KH Ahmad Dahlan", "AHMAD DAHLAN", ("KH",), (), None, None),
    ("Haji Agus Salim", "AGUS SALIM", ("H",), (), None, None),
    ("Hajjah Fatimah", "FATIMAH", ("HJ",), (), None, None),
    ("Raden Mas Said", "SAID", ("R", "MAS"), (), None, None),
    ("R.A. Kartini", "KARTINI", ("RA",), (), None, None),
    ("Tjoet Njak Dhien", "NYAK DHIEN", ("CUT",), (), None, None),
    ("Ida Bagus Made Oka", "MADE OKA", ("IDA BAGUS",), (), None, None),
    ("I Gusti Ngurah Rai", "NGURAH RAI", ("GUSTI",), (), None, "I"),
    ("Ni Luh Putu Ayu", "LUH PUTU AYU", (), (), None, "NI"),
    ("Rosmawati br. Sinaga", "ROSMAWATI SINAGA", (), (), None, None),
    ("Budi Santoso ST", "BUDI SANTOSO", (), ("ST",), None, None),
    ("Eko Prasetyo S.T., M.T.", "EKO PRASETYO", (), ("ST", "MT"), None, None),
]


@pytest.mark.parametrize(("raw", "canonical", "titles", "degrees", "patronym", "marker"), SPLIT)
def test_parts_split_off(
    raw: str,
    canonical: str,
    titles: tuple[str, ...],
    degrees: tuple[str, ...],
    patronym: str | None,
    marker: str | None,
) -> None:
    n = normalise_name(raw)
    assert (n.canonical, n.titles, n.degrees, n.patronym, n.gender_marker) == (
        canonical,
        titles,
        degrees,
        patronym,
        marker,
    )


def test_patronym_is_split_off_not_kept_in_the_name() -> None:
    with_father = normalise_name("Siti Aminah binti Sukardi")
    assert "BINTI" not in with_father.tokens and "SUKARDI" not in with_father.tokens
    assert with_father.canonical == normalise_name("Siti Aminah").canonical
    assert with_father.patronym == "SUKARDI"


# --- one literal test per rule (§1.4) and per pitfall (§1.5) -------------------------------------

CANONICAL = [
    # rule, raw, canonical
    ("A1 diacritics and case", "Sékar AYU", "SEKAR AYU"),
    ("A1 apostrophes", "Ma'ruf", "MARUF"),
    ("A1 acute accent as apostrophe", "Ma´ruf", "MARUF"),
    ("A1 ayn in transliteration", "Maʿruf", "MARUF"),
    ("A1 full-width letters", "ＳＩＴＩ　ＡＭＩＮＡＨ", "SITI AMINAH"),
    ("A2 comma degrees", "H. Ahmad Dahlan, S.Pd., M.M.", "AHMAD DAHLAN"),
    ("A2 degree written with a space", "Rina Wati, S. Pd.", "RINA WATI"),
    ("A2 surname first keeps written order", "Sukarno, Ahmad", "SUKARNO AHMAD"),
    ("A3 dot between tokens", "Moch.Rizki", "MUHAMMAD RIZKI"),
    ("A3 digits and punctuation", "Siti_Aminah (2)", "SITI AMINAH"),
    ("A3 hyphen", "Nur-Hayati", "NUR HAYATI"),
    ("A4 stacked titles", "Dr. Ir. R. Budi Santoso", "BUDI SANTOSO"),
    ("A4 Mas alone is a name", "Mas Budi", "MAS BUDI"),
    ("A4 a title alone is kept", "Haji", "HAJI"),
    ("A5 bare trailing degree", "Budi SE", "BUDI"),
    ("A5 bare MA is not a degree", "Budi MA", "BUDI MA"),
    ("A5 MA after a degree is one", "Budi SE MA", "BUDI"),
    ("A5 one name token stays", "SE", "SE"),
    ("A6 binti", "Siti Fatimah binti Abdullah", "SITI FATIMAH"),
    ("A6 leading binti is not a patronym", "Binti Rahayu", "BINTI RAHAYU"),
    ("A7 br", "Rosmawati br. Sinaga", "ROSMAWATI SINAGA"),
    ("A7 boru", "Lisbet Boru Nasution", "LISBET NASUTION"),
    ("A8 Ni before birth order", "Ni Luh Putu Ayu", "LUH PUTU AYU"),
    ("A8 I before birth order", "I Made Sukerta", "MADE SUKERTA"),
    ("A8 I before a non-Balinese token is kept", "I Budi Santoso", "I BUDI SANTOSO"),
    ("A8 Ni before a non-Balinese token is kept", "Ni Aminah", "NI AMINAH"),
    ("A8 Ni before a birth-order initial", "NI K. INDAH", "K INDAH"),
    ("A8 I before a birth-order initial", "I W. Sukerta", "W SUKERTA"),
    ("A8 I before another initial is kept", "I B. Santoso", "I B SANTOSO"),
    ("B Muhammad family", "Mochammad Muh. Mohd. Mhd. Moh.", "MUHAMMAD MUHAMMAD MUHAMMAD MUHAMMAD MUHAMMAD"),
    ("B initial M is not expanded", "M. Rizki", "M RIZKI"),
    ("B Achmad", "Achmad Akhmad Ahmed", "AHMAD AHMAD AHMAD"),
    ("B Abd", "Abd. Muis", "ABDUL MUIS"),
    ("B Abdoel", "Abdoel Moeis", "ABDUL MUIS"),
    ("B leading St is Siti", "St. Aminah", "SITI AMINAH"),
    ("B St after a title is Siti", "Hj. St. Aminah", "SITI AMINAH"),
    ("B trailing ST is a degree", "Aminah ST", "AMINAH"),
    ("B St alone stays", "St.", "ST"),
    ("B Noor Noer", "Noor Noer", "NUR NUR"),
    ("B Jusuf", "Jusuf", "YUSUF"),
    ("B Joesoef", "Joesoef", "YUSUF"),
    ("B Jahja", "Jahja", "YAHYA"),
    ("B Rachmat", "Rachmat", "RAHMAT"),
    ("B Ramadhan", "Ramadhan", "RAMADAN"),
    ("C0 no old marker: Joko stays Joko", "Joko", "JOKO"),
    ("C0 no old marker: Jaya, Juli, Jamal", "Jaya Juli Jamal", "JAYA JULI JAMAL"),
    ("C1 j to y in an old token", "Tjahjo", "CAHYO"),
    ("C1 oe token", "Soejono", "SUYONO"),
    ("C1 dj keeps its j", "Djajadi", "JAYADI"),
    ("C2 oe", "Soekarno", "SUKARNO"),
    ("C2 Noel keeps oe", "Noel", "NOEL"),
    ("C2 Joel keeps oe", "Joel", "JOEL"),
    ("C3 dj", "Djoko", "JOKO"),
    ("C3 ndj", "Sandjaja", "SANJAYA"),
    ("C4 tj", "Tjipto", "CIPTO"),
    ("C5 sj", "Sjahrir", "SYAHRIR"),
    ("C6 initial nj", "Njoman", "NYOMAN"),
    ("C6 nj inside an old token", "Soenjoto", "SUNYOTO"),
    ("C6 EYD nj stays: Sanjaya Panji", "Sanjaya Panji", "SANJAYA PANJI"),
    ("C6 EYD nj stays: Anjani Banjar", "Anjani Banjar", "ANJANI BANJAR"),
    ("C7 ch for the Arabic ha is h", "Machmud", "MAHMUD"),
    ("C7 Rachmawati", "Rachmawati", "RAHMAWATI"),
    ("C7 Bacharuddin", "Bacharuddin", "BAHARUDDIN"),
    ("C7 Abdul Rachman", "Abdul Rachman", "ABDUL RAHMAN"),
    ("C7 ha inside a token", "Ichsan Machfud Fachmi Muchsin", "IHSAN MAHFUD FAHMI MUHSIN"),
    ("C7 ch for the Arabic kha is kh", "Chairul Choirul Chaerul Chadidjah", "KHAIRUL KHOIRUL KHAERUL KHADIJAH"),
    ("C7 kha stems inside a token", "Fachri Ichwan Muchtar Zulaicha", "FAKHRI IKHWAN MUKHTAR ZULAIKHA"),
    ("C7 ha then kha", "Chusnul Chotimah", "HUSNUL KHOTIMAH"),
    ("C7 kh as written stays kh", "Ikhsan Makhfud Rakhman", "IKHSAN MAKHFUD RAKHMAN"),
    ("C7 Chandra is Candra", "Chandra", "CANDRA"),
    ("C7 Christian keeps ch", "Christian", "CHRISTIAN"),
    ("C7 Michael keeps ch", "Michael", "MICHAEL"),
    ("C8 ie", "Habibie", "HABIBI"),
    ("C8 short tokens keep ie", "Lie", "LIE"),
    ("C old-spelling title", "Hadji Agus Salim", "AGUS SALIM"),
]


@pytest.mark.parametrize(("rule", "raw", "canonical"), CANONICAL, ids=[r for r, _, _ in CANONICAL])
def test_rule_canonical(rule: str, raw: str, canonical: str) -> None:
    assert normalise_name(raw).canonical == canonical


KEYS = [
    # rule, canonical token, key
    ("D1 kh", "KHAIRUL", "HAIRUL"),
    ("D1 kh inside", "AKHMAD", "AHMAD"),
    ("D2 sy", "AISYAH", "AISA"),
    ("D2 sy only before a vowel", "DESSY", "DESI"),
    ("D2 sy before a consonant", "SYLVIA", "SILPIA"),
    ("D2 dz", "DZULKIFLI", "ZULKIPLI"),
    ("D2 ts", "TSANI", "SANI"),
    ("D2 q", "TAUFIQ", "TAUPIK"),
    ("D2 x", "ALEXANDER", "ALEKSANDER"),
    ("D3 dh", "RAMADHAN", "RAMADAN"),
    ("D3 bh", "BHAKTI", "BAKTI"),
    ("D3 gh", "GHANI", "GANI"),
    ("D3 th", "THORIQ", "TORIK"),
    ("D4 f", "SOFYAN", "SOPIAN"),
    ("D4 v", "NOVI", "NOPI"),
    ("D5 doubles", "MUHAMMAD", "MUHAMAD"),
    ("D5 doubles rr", "NURROHMAN", "NUROHMAN"),
    ("D6 final y", "HENDRY", "HENDRI"),
    ("D6 y after a consonant", "TYAS", "TIAS"),
    ("D6 initial y stays", "YUSUF", "YUSUP"),
    ("D6 ae", "ZAENAL", "ZAINAL"),
    ("D7 final h", "AMINAH", "AMINA"),
    ("D7 final h after i", "NINGSIH", "NINGSI"),
    ("D7 LUH keeps its h", "LUH", "LUH"),
    ("D7 short tokens keep h", "NUH", "NUH"),
]


@pytest.mark.parametrize(("rule", "token", "key"), KEYS, ids=[r for r, _, _ in KEYS])
def test_rule_key(rule: str, token: str, key: str) -> None:
    assert token_key(token) == key


def test_c7_ch_kh_and_h_spellings_share_a_key() -> None:
    # C7 chooses the display form only: D1 (kh→h) gives the old ch, the kh and the h spelling one key.
    for spellings in [
        ("Rachman", "Rakhman", "Rahman"),
        ("Machmud", "Makhmud", "Mahmud"),
        ("Bacharuddin", "Bakharuddin", "Baharuddin"),
        ("Chairul", "Khairul", "Hairul"),
        ("Fachri", "Fakhri", "Fahri"),
    ]:
        keys = {name_key(normalise_name(s)) for s in spellings}
        assert len(keys) == 1, (spellings, keys)


def test_golden_binti_cases_are_women() -> None:
    # binti is "daughter of"; a man is bin. H. (Haji) and KH are men's titles (a woman is Hj.).
    daughter_of = re.compile(r"\b(?:binti|bt|bte|binte)\b", re.IGNORECASE)
    written = [(c.id, side) for c in VARIANTS + DISTINCT for side in (c.left, c.right)]
    written += [("SPLIT", raw) for raw, *_ in SPLIT]
    sides = [(where, side) for where, side in written if daughter_of.search(side)]
    assert sides, "no binti case to check"
    assert [i for i, side in sides if {"H", "KH"} & set(normalise_name(side).titles)] == []


def test_d4_merges_f_and_p_at_key_level_only() -> None:
    fina, pina = normalise_name("Fina"), normalise_name("Pina")
    assert fina.keys == pina.keys
    assert fina.canonical != pina.canonical


def test_gendered_pairs_keep_distinct_keys() -> None:
    for a, b in [("SAPUTRA", "SAPUTRI"), ("WAHYUDI", "WAHYUNI"), ("DEWI", "DEWA"), ("HENDRA", "HENDRI")]:
        assert token_key(a) != token_key(b)


def test_name_key_joins_tokens_and_assimilates_abdul() -> None:
    assert name_key(normalise_name("Nur Hayati")) == name_key(normalise_name("Nurhayati"))
    assert name_key(normalise_name("Abdul Rahman")) == name_key(normalise_name("Abdurrahman"))
    assert name_key(normalise_name("Abdul Salam")) == name_key(normalise_name("Abdussalam"))
    assert name_key(normalise_name("Abdul Kadir")) != name_key(normalise_name("Abdukadir"))
    assert name_key(normalise_name("")) == ""


def test_empty_and_none() -> None:
    for raw in (None, "", "   ", "...", "123", ", S.Pd."):
        n = normalise_name(raw)
        assert n.canonical == "" and n.tokens == () and n.keys == ()
    assert normalise_name(", S.Pd.").degrees == ("SPD",)


def test_steps_name_the_stages() -> None:
    assert STEPS[0] == "clean"
    assert set(STEPS) == {"clean", "titles", "degrees", "patronym", "particles", "gender_marker", "lexicon", "eyd"}


# --- properties ---------------------------------------------------------------------------------

# Tokens that drive the parse: titles, degrees, particles, birth order, old spellings, initials.
_PIECES = (
    "H. Hj. KH K.H. Haji Hadji Drs. Dr. Ir. Prof. R. Raden Mas R.A. Tgk. Cut Tjoet Ida Bagus Anak Agung A.A. "
    "I Ni Luh Wayan Made Njoman Gusti bin binti bt br. boru St. St ST SE S.Pd. S.E. MA M.M. SH MH A.Md.Kep. "
    "M. Moch. Muh. Abd. Abdoel Noer Jusuf Achmad Soekarno Djoko Tjahjo Sjahrir Soenjoto Chandra Noel Habibie "
    "Sanjaya Joko Siti Aminah Nur Hayati Fatimah Dessy DDJ TDJ NDJ SSJ Shoem Boroe Bintie"
).split()
_SEPARATORS = st.sampled_from([" ", "  ", ", ", ",", ".", "-", "'", " . "])
name_like = st.lists(
    st.one_of(st.sampled_from(_PIECES), st.text(alphabet="ABCDEHIJKNOSTUYabcdehijknostuy.'", max_size=8)),
    max_size=7,
).flatmap(
    lambda words: st.lists(_SEPARATORS, min_size=len(words), max_size=len(words)).map(
        lambda seps: "".join(w + s for w, s in zip(words, seps, strict=True))
    )
)
# Any Unicode, lone surrogates included (they reach us from badly decoded extracts).
any_text = st.one_of(
    st.text(st.characters(codec=None, exclude_categories=())), st.text(alphabet=string.printable), name_like
)
CANONICAL_FORM = re.compile(r"(?:[A-Z]+(?: [A-Z]+)*)?")


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.none(), any_text))
@example("A SE BIN X")
@example("DDJ TDJ")
@example("A SHOEM")
@example("Ma´ruf")
def test_total_and_well_formed(raw: str | None) -> None:
    n = normalise_name(raw)
    assert isinstance(n, NameParts)
    assert CANONICAL_FORM.fullmatch(n.canonical), n
    assert n.tokens == tuple(n.canonical.split())
    assert n.concat == n.canonical.replace(" ", "")
    assert len(n.keys) == len(n.tokens)
    assert all(k.isascii() and k.isalpha() and k.isupper() for k in n.keys)


@settings(max_examples=600, deadline=None)
@given(any_text)
@example("A SE BIN X")
@example("DDJ")
@example("SSJ A")
@example("H. Boroe Bintie")
@example("USTADZ.I, MFARM, br.,MADE I. ")  # dropping BR put I before MADE
@example("Abd. SS.KH. SH-BR. MA, ")  # dropping BR brought SH MA to the end
@example("I Gusti Ni Luh Ayu")  # a second gender marker
def test_idempotent(raw: str) -> None:
    n = normalise_name(raw)
    again = normalise_name(n.canonical)
    assert again.canonical == n.canonical
    assert again.keys == n.keys
    assert name_key(again) == name_key(n)
