"""The independent generator (benchmarks/independent.py): determinism, shape, truth and the four hard kinds."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from benchmarks import independent as ind

ROWS = 20_000
FILES = ("applications.parquet", "truth.parquet", "relatives.parquet")
# §3.1: province codes of the Kemendagri list.
PROVINCES = {11, 12, 13, 14, 15, 16, 17, 18, 19, 21, *range(31, 37), *range(51, 54), *range(61, 66),
             *range(71, 77), 81, 82, *range(91, 97)}  # fmt: skip
# Variants that change the NIK on a record away from the person's own, well-formed NIK.
NIK_FAULTS = {"nik_transposed", "nik_ocr", "nik_short", "nik_excel", "nik_missing"}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("ind")
    summary = ind.generate(ROWS, 11, out)
    app = pq.read_table(out / "applications.parquet")
    truth = pq.read_table(out / "truth.parquet")
    rel = pq.read_table(out / "relatives.parquet")
    return {"summary": summary, "app": app, "truth": truth, "rel": rel,
            "a": app.to_pylist(), "t": truth.to_pylist(), "r": rel.to_pylist()}  # fmt: skip


def test_same_seed_same_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    ind.main(["--rows", "1500", "--seed", "5", "--out", str(tmp_path / "a")])
    ind.generate(1500, 5, tmp_path / "b")
    ind.generate(1500, 6, tmp_path / "c")
    for f in FILES:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert (tmp_path / "a" / FILES[0]).read_bytes() != (tmp_path / "c" / FILES[0]).read_bytes()


def test_columns_and_types(data: dict) -> None:
    app, truth, rel = data["app"], data["truth"], data["rel"]
    assert tuple(app.column_names) == (
        "record_id", "office", "application_date", "full_name", "sex", "birth_date", "birth_place", "nik",
        "mother_name", "address", "phone", "prior_passport_no", "decision", "decision_reason", "postcode",
        "locality", "region",
    )  # fmt: skip
    assert all(str(t) == "string" for t in app.schema.types)
    for c in ("postcode", "locality", "region"):
        assert app.column(c).null_count == app.num_rows
    assert tuple(truth.column_names) == ("record_id", "person_id", "kind", "seq", "prev_record_id", "variants", "tags")
    assert {n: str(t) for n, t in zip(truth.column_names, truth.schema.types, strict=True)}["seq"] == "int64"
    assert all(str(t) == "string" for n, t in zip(truth.column_names, truth.schema.types, strict=True) if n != "seq")
    assert tuple(rel.column_names) == ("person_id_a", "person_id_b", "relation")


def test_values_look_like_the_offices_wrote_them(data: dict) -> None:
    rows = data["a"]
    assert {r["decision"] for r in rows} == {"issued", "rejected", "postponed", "cancelled", "pending"}
    offices = {r["office"] for r in rows}
    assert len(offices) == 3
    assert any("Bandar Lampung" in o for o in offices) and any("otabumi" in o for o in offices)
    assert any("ALIANDA" in o.upper() for o in offices)
    years = [int(m.group(0)) for r in rows for m in [re.search(r"20\d\d", r["application_date"])]]
    assert min(years) >= 2022 and max(years) <= 2025
    styles = {re.sub(r"\d", "9", r["application_date"]) for r in rows}
    assert {"9999-99-99", "99-99-9999", "99/99/9999"} <= styles
    assert any(re.fullmatch(r"\d{1,2} [A-Z][a-z]+ \d{4}", r["application_date"]) for r in rows)
    assert {"L", "P"} <= {r["sex"] for r in rows}
    assert all(r["full_name"] for r in rows)


def test_counts_reconcile(data: dict) -> None:
    summary, a, t, r = data["summary"], data["a"], data["t"], data["r"]
    assert summary["rows"] == len(a) == len(t) == ROWS
    ids = [x["record_id"] for x in a]
    assert len(set(ids)) == ROWS
    assert {x["record_id"] for x in t} == set(ids)
    assert sum(summary["kinds"].values()) == ROWS
    assert set(summary["kinds"]) <= set(ind.KINDS)
    assert summary["persons"] == len({x["person_id"] for x in t})
    # Each person's records are numbered 1..n in date order; a follow-up points at the earlier record it
    # was made from (the refusal, the postponement, the duplicated or renewed application).
    by_id = {x["record_id"]: x for x in t}
    per_person: dict[str, list[int]] = defaultdict(list)
    for x in t:
        per_person[x["person_id"]].append(x["seq"])
        if x["kind"] == "original":
            assert x["prev_record_id"] is None and x["seq"] == 1
        else:
            prev = by_id[x["prev_record_id"]]
            assert prev["person_id"] == x["person_id"] and prev["seq"] < x["seq"]
    assert all(sorted(s) == list(range(1, len(s) + 1)) for s in per_person.values())
    # Relatives: both people exist, a < b, and the tags say the same as the pairs.
    persons = set(per_person)
    tags = {x["person_id"]: set(filter(None, x["tags"].split(";"))) for x in t}
    for x in r:
        assert x["person_id_a"] < x["person_id_b"] and x["relation"] in ("sibling", "twin")
        assert {x["person_id_a"], x["person_id_b"]} <= persons
        assert x["relation"] in tags[x["person_id_a"]] and x["relation"] in tags[x["person_id_b"]]
    in_pairs = {rel: {p for x in r if x["relation"] == rel for p in (x["person_id_a"], x["person_id_b"])}
                for rel in ("sibling", "twin")}  # fmt: skip
    for rel in ("sibling", "twin"):
        assert {p for p, s in tags.items() if rel in s} == in_pairs[rel]
    assert summary["relatives"] == len(r)


def _share(t: list[dict], variant: str) -> float:
    return sum(variant in x["variants"].split(";") for x in t) / len(t)


def test_four_kinds_at_the_documented_rates(data: dict) -> None:
    t, summary = data["t"], data["summary"]
    persons = summary["persons"]
    # Rates argued in the module docstring; bounds wide enough for sampling noise at 20k rows.
    assert 0.008 <= _share(t, "second_identity") <= 0.03
    assert 0.002 <= _share(t, "relative_nik") <= 0.012
    assert 0.01 <= _share(t, "heavy_variant") <= 0.035
    assert 0.008 <= summary["twin_persons"] / persons <= 0.03
    assert 0.08 <= summary["sibling_persons"] / persons <= 0.2
    assert summary["second_identity"] == round(_share(t, "second_identity") * ROWS)


def _digits(nik: str | None) -> str | None:
    d = re.sub(r"[ .\-']", "", nik or "")
    return d if re.fullmatch(r"\d{16}", d) else None


def test_kind_1_a_second_identity_comes_after_a_refusal_at_another_office(data: dict) -> None:
    a = {x["record_id"]: x for x in data["a"]}
    t = {x["record_id"]: x for x in data["t"]}
    firsts = [x for x in t.values() if x["kind"] == "reapply_after_refusal" and "second_identity" in x["variants"]]
    assert firsts
    for x in firsts:
        prev = a[x["prev_record_id"]]
        assert prev["decision"] == "rejected"
        assert prev["office"] != a[x["record_id"]]["office"]
        own, second = _digits(prev["nik"]), _digits(a[x["record_id"]]["nik"])
        if own and second and not NIK_FAULTS & set(t[prev["record_id"]]["variants"].split(";")):
            assert own[:4] != second[:4]  # another regency or province
    # Every re-application after a refusal goes to another office.
    for x in t.values():
        if x["kind"] == "reapply_after_refusal":
            assert a[x["prev_record_id"]]["office"] != a[x["record_id"]]["office"]


def test_kind_2_and_3_relatives_share_region_and_a_borrowed_nik_is_a_relatives(data: dict) -> None:
    a = {x["record_id"]: x for x in data["a"]}
    t = data["t"]
    clean_nik: dict[str, str] = {}
    for x in t:
        v = set(x["variants"].split(";"))
        nik = _digits(a[x["record_id"]]["nik"])
        if nik and not v & (NIK_FAULTS | {"second_identity", "relative_nik", "heavy_variant"}):
            clean_nik.setdefault(x["person_id"], nik)
    twins = [x for x in data["r"] if x["relation"] == "twin"]
    consecutive = checked = 0
    for x in twins:
        na, nb = clean_nik.get(x["person_id_a"]), clean_nik.get(x["person_id_b"])
        if na and nb:
            checked += 1
            assert na[:6] == nb[:6]  # one family card, one region
            consecutive += abs(int(na[12:]) - int(nb[12:])) == 1
    assert checked and consecutive / checked >= 0.5
    relatives = defaultdict(set)
    for x in data["r"]:
        relatives[x["person_id_a"]].add(x["person_id_b"])
        relatives[x["person_id_b"]].add(x["person_id_a"])
    borrowed = [x for x in t if "relative_nik" in x["variants"].split(";")]
    assert borrowed
    matched = comparable = 0
    for x in borrowed:
        nik = _digits(a[x["record_id"]]["nik"])
        if nik and not NIK_FAULTS & set(x["variants"].split(";")):
            own = clean_nik.get(x["person_id"])
            assert own != nik  # not the borrower's own NIK
            known = [clean_nik[r] for r in relatives[x["person_id"]] if r in clean_nik]
            comparable += bool(known)
            matched += nik in known
    # A relative's own record can carry a typed fault or a heavy variant: most, not all, are comparable.
    assert comparable and matched / comparable >= 0.8


def test_well_formed_niks_follow_the_structure(data: dict) -> None:
    checked = 0
    for x, y in zip(data["a"], data["t"], strict=True):
        nik = _digits(x["nik"])
        if not nik or NIK_FAULTS & set(y["variants"].split(";")):
            continue
        checked += 1
        assert int(nik[:2]) in PROVINCES
        kab, kec = int(nik[2:4]), int(nik[4:6])
        assert (1 <= kab <= 69 or 71 <= kab <= 99) and kec != 0
        day = int(nik[6:8])
        assert 1 <= day <= 31 or 41 <= day <= 71
        date(2000 + int(nik[10:12]), int(nik[8:10]), day - 40 if day > 40 else day)  # a real date
        assert nik[12:] != "0000"
        sex = x["sex"]
        plain = not {"second_identity", "relative_nik", "heavy_variant", "sex_wrong"} & set(y["variants"].split(";"))
        if plain and sex in ("L", "P"):
            assert (day > 40) == (sex == "P")  # women's day + 40
    assert checked > ROWS * 0.85


MONTHS = {m: i + 1 for i, m in enumerate(ind.MONTHS)} | {m: i + 1 for i, m in enumerate(ind.MONTHS_SHORT)}


def _parse(text: str | None) -> date | None:
    """The offices' date forms: ISO, DD-MM-YYYY, DD/MM/YYYY, D/M/YYYY, D Bulan YYYY, DD Bln YYYY."""
    if not text:
        return None
    if m := re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)", text):
        return date(int(m[1]), int(m[2]), int(m[3]))
    if m := re.fullmatch(r"(\d{1,2})[-/](\d{1,2})[-/](\d{4})", text):
        return date(int(m[3]), int(m[2]), int(m[1]))
    m = re.fullmatch(r"(\d{1,2}) ([A-Za-z]+) (\d{4})", text)
    assert m, text
    return date(int(m[3]), MONTHS[m[2]], int(m[1]))


def _nik_date(nik: str) -> tuple[int, int, int, str]:
    day = int(nik[6:8])
    return (day - 40 if day > 40 else day, int(nik[8:10]), int(nik[10:12]), "P" if day > 40 else "L")


def test_every_date_is_in_an_office_form_and_the_nik_encodes_the_birth_date(data: dict) -> None:
    agree = 0
    for x, y in zip(data["a"], data["t"], strict=True):
        applied = _parse(x["application_date"])
        birth = _parse(x["birth_date"])
        nik = _digits(x["nik"])
        v = set(y["variants"].split(";"))
        if birth and not any(k.startswith("dob_") for k in v):
            assert applied > birth, x["record_id"]  # nobody applies before being born
        if not birth or not nik or v & (NIK_FAULTS | {"second_identity", "relative_nik", "heavy_variant"}):
            continue
        if "nik_dob_mismatch" in y["tags"] or "dob_swapped" in v:
            continue
        assert _nik_date(nik)[:3] == (birth.day, birth.month, birth.year % 100), (x["record_id"], x["birth_date"])
        agree += 1
    assert agree > ROWS * 0.8


def test_kind_3_the_borrowed_nik_contradicts_the_record(data: dict) -> None:
    checked = 0
    for x, y in zip(data["a"], data["t"], strict=True):
        v = set(y["variants"].split(";"))
        birth, nik = _parse(x["birth_date"]), _digits(x["nik"])
        if "relative_nik" in v and birth and nik and not v & NIK_FAULTS:
            checked += 1
            assert _nik_date(nik)[:3] != (birth.day, birth.month, birth.year % 100)
    assert checked


def test_kind_4_some_new_niks_encode_the_same_birth_date_and_sex(data: dict) -> None:
    same = [y for y in data["t"] if "nik_new_same_date" in y["variants"].split(";")]
    shifted = {
        k: sum(k in y["variants"].split(";") for y in data["t"]) for k in ("dob_day", "dob_year", "dob_placeholder")
    }
    assert same and all(shifted.values())
    assert all("heavy_variant" in y["variants"] for y in same)


def test_clerk_spelling_habits_appear(data: dict) -> None:
    names = [x["full_name"].upper() for x in data["a"]]
    joined = "\n".join(names)
    for old in ("OE", "DJ", "TJ"):  # pre-1972 spelling (§1.1)
        assert old in joined, old
    for form in ("M. ", "MOCH. ", "MOH. ", "MUHAMAD ", "MUHAMMAD "):  # §1.4 B
        assert any(n.startswith(form) or f" {form}" in n for n in names), form
    assert " BIN " in joined and " BINTI " in joined
    assert any(n.startswith(("H. ", "HJ. ")) for n in names) and ", S." in joined
    niks = [x["nik"] for x in data["a"] if x["nik"]]
    assert any(" " in n for n in niks) and any("E+" in n for n in niks)
    assert any(len(n) == 15 and n.isdigit() for n in niks)
