"""benchmarks/generate.py: seeded, chunk-deterministic, counts reconcile, every variant and hard negative appears."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from benchmarks import generate as gen
from linkage.dates import parse_date, parse_sex
from linkage.nik import parse_nik
from linkage.schema import ROLES

ROWS = 5000
CHUNK = 2500  # two chunks, so chunk seeding and id bases are exercised
TODAY = date(2026, 1, 1)  # after every generated date: two-digit years and NIK centuries resolve the same way


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    out = tmp_path_factory.mktemp("gen")
    summary = gen.generate(ROWS, 11, out, workers=1, chunk_rows=CHUNK, progress=False)
    apps = pd.read_parquet(out / "applications.parquet")
    truth = pd.read_parquet(out / "truth.parquet")
    relatives = pd.read_parquet(out / "relatives.parquet")
    return summary, apps, truth, relatives


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_same_seed_same_bytes_and_worker_count_does_not_matter(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    gen.generate(2000, 5, a, workers=1, chunk_rows=500, progress=False)
    gen.generate(2000, 5, b, workers=1, chunk_rows=500, progress=False)
    gen.generate(2000, 5, c, workers=2, chunk_rows=500, progress=False)
    assert _files(a) == _files(b)
    assert _files(a) == _files(c)


def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    gen.generate(500, 1, tmp_path / "a", workers=1, progress=False)
    gen.generate(500, 2, tmp_path / "b", workers=1, progress=False)
    a = pd.read_parquet(tmp_path / "a" / "applications.parquet")
    b = pd.read_parquet(tmp_path / "b" / "applications.parquet")
    assert not a["full_name"].equals(b["full_name"])


def test_schema_is_the_canonical_one_all_strings(sample) -> None:
    _, apps, _, _ = sample
    assert list(apps.columns) == list(ROLES)
    schema = pq.read_schema(Path(sample[0]["paths"]["applications"]))
    assert all(str(f.type) == "string" for f in schema)
    assert apps["record_id"].notna().all() and apps["full_name"].notna().all()
    assert set(apps["decision"]) == {"issued", "rejected", "postponed", "cancelled", "pending"}


def test_counts_reconcile(sample) -> None:
    summary, apps, truth, relatives = sample
    assert summary["rows"] == len(apps) == len(truth) == ROWS
    assert apps["record_id"].is_unique and truth["record_id"].is_unique
    assert set(apps["record_id"]) == set(truth["record_id"])
    assert summary["persons"] == truth["person_id"].nunique()
    assert summary["kinds"] == dict(Counter(truth["kind"]))
    assert summary["relatives"] == len(relatives)
    persons = set(truth["person_id"])
    assert set(relatives["person_id_a"]) <= persons and set(relatives["person_id_b"]) <= persons
    assert (relatives["person_id_a"] < relatives["person_id_b"]).all()
    assert not relatives.duplicated(["person_id_a", "person_id_b"]).any()
    prev = truth["prev_record_id"].dropna()
    assert set(prev) <= set(truth["record_id"])


def test_record_ids_and_persons_stay_in_their_chunk(sample) -> None:
    _, apps, truth, _ = sample
    parts = apps["record_id"].str.extract(r"^([A-Z]{3})-(\d{4})-(\d{8})$")
    assert parts.notna().all().all()
    assert set(parts[1].astype(int)) <= {2022, 2023, 2024, 2025}
    chunk_of_record = dict(zip(apps["record_id"], parts[2].astype(int) // CHUNK, strict=True))
    chunk_of_person = truth["person_id"].str.slice(1, 6).astype(int)
    assert (truth["record_id"].map(chunk_of_record) == chunk_of_person).all()
    # shuffled: a person's records are not laid out next to each other
    first_two = truth[truth["person_id"].duplicated(keep=False)].groupby("person_id").head(2)
    positions = first_two.index.to_series().groupby(first_two["person_id"]).diff().dropna()
    assert (positions > 1).mean() > 0.9


def test_every_kind_variant_and_tag_appears(sample) -> None:
    _, _, truth, relatives = sample
    assert set(truth["kind"]) == set(gen.KINDS)
    seen = Counter(v for s in truth["variants"] for v in s.split(";") if v)
    missing = [v for v in (*gen.NAME_VARIANTS, *gen.FIELD_VARIANTS) if not seen[v]]
    assert not missing, f"never generated: {missing}"
    tags = Counter(t for s in truth.drop_duplicates("person_id")["tags"] for t in s.split(";") if t)
    assert not [t for t in gen.PERSON_TAGS if not tags[t]]
    assert set(relatives["relation"]) == {"sibling", "twin"}
    assert (truth["seq"] == 0).sum() == truth["person_id"].nunique()


def test_refused_applicants_reapply_at_another_office(sample) -> None:
    _, apps, truth, _ = sample
    rows = truth.merge(apps, on="record_id")
    by_id = rows.set_index("record_id")
    re_ = rows[rows["kind"] == "reapply_after_refusal"]
    assert len(re_) > 200
    before = by_id.loc[re_["prev_record_id"]]
    refused = (before["decision"] == "rejected") | (
        (before["decision"] == "postponed") & before["decision_reason"].isin(gen.INDICATION_REASONS)
    )
    assert refused.all()
    assert (before["office"].to_numpy() != re_["office"].to_numpy()).all()
    assert (before["person_id"].to_numpy() == re_["person_id"].to_numpy()).all()
    # and most of them changed something on purpose
    assert re_["variants"].str.len().gt(0).mean() > 0.8


def test_decision_rates_are_near_the_documented_ones(sample) -> None:
    summary, *_ = sample
    share = {k: v / summary["rows"] for k, v in summary["decisions"].items()}
    assert 0.74 < share["issued"] < 0.84
    assert 0.05 < share["rejected"] < 0.10
    assert 0.06 < share["postponed"] < 0.11
    per_person = summary["records_per_person"]
    assert per_person[1] / summary["persons"] > 0.6
    assert sum(v for k, v in per_person.items() if 2 <= k <= 4) / summary["persons"] > 0.12


def _rows(sample) -> pd.DataFrame:
    """Applications joined to truth, with the variants and tags as sets."""
    _, apps, truth, _ = sample
    rows = truth.merge(apps, on="record_id")
    rows["v"] = rows["variants"].str.split(";").map(set)
    rows["t"] = rows["tags"].str.split(";").map(set)
    return rows


def _clean_nik(rows: pd.DataFrame) -> pd.Series:
    """Rows whose NIK is the person's own, as issued: no fault, not a relative's, not a second one."""
    return rows["nik"].notna() & ~rows["variants"].str.contains(r"nik_|relative_nik")


def _dob(raw: str | None) -> date | None:
    return parse_date(raw, today=TODAY).value


def _nik_dob(raw: str | None) -> date | None:
    return parse_nik(raw, today=TODAY).birth_date


def test_clean_niks_are_well_formed_and_mostly_lampung(sample) -> None:
    rows = _rows(sample)
    clean = rows[_clean_nik(rows)]
    assert clean["nik"].str.fullmatch(r"\d{16}").all()
    dd = clean["nik"].str.slice(6, 8).astype(int)
    mm = clean["nik"].str.slice(8, 10).astype(int)
    assert dd.between(1, 31).sum() + dd.between(41, 71).sum() == len(clean)
    assert mm.between(1, 12).all()
    assert (clean["nik"].str.slice(12).astype(int) >= 1).all()
    assert 0.85 < clean["nik"].str.startswith("18").mean() < 0.98


def test_twins_share_date_and_mother_with_consecutive_serials(sample) -> None:
    """Kind 2: twins' NIKs have one region and encoded date, and serials one (often) or a few apart."""
    _, _, _, relatives = sample
    rows = _rows(sample)
    first = rows[(rows["seq"] == 0) & _clean_nik(rows)].set_index("person_id")
    twins = relatives[relatives["relation"] == "twin"]
    gaps = []
    for a, b in zip(twins["person_id_a"], twins["person_id_b"], strict=True):
        if a not in first.index or b not in first.index:
            continue
        na, nb = first.at[a, "nik"], first.at[b, "nik"]
        assert na[:6] == nb[:6] and na[8:12] == nb[8:12]
        assert int(na[6:8]) % 40 == int(nb[6:8]) % 40
        gaps.append(abs(int(na[12:]) - int(nb[12:])))
    assert len(gaps) > 10
    assert min(gaps) >= 1 and max(gaps) <= gen.TWIN_SERIAL_GAP[1]
    assert Counter(gaps)[1] / len(gaps) > 0.6
    share = rows.drop_duplicates("person_id")["t"].map(lambda t: "twin" in t).mean()
    assert 0.01 < share < 0.05  # 1.5 % of units are twin pairs: 2.6 % of persons at 100k


def test_siblings_share_the_nik_region_not_the_birth_date(sample) -> None:
    """Kind 2: siblings carry NIKs of the family's region, with birth dates (and so NIKs) of their own."""
    _, _, _, relatives = sample
    rows = _rows(sample)
    first = rows[(rows["seq"] == 0) & _clean_nik(rows)].set_index("person_id")
    sib = relatives[relatives["relation"] == "sibling"]
    pairs = [(a, b) for a, b in zip(sib["person_id_a"], sib["person_id_b"], strict=True)
             if a in first.index and b in first.index]
    assert len(pairs) > 50
    for a, b in pairs:
        na, nb = first.at[a, "nik"], first.at[b, "nik"]
        assert na[:6] == nb[:6]
        assert _nik_dob(na) != _nik_dob(nb)
    share = rows.drop_duplicates("person_id")["t"].map(lambda t: "sibling" in t).mean()
    assert 0.07 < share < 0.16  # 4.5 % of units are sibling groups of 2-4: 11.6 % of persons at 100k


def test_second_identity_after_a_refusal(sample) -> None:
    """Kind 1: another region's NIK, a name token dropped or an initial; same birth date and mother."""
    rows = _rows(sample)
    by_id = rows.set_index("record_id")
    si = rows[rows["v"].map(lambda v: "second_identity" in v)]
    prev = by_id.loc[si["prev_record_id"].dropna()]
    # the first record of the second identity follows the refused one, made under the first identity
    first_si = si[si["prev_record_id"].map(lambda r: r in by_id.index and "second_identity" not in by_id.at[r, "v"])]
    assert (first_si["kind"] == "reapply_after_refusal").all()
    reapplicants = rows.loc[rows["kind"] == "reapply_after_refusal", "person_id"].nunique()
    assert 0.08 < len(first_si) / reapplicants < 0.24  # P_SECOND_IDENTITY = 15 % of first re-applications
    assert len(prev) == len(si[si["prev_record_id"].notna()])
    assert si["person_id"].map(lambda p: p in set(first_si["person_id"])).all()
    checked = 0
    for _, r in first_si.iterrows():
        refused = by_id.loc[r["prev_record_id"]]
        assert "nik_second" in r["v"] and r["t"] >= {"second_identity", "second_nik"}
        info = parse_nik(r["nik"], today=TODAY)
        assert info.status == "valid"
        # its NIK encodes the true birth date, which is also the one written
        assert info.birth_date == _dob(r["birth_date"])
        assert info.sex == parse_sex(r["sex"]).value or r["sex"] is None
        assert r["mother_name"] is not None
        assert set(re.findall(r"[A-Z]+", r["full_name"].upper())) != set(
            re.findall(r"[A-Z]+", refused["full_name"].upper()))
        if _clean_nik(refused.to_frame().T).iloc[0]:
            assert info.regency_code != parse_nik(refused["nik"], today=TODAY).regency_code
            checked += 1
        if not any(v.startswith("dob_") for v in refused["v"]) and refused["birth_date"] is not None:
            assert _dob(refused["birth_date"]) == _dob(r["birth_date"])
        if refused["mother_name"] is not None and not any(v.startswith("mother_") for v in refused["v"]):
            assert " ".join(r["mother_name"].upper().split()) == " ".join(refused["mother_name"].upper().split())
    assert checked > 20
    names = Counter(v for vs in first_si["v"] for v in vs)
    assert names["token_dropped"] + names["initials"] + names["token_added"] >= len(first_si)
    assert names["j_y_oe_u"] > 0
    # often the same address or phone: moved on about 40 %, against 45 % + for other re-applicants
    assert first_si["v"].map(lambda v: "moved" not in v or "new_phone" not in v).mean() > 0.6


def test_relative_nik_contradicts_the_borrowers_date_and_sex(sample) -> None:
    """Kind 3: a family member's NIK on a record; its encoded date and sex are not the record's own."""
    _, _, _, relatives = sample
    rows = _rows(sample)
    rn = rows[rows["v"].map(lambda v: "relative_nik" in v)]
    assert 0.004 < len(rn) / len(rows) < 0.016  # 0.5 % of records, 5 % for those with a sibling to borrow from
    compared = 0
    for _, r in rn.iterrows():
        info = parse_nik(r["nik"], today=TODAY)
        assert info.status == "valid"
        own_dob, own_sex = _dob(r["birth_date"]), parse_sex(r["sex"]).value
        if own_dob is not None and own_sex is not None:
            assert info.birth_date != own_dob and info.sex != own_sex
            compared += 1
    assert compared > 0.8 * len(rn)
    # where the lender applies too, it is a sibling of the borrower: one NIK on two people of one family
    clean = rows[_clean_nik(rows)]
    owner = dict(zip(clean["nik"], clean["person_id"], strict=False))
    related = {frozenset(p) for p in zip(relatives["person_id_a"], relatives["person_id_b"], strict=True)}
    lenders = [(owner[n], p) for n, p in zip(rn["nik"], rn["person_id"], strict=True) if n in owner]
    assert len(lenders) > 5
    assert all(frozenset(pair) in related for pair in lenders)


def test_heavy_variants_keep_the_nik_date_where_the_written_date_moves(sample) -> None:
    """Kind 4: new address and phone, the name changed in structure, the birth date off by a day or a year or
    1 January; the NIK, new or not, encodes the true birth date."""
    rows = _rows(sample)
    hv = rows[rows["v"].map(lambda v: "heavy_variant" in v)]
    later = rows[rows["kind"] != "original"]
    assert 0.02 < len(hv) / len(later) < 0.07  # 4.2 % of later records expected from P_HEAVY_VARIANT
    assert (hv["kind"] != "original").all()
    structure = set(gen.OP_WEIGHTS["heavy"])
    assert hv["v"].map(lambda v: {"moved", "new_phone"} <= v and bool(v & structure)).all()
    shift = hv["v"].map(lambda v: (v & set(gen.HEAVY_DOB)).pop())
    assert set(shift) == set(gen.HEAVY_DOB)
    first_nik = rows[(rows["seq"] == 0) & _clean_nik(rows)].set_index("person_id")["nik"]
    checked = new_nik = 0
    for (_, r), how in zip(hv.iterrows(), shift, strict=True):
        if "nik_dob_mismatch" in r["t"]:
            continue
        true_dob = _nik_dob(r["nik"])
        written = _dob(r["birth_date"])
        assert true_dob is not None and written is not None and written != true_dob
        if how == "dob_day":
            assert abs((written - true_dob).days) == 1
        elif how == "dob_year":
            assert abs(written.year - true_dob.year) == 1 and written.month == true_dob.month
        else:
            assert (written.month, written.day) == (1, 1) and written.year == true_dob.year
        checked += 1
        if "nik_second" in r["v"] and r["person_id"] in first_nik.index:
            # two NIKs that differ and yet encode the same birth date and sex
            assert r["nik"] != first_nik[r["person_id"]] and r["nik"][6:12] == first_nik[r["person_id"]][6:12]
            new_nik += 1
    assert checked > 20 and new_nik > 5


def test_names_are_indonesian_and_skewed(sample) -> None:
    _, apps, truth, _ = sample
    rows = truth.merge(apps, on="record_id")
    first = rows[(rows["seq"] == 0) & (rows["variants"] == "")]
    tokens = Counter(t for n in first["full_name"].str.upper() for t in re.findall(r"[A-Z]+", n))
    top = [t for t, _ in tokens.most_common(15)]
    assert {"MUHAMMAD", "SITI", "SRI", "NUR"} <= set(top) | {"M", "MOCH", "MOH"}
    common = first["full_name"].str.upper().isin([n.upper() for n in gen.COMMON_FULL_NAMES])
    assert common.sum() > 50
    mononym = rows["tags"].str.contains("mononym")
    assert 0.04 < mononym[rows["seq"] == 0].mean() < 0.14
    assert first["full_name"].str.contains(r"\b(?:BINTI|BIN|binti|bin|bt\.|BT\.)\b").any()
    assert first["full_name"].str.contains(r"\b(?:BR\.|br\.|BORU|boru)\s", regex=True).any()
    assert first["full_name"].str.contains(r"^(?:I|NI|Ni) ", regex=True).any()


def test_csv_holds_the_same_rows(tmp_path: Path) -> None:
    gen.generate(800, 3, tmp_path / "p", workers=1, progress=False)
    summary = gen.generate(800, 3, tmp_path / "c", workers=1, fmt="csv", progress=False)
    assert Path(summary["paths"]["applications"]).name == "applications.csv"
    csv = pd.read_csv(tmp_path / "c" / "applications.csv", dtype=str, keep_default_na=False, encoding="utf-8")
    par = pd.read_parquet(tmp_path / "p" / "applications.parquet").fillna("")
    pd.testing.assert_frame_equal(csv, par)
    assert (tmp_path / "c" / "truth.parquet").exists()


def test_cli_writes_the_three_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gen.main(["--rows", "300", "--seed", "9", "--out", str(tmp_path), "--workers", "1"]) == 0
    assert '"rows": 300' in capsys.readouterr().out
    assert {p.name for p in tmp_path.iterdir()} == {"applications.parquet", "truth.parquet", "relatives.parquet"}


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fmt"):
        gen.generate(10, 1, tmp_path, fmt="xlsx")
    with pytest.raises(ValueError, match="rows"):
        gen.generate(0, 1, tmp_path)
    with pytest.raises(ValueError, match="seed"):
        gen.generate(10, -1, tmp_path)
