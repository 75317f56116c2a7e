"""The officer's query (issue 13 §1): an applicant who is not stored, scored as a link of them would score them.

The store holds 3,000 sample applications linked with the shipped spec, its review floor lowered so that
nearly every blocked pair is kept (more pairs to compare). Records held out of it are queried with their raw
fields, and linked one by one into copies of the store: the two must give every pair the same probability.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from linkage.cli import app
from linkage.config import load_config
from linkage.engine import run_link
from linkage.errors import InputError
from linkage.pipeline import ingest
from linkage.query import QUERY_RECORD_ID, _score, normalised_row, query
from linkage.review import run_cuts
from linkage.spec import ModelSpec, load_spec
from linkage.store import Store
from linkage.warm import Scorer, _take
from tests.test_cli_errors import run_main

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
FIELDS = {"full_name": "full_name", "sex": "sex", "birth_date": "birth_date", "birth_place": "birth_place",
          "nik": "nik", "mother_name": "mother_name", "address": "address", "phone": "phone",
          "prior_passport_no": "prior_passport_no"}  # fmt: skip
STORED = 3000
HELD_OUT = 10  # later applications of stored people, queried as the sample has them
PROBED = 20  # stored people given nine more applications, and a tenth queried
runner = CliRunner()
Sample = tuple[pd.DataFrame, pd.DataFrame]  # the sample's applications and truth
Built = tuple[Path, list[str], list[dict[str, Any]]]  # the store, the held-out record ids, the probes


def _spec() -> ModelSpec:
    """The shipped spec with a review floor low enough to keep nearly every blocked pair."""
    return load_spec(None).model_copy(update={"review_floor": 1e-9})


def _fields(row: pd.Series) -> dict[str, Any]:
    return {role: row[column] for role, column in FIELDS.items() if row[column] is not None}


def _valid(row: pd.Series) -> bool:
    """Whether a query takes the row's fields as they are (a mistyped NIK, say, is refused: see below)."""
    try:
        normalised_row(_fields(row))
    except InputError:
        return False
    return True


@pytest.fixture(scope="module")
def sample() -> Sample:
    return pq.read_table(SAMPLE / "applications.parquet").to_pandas(), pq.read_table(
        SAMPLE / "truth.parquet"
    ).to_pandas()


def _variants(row: pd.Series, k: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Nine more applications of the person of ``row``, each with a field changed or left out (so their pairs
    with a tenth differ in level and weight), and the tenth, which the store does not hold."""
    base = {c: row[c] for c in row.index}
    made = []
    changes: list[dict[str, Any]] = [
        {},
        {"phone": f"0812{k:04d}{7:04d}"},
        {"address": None, "decision": "rejected"},
        {"full_name": "H. " + str(base["full_name"])},
        {"mother_name": None},
        {"birth_place": None, "phone": None},
        {"nik": None},
        {"nik": None, "birth_date": None},
        {"prior_passport_no": None, "sex": None},
    ]
    for i, change in enumerate(changes):
        made.append({**base, "record_id": f"ZZV-{k:02d}-{i}", "application_date": f"2024-{1 + i:02d}-{10 + k:02d}",
                     **change})  # fmt: skip
    name = str(base["full_name"])
    spelt = name.replace("u", "oe") if "u" in name else name.upper()
    probe = {**base, "record_id": f"ZZV-{k:02d}-R", "full_name": spelt, "phone": f"0813{k:04d}0001",
             "application_date": f"2024-11-{10 + k:02d}"}  # fmt: skip
    return made, probe


@pytest.fixture(scope="module")
def store(
    sample: Sample, tmp_path_factory: pytest.TempPathFactory
) -> Built:
    """The first 3,000 sample applications (record id order) and nine more of each of 20 stored people,
    linked; the held-out records (later applications of people stored, one each) and the probes (a tenth
    application of each of the 20)."""
    apps, truth = sample
    apps = apps.sort_values("record_id").reset_index(drop=True)
    stored, rest = apps.iloc[:STORED], apps.iloc[STORED:]
    person = dict(zip(truth["record_id"], truth["person_id"], strict=True))
    known = {person[r] for r in stored["record_id"]}
    seen: set[str] = set()
    held = []
    for _, row in rest.iterrows():
        record = row["record_id"]
        if person[record] in known and person[record] not in seen and _valid(row):
            seen.add(person[record])
            held.append(record)
    held = sorted(random.Random(13).sample(held, HELD_OUT))
    full = stored.dropna(subset=["nik", "birth_date", "mother_name", "birth_place"])
    people = [row for _, row in full.iterrows() if _valid(row)]
    extra, probes = [], []
    for k, row in enumerate(random.Random(7).sample(people, PROBED)):
        made, probe = _variants(row, k)
        extra += made
        probes.append(probe)
    folder = tmp_path_factory.mktemp("query")
    pd.concat([stored, pd.DataFrame(extra)]).to_parquet(folder / "stored.parquet", index=False)
    db = folder / "store.duckdb"
    config = load_config(None)
    ingest([folder / "stored.parquet"], config, db=db)
    with Store(db) as s:
        run_link(s, _spec(), config_hash=config.fingerprint())
    return db, held, probes


def _link_one(db: Path, row: dict[str, Any], folder: Path) -> dict[str, tuple[float, float]]:
    """Link one application into a copy of the store incrementally; its pairs' (probability, weight) by the
    other record."""
    copy = folder / "copy.duckdb"
    copy.write_bytes(db.read_bytes())
    pd.DataFrame([row]).to_parquet(folder / "one.parquet", index=False)
    config = load_config(None)
    ingest([folder / "one.parquet"], config, db=copy)
    with Store(copy) as s:
        run = run_link(s, _spec(), config_hash=config.fingerprint())
        assert run.summary.mode == "incremental" and run.summary.linked == 1
        rows = s.rows("SELECT record_id_l, record_id_r, match_probability, match_weight FROM scored_pairs")
    me = row["record_id"]
    return {(b if a == me else a): (p, w) for a, b, p, w in rows if me in (a, b)}


@pytest.mark.slow  # about 60 s: 20 incremental links, each into its own copy of the store
def test_a_query_scores_every_pair_as_an_incremental_link_of_it_does(
    store: Built, sample: Sample, tmp_path: Path
) -> None:
    db, held, probes = store
    apps = sample[0].set_index("record_id", drop=False)
    compared, weights = 0, set()
    with Store(db) as s:
        scorers = [Scorer(s, _spec()), Scorer(s, _spec(), compiling=False)]
    assert scorers[0].state.compiled is not None and scorers[1].state.compiled is None
    # the probes, and a few held-out records as the sample has them
    for row in [*probes, *(apps.loc[r].to_dict() for r in held[:5])]:
        linked = _link_one(db, row, tmp_path)
        fields = _fields(pd.Series(row))
        with Store(db) as s:
            floor, _ = run_cuts(s)
            artefact = json.loads(s.rows("SELECT artefact FROM models")[0][0])
            pairs, _, _ = _score(s, normalised_row(fields), _spec(), artefact, floor)
            warm = [w.score(Store.on(s.con.cursor()), normalised_row(fields), w.state)[0] for w in scorers]
            answer = query(s, fields, limit=1000, spec=_spec())
        # every path: a link's own (prepare_incremental and Splink's predict), the warm scorer's with the model
        # compiled to Python, and with Splink's SQL
        for found in (pairs, *warm):
            queried = {p["record_id"]: (p["match_probability"], p["match_weight"]) for p in found}
            assert queried.keys() == linked.keys(), row["record_id"]
            for other, (probability, weight) in linked.items():
                assert queried[other][0] == pytest.approx(probability, abs=1e-9, rel=0), (row["record_id"], other)
                assert queried[other][1] == pytest.approx(weight, abs=1e-9, rel=0), (row["record_id"], other)
                weights.add(round(weight, 6))
        # the answer's candidates are the identities of these pairs, each at its best pair's probability
        for candidate in answer["candidates"]:
            assert candidate["match_probability"] == pytest.approx(linked[candidate["record_id"]][0], abs=1e-9, rel=0)
            assert candidate["match_probability"] == max(
                p["match_probability"] for p in pairs if p["identity_id"] == candidate["identity_id"]
            )
        compared += len(linked)
    assert compared >= 200, f"only {compared} pairs compared"
    assert len(weights) >= 50, "the pairs compared hardly differ"


@pytest.mark.parametrize("compiling", [True, False], ids=["compiled", "sql"])
def test_the_warm_scorer_gives_the_answer_of_a_links_own_path(store: Built, sample: Sample, compiling: bool) -> None:
    """The service's warm scorer (snapshot in memory; the model compiled to Python, or Splink's SQL generated
    once) answers every applicant exactly as the path of a link does: candidates, probabilities, evidence and
    applications."""
    db, held, probes = store
    apps = sample[0].set_index("record_id", drop=False)
    with Store(db) as s:
        scorer = Scorer(s, _spec(), compiling=compiling)
        assert (scorer.state.compiled is not None) == compiling
        cursor = Store.on(s.con.cursor())
        kinds = set()
        for row in [*probes[:6], *(apps.loc[r].to_dict() for r in held[:6])]:
            fields = _fields(pd.Series(row))
            cold = query(s, fields, limit=20, spec=_spec())
            warm = query(cursor, fields, limit=20, scorer=scorer)
            assert warm["candidates"], row["record_id"]
            assert json.dumps(warm, sort_keys=True, default=str) == json.dumps(cold, sort_keys=True, default=str)
            kinds |= {i["kind"] for c in warm["candidates"] for i in c["indicators"]}
    # the risk indicators compared hold more than one kind (the snapshot reckons them as the store does)
    assert len(kinds) >= 2, kinds


def test_the_warm_scorer_takes_a_new_model_with_the_run_that_made_it(store: Built, tmp_path: Path) -> None:
    """A run that retrains stores a new model: the scorer's refresh loads it with the run's snapshot, so that
    no query scores with the old model against the new state (the state is swapped whole)."""
    db = tmp_path / "copy.duckdb"
    db.write_bytes(store[0].read_bytes())
    with Store(db) as s:
        scorer = Scorer(s, _spec())
        before = scorer.state
        assert not scorer.refresh(s)  # nothing changed: the same state
        artefact = json.loads(s.rows("SELECT artefact FROM models")[0][0])
        artefact["splink"]["probability_two_random_records_match"] /= 2
        s.sql("INSERT INTO models VALUES ('retrained', 'run-later', now() + INTERVAL 1 DAY, 1, [], ?)",
              [json.dumps(artefact)])  # fmt: skip
        s.sql("INSERT INTO runs VALUES ('run-later', 'link', 'succeeded', now() + INTERVAL 1 DAY, NULL, NULL, "
              "NULL, NULL, NULL)")  # fmt: skip
        assert scorer.refresh(s)
    assert scorer.state.model_id == "retrained" and before.model_id != "retrained"
    assert scorer.state.prior == pytest.approx(before.prior / 2, rel=1e-12)
    assert scorer.state.scoring_sql != before.scoring_sql


def test_a_model_the_evaluator_cannot_compile_is_scored_with_splinks_sql(
    store: Built, sample: Sample, tmp_path: Path
) -> None:
    """A stored model whose level calls a function the evaluator does not implement (``hamming``) is not
    compiled: the warm scorer scores with Splink's SQL, and answers as a link's own path does."""
    db = tmp_path / "copy.duckdb"
    db.write_bytes(store[0].read_bytes())
    apps = sample[0].set_index("record_id", drop=False)
    with Store(db) as s:
        artefact = json.loads(s.rows("SELECT artefact FROM models")[0][0])
        similar = artefact["splink"]["comparisons"][0]["comparison_levels"][-2]  # the name's Jaro-Winkler level
        similar["sql_condition"] += " AND hamming(name_key_l, name_key_l) = 0"
        artefact["model_id"] = "hamming"
        s.sql("INSERT INTO models VALUES ('hamming', 'run-later', now() + INTERVAL 1 DAY, 1, [], ?)",
              [json.dumps(artefact)])  # fmt: skip
        s.sql("INSERT INTO runs VALUES ('run-later', 'link', 'succeeded', now() + INTERVAL 1 DAY, NULL, NULL, "
              "NULL, NULL, NULL)")  # fmt: skip
        scorer = Scorer(s, _spec())
        assert scorer.state.model_id == "hamming" and scorer.state.compiled is None
        cursor = Store.on(s.con.cursor())
        for record_id in store[1][:3]:
            fields = _fields(apps.loc[record_id])
            warm = query(cursor, fields, limit=20, scorer=scorer)
            assert warm["candidates"] and warm["model_id"] == "hamming"
            assert json.dumps(warm, sort_keys=True, default=str) == json.dumps(
                query(s, fields, limit=20, spec=_spec()), sort_keys=True, default=str
            )


def test_the_store_is_left_as_it_was(store: Built, sample: Sample) -> None:
    db, held, _ = store
    row = sample[0].set_index("record_id", drop=False).loc[held[0]]

    def state(s: Store) -> list[Any]:
        tables = s.rows("SELECT table_schema, table_name FROM information_schema.tables ORDER BY ALL")
        counts = [s.scalar(f'SELECT count(*) FROM "{n}"') for schema, n in tables if schema == "main"]
        return [tables, counts]

    with Store(db) as s:
        before = state(s)
        answer = query(s, _fields(row), spec=_spec())
        assert answer["candidates"]
        assert state(s) == before
        assert not s.rows("SELECT 1 FROM applications_normalised WHERE record_id = ?", [QUERY_RECORD_ID])


def test_the_answer_explains_each_candidate(
    store: Built, sample: Sample
) -> None:
    db, held, _ = store
    row = sample[0].set_index("record_id", drop=False).loc[held[1]]
    with Store(db) as s:
        answer = query(s, _fields(row), limit=3, spec=_spec())
        floor, threshold = run_cuts(s)
    assert answer.keys() >= {"query", "model_id", "threshold", "review_floor", "candidates"}
    assert (answer["review_floor"], answer["threshold"]) == (floor, threshold) == (1e-9, 0.9)
    assert answer["query"]["full_name"] and answer["query"].get("nik", "0").isdigit()
    candidates = answer["candidates"]
    assert 1 <= len(candidates) <= 3
    ranked = [c["match_probability"] for c in candidates]
    assert ranked == sorted(ranked, reverse=True)
    assert len({c["identity_id"] for c in candidates}) == len(candidates)
    names = [c.name for c in _spec().comparison]
    for c in candidates:
        assert c["level"] == ("linked" if c["match_probability"] >= threshold and not c["vetoed"] else "review")
        assert [e["comparison"] for e in c["evidence"]] == names
        # a waterfall: the prior and every comparison's weight (and the veto's cap) make the pair's weight
        total = answer["prior_match_weight"] + sum(e["match_weight"] for e in c["evidence"]) + c["veto_weight"]
        assert total == pytest.approx(c["match_weight"], abs=1e-9)
        for e in c["evidence"]:
            assert e["query"].keys() == e["record"].keys() and e["level"]
        dates = [a["application_date"] for a in c["applications"] if a["application_date"]]
        assert dates == sorted(dates)
        assert c["record_id"] in {a["record_id"] for a in c["applications"]}
    best = candidates[0]
    if best["level"] == "linked":
        assert best["reason"] and best["reason"] != "held: possibly a relative"


def test_a_refused_person_reapplying_under_another_spelling_and_nik_is_found(
    store: Built, sample: Sample
) -> None:
    db, _, _ = store
    apps = sample[0]
    with Store(db) as s:
        refused = s.rows(
            """SELECT n.record_id, m.identity_id FROM applications_normalised n JOIN membership m USING (record_id)
               WHERE n.decision = 'rejected' AND n.nik IS NOT NULL AND n.birth_date IS NOT NULL
                 AND n.mother_name_canonical IS NOT NULL ORDER BY n.record_id LIMIT 1"""
        )
    (record, identity), = refused
    row = apps.set_index("record_id", drop=False).loc[record]
    fields = _fields(row)
    # the old spelling (u as oe) and a NIK with another serial: a second NIK of the same district and date
    fields["full_name"] = row["full_name"].upper().replace("U", "OE")
    digits = "".join(ch for ch in row["nik"] if ch.isdigit())
    fields["nik"] = digits[:12] + ("0099" if digits[12:] != "0099" else "0098")
    assert fields["full_name"] != row["full_name"] and fields["nik"] != digits
    with Store(db) as s:
        answer = query(s, fields, spec=_spec())
    found = {c["identity_id"]: c for c in answer["candidates"]}
    assert identity in found, answer["candidates"]
    refusals = [a for a in found[identity]["applications"] if a["refused"]]
    assert record in {a["record_id"] for a in refusals}
    assert all(a["decision"] == "rejected" for a in refusals)


def test_an_unknown_applicant_gets_no_candidates(store: Built) -> None:
    db, _, _ = store
    fields = {"full_name": "Zyqwox Brumfeld", "birth_date": "1901-02-03", "nik": "1871014302010001",
              "mother_name": "Qarvela Xintu"}  # fmt: skip
    with Store(db) as s:
        answer = query(s, fields, spec=_spec())
    assert answer["candidates"] == []
    assert answer["query"]["full_name"] == "ZYQWOX BRUMFELD"


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"full_name": "Siti Aminah", "birth_date": "31-02-1990"}, "birth_date"),
        ({"full_name": "Siti Aminah", "nik": "18710145"}, "nik"),
        ({"full_name": "Siti Aminah", "nik": "1871014508900001", "birth_date": "tomorrow"}, "birth_date"),
        ({"full_name": "Siti Aminah", "nik_number": "1871014508900001"}, "nik_number"),
        ({"birth_date": "1990-08-05"}, "full_name"),
    ],
)
def test_a_field_that_fails_validation_is_an_error_naming_it(fields: dict[str, str], named: str) -> None:
    with pytest.raises(InputError) as caught:
        normalised_row(fields)
    assert [p.column for p in caught.value.problems] == [named]
    assert repr(fields.get(named, "")) in str(caught.value) or named in str(caught.value)


def test_a_placeholder_is_a_missing_field_not_an_error() -> None:
    row = normalised_row({"full_name": "Siti Aminah", "phone": "tidak ada", "address": "-"})
    assert row["phone"] is None and row["address"] is None


def test_every_bad_field_is_reported_at_once() -> None:
    with pytest.raises(InputError) as caught:
        normalised_row({"full_name": "Siti", "birth_date": "99-99-1990", "nik": "123", "fullname": "x"})
    assert sorted(p.column or "" for p in caught.value.problems) == ["birth_date", "fullname", "nik"]
    assert "did you mean 'full_name'" in str(caught.value)


def test_a_store_without_a_model_is_a_clear_error(tmp_path: Path) -> None:
    with Store(tmp_path / "empty.duckdb", create=True) as s, pytest.raises(InputError, match="run `linkage link"):
        query(s, {"full_name": "Siti Aminah"})


def _args(db: Path, fields: dict[str, Any]) -> list[str]:
    flags = {"full_name": "--name", "birth_date": "--birth-date", "nik": "--nik", "mother_name": "--mother",
             "birth_place": "--birth-place", "sex": "--sex", "phone": "--phone", "address": "--address",
             "prior_passport_no": "--passport"}  # fmt: skip
    args = ["query", "--db", str(db)]
    for role, value in fields.items():
        args += [flags[role], value]
    return args


def test_the_cli_prints_candidates_evidence_and_applications(
    store: Built, sample: Sample
) -> None:
    db, held, _ = store
    row = sample[0].set_index("record_id", drop=False).loc[held[2]]
    result = runner.invoke(app, [*_args(db, _fields(row)), "--limit", "2"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for title in ("Candidates, best first", "prior + each weight = total", "in time order"):
        assert title in result.output
    with Store(db) as s:
        answer = query(s, _fields(row), limit=2)
    assert answer["candidates"][0]["identity_id"] in result.output


def test_the_cli_json_is_the_answer(store: Built, sample: Sample) -> None:
    db, held, _ = store
    row = sample[0].set_index("record_id", drop=False).loc[held[3]]
    result = runner.invoke(app, [*_args(db, _fields(row)), "--json", "--limit", "2"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert set(found) == {"query", "model_id", "threshold", "review_floor", "prior_match_weight", "candidates",
                          "warnings"}
    assert 1 <= len(found["candidates"]) <= 2
    candidate = found["candidates"][0]
    assert set(candidate) == {"identity_id", "match_probability", "match_weight", "level", "reason", "record_id",
                              "vetoed", "evidence", "veto_weight", "applications", "indicators"}  # fmt: skip
    assert set(candidate["evidence"][0]) == {"comparison", "level", "match_weight", "query", "record"}
    assert set(candidate["applications"][0]) == {"record_id", "office", "application_date", "decision",
                                                 "decision_reason", "refused"}  # fmt: skip


def test_the_cli_names_a_bad_field_without_a_traceback(
    store: Built, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db, _, _ = store
    code, err = run_main(monkeypatch, capsys, *_args(db, {"full_name": "Siti Aminah", "birth_date": "31-02-1990"}))
    assert code == 1
    assert "birth_date" in err and "'31-02-1990'" in err


def test_no_names_or_niks_are_logged(
    store: Built, sample: Sample, caplog: pytest.LogCaptureFixture
) -> None:
    db, held, _ = store
    row = sample[0].set_index("record_id", drop=False).loc[held[4]]
    fields = _fields(row)
    with caplog.at_level(logging.DEBUG, logger="linkage"):
        result = runner.invoke(app, ["-v", *_args(db, fields)])
    assert result.exit_code == 0, result.output
    assert "query:" in caplog.text
    normalised = normalised_row(fields)
    secrets = [fields["full_name"], normalised["full_name_canonical"], *normalised["full_name_tokens"]]
    secrets += [fields.get("nik"), normalised["nik_digits"], fields.get("mother_name"), held[4]]
    for secret in filter(None, secrets):
        assert str(secret) not in caplog.text, "a personal value was logged"


def test_a_malformed_nik_is_a_warning_in_the_answer_not_a_refusal(store: Built) -> None:
    db = store[0]
    with Store(db) as s:
        answer = query(s, {"full_name": "Siti Aminah", "nik": "1800785511110003", "phone": "12"})
    assert {w["field"] for w in answer["warnings"]} == {"nik", "phone"}
    assert all("1800785511110003" not in w["problem"] for w in answer["warnings"])
    with Store(db) as s, pytest.raises(InputError, match="birth_date"):
        query(s, {"full_name": "Siti Aminah", "birth_date": "31-02-1990", "nik": "123"})


def test_the_cli_shows_a_warning_for_a_malformed_nik(store: Built) -> None:
    result = runner.invoke(app, [*_args(store[0], {"full_name": "Siti Aminah", "nik": "1800785511110003"})])
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "nik" in result.output
    assert "1800785511110003" not in result.output


@given(
    st.lists(st.integers(0, 6), min_size=1, max_size=5),
    st.lists(st.integers(0, 10_000), max_size=30),
)
def test_rows_are_taken_across_chunks_in_the_order_given(lengths: list[int], picks: list[int]) -> None:
    """A patched snapshot's rows are one chunk per patch; :func:`linkage.warm._take` takes from each on its own
    and must give what ``take`` on the rows joined into one chunk gives: every row asked, repeats and order kept."""
    schema = pa.schema([("n", pa.int64()), ("s", pa.string())])
    starts = [sum(lengths[:i]) for i in range(len(lengths) + 1)]
    chunks = [pa.table({"n": list(range(a, b)), "s": [f"r{j}" for j in range(a, b)]}, schema=schema)
              for a, b in itertools.pairwise(starts)]  # fmt: skip
    table = pa.concat_tables(chunks)
    total = table.num_rows
    rows = [p % total for p in picks] if total else []
    assert _take(table, rows).to_pylist() == table.combine_chunks().take(pa.array(rows, pa.int64())).to_pylist()
