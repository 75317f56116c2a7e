"""The review band (issue 12 §3, §4): review alerts, and records without identity evidence.

The literal store below is ingested from a CSV; the tables a link run writes (membership, pairs, links,
decisions) and the run's manifest (threshold 0.9, review floor 0.3) are filled by SQL. Each pair of records
is one case; the first of each is refused at Metro or Kalianda, the second applied later elsewhere:

    P1 P2   different identities, a vetoed twin-like pair (0.5)                   -> review, possible_relative
    G1 G2   different identities, a pair at 0.95 that clustering kept apart       -> review, split_by_guard
    W1 W2   different identities, a pair at 0.7 (between floor and threshold)     -> review, weak_evidence
    N1 N2   N2 has a name and nothing else (its own identity), a pair at 0.97     -> review, no_identity_evidence
    M1 M2 X M1 refused and M2 one identity; X, elsewhere, paired with M2 at 0.8     -> review (X, M1) via M2
    K1 K2   a pair at 0.85, but an officer's cannot-link between K2 and K3 (K1's)  -> none
    L1 L2   one identity, a pair at 0.99 (also a link)                          -> linked only
    S1 S2   different identities, a pair at 0.25, below the floor                  -> none
    V1 V2   different identities, the veto's condition held at 0.35 but lowered nothing -> review, weak_evidence

The real runs at the end link a sample with bare copies of some of its records (a name and nothing else).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from linkage.alerts import alerts, office_shopping
from linkage.cli import app
from linkage.config import Config, load_config
from linkage.decide import decide
from linkage.engine import link
from linkage.errors import InputError
from linkage.exports import export
from linkage.normalise import IDENTITY_EVIDENCE, normalise_batch
from linkage.pipeline import ingest
from linkage.profile import profile
from linkage.review import run_cuts, unevidenced
from linkage.store import Store

runner = CliRunner()

EVIDENCE = "1990-05-12,1871011205900001,Siti Aminah,Jl. Kartini 5,081234567890,B1234567"
BARE = ",,,,,"
ROWS = [
    # record_id, full_name, office, application_date, decision, identity; then evidence
    ("P1", "Rina Wati", "Kalianda", "2024-01-10", "rejected", "ID-p1", EVIDENCE),
    ("P2", "Rini Wati", "Metro", "2024-03-01", "issued", "ID-p2", EVIDENCE),
    ("G1", "Agus Salim", "Metro", "2024-01-01", "rejected", "ID-g1", EVIDENCE),
    ("G2", "Agus Salim", "Liwa", "2024-02-01", "issued", "ID-g2", EVIDENCE),
    ("W1", "Dewi Sartika", "Metro", "2024-01-01", "rejected", "ID-w1", EVIDENCE),
    ("W2", "Dewi Sartika", "Liwa", "2024-02-01", "issued", "ID-w2", EVIDENCE),
    ("V1", "Rina Wati", "Metro", "2024-01-01", "rejected", "ID-v1", EVIDENCE),
    ("V2", "Rini Wati", "Liwa", "2024-02-01", "issued", "ID-v2", EVIDENCE),
    ("N1", "Bambang Pamungkas", "Metro", "2024-01-01", "rejected", "ID-n1", EVIDENCE),
    ("N2", "Bambang Pamungkas", "Liwa", "2024-02-01", "issued", "ID-n2", BARE),
    ("M1", "Hadi Susanto", "Metro", "2024-01-01", "rejected", "ID-m", EVIDENCE),
    ("M2", "Hadi Susanto", "Metro", "2024-01-20", "issued", "ID-m", EVIDENCE),
    ("X", "Hadi Soesanto", "Liwa", "2024-02-01", "issued", "ID-x", EVIDENCE),
    ("K1", "Yanti Yusuf", "Metro", "2024-01-01", "rejected", "ID-k", EVIDENCE),
    ("K2", "Yanti Yusuf", "Liwa", "2024-02-01", "issued", "ID-k2", EVIDENCE),
    ("K3", "Yanti Yusup", "Metro", "2023-01-01", "issued", "ID-k", EVIDENCE),
    ("L1", "Eko Prasetyo", "Metro", "2024-01-01", "rejected", "ID-l", EVIDENCE),
    ("L2", "Eko Prasetyo", "Liwa", "2024-02-01", "issued", "ID-l", EVIDENCE),
    ("S1", "Tuti Alawiyah", "Metro", "2024-01-01", "rejected", "ID-s1", EVIDENCE),
    ("S2", "Tuti Alawiyah", "Liwa", "2024-02-01", "issued", "ID-s2", EVIDENCE),
]
PAIRS = [  # left, right, probability, vetoed
    ("P1", "P2", 0.5, True),
    # the veto's condition held, but the model's own weight was already below its cap: no relative held here
    ("V1", "V2", 0.35, True),
    ("G1", "G2", 0.95, False),
    ("W1", "W2", 0.7, False),
    ("N1", "N2", 0.97, False),
    ("M1", "M2", 0.99, False),
    ("M2", "X", 0.8, False),
    ("K1", "K2", 0.85, False),
    ("K1", "K3", 0.99, False),
    ("L1", "L2", 0.99, False),
    ("S1", "S2", 0.25, False),
]
LINKS = [("K1", "K3"), ("L1", "L2"), ("M1", "M2")]


def literal_store(folder: Path, *, cannot_link: bool = True) -> Path:
    source = folder / "applications.csv"
    header = "record_id,full_name,office,application_date,decision,birth_date,nik,mother_name,address,phone,"
    lines = [header + "prior_passport_no"]
    lines += [",".join((*row[:5], row[6])) for row in ROWS]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = folder / "review.duckdb"
    report = ingest([source], Config(), db=db, today=dt.date(2026, 11, 28))
    assert report.accepted == len(ROWS)
    with Store(db) as store:
        run = store.begin_run("link", [], "test")
        for record, *_, identity, _ in ROWS:
            store.sql("INSERT INTO membership VALUES (?, NULL, ?, ?)", [record, identity, run])
        for left, right, p, vetoed in PAIRS:
            # a pair the veto held scored higher before it (its model weight); the weights are the probabilities'
            weight = math.log2(p / (1 - p))
            model_weight = 25.0 if vetoed and p == 0.5 else weight
            store.sql(
                "INSERT INTO pairs VALUES (?, ?, ?, ?, ?, ?, [], [], 'm1', ?)",
                [left, right, p, weight, model_weight, vetoed, run],
            )
        for left, right in LINKS:
            store.sql("INSERT INTO links VALUES (?, ?, 0.99, 'scored', 0.9, 'm1', ?)", [left, right, run])
        if cannot_link:
            store.sql(
                """INSERT INTO decisions VALUES ('d1', 'cannot_link', 'K3', 'K2', 'officer.agus', 'another woman',
                   TIMESTAMPTZ '2024-03-01 00:00:00+00', ?)""",
                [run],
            )
        store.finish_run(run, "succeeded", {"threshold": 0.9, "review_floor": 0.3})
    return db


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return literal_store(tmp_path_factory.mktemp("review"))


@pytest.fixture
def store(db: Path):
    with Store(db, read_only=True) as opened:
        yield opened


# ------------------------------------------------------------------------------------------- review alerts


def test_review_alerts_say_why_the_pair_did_not_link_best_first(store: Store) -> None:
    review = alerts(store, level="review")
    assert [(a["record_id"], a["refused_record_id"], a["match_probability"], a["reason"]) for a in review] == [
        ("N2", "N1", 0.97, "no_identity_evidence"),
        ("G2", "G1", 0.95, "split_by_guard"),
        ("X", "M1", 0.8, "weak_evidence"),
        ("W2", "W1", 0.7, "weak_evidence"),
        ("P2", "P1", 0.5, "possible_relative"),
        ("V2", "V1", 0.35, "weak_evidence"),  # the veto's condition held, but it lowered nothing
    ]  # not K2 (a cannot-link with K1's identity), L2 (linked), S2 (below the floor)
    assert all(a["level"] == "review" for a in review)
    x = review[2]
    assert (x["direct"], x["via"], x["identity_id"], x["refused_identity_id"]) == (False, ["M2"], "ID-x", "ID-m")
    assert (review[0]["direct"], review[0]["via"], review[0]["refused_office"]) == (True, [], "Metro")


def test_a_linked_alert_stays_linked_and_is_not_listed_for_review_again(store: Store) -> None:
    found = alerts(store)
    assert (found[0]["level"], found[0]["record_id"], found[0]["refused_record_id"]) == ("linked", "L2", "L1")
    linked = alerts(store, level="linked")
    assert {(a["record_id"], a["refused_record_id"]) for a in linked} == {("L2", "L1")}
    assert [a["level"] for a in found] == ["linked"] * len(linked) + ["review"] * 6
    assert sum((a["record_id"], a["refused_record_id"]) == ("L2", "L1") for a in found) == 1
    assert linked[0]["reason"] == "direct"


def test_a_cannot_link_decision_removes_the_review_alert(tmp_path: Path) -> None:
    with Store(literal_store(tmp_path, cannot_link=False), read_only=True) as store:
        review = alerts(store, level="review")
    k2 = [a for a in review if a["record_id"] == "K2"]
    assert [(a["refused_record_id"], a["match_probability"], a["reason"]) for a in k2] == [
        ("K1", 0.85, "weak_evidence")
    ]


@pytest.mark.parametrize("decision", ["K3-K2", "none", "K3-mate"])
def test_one_applications_review_alerts_are_those_of_all_filtered(tmp_path: Path, decision: str) -> None:
    """A registration's alerts (``records=``) read only the records near them: the other ends of their pairs and
    the members of both's identities. Each record's must equal all of them filtered: with the cannot-link that
    removes K2's alert, without it, and with one that removes it through a record of K2's own identity that no
    pair of K2's reaches (S2, moved into it here)."""
    db = literal_store(tmp_path, cannot_link=decision == "K3-K2")
    if decision == "K3-mate":
        with Store(db) as store:
            store.sql("UPDATE membership SET identity_id = 'ID-k2' WHERE record_id = 'S2'")
            store.sql(
                """INSERT INTO decisions VALUES ('d2', 'cannot_link', 'K3', 'S2', 'officer.agus', 'another woman',
                   TIMESTAMPTZ '2024-03-01 00:00:00+00', NULL)"""
            )
    with Store(db, read_only=True) as store:
        everything = alerts(store)
        ids = [r for (r,) in store.rows("SELECT record_id FROM applications ORDER BY record_id")]
        assert ("K2" in {a["record_id"] for a in everything}) is (decision == "none")
        for record_id in ids:
            assert alerts(store, records=[record_id]) == [a for a in everything if a["record_id"] == record_id]
        assert alerts(store, records=ids) == everything


def test_review_alerts_follow_since_and_refusals(store: Store) -> None:
    assert alerts(store, level="review", since=dt.date(2024, 2, 2)) == [
        a for a in alerts(store, level="review") if a["record_id"] == "P2"
    ]
    assert alerts(store, level="review", refusals=("cancelled",)) == []
    with pytest.raises(InputError, match=r"unknown alert level 'reveiw' \(did you mean 'review'\?\)"):
        alerts(store, level="reveiw")


def test_the_run_cuts_are_the_latest_link_runs(store: Store) -> None:
    assert run_cuts(store) == (0.3, 0.9)


def test_the_report_counts_the_two_levels_apart(store: Store) -> None:
    table = office_shopping(store)
    rows = {(r["month"], r["office"]): r for r in table.to_dict(orient="records")}
    assert (rows["2024-02", "Liwa"]["alerts"], rows["2024-02", "Liwa"]["review_alerts"]) == (1, 5)
    assert (rows["2024-03", "Metro"]["alerts"], rows["2024-03", "Metro"]["review_alerts"]) == (0, 1)
    assert table["alerts"].sum() == 1 and table["review_alerts"].sum() == 6


def test_alerts_command_shows_the_levels_apart(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    result = runner.invoke(app, ["alerts", "--db", str(db), "--level", "review", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    first = data[0]
    assert (first["level"], first["reason"], first["match_probability"]) == ("review", "no_identity_evidence", 0.97)
    shown = runner.invoke(app, ["alerts", "--db", str(db)])
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert text.index("1 applications after a refusal elsewhere") < text.index("For review: 6 possible matches")
    assert text.index("no_identity_evidence") < text.index("split_by_guard") < text.index("possible_relative")
    linked = runner.invoke(app, ["alerts", "--db", str(db), "--level", "linked"])
    assert "For review" not in linked.output and "refusal elsewhere" in linked.output
    bad = runner.invoke(app, ["alerts", "--db", str(db), "--level", "reviews"])
    assert bad.exit_code == 2 and "did you mean 'review'" in " ".join(bad.output.split())


# ---------------------------------------------------------------------------- records without identity evidence


def test_the_flag_is_set_on_a_name_and_nothing_else() -> None:
    blank = {role: ["-"] for role in ("birth_date", "nik", "mother_name", "address", "phone", "prior_passport_no")}
    raw = {"record_id": ["a"], "full_name": ["Budi Santoso"], "sex": ["L"], "birth_place": ["Metro"], **blank}
    assert normalise_batch(raw).columns["no_identity_evidence"] == [True]  # junk counts as missing
    given = {
        "birth_date": "1990-05-12",
        "nik": "1871011205900001",
        "mother_name": "Siti Aminah",
        "address": "Jl. Kartini 5",
        "phone": "081234567890",
        "prior_passport_no": "B1234567",
    }
    for role, value in given.items():
        out = normalise_batch({**raw, role: [value]}).columns
        assert out["no_identity_evidence"] == [False], role
    assert len(given) == len(IDENTITY_EVIDENCE)


def test_the_flag_is_stored_and_a_migration_fills_it(tmp_path: Path) -> None:
    db = literal_store(tmp_path)
    with Store(db) as store:
        flagged = store.rows("SELECT record_id FROM applications_normalised WHERE no_identity_evidence")
        assert flagged == [("N2",)]
        store.sql("DROP INDEX applications_normalised_record")  # (a version-5 store had none; DuckDB alters
        store.sql("ALTER TABLE applications_normalised DROP COLUMN no_identity_evidence")  # no indexed table)
        store.sql("DELETE FROM schema_version WHERE version >= ?", [6])  # back to version 5: 5 → 6 runs again
    with Store(db) as store:  # opened read-write: the store is migrated
        assert store.rows("SELECT record_id FROM applications_normalised WHERE no_identity_evidence") == [("N2",)]
        assert store.scalar("SELECT count(*) FROM applications_normalised WHERE no_identity_evidence IS NULL") == 0
        found = profile(store)
    assert (found.no_identity_evidence, found.no_identity_evidence_share) == (1, 1 / len(ROWS))


def test_the_listing_names_each_bare_record_with_its_candidates(store: Store, tmp_path: Path) -> None:
    listed = unevidenced(store)
    assert listed.to_dict(orient="records") == [
        {"record_id": "N2", "office": "Liwa", "application_date": pd.Timestamp("2024-02-01"), "identity_id": "ID-n2",
         "candidate_record_id": "N1", "candidate_identity_id": "ID-n1", "match_probability": 0.97, "vetoed": False}
    ]  # fmt: skip
    export(store, tmp_path / "ids.csv")
    exported = pd.read_csv(tmp_path / "ids.csv")
    assert exported.loc[exported.no_identity_evidence, "record_id"].tolist() == ["N2"]


# ------------------------------------------------------------------------------------------- real runs

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "applications.parquet"
AT = 0.6  # a name with its sex and birth place alone scores about 0.76 here: a link at this threshold
BARE_ROLES = ("record_id", "full_name", "sex", "birth_place", "office", "application_date", "decision")


@pytest.fixture(scope="module")
def batches(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """3,000 sample applications (three with a rare name refused), and bare copies of those three: the same
    name, sex and birth place and nothing else, at another office later."""
    folder = tmp_path_factory.mktemp("bare")
    frame = pq.read_table(SAMPLE).to_pandas().sort_values(["application_date", "record_id"]).head(3000)
    counts = frame.full_name.value_counts()
    rare = frame[frame.full_name.map(counts).eq(1) & frame.office.notna() & frame.birth_place.notna()].head(3)
    frame.loc[rare.index, "decision"] = "rejected"
    bare = frame.loc[rare.index].copy()
    for column in bare.columns:
        if column not in BARE_ROLES:
            bare[column] = None
    bare["record_id"] = "BARE-" + bare["record_id"]
    offices = sorted(frame.office.dropna().unique())
    bare["office"] = [next(o for o in offices if o != office) for office in rare.office]
    bare["application_date"] = "2026-06-01"  # after every sample application
    frame.to_parquet(folder / "a.parquet", index=False)
    bare.to_parquet(folder / "b.parquet", index=False)
    return folder / "a.parquet", folder / "b.parquet"


def _bare_pairs(store: Store) -> list[tuple[str, str, float]]:
    return store.rows(
        """SELECT record_id_l, record_id_r, match_probability FROM pairs
           WHERE (record_id_l LIKE 'BARE-%' OR record_id_r LIKE 'BARE-%') AND match_probability >= ?""",
        [AT],
    )


def test_dedupe_never_links_a_record_without_identity_evidence(batches: tuple[Path, Path], tmp_path: Path) -> None:
    from linkage.dedupe import dedupe

    summary = dedupe(list(batches), load_config(None), tmp_path, threshold=AT)
    clusters = pq.read_table(tmp_path / "clusters.parquet").to_pandas().set_index("record_id")
    bare = clusters[clusters.index.str.startswith("BARE-")]
    assert len(bare) == 3 and bare.no_identity_evidence.all() and (bare.cluster_size == 1).all()
    assert summary.no_identity_evidence == int(clusters.no_identity_evidence.sum()) >= 3
    listed = pd.read_parquet(tmp_path / "no_identity_evidence.parquet")
    candidates = listed[listed.record_id.str.startswith("BARE-") & listed.match_probability.ge(AT)]
    assert len(candidates), "a bare copy scores at the threshold with its original: the test must be able to fail"
    for row in candidates.itertuples():
        assert row.candidate_identity_id == clusters.identity_id[row.candidate_record_id] != row.identity_id


def test_incremental_link_never_links_it_and_a_must_link_joins_it(
    batches: tuple[Path, Path], tmp_path: Path
) -> None:
    config, db = load_config(None), tmp_path / "s.duckdb"
    ingest([batches[0]], config, db=db)
    link(db, config, threshold=AT)
    ingest([batches[1]], config, db=db)
    assert link(db, config, threshold=AT).mode == "incremental"
    with Store(db, read_only=True) as store:
        paired = _bare_pairs(store)
        assert paired, "a bare copy scores at the threshold with its original: the test must be able to fail"
        identity = dict(store.rows("SELECT record_id, identity_id FROM membership"))
        review = alerts(store, level="review")
    for left, right, _ in paired:
        assert identity[left] != identity[right]
    bare, original = next((a, b) if a.startswith("BARE-") else (b, a) for a, b, _ in paired)
    assert sum(i == identity[bare] for i in identity.values()) == 1
    # the refused original is a candidate: a review alert, because the bare copy has no identity evidence
    mine = [a for a in review if (a["record_id"], a["refused_record_id"]) == (bare, original)]
    assert [(a["reason"], a["direct"]) for a in mine] == [("no_identity_evidence", True)]
    decide(db, "must_link", bare, original, by="officer.rina", reason="same photograph")
    link(db, config, threshold=AT)
    with Store(db, read_only=True) as store:
        joined = dict(store.rows("SELECT record_id, identity_id FROM membership WHERE record_id IN (?, ?)",
                                 [bare, original]))  # fmt: skip
        linked = alerts(store, level="linked")
    assert joined[bare] == joined[original]
    assert [a["reason"] for a in linked if (a["record_id"], a["refused_record_id"]) == (bare, original)] == ["direct"]
