"""Keyed blocking (linkage/block.py: block_keys): Splink scores exactly the pairs that the spec's rules,
as written, make, each pair once."""

from __future__ import annotations

import duckdb
import pytest

from benchmarks import blocking_bench as bench
from benchmarks.generate import generate
from linkage import block, model, prepare
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
