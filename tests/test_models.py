"""Models side by side and m from labels (issue 14 §4: linkage.compare, linkage.labelled, `linkage models`,
`linkage train --labels`).

The comparison is checked on a real artefact (``tests/fixtures/model_small.json``: the model `linkage link` trained
on the first 3,000 sample applications, as ``tests/test_trace.py::linked_sample`` makes them) and copies of it with
a few values changed; the counts on labelled pairs on a store made by hand (pairs with chosen levels, and labels);
m from labels on a store linked for real, whose labels are its own stored pairs.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from linkage.cli import app
from linkage.compare import compare_models
from linkage.errors import InputError, NotFoundError, StoreError
from linkage.labelled import labelled_levels, m_from_labels
from linkage.model import export_stored, parameters
from linkage.spec import load_spec
from linkage.store import Store

runner = CliRunner()
WIDE = {"COLUMNS": "250"}
MODEL = Path(__file__).resolve().parent / "fixtures" / "model_small.json"
NAMES = ["name", "nik", "dob", "mother", "birth_place", "sex", "contact", "prior_passport", "patronym"]


def real() -> dict[str, Any]:
    made: dict[str, Any] = json.loads(MODEL.read_text(encoding="utf-8"))
    return made


def level(made: dict[str, Any], comparison: str, label: str) -> dict[str, Any]:
    """The level ``label`` of ``comparison`` in an artefact's Splink settings (to change it in place)."""
    (found,) = [
        lv
        for c in made["splink"]["comparisons"]
        if c["output_column_name"] == comparison
        for lv in c["comparison_levels"]
        if lv["label_for_charts"] == label
    ]
    return found


def weight(made: dict[str, Any], comparison: str, label: str) -> float:
    found = level(made, comparison, label)
    return math.log2(found["m_probability"] / found["u_probability"])


# ------------------------------------------------------------------------------------------ the comparison


def test_two_models_compared_level_by_level_give_the_exact_differences() -> None:
    a = real()
    b = copy.deepcopy(a)
    b["model_id"] = "b-model"
    level(b, "name", "exact")["m_probability"] += 0.1
    level(b, "dob", "far apart")["u_probability"] = 0.5
    level(b, "mother", "same key or tokens")["label_for_charts"] = "same key or same tokens"  # renamed: one each
    b["splink"]["comparisons"] = [c for c in b["splink"]["comparisons"] if c["output_column_name"] != "patronym"]
    b["splink"]["probability_two_random_records_match"] = 1e-4

    found = compare_models(a, b)

    assert (found.model_a, found.model_b) == (a["model_id"], "b-model")
    assert found.lambda_a == a["splink"]["probability_two_random_records_match"] and found.lambda_b == 1e-4
    assert found.only_in_a == ("patronym",) and found.only_in_b == ()
    by = {(c.comparison, c.level): c for c in found.levels}
    name = by[("name", "exact")]
    m, u = level(a, "name", "exact")["m_probability"], level(a, "name", "exact")["u_probability"]
    assert (name.present, name.m_a, name.m_b, name.u_change) == ("both", m, m + 0.1, 0.0)
    assert name.m_change == pytest.approx(0.1, abs=1e-12)
    assert name.weight_change == pytest.approx(math.log2((m + 0.1) / u) - math.log2(m / u), abs=1e-12)
    far = by[("dob", "far apart")]
    assert far.u_b == 0.5 and far.u_change == pytest.approx(0.5 - level(a, "dob", "far apart")["u_probability"])
    assert far.m_change == 0.0
    assert by[("mother", "same key or tokens")].present == "a" and by[("mother", "same key or tokens")].m_b is None
    renamed = by[("mother", "same key or same tokens")]
    assert renamed.present == "b" and renamed.m_a is None and renamed.m_b == level(a, "mother", "same key or tokens")[
        "m_probability"]  # fmt: skip
    assert {c.present for c in found.levels if c.comparison == "patronym"} == {"a"}
    unchanged = [c for c in found.levels if c.present == "both" and (c.comparison, c.level) not in
                 {("name", "exact"), ("dob", "far apart")}]  # fmt: skip
    assert unchanged and all(c.m_change == 0 and c.u_change == 0 and c.weight_change == 0 for c in unchanged)
    assert found.accuracy is None  # no store: no labelled pairs
    assert not any(c.level == "null" for c in found.levels)  # null levels carry no m or u


def test_a_model_compared_with_itself_changes_nothing() -> None:
    found = compare_models(real(), real())
    assert found.levels and all(c.present == "both" and c.weight_change == 0 for c in found.levels)
    assert len(found.levels) == sum(len(c.levels) for c in parameters(real()))


# --------------------------------------------------------------------------------- counts on labelled pairs

M, N = "match", "non-match"
# levels in the spec's order (NAMES), -1 the null level: name 7 exact, 0 different; nik 5 exact; dob 6 exact
STRONG = [7, 5, 6, -1, -1, -1, -1, -1, -1]
NIK_DOB = [-1, 5, 6, -1, -1, -1, -1, -1, -1]
NAME_DIFFERS = [0, -1, -1, -1, -1, -1, -1, -1, -1]
NOTHING = [0, 0, 0, 0, 0, 0, 0, 0, 0]


def labelled_store(folder: Path, made: dict[str, Any], pairs: list[tuple[str, list[int] | None, bool]]) -> Path:
    """A store holding ``made`` as its model, and per (label, levels, vetoed) a labelled pair with a stored pair of
    those levels (``None``: labelled, never stored). The first pair is stored in reverse order (either order is
    read) and with an older row of other levels (the latest row counts)."""
    db = folder / "labelled.duckdb"
    with Store(db, create=True) as store:
        store.sql("INSERT INTO models VALUES (?, 'run-1', now(), 3000, ?, ?)",
                  [made["model_id"], NAMES, json.dumps(made)])  # fmt: skip
        for i, (label, gammas, vetoed) in enumerate(pairs):
            a, b = f"p{i:02d}-a", f"p{i:02d}-b"
            if gammas is not None:
                ids = [b, a] if i == 0 else [a, b]
                store.sql("INSERT INTO pairs VALUES (?, ?, 0.5, 0, 0, ?, ?::TINYINT[], NULL, ?, 'run-1')",
                          [*ids, vetoed, gammas, made["model_id"]])  # fmt: skip
                if i == 0:
                    store.sql("INSERT INTO pairs VALUES (?, ?, 0.5, 0, 0, false, ?::TINYINT[], NULL, ?, 'run-0')",
                              [a, b, NOTHING, made["model_id"]])  # fmt: skip
            store.sql(
                """INSERT INTO labels (record_id_l, record_id_r, label, labeller, labelled_at, sample_id)
                   VALUES (?, ?, ?, 'ana', now(), 'S-1')""",
                [a, b, label],
            )
    return db


PAIRS = [
    (M, STRONG, False),  # both models link it
    (M, NIK_DOB, False),  # A links it; B, whose "dob exact" is weak, does not
    (M, NAME_DIFFERS, False),  # neither
    (N, STRONG, False),  # both: a false link on the sample
    (N, NOTHING, False),  # neither
    (N, STRONG, True),  # vetoed: held at 0 bits (p = 0.5), under both thresholds
    (M, None, False),  # labelled, never stored (the outside slice): left out, counted
    ("unsure", STRONG, False),  # counts nowhere
]


def test_both_models_counted_on_the_same_labelled_pairs(tmp_path: Path) -> None:
    a = real()
    b = copy.deepcopy(a)
    b["model_id"] = "b-model"
    level(b, "dob", "exact")["m_probability"] = 1e-5
    b["threshold"] = 0.95
    prior = math.log2(a["splink"]["probability_two_random_records_match"] /
                      (1 - a["splink"]["probability_two_random_records_match"]))  # fmt: skip
    # the sides of the thresholds claimed above, reckoned from the file by hand (no term frequencies)
    nik_dob = prior + weight(a, "nik", "exact") + weight(a, "dob", "exact")
    assert nik_dob > math.log2(0.9 / 0.1) > prior + weight(b, "nik", "exact") + weight(b, "dob", "exact")
    assert prior + weight(a, "name", "different") < 0 < nik_dob + weight(a, "name", "exact")
    db = labelled_store(tmp_path, a, PAIRS)

    with Store(db, read_only=True) as store:
        found = compare_models(a, b, store=store, spec=load_spec())

    acc = found.accuracy
    assert acc is not None
    assert (acc.matches, acc.non_matches, acc.not_stored, acc.unsure, acc.disputed) == (3, 3, 1, 1, 0)
    assert (acc.a.matches_at_or_above, acc.a.non_matches_at_or_above) == (2, 1)
    assert (acc.b.matches_at_or_above, acc.b.non_matches_at_or_above) == (1, 1)
    assert (acc.a.precision, acc.a.recall) == (2 / 3, 2 / 3)
    assert (acc.b.precision, acc.b.recall) == (1 / 2, 1 / 3)
    assert (acc.a.threshold, acc.b.threshold) == (0.9, 0.95) and acc.decided_differently == 1
    assert acc.a.prior == a["splink"]["probability_two_random_records_match"]  # a store of no records: as trained
    assert acc.a.no_evidence == acc.b.no_evidence == ()
    assert "not population estimates" in acc.method and "term-frequency adjustments left out" in acc.method


def test_a_comparison_whose_levels_differ_from_the_stored_pairs_counts_as_no_evidence(tmp_path: Path) -> None:
    a = real()
    b = copy.deepcopy(a)
    b["model_id"] = "b-model"
    level(b, "name", "different")["label_for_charts"] = "differs"  # not the stored pairs' levels of name
    name_nik = [7, 5, -1, -1, -1, -1, -1, -1, -1]
    prior = math.log2(a["splink"]["probability_two_random_records_match"])
    assert prior + weight(a, "name", "exact") + weight(a, "nik", "exact") > math.log2(9) > prior + weight(
        a, "nik", "exact")  # linked with the name's weight, not without it  # fmt: skip
    db = labelled_store(tmp_path, a, [(M, name_nik, False)])
    with Store(db, read_only=True) as store:
        found = compare_models(a, b, store=store, spec=load_spec())
    assert found.accuracy is not None
    assert found.accuracy.a.no_evidence == () and found.accuracy.b.no_evidence == ("name",)
    assert (found.accuracy.a.matches_at_or_above, found.accuracy.b.matches_at_or_above) == (1, 0)


def test_models_compare_cli_tables_json_and_page(tmp_path: Path) -> None:
    a, b = real(), real()
    b["model_id"] = "b-model"
    level(b, "name", "exact")["m_probability"] = 0.5
    (tmp_path / "a.json").write_text(json.dumps(a), encoding="utf-8")
    (tmp_path / "b.json").write_text(json.dumps(b), encoding="utf-8")
    db = labelled_store(tmp_path, a, PAIRS)
    args = ["models", "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--db", str(db)]

    shown = runner.invoke(app, [*args, "--out", str(tmp_path / "page")], env=WIDE)
    assert shown.exit_code == 0, shown.output
    assert "name" in shown.output and "b-model" in shown.output and "matches at or above" in shown.output
    assert "not population estimates" in " ".join(shown.output.split())
    page = (tmp_path / "page" / "models_compare.html").read_text(encoding="utf-8")
    assert "vegaEmbed" in page and "b-model" in page and "https://cdn" not in page  # opens offline

    as_json = runner.invoke(app, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["model_b"] == "b-model" and data["accuracy"]["a"]["matches_at_or_above"] == 2
    (exact,) = [c for c in data["levels"] if (c["comparison"], c["level"]) == ("name", "exact")]
    assert exact["m_b"] == 0.5 and exact["m_change"] == pytest.approx(0.5 - a_m_name_exact(a))

    no_model = runner.invoke(app, ["models", "compare", str(tmp_path / "a.json"), str(tmp_path / "none.json")])
    assert isinstance(no_model.exception, InputError) and "model file not found" in str(no_model.exception)


def a_m_name_exact(made: dict[str, Any]) -> float:
    return float(level(made, "name", "exact")["m_probability"])


def test_models_export_writes_the_stores_model_and_refuses_a_store_without_one(tmp_path: Path) -> None:
    made = real()
    db = labelled_store(tmp_path, made, [])
    result = runner.invoke(app, ["models", "export", "--db", str(db), "--out", str(tmp_path / "m.json"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["model_id"] == made["model_id"]
    assert json.loads((tmp_path / "m.json").read_text(encoding="utf-8")) == made
    with Store(tmp_path / "empty.duckdb", create=True) as store, pytest.raises(NotFoundError, match="no model"):
        export_stored(store, tmp_path / "x.json")


# ---------------------------------------------------------------------------------------- m from the labels


def test_m_from_labels_is_the_formula_where_there_are_enough_and_em_elsewhere(tmp_path: Path) -> None:
    """On the hand-made store: 3 labelled matches with stored pairs; name is null on one of them (2 at its levels:
    exact, different), nik and dob exact on 2, mother null on all."""
    a = real()
    db = labelled_store(tmp_path, a, PAIRS)
    with Store(db, read_only=True) as store:
        labelled = labelled_levels(store)
    assert (labelled.matches, len(labelled.pairs), labelled.not_stored, labelled.unsure) == (3, 6, 1, 1)
    made, updates = m_from_labels(a, labelled, min_labels=2)
    by = {u.comparison: u for u in updates}
    assert [(by[c].source, by[c].labelled_matches) for c in ("name", "nik", "dob", "mother")] == [
        ("labels", 2), ("labels", 2), ("labels", 2), ("em", 0)]  # fmt: skip
    k = 8  # name's levels after its null level
    assert level(made, "name", "exact")["m_probability"] == (1 + 0.5) / (2 + k / 2)
    assert level(made, "name", "different")["m_probability"] == (1 + 0.5) / (2 + k / 2)
    assert level(made, "name", "same key (spelling, spaces)")["m_probability"] == 0.5 / (2 + k / 2)
    assert level(made, "dob", "exact")["m_probability"] == (2 + 0.5) / (2 + 7 / 2)
    assert level(made, "mother", "exact") == level(a, "mother", "exact")  # kept EM's
    assert by["mother"].reason == "EM's m kept: 0 labelled matches, fewer than 2"
    assert made["model_id"] != a["model_id"] and made["m_from_labels"]["comparisons"] == ["name", "nik", "dob"]
    assert made["m_from_labels"]["labelled_pairs_not_stored"] == 1 and made["m_from_labels"]["min_labels"] == 2
    assert a == real()  # the artefact given is left as it was


def test_a_level_the_spec_fixes_keeps_its_m() -> None:
    from linkage.labelled import Labelled, LabelledPair

    a = real()
    twin = "same region and date, other serial (a twin's pattern)"
    assert level(a, "nik", twin)["fix_m_probability"]
    stored = {c.name: ((*(lv.label for lv in c.levels),),) for c in parameters(a)}
    pairs = tuple(LabelledPair(True, False, {"nik": lab}) for lab in ["exact"] * 3 + [twin])
    made, updates = m_from_labels(a, Labelled(pairs, 0, 0, 0, stored), min_labels=4)
    assert level(made, "nik", twin)["m_probability"] == level(a, "nik", twin)["m_probability"]
    assert level(made, "nik", "exact")["m_probability"] == (3 + 0.5) / (4 + 6 / 2)
    assert "1 level(s) fixed by the spec kept" in {u.comparison: u for u in updates}["nik"].reason


@pytest.fixture(scope="module")
def linked_with_labels(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """3,000 sample applications linked for real; 60 of their strongest stored pairs labelled match, 10 of the
    weakest non-match, and one labelled pair the store never scored. Returns (store, applications file)."""
    from tests.test_trace import linked_sample

    folder = tmp_path_factory.mktemp("linked")
    db = linked_sample(folder)
    with Store(db) as store:
        for label, order in ((M, "DESC"), (N, "ASC")):
            store.sql(
                f"""INSERT INTO labels (record_id_l, record_id_r, label, labeller, labelled_at, sample_id)
                    SELECT record_id_l, record_id_r, ?, 'ana', now(), 'S-1' FROM pairs
                    ORDER BY match_probability {order}, record_id_l, record_id_r LIMIT ?""",
                [label, 60 if label == M else 10],
            )
        store.sql("""INSERT INTO labels (record_id_l, record_id_r, label, labeller, labelled_at, sample_id)
                     VALUES ('zz-not-a', 'zz-not-b', 'match', 'ana', now(), 'S-1')""")  # fmt: skip
    return db, folder / "a.parquet"


def matches_by_level(db: Path) -> dict[str, dict[int, int]]:
    """Per comparison, the labelled matches at each level (gamma), counted here from the stored pairs."""
    with Store(db, read_only=True) as store:
        rows = store.rows(
            """SELECT g.i, g.gamma, count(*) FROM labels l JOIN pairs p USING (record_id_l, record_id_r),
                   LATERAL (SELECT unnest(p.gammas) AS gamma, generate_subscripts(p.gammas, 1) AS i) g
               WHERE l.label = 'match' AND g.gamma <> -1 GROUP BY ALL"""
        )
    out: dict[str, dict[int, int]] = {}
    for i, gamma, n in rows:
        out.setdefault(NAMES[i - 1], {})[gamma] = n
    return out


def test_train_with_labels_takes_m_from_them_where_enough_and_says_where_not(
    linked_with_labels: tuple[Path, Path], tmp_path: Path
) -> None:
    db, applications = linked_with_labels
    counted = matches_by_level(db)
    enough = {name for name, by in counted.items() if sum(by.values()) >= 30}
    assert {"name", "nik", "dob"} <= enough and {"prior_passport", "patronym"} - enough  # both kinds present
    out = tmp_path / "m.json"
    result = runner.invoke(app, ["train", str(applications), "--out", str(out), "--labels", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    made = json.loads(out.read_text(encoding="utf-8"))
    assert report["model_id"] == made["model_id"] and report["not_stored"] == 1
    assert (report["labelled_pairs"], report["labelled_matches"]) == (70, 60)
    by = {c["comparison"]: c for c in report["comparisons"]}
    assert {name for name, c in by.items() if c["source"] == "labels"} == enough
    assert made["m_from_labels"]["comparisons"] == [c for c in NAMES if c in enough]
    for comparison in parameters(made):  # m as Splink reads the file
        name, levels = comparison.name, comparison.levels
        n, k = sum(counted.get(name, {}).values()), len(levels)
        assert by[name]["labelled_matches"] == n
        for lv, gamma, before in zip(levels, range(k - 1, -1, -1), by[name]["m_before"], strict=True):
            if name in enough and not lv.m_fixed:
                assert lv.m == pytest.approx((counted[name].get(gamma, 0) + 0.5) / (n + k / 2))
            else:  # EM's (or the spec's fixed) m, as training left it
                assert lv.m == before
        if name not in enough:
            assert by[name]["reason"] == f"EM's m kept: {n} labelled matches, fewer than 30"


def test_train_with_labels_prints_which_comparisons_kept_ems_m(
    linked_with_labels: tuple[Path, Path], tmp_path: Path
) -> None:
    db, applications = linked_with_labels
    out = tmp_path / "m.json"
    args = ["train", str(applications), "--out", str(out), "--labels", "--db", str(db), "--min-labels", "61"]
    result = runner.invoke(app, args, env=WIDE)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "fewer than 61" in line]
    assert len(lines) == len(NAMES) and all("EM" in line for line in lines)  # 60 matches: none has enough
    assert json.loads(out.read_text(encoding="utf-8"))["m_from_labels"]["comparisons"] == []
    assert "1 skipped: no stored pair" in result.output


def test_train_refuses_labels_without_a_store(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "a.parquet", "--out", str(tmp_path / "m.json"), "--labels"])
    assert result.exit_code == 2 and "give --db" in result.output
    missing = runner.invoke(app, ["train", "a.parquet", "--out", str(tmp_path / "m.json"), "--labels", "--db",
                                  str(tmp_path / "none.duckdb")])  # fmt: skip
    assert isinstance(missing.exception, StoreError) and "no store at" in str(missing.exception)
    assert not (tmp_path / "m.json").exists()
