"""benchmarks/generate.py: seeded, chunk-deterministic, counts reconcile, every variant and hard negative appears."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from benchmarks import generate as gen
from linkage.schema import ROLES

ROWS = 5000
CHUNK = 2500  # two chunks, so chunk seeding and id bases are exercised


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


def test_clean_niks_are_well_formed_and_mostly_lampung(sample) -> None:
    _, apps, truth, _ = sample
    rows = truth.merge(apps, on="record_id")
    clean = rows[rows["nik"].notna() & ~rows["variants"].str.contains("nik_")]
    assert clean["nik"].str.fullmatch(r"\d{16}").all()
    dd = clean["nik"].str.slice(6, 8).astype(int)
    mm = clean["nik"].str.slice(8, 10).astype(int)
    assert dd.between(1, 31).sum() + dd.between(41, 71).sum() == len(clean)
    assert mm.between(1, 12).all()
    assert (clean["nik"].str.slice(12).astype(int) >= 1).all()
    assert 0.85 < clean["nik"].str.startswith("18").mean() < 0.98


def test_twins_share_date_and_mother_with_consecutive_serials(sample) -> None:
    _, apps, truth, relatives = sample
    rows = truth.merge(apps, on="record_id")
    first = rows[(rows["seq"] == 0) & ~rows["variants"].str.contains("nik_")].set_index("person_id")
    twins = relatives[relatives["relation"] == "twin"]
    checked = 0
    for a, b in zip(twins["person_id_a"], twins["person_id_b"], strict=True):
        if a not in first.index or b not in first.index:
            continue
        na, nb = first.at[a, "nik"], first.at[b, "nik"]
        if not isinstance(na, str) or not isinstance(nb, str):
            continue
        checked += 1
        assert na[:6] == nb[:6] and na[8:12] == nb[8:12]
        assert int(na[6:8]) % 40 == int(nb[6:8]) % 40
        assert abs(int(na[12:]) - int(nb[12:])) == 1
    assert checked > 10


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
