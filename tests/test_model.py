"""Every comparison level of configs/model.toml on literal pairs of raw records.

Each case is two applications as an office would write them and the level they must reach, by
label. The records go through the real normalisation and the real model input (MODEL_INPUT); the
levels are evaluated in order as Splink does (first true condition wins).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage import model, prepare, train
from linkage.normalise import COLUMNS, normalise_batch
from linkage.schema import ROLES
from linkage.spec import ModelSpec, load_spec
from linkage.store import Store
from linkage.tables import arrow_table

SPEC = load_spec()
BASE = {"record_id": "", "full_name": "Siti Aminah", "birth_date": "05-08-1990", "sex": "P"}
# The population the pair is scored in: the name levels read how common each name token is, so these
# names are common (20 records each) and any other token in a case is rare (its own records only).
COMMON = ["Rini Saputri", "Rina Saputri", "Agus Saputra", "Agus Saputri", "Wahyudi Santoso", "Wahyuni Santoso", "Siti"]
BACKGROUND = [{"full_name": name, "record_id": f"bg{i}-{n}"} for i, name in enumerate(COMMON) for n in range(20)]


def _pair(left: dict[str, Any], right: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    """The model input of records a (BASE with ``left``) and b (BASE with ``right``) among the background."""
    rows = [{**BASE, **left, "record_id": "a"}, {**BASE, **right, "record_id": "b"}, *BACKGROUND]
    raw = {role: [r.get(role) for r in rows] for role in ROLES}
    out = normalise_batch(raw, today=dt.date(2026, 11, 28))
    con = duckdb.connect()
    con.register("incoming", arrow_table(out.columns, COLUMNS))
    con.execute("CREATE TABLE applications_normalised AS SELECT * FROM incoming")
    prepare.prepare_full(Store.on(con), SPEC)
    return con


def _level_index(con: duckdb.DuckDBPyConnection, comparison: str) -> int:
    spec = next(c for c in SPEC.comparison if c.name == comparison)
    for k, lvl in enumerate(spec.levels):
        if lvl.else_:
            return k
        # the spec's conditions are written on the sides l and r, as in blocking rules
        found = con.execute(
            f"""SELECT {lvl.sql} FROM (SELECT * FROM model_input WHERE record_id = 'a') AS l
                CROSS JOIN (SELECT * FROM model_input WHERE record_id = 'b') AS r"""
        ).fetchall()[0][0]
        if found:
            return k
    raise AssertionError("no else level")


def level(comparison: str, left: dict[str, Any], right: dict[str, Any]) -> str:
    spec = next(c for c in SPEC.comparison if c.name == comparison)
    return spec.levels[_level_index(_pair(left, right), comparison)].label


def vetoed(left: dict[str, Any], right: dict[str, Any]) -> bool:
    """The spec's veto on the pair, its gammas numbered as Splink numbers them: the null level -1, the
    other levels from the bottom (the else level 0) up."""
    con = _pair(left, right)
    gammas = {}
    for comp in SPEC.comparison:
        k = _level_index(con, comp.name)
        gammas[f"gamma_{comp.name}"] = -1 if comp.levels[k].null else len(comp.levels) - 1 - k
    assert SPEC.veto is not None
    select = ", ".join(f"{g}::INTEGER AS {name}" for name, g in gammas.items())
    return bool(con.execute(f"SELECT {SPEC.veto.sql} FROM (SELECT {select})").fetchall()[0][0])


NIK_ONE_EDIT = "one digit changed, added, dropped or two swapped, not in the serial of two valid NIKs"
NIK_CONTRADICTS = "exact, but it contradicts one record's own birth date or sex"
CONTACT_NO_PHONE = "address differs, no phone to compare"
CONTACT_MOVED_WITH_NIK = "differs, beside NIKs of two regencies (one move)"
SEX_MISENTERED = "written sexes differ, two NIKs encode one"
NAME_DROPPED = "token dropped, added or an initial"
NIK_TWIN = "same region and date, other serial (a twin's pattern)"
NIK_SIBLING = "same regency, other district or date (a sibling's or a neighbour's)"
NIK_ELSEWHERE = "another regency or province"
NIK_SAME_DATE = "written dates differ, the two NIKs encode the same date and sex"

CASES = [
    ("name", {"full_name": None}, {}, "null"),
    ("name", {"full_name": "Hj. Siti Aminah"}, {"full_name": "SITI AMINAH"}, "exact"),
    ("name", {"full_name": "Nur Hayati"}, {"full_name": "Nurhayati"}, "same key (spelling, spaces)"),
    ("name", {"full_name": "Aminah Siti"}, {"full_name": "Siti Aminah"}, "same tokens, other order"),
    ("name", {"full_name": "M. Rizki"}, {"full_name": "Muhammad Rizki"}, "token dropped, added or an initial"),
    # each writes another token as an initial; an old-spelling initial J for today's Y; Y is an initial too
    ("name", {"full_name": "M. Wahyudi Maheswara"}, {"full_name": "Mochamad W. Maheswara"}, NAME_DROPPED),
    ("name", {"full_name": "Sri Yanti"}, {"full_name": "Sri J."}, NAME_DROPPED),
    ("name", {"full_name": "Yahya Rudi"}, {"full_name": "Y. Rudi"}, NAME_DROPPED),
    # initials alone on both sides share no token: not this level
    ("name", {"full_name": "Hamima F."}, {"full_name": "H. Farhunisa"}, "different"),
    (
        "name",
        {"full_name": "Rizki Saputra Pratama"},
        {"full_name": "Rizki Saputra"},
        "token dropped, added or an initial",
    ),
    ("name", {"full_name": "Rizki Setiawan"}, {"full_name": "Rizki Setiwan"}, "one token with a typo"),
    # a rare spelling one edit from a common name, at either end of the token
    ("name", {"full_name": "Situ Aminah"}, {"full_name": "Siti Aminah"}, "one token with a typo"),
    ("name", {"full_name": "Witi Aminah"}, {"full_name": "Siti Aminah"}, "one token with a typo"),
    # two tokens of one name cannot both stand for one token of the other (two sisters): not a typo
    ("name", {"full_name": "Skti Titi Santoso"}, {"full_name": "Siti Zulaika Santoso"},
     "tokens dropped, added or joined, with a typo"),
    # variants together: a token added and another misspelt; two tokens written as one
    (
        "name",
        {"full_name": "Karen Prastuti"},
        {"full_name": "Karen Maryam Pranstuti"},
        "tokens dropped, added or joined, with a typo",
    ),
    (
        "name",
        {"full_name": "Srijulia"},
        {"full_name": "Sri Julia Farida"},
        "tokens dropped, added or joined, with a typo",
    ),
    # a typo one edit away in the keys, two as written (the keys spell Muhammad as MUHAMAD)
    ("name", {"full_name": "Uhamad Gadang"}, {"full_name": "Muhammad Gadang"}, "one token with a typo"),
    # two tokens written together on one side, and a token added
    (
        "name",
        {"full_name": "Siti Effendi"},
        {"full_name": "Sitieffendi Lestari"},
        "tokens dropped, added or joined, with a typo",
    ),
    # ... but not two common names one letter apart beside an added token (siblings)
    ("name", {"full_name": "Rina Saputri"}, {"full_name": "Rini Dewi Saputri"}, "different"),
    # two common names one letter apart are two people (twins, siblings), not a typo
    ("name", {"full_name": "Rini Saputri"}, {"full_name": "Rina Saputri"}, "similar (Jaro-Winkler ≥ 0.85)"),
    ("name", {"full_name": "Agus Saputra"}, {"full_name": "Agus Saputri"}, "similar (Jaro-Winkler ≥ 0.85)"),
    ("name", {"full_name": "Wahyudi Santoso"}, {"full_name": "Wahyuni Santoso"}, "similar (Jaro-Winkler ≥ 0.85)"),
    ("name", {"full_name": "Budi Santoso"}, {"full_name": "Dewi Lestari"}, "different"),
    ("nik", {"nik": None}, {"nik": "1871014508900001"}, "null"),
    ("nik", {"nik": "1871014508900001"}, {"nik": "18.7101.450890.0001"}, "exact"),
    # damerau_levenshtein <= 1: one digit changed, two neighbours swapped, and (on digit strings of
    # different lengths) one digit dropped or added, the last two also in the serial (one side is no NIK)
    ("nik", {"nik": "1871014508900001"}, {"nik": "1871014508900002"}, NIK_TWIN),
    ("nik", {"nik": "1871014508900001"}, {"nik": "1871014508900011"}, NIK_TWIN),
    ("nik", {"nik": "1871014508900001"}, {"nik": "187101450890001"}, NIK_ONE_EDIT),  # dropped (serial)
    ("nik", {"nik": "1871014508900001"}, {"nik": "187014508900001"}, NIK_ONE_EDIT),  # dropped (regency)
    ("nik", {"nik": "1871014508900001"}, {"nik": "18710145508900001"}, NIK_ONE_EDIT),  # added (birth day)
    ("nik", {"nik": "1871014508900001"}, {"nik": "18710145089000012"}, NIK_ONE_EDIT),  # added (at the end)
    ("nik", {"nik": "1871014508900001"}, {"nik": "187101450890000"}, NIK_ONE_EDIT),  # dropped (the last)
    # two edits apart: a digit dropped and another changed
    ("nik", {"nik": "1871014508900001"}, {"nik": "187101450890002"}, NIK_SIBLING),
    (
        "nik",
        {"nik": "1871014508900051"},
        {"nik": "1871014508900050"},
        "same region and date, other serial (a twin's pattern)",
    ),
    # What the NIK says about its holder (issue 12). BASE is a woman born 05-08-1990: the NIK 1871014508900001
    # encodes exactly that (day 05 + 40). A relative's NIK on a man born in 1995 contradicts his own record;
    # the same NIK contradicting both records alike (its date was wrong from the start) is still exact.
    (
        "nik",
        {"nik": "1871014508900001"},
        {"nik": "1871014508900001", "birth_date": "12-03-1995", "sex": "L"},
        NIK_CONTRADICTS,
    ),
    ("nik", {"nik": "1871014508900001"}, {"nik": "1871014508900001", "birth_date": "06-08-1990"}, NIK_CONTRADICTS),
    ("nik", {"nik": "1871015208900001"}, {"nik": "1871015208900001"}, "exact"),
    ("nik", {"nik": "1871014508900001"}, {"nik": "1871015203950002"}, NIK_SIBLING),  # one family, other date
    # a sister born a year later: the NIKs differ in one digit of the date, each NIK encodes its own record's date
    ("nik", {"nik": "1871014508900001"}, {"nik": "1871014508910001", "birth_date": "05-08-1991"}, NIK_SIBLING),
    # the same digit mistyped: the NIK contradicts the birth date written beside it
    ("nik", {"nik": "1871014508900001"}, {"nik": "1871014508910001"}, NIK_ONE_EDIT),
    # born the same day in the next district: serial 0001 in both, one digit of the district code apart
    ("nik", {"nik": "1871014508900001"}, {"nik": "1871024508900001"}, NIK_SIBLING),
    # ... but a district code mistyped into no district at all is a typo
    ("nik", {"nik": "1871014508900001"}, {"nik": "1871004508900001"}, NIK_ONE_EDIT),
    # ... and so is a regency code mistyped into another valid one (Kota Metro for Bandar Lampung)
    ("nik", {"nik": "1871014508900001"}, {"nik": "1872014508900001"}, NIK_ONE_EDIT),
    ("nik", {"nik": "1871014508900001"}, {"nik": "1802014508900001"}, NIK_ELSEWHERE),  # a second KTP
    ("nik", {"nik": "1871014508900001"}, {"nik": "3201014508900007"}, NIK_ELSEWHERE),  # another province
    ("dob", {"birth_date": None}, {}, "null"),
    ("dob", {"birth_date": "5 Agustus 1990"}, {"birth_date": "1990-08-05"}, "exact"),
    ("dob", {"birth_date": "08-05-1990"}, {}, "day and month swapped"),
    ("dob", {"birth_date": "05-08-1991"}, {}, "same day and month, year ± 1"),
    ("dob", {"birth_date": "15-08-1990"}, {}, "one digit off"),
    ("dob", {"birth_date": "01-01-1970"}, {}, "far apart"),
    ("dob", {"birth_date": "01-01-1990"}, {}, "one is 1 January, same year"),
    # two NIKs of other regions that encode one date and sex, where a written date is a placeholder ...
    ("dob", {"birth_date": "01-01-1990", "nik": "1871014508900001"}, {"nik": "1802014508900007"}, NIK_SAME_DATE),
    (
        "dob",
        {"birth_date": "05-08-1989", "nik": "1871014508900001"},
        {"nik": "1802014508900007"},
        "same day and month, year ± 1",
    ),
    # ... but one NIK on both records is not counted twice
    (
        "dob",
        {"birth_date": "01-01-1990", "nik": "1871014508900001"},
        {"nik": "1871014508900001"},
        "one is 1 January, same year",
    ),
    ("mother", {"mother_name": None}, {"mother_name": "Sumiati"}, "null"),
    ("mother", {"mother_name": "Sumiati"}, {"mother_name": "SUMIATI"}, "exact"),
    ("mother", {"mother_name": "Siti Fatimah"}, {"mother_name": "Fatimah Siti"}, "same key or tokens"),
    (
        "mother",
        {"mother_name": "Siti Fatimah Zahra"},
        {"mother_name": "Siti Fatimah"},
        "token dropped, added or an initial",
    ),
    ("mother", {"mother_name": "Sumiati"}, {"mother_name": "Sumiyatin"}, "similar (Jaro-Winkler ≥ 0.9)"),
    ("mother", {"mother_name": "Sumiati"}, {"mother_name": "Kartini"}, "different"),
    ("birth_place", {"birth_place": "B. Lampung"}, {"birth_place": "Bandar Lampung"}, "same place"),
    ("birth_place", {"birth_place": "Tanjungkarang"}, {"birth_place": "Kota Bandar Lampung"}, "same place"),
    ("birth_place", {"birth_place": "Natar"}, {"birth_place": "Kab. Lampung Selatan"}, "same regency"),
    ("birth_place", {"birth_place": "Metro"}, {"birth_place": "Palembang"}, "different"),
    ("sex", {"sex": "L"}, {"sex": "M"}, "same"),
    ("sex", {"sex": "L"}, {"sex": "Perempuan"}, "different"),
    ("sex", {"sex": None, "nik": "1871014508900001"}, {"sex": "P"}, "same"),  # the NIK's day + 40 says F
    # a man's sex on a record whose NIK, like the other record's, says a woman: the sex was mis-entered
    ("sex", {"sex": "L", "nik": "1871014508900001"}, {"nik": "1802034508900007"}, SEX_MISENTERED),
    # ... but a brother and a sister carry NIKs of two sexes: different
    ("sex", {"sex": "L", "nik": "1871010508900001"}, {"nik": "1871014508900002"}, "different"),
    ("contact", {"phone": "0812-3456-7890"}, {"phone": "+62 812 3456 7890"}, "same phone"),
    ("contact", {"phone": "0812-3456-7890"}, {"phone": "0813-3456-7890"}, "phone differs, no address to compare"),
    ("contact", {"phone": "0812-3456-7890", "address": "Jl. Kartini RT 003/RW 005 Kel. Palapa"},
     {"phone": "+62 812 3456 7890", "address": "Gg. Mawar RT.03 RW.05 Kelurahan Palapa"}, "same phone and household"),
    ("contact", {"phone": "0812-3456-7890", "address": "Jl. Kartini 5 Kel. Palapa"},
     {"phone": "0813-3456-7890", "address": "Desa Sukamaju"}, "both differ (moved)"),
    (
        "contact",
        {"address": "Jl. Kartini No. 5 RT 003/RW 005 Kel. Palapa"},
        {"address": "Gg. Mawar RT.03 RW.05 Kelurahan Palapa"},
        "same household (village, RT and RW)",
    ),
    (
        "contact",
        {"address": "Jl. Kartini RT 003/RW 005 Kel. Palapa"},
        {"address": "Jl. Sudirman RT 7 RW 1 Kel. Palapa"},
        "same village",
    ),
    (
        "contact",
        {"address": "Jalan Kartini Nomor 5"},
        {"address": "Jln Kartini No 5"},
        "similar address text (Jaro-Winkler ≥ 0.9)",
    ),
    ("contact", {"address": "Jl. Kartini 5 Kel. Palapa"}, {"address": "Desa Sukamaju"}, CONTACT_NO_PHONE),
    # a second KTP after a move: the new address is part of the one event that the NIK's level counts
    ("contact", {"nik": "1871014508900001", "phone": "0812-3456-7890", "address": "Jl. Kartini 5 Kel. Palapa"},
     {"nik": "1802034508900007", "phone": "0813-3456-7890", "address": "Desa Sukamaju"}, CONTACT_MOVED_WITH_NIK),
    # ... but a move within the regency the NIKs share is still a move
    ("contact", {"nik": "1871014508900001", "phone": "0812-3456-7890", "address": "Jl. Kartini 5 Kel. Palapa"},
     {"nik": "1871034508900007", "phone": "0813-3456-7890", "address": "Desa Sukamaju"}, "both differ (moved)"),
    ("prior_passport", {"prior_passport_no": "b 123 4567"}, {"prior_passport_no": "B1234567"}, "same"),
    ("prior_passport", {"prior_passport_no": "B1234567"}, {"prior_passport_no": "B7654321"}, "different"),
    ("patronym", {"full_name": "Siti Aminah binti Sukardi"}, {"full_name": "Siti Aminah bt. Sukardi"}, "same"),
    ("patronym", {"full_name": "Siti Aminah binti Sukardi"}, {"full_name": "Siti Aminah binti Soekardi"}, "same"),
    (
        "patronym",
        {"full_name": "Siti Aminah binti Sukardi"},
        {"full_name": "Siti Aminah binti Sukarti"},
        "similar (Jaro-Winkler ≥ 0.9)",
    ),
    ("patronym", {"full_name": "Siti Aminah binti Sukardi"}, {"full_name": "Siti Aminah binti Ahmad"}, "different"),
    ("patronym", {"full_name": "Siti Aminah binti Sukardi"}, {}, "null"),
    ("birth_place", {"birth_place": "-"}, {"birth_place": "Metro"}, "null"),
    ("sex", {"sex": None}, {"sex": "L"}, "null"),
    ("contact", {"phone": "tidak ada"}, {"phone": "0812-3456-7890"}, "null"),
    ("contact", {"address": None}, {"address": "Desa Sukamaju"}, "null"),
    ("prior_passport", {"prior_passport_no": "-"}, {"prior_passport_no": "B1234567"}, "null"),
]


# The veto on literal pairs (issue 12). BASE: Siti Aminah, a woman born 05-08-1990; her NIK 1871014508900001.
MOTHER = {"mother_name": "Sumarni", "address": "Dusun Sidorejo RT 2/RW 4, Jabung"}
VETO_CASES = [
    # a twin sister: another given name, NIK of one region and date, serial next to hers
    pytest.param({**MOTHER, "nik": "1871014508900001"}, {**MOTHER, "full_name": "Rina Lestari",
                  "nik": "1871014508900002"}, True, id="twin-held"),
    # a second identity: a name respelt (only similar), a NIK of another regency, the same birth date
    pytest.param({**MOTHER, "nik": "1871014508900001"}, {**MOTHER, "full_name": "Siti Aminatun",
                  "nik": "1802034508900007"}, False, id="second-identity-released"),
    # a twin sister who holds a second KTP: a NIK of another regency, the same birth date, another name: held
    pytest.param({**MOTHER, "nik": "1871014508900001"}, {**MOTHER, "full_name": "Rina Lestari",
                  "nik": "1802034508900007"}, True, id="twin-with-a-second-ktp-held"),
    # a second identity with the sex mis-entered on it: both NIKs say a woman, so the sex does not hold it
    pytest.param({**MOTHER, "nik": "1871014508900001"}, {**MOTHER, "full_name": "Siti Aminatun", "sex": "L",
                  "nik": "1802034508900007"}, False, id="second-identity-sex-misentered-released"),
    # ... but a sister registered in another regency is born on another day: held
    pytest.param({**MOTHER, "nik": "1871014508900001"}, {**MOTHER, "full_name": "Rina Lestari",
                  "birth_date": "12-03-1994", "nik": "1802035203940001"}, True, id="sibling-elsewhere-held"),
    # a brother on her NIK: it contradicts his own birth date and sex, and the dates are far apart: held
    pytest.param({**MOTHER, "nik": "1871014508900001"}, {**MOTHER, "full_name": "Budi Santoso",
                  "birth_date": "12-03-1995", "sex": "L", "nik": "1871014508900001"}, True, id="relative-nik-held"),
    # a sister on her NIK mistyped by one digit: the name and the birth date both disagree, so it confirms nothing
    pytest.param({**MOTHER, "nik": "1871014508900001"}, {**MOTHER, "full_name": "Rina Lestari",
                  "birth_date": "12-03-1995", "nik": "1871014508960001"}, True, id="sister-on-a-mistyped-nik-held"),
    # her own NIK beside a birth date mistyped by a day and a name cut short: not held
    pytest.param({**MOTHER, "nik": "1871014508900001"}, {**MOTHER, "full_name": "Siti",
                  "birth_date": "06-08-1990", "nik": "1871014508900001"}, False, id="own-nik-typo-date"),
]  # fmt: skip


@pytest.mark.parametrize(("left", "right", "held"), VETO_CASES)
def test_veto_on_literal_pairs(left: dict[str, Any], right: dict[str, Any], held: bool) -> None:
    assert vetoed(left, right) is held


@pytest.mark.parametrize(("comparison", "left", "right", "expected"), CASES, ids=[f"{c[0]}:{c[3]}" for c in CASES])
def test_level(comparison: str, left: dict[str, Any], right: dict[str, Any], expected: str) -> None:
    assert level(comparison, left, right) == expected


def test_every_level_has_a_literal_case() -> None:
    covered = {(c[0], c[3]) for c in CASES}
    declared = {(c.name, lvl.label) for c in SPEC.comparison for lvl in c.levels}
    assert declared - covered == set()


def test_veto_and_spec_are_valid() -> None:
    assert SPEC.veto is not None and SPEC.veto.max_weight <= 0
    assert 0 < SPEC.review_floor <= SPEC.threshold < 1


# ------------------------------------------------------------------ cheap pre-conditions are exact
# Costly levels are written CASE WHEN cheap THEN costly ELSE false END so that DuckDB skips the edit
# distances for most pairs. The cheap part must hold wherever the costly one does, or the level loses
# pairs. Checked on random pairs, most of them one edit apart so that the costly part often holds.

GUARDED = re.compile(r"CASE WHEN (?P<cheap>.+?) THEN (?P<costly>.+?) ELSE false END")


def guarded(comparison: str, label: str) -> tuple[str, str]:
    spec = next(c for c in SPEC.comparison if c.name == comparison)
    sql = next(lvl.sql for lvl in spec.levels if lvl.label == label)
    found = GUARDED.search(sql or "")
    assert found, f"{comparison}/{label} is not guarded"
    return found["cheap"], found["costly"]


def one_edit(draw: Any, text: str, alphabet: str) -> str:
    if not text:
        return draw(st.sampled_from(alphabet))
    i = draw(st.integers(0, len(text) - 1))
    kind = draw(st.sampled_from(["sub", "swap", "del", "ins", "same"]))
    c = draw(st.sampled_from(alphabet))
    if kind == "sub":
        return text[:i] + c + text[i + 1 :]
    if kind == "swap" and i + 1 < len(text):
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if kind == "del":
        return text[:i] + text[i + 1 :]
    if kind == "ins":
        return text[:i] + c + text[i:]
    return text


@st.composite
def nik_pairs(draw: Any) -> list[tuple[str, str]]:
    pairs = []
    for _ in range(draw(st.integers(1, 60))):
        a = draw(st.text("0123456789", min_size=1, max_size=16))
        pairs.append(
            (a, one_edit(draw, a, "0123456789") if draw(st.booleans()) else draw(st.text("0123", max_size=16)))
        )
    return [(a, b) for a, b in pairs if a and b]


def violations(cheap: str, costly: str, left: dict[str, list[Any]], right: dict[str, list[Any]]) -> list[Any]:
    con = duckdb.connect()
    con.execute(prepare.MACROS)
    con.register("lt", pa.table({"i": range(len(next(iter(left.values())))), **left}))
    con.register("rt", pa.table({"i": range(len(next(iter(right.values())))), **right}))
    return con.execute(f"SELECT l.*, r.* FROM lt l JOIN rt r USING (i) WHERE ({costly}) AND NOT ({cheap})").fetchall()


@settings(max_examples=150, deadline=None)
@given(nik_pairs())
def test_nik_one_edit_guard_is_exact(pairs: list[tuple[str, str]]) -> None:
    cheap, costly = guarded("nik", NIK_ONE_EDIT)
    assert violations(cheap, costly, {"nik_digits": [a for a, _ in pairs]}, {"nik_digits": [b for _, b in pairs]}) == []


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.text("abeiknrsu", min_size=1, max_size=8), st.data()), min_size=1, max_size=60))
def test_name_typo_precondition_is_exact(drawn: list[tuple[str, Any]]) -> None:
    """The macro's cheap test (lengths, first or last letter) never hides a one-edit typo."""
    pairs = [(x, one_edit(data.draw, x, "abeiknrsu") or x, data.draw(st.integers(1, 60))) for x, data in drawn]
    con = duckdb.connect()
    con.execute(prepare.MACROS)
    con.register("p", pa.table({"x": [p[0] for p in pairs], "y": [p[1] for p in pairs], "n": [p[2] for p in pairs]}))
    reference = (
        "length(x) >= 3 AND damerau_levenshtein(x, y) = 1"
        " AND (least(n, 40) <= 3 OR greatest(n, 40) >= 20 * least(n, 40))"
    )
    assert con.execute(f"SELECT x, y FROM p WHERE name_typo(x, y, n, 40) <> ({reference})").fetchall() == []


def tiny_spec(levels: list[dict[str, Any]]) -> ModelSpec:
    comparison = {"name": "nik", "levels": levels}
    rules = ["l.nik_digits = r.nik_digits"]
    return ModelSpec(blocking=rules, deterministic=[], training=[], comparison=[comparison])


NIK_LEVELS = [
    {"label": "null", "sql": "l.nik_digits IS NULL OR r.nik_digits IS NULL", "null": True},
    {"label": "exact", "sql": "l.nik_digits = r.nik_digits"},
    {"label": "different", "else": True},
]


def test_exact_u_counts_pairs_of_equal_values_among_non_null_records() -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TEMP TABLE model_input AS "
        "SELECT * FROM (VALUES ('A'), ('A'), ('A'), ('B'), ('B'), ('C'), (NULL)) t(nik_digits)"
    )
    # six records not at the null level: 30 ordered pairs, of which A makes 3·2 and B 2·1 equal ones
    assert train.exact_u(Store.on(con), tiny_spec(NIK_LEVELS)) == {"nik": [8 / 30]}


def test_exact_u_counts_a_chain_of_nested_equalities_level_by_level() -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TEMP TABLE model_input AS SELECT * FROM (VALUES ('A', false), ('A', false), ('A', true), "
        "('B', false), ('B', false), ('C', false), (NULL, false)) t(nik_digits, nik_contradicts)"
    )
    consistent = {"label": "exact", "sql": "l.nik_digits = r.nik_digits AND l.nik_contradicts = r.nik_contradicts"}
    levels = [NIK_LEVELS[0], consistent, {"label": "exact, contradicting", "sql": "l.nik_digits = r.nik_digits"}]
    # 30 ordered pairs; equal and consistent: A-false 2·1 + B 2·1 = 4; equal on the NIK: 3·2 + 2·1 = 8, 4 more
    assert train.exact_u(Store.on(con), tiny_spec([*levels, NIK_LEVELS[2]])) == {"nik": [4 / 30, 4 / 30]}
    # a level that is not equal on fewer of the same columns ends the chain
    swapped = [NIK_LEVELS[0], levels[2], consistent, NIK_LEVELS[2]]
    assert train.exact_levels(tiny_spec(swapped)) == {"nik": (["nik_digits"], [["nik_digits"]])}


@pytest.mark.parametrize(
    "levels",
    [
        [NIK_LEVELS[0], {"label": "close", "sql": "levenshtein(l.nik_digits, r.nik_digits) <= 1"}, NIK_LEVELS[2]],
        [{"label": "null", "sql": "l.nik_digits IS NULL", "null": True}, *NIK_LEVELS[1:]],
        [NIK_LEVELS[0], {**NIK_LEVELS[1], "m": 0.9, "u": 0.001}, NIK_LEVELS[2]],
    ],
    ids=["not an equality", "null on one side only", "u fixed by the spec"],
)
def test_exact_u_leaves_levels_it_cannot_count_to_the_sample(levels: list[dict[str, Any]]) -> None:
    assert train.exact_levels(tiny_spec(levels)) == {}


def test_every_default_comparison_has_its_first_level_counted() -> None:
    # the default spec writes each null level and first level so that they can be counted, but for the
    # contact comparison: its null level reads two fields (the phone and the address)
    assert set(train.exact_levels(SPEC)) == {c.name for c in SPEC.comparison} - {"contact"}


# ---------------------------------------------------------------------------------------------------------
# Training never leaves a damaged model (linkage/train.py: train). On data without NIK the NIK training
# rule blocks no pairs; Splink's EM would take the NIK comparison out of the model and replace λ before
# it failed on it.


def sample_store(tmp_path: Path, *, birth_dates: bool) -> Path:
    """A store of 3,000 generated applications (data/sample) without NIK, and without birth dates if asked."""
    import pandas as pd

    from linkage.config import Config
    from linkage.pipeline import ingest

    frame = pd.read_parquet(Path(__file__).resolve().parents[1] / "data" / "sample" / "applications.parquet")
    frame = frame.head(3000).assign(nik=None)
    if not birth_dates:
        frame = frame.assign(birth_date=None)
    frame.to_parquet(tmp_path / "in.parquet")
    ingest([tmp_path / "in.parquet"], Config(), db=tmp_path / "store.duckdb", progress=None)
    return tmp_path / "store.duckdb"


def test_a_rule_without_pairs_is_skipped_and_the_model_keeps_every_comparison(tmp_path: Path, caplog) -> None:
    spec = SPEC.model_copy(update={"max_pairs_u": 50_000})
    with Store(sample_store(tmp_path, birth_dates=True)) as store:
        prepare.prepare_full(store, spec)
        assert train.training_pairs(store, spec.training[0]) == 0
        with caplog.at_level("WARNING", logger="linkage"):
            linker = train.train(store, spec)
        kept = [c.output_column_name for c in linker._settings_obj.comparisons]
        assert kept == [c.name for c in spec.comparison]
        lam = linker._settings_obj._probability_two_random_records_match
        fresh = model.linker_for(store, model.settings_for(spec))
        fresh.training.estimate_probability_two_random_records_match(list(spec.deterministic), recall=0.7)
        assert lam == pytest.approx(fresh._settings_obj._probability_two_random_records_match)
        # the check that holds it: a model without the NIK comparison, or with another λ, is refused
        from linkage.errors import ConfigError

        partial = spec.model_copy(update={"comparison": [c for c in spec.comparison if c.name != "nik"]})
        with pytest.raises(ConfigError, match=r"comparisons missing: \['nik'\]"):
            train.check_trained(model.linker_for(store, model.settings_for(partial)), spec, lam)
        with pytest.raises(ConfigError, match="training damaged the model"):
            train.check_trained(linker, spec, 0.999995)
    assert "training[0]" in caplog.text and "skipped" in caplog.text


def test_a_failed_em_rule_is_undone(tmp_path: Path) -> None:
    # not a rule of equalities, so not counted beforehand: EM runs and fails, and the model is restored
    rules = ["l.nik_digits = r.nik_digits AND l.nik IS NOT NULL", SPEC.training[1]]
    spec = SPEC.model_copy(update={"max_pairs_u": 50_000, "training": rules})
    with Store(sample_store(tmp_path, birth_dates=True)) as store:
        prepare.prepare_full(store, spec)
        assert train.training_pairs(store, rules[0]) is None
        linker = train.train(store, spec)
        assert [c.output_column_name for c in linker._settings_obj.comparisons] == [c.name for c in spec.comparison]


def test_no_runnable_training_rule_names_the_roles_the_rules_need(tmp_path: Path) -> None:
    from linkage.errors import ConfigError

    spec = SPEC.model_copy(update={"max_pairs_u": 50_000})
    with Store(sample_store(tmp_path, birth_dates=False)) as store:
        prepare.prepare_full(store, spec)
        with pytest.raises(ConfigError) as caught:
            train.train(store, spec)
    shown = str(caught.value)
    assert "training rule 'l.nik_digits = r.nik_digits' needs nik" in shown
    assert "birth_date or nik (dob_unordered)" in shown and "--spec" in shown


# Splink's EM does not estimate a comparison in a session whose training rule reads any of its columns
# (splink/internals/em_training_session.py). The NIK rule must leave every comparison but the NIK's to be
# estimated, and the name rule every one but the name's: a birth-date level that read nik_digits once left
# the birth date unestimated below its first two levels, on Splink's default m.
def test_each_training_rule_holds_back_only_its_own_comparison() -> None:
    from splink.internals.parse_sql import get_columns_used_from_sql

    comparisons = model.settings_for(SPEC).get_settings("duckdb").comparisons
    held_back = []
    for rule in SPEC.training:
        columns = set(get_columns_used_from_sql(rule, sqlglot_dialect="duckdb"))
        held_back.append(
            {c.output_column_name for c in comparisons
             if columns & {col.input_name for col in c._input_columns_used_by_case_statement}}
        )  # fmt: skip
    assert held_back == [{"nik"}, {"name"}]
