"""Keyed blocking (linkage/block.py: block_keys): Splink scores exactly the pairs that the spec's rules,
as written, make, each pair once."""

from __future__ import annotations

import datetime as dt
import itertools
import math

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import blocking_bench as bench
from benchmarks.generate import generate
from linkage import block, model, prepare, score
from linkage.spec import ModelSpec, load_spec
from linkage.store import Store

ROWS = 1500


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("keyed")
    generate(ROWS, 5, out, workers=1, progress=False)
    connection = bench.connect(bench.store_for(out, out / "store.duckdb"), out / "truth.parquet")
    yield connection
    connection.close()


def scored_pairs(con: duckdb.DuckDBPyConnection, spec: ModelSpec) -> list[tuple[str, str]]:
    prepare.prepare_full(Store.on(con), spec)
    linker = model.linker_for(Store.on(con), model.settings_for(spec))
    table = linker.inference.deterministic_link().physical_name  # every blocked pair, unscored
    return con.execute(f"SELECT unique_id_l, unique_id_r FROM {table} ORDER BY ALL").fetchall()


def written_pairs(con: duckdb.DuckDBPyConnection, rules: list[str]) -> list[tuple[str, str]]:
    any_rule = " OR ".join(f"coalesce(({rule}), false)" for rule in rules)
    return con.execute(
        f"""SELECT l.unique_id, r.unique_id FROM model_input l JOIN model_input r
        ON l.unique_id < r.unique_id WHERE {any_rule} ORDER BY ALL"""
    ).fetchall()


@pytest.mark.parametrize(
    ("rules", "at_least"),
    [
        (None, 400),  # the default spec: keyed rules, and the bare-record rules that are not keys
        (["l.nik_digits = r.nik_digits", "l.name_key = r.name_key AND l.dob = r.dob"], 100),  # keys only
        (["l.bare_name_key = r.name_key AND l.bare_name_key IS NOT NULL"], 1),  # no key at all
    ],
)
def test_keyed_blocking_scores_the_pairs_of_the_written_rules(con, rules: list[str] | None, at_least: int) -> None:
    spec = load_spec()
    if rules is not None:
        spec = spec.model_copy(update={"blocking": rules})
    pairs = scored_pairs(con, spec)
    assert len(pairs) == len(set(pairs)), "a pair was scored twice"
    assert pairs == written_pairs(con, spec.blocking)
    assert len(pairs) >= at_least


def test_scored_pairs_do_not_carry_the_blocking_keys(con) -> None:
    # Splink would copy each blocking rule's columns into every pair: the key lists, both sides
    spec = load_spec()
    prepare.prepare_full(Store.on(con), spec)
    linker = model.linker_for(Store.on(con), model.settings_for(spec))
    table = linker.inference.predict().physical_name
    columns = {c for c, *_ in con.execute(f"DESCRIBE {table}").fetchall()}
    assert "gamma_name" in columns and "name_key_l" in columns  # the comparisons' own columns stay
    assert not {"block_keys_l", "block_keys_r", "bare_name_key_hash_l"} & columns


def test_rules_of_equalities_become_keys() -> None:
    assert block.key_columns("l.nik = r.nik") == ["nik"]
    assert block.key_columns("l.name_key = r.name_key AND r.dob = l.dob") == ["name_key", "dob"]
    for rule in [
        "l.bare_name_key = r.name_key",  # two columns: a key would pair records that share either
        "l.name_key = r.name_key AND l.dob IS NOT NULL",
        "l.name_key = r.name_key OR l.dob = r.dob",
        "levenshtein(l.name_key, r.name_key) <= 1",
        "l.name_key = l.name_key",
    ]:
        assert block.key_columns(rule) is None, rule
    assert block.block_keys(["l.a = r.b"]) == "[]::UBIGINT[]"


def test_a_missing_column_makes_no_key(con) -> None:
    """Records without a NIK share no NIK key (NULL never blocks, as in the written rule)."""
    prepare.prepare_full(Store.on(con), load_spec().model_copy(update={"blocking": ["l.nik_digits = r.nik_digits"]}))
    missing, keyed = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE len(block_keys) > 0) FROM model_input WHERE nik_digits IS NULL"
    ).fetchall()[0]
    assert missing > 0 and keyed == 0


def test_a_rule_on_an_unknown_column_names_the_rule_and_a_close_column(con) -> None:
    from linkage.errors import ConfigError

    spec = load_spec().model_copy(update={"blocking": ["l.nik_digit = r.nik_digit AND l.dob = r.dob"]})
    with pytest.raises(ConfigError) as caught:
        prepare.prepare_full(Store.on(con), spec)
    problems = [str(p) for p in caught.value.problems]
    assert len(problems) == 1
    assert "l.nik_digit = r.nik_digit AND l.dob = r.dob" in problems[0] and "'nik_digits'" in problems[0]


def test_records_without_a_name_key_are_not_blocked_together_on_it() -> None:
    # "-" and "..." normalise to no name key; hash(NULL) is a number, so a hashed key must stay NULL
    import datetime as dt

    from linkage.normalise import COLUMNS, normalise_batch
    from linkage.schema import ROLES
    from linkage.tables import arrow_table

    rows = [{"record_id": "a", "full_name": "-"}, {"record_id": "b", "full_name": "..."}]
    out = normalise_batch({role: [r.get(role) for r in rows] for role in ROLES}, today=dt.date(2026, 11, 28))
    con = duckdb.connect()
    con.register("incoming", arrow_table(out.columns, COLUMNS))
    con.execute("CREATE TABLE applications_normalised AS SELECT * FROM incoming")
    assert scored_pairs(con, load_spec()) == []


def test_a_spec_changed_in_code_is_checked_before_its_keys_are_built(con, tmp_path, monkeypatch) -> None:
    """prepare_full holds a spec made with model_copy (not read by load_spec) to the same fragment check."""
    from linkage.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    rule = "l.dob = r.dob OR read_csv('x.csv') IS NULL"
    with pytest.raises(ConfigError, match="read_csv") as caught:
        prepare.prepare_full(Store.on(con), load_spec().model_copy(update={"blocking": [rule]}))
    assert "blocking[0]" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


# DuckDB's hash in Python (block.duckdb_hash, block.KeyMaker): the warm scorer makes an applicant's keys
# without a statement, so they must be the very keys the block index holds.

_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_DATES = st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31))
_BIG = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_INT = st.integers(min_value=-(2**31), max_value=2**31 - 1)


@settings(max_examples=400, deadline=None)
@given(text=_TEXT, day=_DATES, big=_BIG, small=_INT, rule=st.integers(min_value=0, max_value=200),
       missing=st.booleans())  # fmt: skip
def test_duckdbs_hash_is_made_in_python_bit_for_bit(
    text: str, day: dt.date, big: int, small: int, rule: int, missing: bool
) -> None:
    con = _HASHING
    want = con.execute(
        "SELECT hash(?::VARCHAR), hash(?::DATE), hash(?::BIGINT), hash(?::INTEGER), hash(?::UBIGINT),"
        " hash(?::INTEGER, 'r', ?::VARCHAR, ?::DATE, ?::BIGINT), hash(?::VARCHAR, ?::BIGINT)",
        [text, day, big, small, big & (2**64 - 1), rule, text, day, big, None if missing else text, big],
    ).fetchone()
    got = (
        block.duckdb_hash((text, "VARCHAR")),
        block.duckdb_hash((day, "DATE")),
        block.duckdb_hash((big, "BIGINT")),
        block.duckdb_hash((small, "INTEGER")),
        block.duckdb_hash((big & (2**64 - 1), "UBIGINT")),
        block.duckdb_hash((rule, "INTEGER"), ("r", "VARCHAR"), (text, "VARCHAR"), (day, "DATE"), (big, "BIGINT")),
        block.duckdb_hash((None if missing else text, "VARCHAR"), (big, "BIGINT")),
    )
    assert got == want


_HASHING = duckdb.connect()


def test_python_keys_are_the_sql_keys_of_every_record(con) -> None:
    """Every record's block keys, probe keys and index keys as `KeyMaker` makes them in Python equal those of the
    SQL (`block_keys`, `side_probes`, `lookup_keys`), on a generated set with its faults and bare records."""
    spec = load_spec(None)
    prepare.prepare_full(Store.on(con), spec)
    as_left, as_right = block.side_probes(spec.blocking)
    index = block.lookup_keys(spec.blocking)[0]
    rows = Store.on(con).arrow(
        f"SELECT *, {as_left} AS as_left, {as_right} AS as_right, {index} AS index_keys FROM model_input"
    )
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE model_input)").fetchall())
    maker = block.KeyMaker.of(spec.blocking, types)
    sides = 0
    for row in rows.to_pylist():
        keyed, left, right = maker.keys(row)
        assert (keyed, left, right) == (row["block_keys"], row["as_left"], row["as_right"]), row["record_id"]
        assert maker.index_keys(row) == row["index_keys"], row["record_id"]
        sides += len(left) + len(right)
    assert rows.num_rows == ROWS and sides > 0, "no rule l.x = r.y made a key: the test would prove little"


def test_a_blocking_column_of_a_type_not_hashed_in_python_is_refused() -> None:
    with pytest.raises(ValueError, match="birth_year"):
        block.KeyMaker.of(["l.birth_year = r.birth_year"], {"birth_year": "DOUBLE"})


# ------------------------------------------------------------------------------- capped candidates


def _kept_pairs(con: duckdb.DuckDBPyConnection) -> set[tuple[int, int]]:
    """The pairs that share a key of ``pair_keys`` (each kept pair has one of its own)."""
    rows = con.execute(
        """WITH k AS (SELECT unique_id, unnest(pair_keys) AS pair_key FROM model_input)
           SELECT DISTINCT a.unique_id, b.unique_id FROM k a JOIN k b
           ON a.pair_key = b.pair_key AND a.unique_id < b.unique_id"""
    ).fetchall()
    return {(int(a), int(b)) for a, b in rows}


def _candidate_weights(keys: dict[int, list[int]]) -> dict[tuple[int, int], int]:
    """Each pair of records that shares keys, with the sum of ``ln(records / records with the key)`` (in
    millionths, as integers: as the cap adds them)."""
    holders: dict[int, list[int]] = {}
    for record, listed in keys.items():
        for key in set(listed):
            holders.setdefault(key, []).append(record)
    weights: dict[tuple[int, int], int] = {}
    for held in holders.values():
        for a, b in itertools.combinations(sorted(held), 2):
            weights[a, b] = weights.get((a, b), 0) + round(math.log(len(keys) / len(held)) * 1e6)
    return weights


def _check_capped(kept: set[tuple[int, int]], weights: dict[tuple[int, int], int], k: int, records: int) -> None:
    """The cap's promise: kept pairs are candidates, at most k per record, and each record's k heaviest."""
    assert kept <= set(weights), "a kept pair shares no key"
    assert len(kept) <= k * records
    mine: dict[int, list[int]] = {}
    for (a, b), w in weights.items():
        if (a, b) in kept:
            mine.setdefault(a, []).append(w)
            mine.setdefault(b, []).append(w)
    degree: dict[int, int] = {}
    for a, b in weights:
        degree[a] = degree.get(a, 0) + 1
        degree[b] = degree.get(b, 0) + 1
    for record, n in degree.items():
        assert len(mine.get(record, [])) >= min(k, n), f"record {record} kept fewer than its {min(k, n)} best"
    for (a, b), w in weights.items():
        if (a, b) not in kept:  # left out: both records have k kept pairs at least as heavy
            for record in (a, b):
                heavier = sum(1 for v in mine.get(record, []) if v >= w)
                assert heavier >= k, f"pair {(a, b)} left out though record {record} has room for it"


@settings(max_examples=60, deadline=None)
@given(
    # a record's keys are distinct (each hashes its rule's number)
    keys=st.lists(st.lists(st.integers(min_value=0, max_value=12), max_size=4, unique=True), min_size=1, max_size=30),
    k=st.integers(min_value=1, max_value=4),
)
def test_capped_candidates_are_each_records_heaviest_pairs(keys: list[list[int]], k: int) -> None:
    con = duckdb.connect()
    by_record = {i + 1: listed for i, listed in enumerate(keys)}
    con.execute("CREATE TEMP TABLE model_input (unique_id BIGINT, block_keys UBIGINT[])")
    con.executemany("INSERT INTO model_input VALUES (?, ?)", list(by_record.items()))
    kept = prepare.cap_candidates(Store.on(con), k, len(by_record))
    pairs = _kept_pairs(con)
    assert kept == len(pairs)
    _check_capped(pairs, _candidate_weights(by_record), k, len(by_record))
    again = duckdb.connect()  # repeatable: ties are broken by a hash of the pair, not by the join's order
    again.execute("CREATE TEMP TABLE model_input (unique_id BIGINT, block_keys UBIGINT[])")
    again.executemany("INSERT INTO model_input VALUES (?, ?)", list(reversed(by_record.items())))
    prepare.cap_candidates(Store.on(again), k, len(by_record))
    assert _kept_pairs(again) == pairs


def test_a_capped_full_run_scores_the_kept_pairs_and_no_others(con) -> None:
    spec = load_spec()
    everything = set(scored_pairs(con, spec))
    capped = spec.model_copy(update={"max_candidates": 2})
    pairs = scored_pairs(con, capped)
    assert len(pairs) == len(set(pairs)), "a pair was scored twice"
    keyed = _kept_pairs(con)
    assert set(pairs) <= everything and keyed <= set(pairs)
    candidates = _candidate_weights(_block_keys(con))
    assert len(keyed) < len(candidates), "the cap never bit: the test would prove little"
    _check_capped(keyed, candidates, 2, ROWS)
    # the rules that are not keys (the bare records') are not capped: their pairs are all scored
    plain = [rule for rule in spec.blocking if block.key_columns(rule) is None]
    assert plain and set(written_pairs(con, plain)) <= set(pairs)
    # a cap above every record's candidates keeps them all
    prepare.prepare_full(Store.on(con), spec.model_copy(update={"max_candidates": ROWS}))
    assert _kept_pairs(con) == set(_candidate_weights(_block_keys(con)))


@pytest.mark.parametrize(("update", "knob"), [({"max_candidates": 2}, "CHUNK_PAIRS"), ({}, "CHUNK_RECORDS")])
def test_a_prediction_in_chunks_scores_the_same_pairs(con, monkeypatch, update: dict[str, int], knob: str) -> None:
    """A full prediction is chunked by its kept pairs when capped, else by its records; the chunks (a hash of
    the right record's id) split the pairs, so the same pairs come out with the same probabilities."""
    spec = load_spec().model_copy(update=update)
    store = Store.on(con)
    prepare.prepare_full(store, spec)
    linker = model.linker_for(store, model.settings_for(spec))  # untrained: its priors score the pairs
    assert score.chunks(store, spec) == {}, "a small run should be one chunk"
    whole = _predicted(store, linker, spec)
    monkeypatch.setattr(score, knob, 100)
    assert score.chunks(store, spec)["num_chunks_right"] > 2
    assert _predicted(store, linker, spec) == whole
    assert len(whole) > 300


def _predicted(store: Store, linker: object, spec: ModelSpec) -> list[tuple[str, str, float]]:
    score.predict(store, linker, spec, 0.0)
    rows = store.rows("SELECT record_id_l, record_id_r, match_probability FROM scored_pairs ORDER BY ALL")
    return [(a, b, round(p, 12)) for a, b, p in rows]


def _block_keys(con: duckdb.DuckDBPyConnection) -> dict[int, list[int]]:
    return {int(u): list(keys) for u, keys in con.execute("SELECT unique_id, block_keys FROM model_input").fetchall()}
